"""The consent gate benchmark's server (``bench/run.py``): BayLink four times in one process, on
the same settings and database, one instance per case timed: ``/allow-all`` and
``/allow-all-again`` with the allow-all gate, ``/consent-custodian`` and ``/consent`` with the gate
BayLink serves with (asked by the custodian institution, and by another institution under
consent). Timed in one process, the gate is the only difference between ``/allow-all`` and
``/consent``: two server processes differ by themselves (start order, placement on the cores,
warmth) by as much as the 10% the gate is allowed. ``/allow-all-again`` is the control: what the
method reads as a difference where there is none.

One instance per case (each its own connection pool, so its own PostgreSQL backend), as the two
allow-all cases have always had: when the custodian's and the consented requests shared one
instance, the custodian's read about 3 points above what it reads alone, a cost of the two
workloads alternating on one backend that neither allow-all case paid (docs/performance.md)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from baylink.app import create_app as create_baylink
from baylink.process import tune_collector
from baylink.settings import get_settings
from fhir_exchange.ports import AllowAllGate

PREFIXES = ("/allow-all", "/allow-all-again", "/consent-custodian", "/consent")


def create_app() -> Starlette:
    app = Starlette(routes=[Mount("/allow-all", create_baylink(gate=AllowAllGate())),
                            Mount("/allow-all-again", create_baylink(gate=AllowAllGate())),
                            Mount("/consent-custodian", create_baylink()),
                            Mount("/consent", create_baylink())])
    # the process as ``baylink serve`` sets it (baylink/process.py), once all four are built
    tune_collector(get_settings().gc_threshold)
    return app
