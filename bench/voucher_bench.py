"""Voucher claims (part of ``make bench``; alone: ``python bench/run.py --only voucher``).

For each backend (SQLite; PostgreSQL when reachable), on a database of its own holding the
institutions registry and ``--voucher-patients`` patients of HKU-Shenzhen Hospital (each with
an HKID, aged over 65), against a real server (uvicorn, its own process, the consent gate on):

- one at a time: ``POST /vouchers/claims`` (HK$10 consultations, a random patient each), claims/s
  and p50/p95 latency;
- 8 clients at once, the claims spread over every patient's account: claims/s and p50/p95;
- 8 clients at once on one person's account: every claim queues on that account's row lock
  (SELECT … FOR UPDATE on PostgreSQL), so this is the rate one account can take;
- the in-process floor: ``ClaimService.submit`` in a transaction of its own per claim, with no
  HTTP, token, consent gate or audit event (what no server can go below per claim).

Every claim must come back 201 and approved, and every account's ledger must add up after the run.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from common import database, percentile, server

from fhir_exchange import crypto
from fhir_exchange.crypto import IdentifierVault, new_key
from fhir_exchange.identity.documents import hkid_check_character
from fhir_exchange.institutions.registry import load_registry
from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.service import FhirService
from fhir_exchange.store.db import make_engine, make_sessionmaker
from fhir_exchange.store.repository import FhirRepository
from referral.voucher.claims import ClaimRequest, ClaimService, hong_kong_day
from referral.voucher.ledger import Ledger
from referral.voucher.models import VoucherAccount
from referral.voucher.rules import default_rules, read_factors

INSTITUTION = "hku-szh"
HKID = "http://baylink.example.org/fhir/sid/hkid"
CLIENTS = 8
WARM_UP = 20


@contextmanager
def _identifier_keys() -> Iterator[None]:
    """Keys of this run, in the environment (the servers read them) and in this process, so
    that what one seals the other opens."""
    names = {"BAYLINK_IDENTIFIER_KEYS": f"bench1:{new_key()}", "BAYLINK_IDENTIFIER_KEY_ID": "bench1",
             "BAYLINK_BLIND_INDEX_KEY": new_key()}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    crypto.configure(IdentifierVault.from_text(names["BAYLINK_IDENTIFIER_KEYS"], "bench1", names["BAYLINK_BLIND_INDEX_KEY"]))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _hkid(n: int) -> str:
    digits = f"{n:06d}"
    return f"B{digits}({hkid_check_character('B', digits)})"


def _service(session: Any, institution: str | None) -> FhirService:
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="voucher-bench", institution=institution,
                             scopes=("system/*.cruds",))
    return FhirService(FhirRepository(session, context, AllowAllGate()), "http://bench/fhir")


def prepare(url: str, patients: int) -> None:
    """The registry, and the patients as HKU-SZH holds them (so its own requests see them)."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        load_registry(_service(session, None))
    with sessions() as session, session.begin():
        service = _service(session, INSTITUTION)
        for i in range(patients):
            service.update("Patient", f"vp{i}", {
                "resourceType": "Patient", "id": f"vp{i}", "identifier": [{"system": HKID, "value": _hkid(i)}],
                "name": [{"family": "Bench", "given": [f"Voucher {i}"]}], "birthDate": f"19{random.randint(30, 59)}-06-01"})
    engine.dispose()


def _body(patient: str, amount: str = "10.00") -> dict[str, str]:
    return {"patient": f"Patient/{patient}", "service_type": "consultation",
            "service_date": hong_kong_day(datetime.now(UTC)).isoformat(), "amount": amount, "currency": "HKD"}


def _claim(http: httpx.Client, headers: dict[str, str], body: dict[str, str]) -> float:
    t0 = time.perf_counter()
    response = http.post("/vouchers/claims", json=body, headers=headers)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 201 or response.json()["outcome"] != "approved":
        raise RuntimeError(f"claim not approved: {response.status_code} {response.text[:300]}")
    return elapsed


