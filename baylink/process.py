"""What a BayLink server process sets for itself once its application is built: the policy of
CPython's cyclic garbage collector.

A request's objects are almost all acyclic (decoded JSON, rows, the consent gate's memo) and
reference counting frees them when the request ends; the cyclic collector finds little to free
(about ten objects a request, measured). With CPython's default policy it still runs whenever
700 more container objects are alive than at its last run. A search under consent holds about
1,250 at its peak (the page's content, the patient's Consents and record, the registry
entries), so the collector ran in every such request, scanning live objects, freeing none and
promoting them to older generations: 0.12 ms a request, about a fifth of what the consent gate
costs on ``Observation?patient=…`` (docs/performance.md, "The consent gate"). A search of 100
matches crosses the same line with any gate.

Two settings, applied once per process by the factory a server runs (``served_app``: ``baylink
serve`` and the benchmark's servers), never by ``create_app``, which tests call many times in
one process:

- ``gc.freeze()`` after start-up: the ~640,000 objects made by importing and building the app
  (FHIR models, SQLAlchemy metadata, terminology) live as long as the process and are moved out
  of the collector's sight. A full collection then scans only what requests left behind,
  instead of taking ~300 ms (measured) while every request in flight waits.
- the first generation's threshold raised (``BAYLINK_GC_THRESHOLD``, default 7,000): the
  collector runs when that many more container objects are alive, which a request's own live
  objects do not reach, while cycles still get collected (after some hundreds of requests).
  0 leaves CPython's policy as it is.
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

from baylink.settings import get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

_lock = threading.Lock()
_tuned = False


def tune_collector(threshold: int) -> bool:
    """Freezes what exists now and sets the first generation's threshold to ``threshold``,
    once per process (later calls change nothing); False where ``threshold`` is 0 or less (the
    default policy kept) or it was done already. Call it after the application is built."""
    global _tuned
    if threshold <= 0:
        return False
    with _lock:
        if _tuned:
            return False
        gc.collect()  # what is garbage now is freed, not frozen
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)
        _tuned = True
    return True


def served_app() -> FastAPI:
    """The application as ``baylink serve`` runs it (a factory for uvicorn): ``create_app``
    with the settings, then this process's collector set (``tune_collector``)."""
    from baylink.app import create_app

    settings = get_settings()
    app = create_app(settings)
    tune_collector(settings.gc_threshold)
    return app
