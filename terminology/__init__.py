"""Terminology: code systems, value sets and concept maps, with displays in English,
Traditional Chinese (Hong Kong) and Simplified Chinese.

Depends on none of BayLink's other packages. Other packages call the cached Python API:
``terminology.translate``, ``terminology.display`` and ``terminology.normalise_unit``, after
the composition root has called ``terminology.configure(sessionmaker)``.
"""

from terminology.api import Terminology, Unit, configure, display, normalise_unit, translate

__all__ = ["Terminology", "Unit", "configure", "display", "normalise_unit", "translate"]
