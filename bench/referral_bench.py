"""Referral creation benchmark: ``POST /referrals`` (a ServiceRequest and a Task in one
transaction, through the referral rules: designation check, supporting information asked of
the consent gate as the receiver, the consent request, the outbox) against a real server, on
PostgreSQL (and SQLite for comparison), beside the in-process floor: the same two writes
through ``FhirService`` with the same rules, no HTTP.

Usage: ``python bench/referral_bench.py [--referrals 300] [--clients 4] [--backend postgresql|sqlite|both]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import database, percentile, server  # noqa: E402

HKID = "http://baylink.example.org/fhir/sid/hkid"


def _prepare(url: str) -> None:
    """The registry, and a patient with an Observation held by Queen Mary Hospital."""
    from baylink.settings import Settings, identifier_vault
    from fhir_exchange import crypto
    from fhir_exchange.institutions.registry import load_registry
    from fhir_exchange.ports import AllowAllGate, RequestContext
    from fhir_exchange.service import FhirService
    from fhir_exchange.store.db import make_engine, make_sessionmaker
    from fhir_exchange.store.repository import FhirRepository

    crypto.configure(identifier_vault(Settings(database_url=url)))
    engine = make_engine(url)
    try:
        for institution in (None, "ha-queen-mary"):
            context = RequestContext(request_id=str(uuid.uuid4()), client_id="bench", institution=institution,
                                     scopes=("system/*.cruds",))
            with make_sessionmaker(engine)() as session, session.begin():
                service = FhirService(FhirRepository(session, context, AllowAllGate()), "http://bench/fhir")
                if institution is None:
                    load_registry(service)
                else:
                    service.update("Patient", "bench-p", {"resourceType": "Patient", "id": "bench-p",
                                                          "identifier": [{"system": HKID, "value": "A123456(3)"}]})
                    service.update("Observation", "bench-o", {
                        "resourceType": "Observation", "id": "bench-o", "status": "final", "code": {"text": "ECG"},
                        "subject": {"reference": "Patient/bench-p"}})
    finally:
        engine.dispose()


BODY = {"patient": "Patient/bench-p", "recipient": "Organization/hku-szh", "reason": "cardiology review",
        "priority": "urgent", "supportingInfo": ["Observation/bench-o"]}


def floor(url: str, count: int) -> float:
    """Referrals/s in-process: the same ServiceRequest and Task through FhirService with the
    app's gate and rules, one transaction each."""
    from baylink.app import create_app
    from baylink.settings import Settings
    from fhir_exchange.api.runtime import UnitOfWork
    from fhir_exchange.ports import RequestContext
    from referral.api import referral_resources

    app = create_app(Settings(database_url=url))
    runtime = app.state.fhir
    context = RequestContext(request_id="bench", client_id="bench", institution="ha-queen-mary", scopes=("system/*.cruds",))
    started = time.perf_counter()
    for _ in range(count):
        request, task = referral_resources(BODY, "ha-queen-mary")
        with UnitOfWork(runtime, context, "http://bench/fhir").transaction("create") as service:
            stored = service.create("ServiceRequest", request)
            task["focus"] = {"reference": f"ServiceRequest/{stored.stored.id}"}  # type: ignore[union-attr]
            service.create("Task", task)
    elapsed = time.perf_counter() - started
    app.state.engine.dispose()
    app.state.reader_engine.dispose()
    return count / elapsed


def over_http(base: str, headers: dict[str, str], count: int, clients: int) -> dict[str, float]:
    root = base.removesuffix("/fhir")
    latencies: list[float] = []

    def one(_: int) -> None:
        with httpx.Client(timeout=60) as client:
            started = time.perf_counter()
            response = client.post(f"{root}/referrals", json=BODY, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    for warm in range(5):
        one(warm)
    latencies.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    return {"per_s": count / elapsed, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "mean": statistics.fmean(latencies)}


def run(backend: str, referrals: int, clients: int) -> dict[str, Any] | None:
    with database(backend) as url:
        if url is None:
            return None
        _prepare(url)
        in_process = floor(url, max(50, referrals // 3))
        with server(url, institution="ha-queen-mary") as (base, headers):
            http = over_http(base, headers, referrals, clients)
    return {"backend": backend, "floor": in_process, **http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    args = parser.parse_args()
    backends = ("postgresql", "sqlite") if args.backend == "both" else (args.backend,)
    rows = [r for b in backends if (r := run(b, args.referrals, args.clients)) is not None]
    print("\nReferral creation (POST /referrals: ServiceRequest + Task, rules, gate check, consent request, outbox)")
    print(f"{'backend':<11} {'in-process floor/s':>19} {'HTTP/s':>8} {'p50 ms':>8} {'p95 ms':>8}  ({args.clients} clients)")
    for row in rows:
        print(f"{row['backend']:<11} {row['floor']:>19.0f} {row['per_s']:>8.0f} {row['p50']:>8.1f} {row['p95']:>8.1f}")


if __name__ == "__main__":
    main()