def _concurrent(base: str, headers: dict[str, str], claims: int, patient: Callable[[random.Random], str],
                amount: str) -> tuple[float, list[float]]:
    """``claims`` claims from CLIENTS clients at once: (claims/s, latencies in ms)."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS + 1)

    def client(index: int) -> None:
        rng = random.Random(index)
        mine = []
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                start.wait()
                for _ in range(claims // CLIENTS):
                    mine.append(_claim(http, headers, _body(patient(rng), amount)))
        except BaseException as exc:
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return len(latencies) / elapsed, latencies


def floor(url: str, claims: int, patients: int) -> dict[str, float]:
    """ClaimService.submit in-process, a transaction per claim, no HTTP/auth/gate/audit."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    rules, factors = default_rules(), read_factors()
    rng = random.Random(11)
    day = hong_kong_day(datetime.now(UTC))
    t0 = time.perf_counter()
    for _ in range(claims):
        with sessions() as session, session.begin():
            request = ClaimRequest(f"vp{rng.randrange(patients)}", "consultation", day, Decimal("10.00"), "HKD")
            claim = ClaimService(_service(session, INSTITUTION), rules, factors, datetime.now(UTC)).submit(request)
            assert claim.outcome == "approved", claim.reason
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return {"per_s": claims / elapsed, "ms": elapsed / claims * 1000}


def check_ledgers(url: str) -> int:
    """Every account adds up (balance == sum of entries == last running balance, never negative)."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        ledger = Ledger(session)
        accounts = list(session.query(VoucherAccount.pk).all())
        for (pk,) in accounts:
            if not ledger.totals(pk).consistent:
                raise AssertionError(f"voucher account {pk} does not add up")
    engine.dispose()
    return len(accounts)


def run_backend(backend: str, url: str, claims: int, patients: int) -> dict[str, Any]:
    prepare(url, patients)
    with server(url, institution=INSTITUTION) as (fhir_base, auth):
        base = fhir_base.removesuffix("/fhir")
        headers = {**auth, "Accept": "application/json"}
        rng = random.Random(7)
        with httpx.Client(base_url=base, timeout=120) as http:
            for _ in range(WARM_UP):
                _claim(http, headers, _body(f"vp{rng.randrange(patients)}"))
            sequential = []
            t0 = time.perf_counter()
            for _ in range(claims):
                sequential.append(_claim(http, headers, _body(f"vp{rng.randrange(patients)}")))
            sequential_rate = claims / (time.perf_counter() - t0)
        spread_rate, spread = _concurrent(base, headers, claims, lambda r: f"vp{r.randrange(patients)}", "10.00")
        hot_rate, hot = _concurrent(base, headers, claims, lambda r: "vp0", "1.00")
    floor_stats = floor(url, claims, patients)
    accounts = check_ledgers(url)
    return {"backend": backend, "claims": claims, "patients": patients, "accounts": accounts,
            "sequential_per_s": sequential_rate, "sequential": sequential,
            "spread_per_s": spread_rate, "spread": spread, "hot_per_s": hot_rate, "hot": hot,
            "floor_per_s": floor_stats["per_s"], "floor_ms": floor_stats["ms"]}


def run(backends: list[str], claims: int = 300, patients: int = 200) -> list[dict[str, Any]]:
    results = []
    random.seed(42)
    with _identifier_keys():
        for backend in backends:
            with database(backend.strip()) as url:
                if url is not None:
                    results.append(run_backend(backend.strip(), url, claims, patients))
    return results


def table(results: list[dict[str, Any]]) -> str:
    def cell(rate: float, values: list[float]) -> str:
        return f"{rate:.0f} | {percentile(values, 50):.2f} / {percentile(values, 95):.2f}"

    lines = [
        "| backend | one at a time: claims/s | p50 / p95 (ms) | 8 clients, many accounts: claims/s | p50 / p95 (ms) "
        "| 8 clients, one account: claims/s | p50 / p95 (ms) | in-process floor: claims/s | floor per claim (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['backend']} | {cell(r['sequential_per_s'], r['sequential'])} "
                     f"| {cell(r['spread_per_s'], r['spread'])} | {cell(r['hot_per_s'], r['hot'])} "
                     f"| {r['floor_per_s']:.0f} | {r['floor_ms']:.2f} |")
    if results:
        r = results[0]
        lines.append(f"\n{r['claims']} claims per column, {r['patients']} patients; every claim approved, "
                     f"every account's ledger adds up ({', '.join(str(x['accounts']) for x in results)} accounts checked).")
    return "\n".join(lines)
