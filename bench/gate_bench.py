"""The consent engine and gate in-process (part of the FHIR section of ``make bench``).

- engine: ``consent.policy.decide`` calls per second, pure (no database): a request of the
  custodian institution, and one of another institution that the patient's Consent lets see
  results (the same Consent as the HTTP benchmark's), with three Consents to read through;
- gate: ``ConsentGate.decide_many`` over each of 20 patients' Observations as stored (about
  100 each with 100,000 resources), each batch a new request (so it reads the registry, the
  patient's record and Consents afresh, as a request does): requests and resources decided per
  second; and ``ConsentGate.decide_facts`` over the release facts the store keeps for the same
  Observations (what a search's count decides on).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout, before any installed copy

from sqlalchemy import select  # noqa: E402

from consent.gate import ConsentGate  # noqa: E402
from consent.policy import Requester, Subject, decide  # noqa: E402
from fhir_exchange.ports import AllowAllGate, RequestContext  # noqa: E402
from fhir_exchange.release_facts import load_facts  # noqa: E402
from fhir_exchange.search.params import SearchParser  # noqa: E402
from fhir_exchange.store.db import make_engine, make_sessionmaker  # noqa: E402
from fhir_exchange.store.models import ResourceRow  # noqa: E402
from fhir_exchange.store.repository import FhirRepository  # noqa: E402

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _rate(call: Callable[[], object], *, seconds: float = 2.0, step: int = 100) -> float:
    """Calls per second, over about ``seconds`` (after ``step`` calls to warm up)."""
    for _ in range(step):
        call()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(step):
            call()
        calls += step
    return calls / elapsed


def engine(consent: dict[str, Any]) -> dict[str, float]:
    """decide() per second: the custodian's fast path, and a decision that ``consent``
    permits, read through two more of the patient's Consents (one for another institution,
    one withdrawn)."""
    elsewhere = {**consent["provision"], "actor": [{"reference": {"reference": "Organization/elsewhere"}}]}
    consents = [{**consent, "id": "elsewhere", "provision": elsewhere}, {**consent, "id": "withdrawn", "status": "inactive"},
                consent]
    patient = consent["patient"]["reference"].removeprefix("Patient/")
    subject = Subject("Observation", patient, "baylink-bench", "HK", frozenset(), date(2025, 6, 1))
    custodian = Requester("baylink-bench", "HK", frozenset({"jurisdiction:HK"}))
    other = Requester("bench-other", "HK", frozenset({"jurisdiction:HK"}))
    assert decide(other, subject, consents, NOW).consent == f"Consent/{consent['id']}"
    return {"custodian": _rate(lambda: decide(custodian, subject, consents, NOW)),
            "consented": _rate(lambda: decide(other, subject, consents, NOW))}


def gate(database_url: str, patients: list[str]) -> dict[str, float]:
    """ConsentGate.decide_many over each patient's Observations, a new request per batch."""
    import terminology
    from baylink.settings import Settings, identifier_vault
    from fhir_exchange import crypto

    engine_ = make_engine(database_url, read_only=True)
    sessions = make_sessionmaker(engine_)
    terminology.configure(sessions)
    # the servers' identifier keys (development: var/ of this checkout), to open Patient records
    crypto.configure(identifier_vault(Settings(database_url=database_url,
                                               identifier_keys_file=ROOT / "var" / "identifier-keys.json")))
    operator = RequestContext(request_id="bench", client_id="bench", scopes=("system/*.rs",))
    batches, fact_batches = [], []
    with sessions() as session:
        repository = FhirRepository(session, operator, AllowAllGate())
        for patient in patients:
            query = SearchParser().parse("Observation", [("patient", f"Patient/{patient}")])
            pks = repository.search_pks(query)
            batches.append([s.content for s in repository.load(pks) if s.content])
            kept = session.execute(select(ResourceRow.res_type, ResourceRow.release_facts).where(ResourceRow.pk.in_(pks)))
            fact_batches.append([f for f in (load_facts(t, text) for t, text in kept) if f is not None])
    consent_gate = ConsentGate(sessions)
    resources = sum(len(b) for b in batches)
    result = {}
    for case, institution in (("custodian", "baylink-bench"), ("consented", "bench-other")):
        def one_round(institution: str = institution) -> None:
            for batch in batches:
                context = RequestContext(request_id=str(uuid.uuid4()), client_id="bench", institution=institution)
                consent_gate.decide_many(context, batch)
        rounds = _rate(one_round, step=1)  # rounds per second
        result[f"{case}_requests"] = rounds * len(batches)
        result[f"{case}_resources"] = rounds * resources

        def facts_round(institution: str = institution) -> None:
            for batch in fact_batches:
                context = RequestContext(request_id=str(uuid.uuid4()), client_id="bench", institution=institution)
                consent_gate.decide_facts(context, batch)
        rounds = _rate(facts_round, step=1)
        result[f"{case}_facts_requests"] = rounds * len(fact_batches)
    result["batch"] = resources / len(batches)
    engine_.dispose()
    return result


def table(results: list[dict[str, Any]]) -> str:
    batch = sum(r["gate_rates"]["batch"] for r in results) / max(1, len(results))
    lines = [f"| backend | engine: decide() calls/s, custodian / under consent | gate, a request of {batch:.0f} Observations "
             "under consent: requests/s (resources/s) | the same, custodian: requests/s (resources/s) "
             "| on their release facts (decide_facts): requests/s under consent / custodian |",
             "|---|---|---|---|---|"]
    for r in results:
        e, g = r["engine"], r["gate_rates"]
        lines.append(f"| {r['backend']} | {e['custodian']:,.0f} / {e['consented']:,.0f} "
                     f"| {g['consented_requests']:,.0f} ({g['consented_resources']:,.0f}) "
                     f"| {g['custodian_requests']:,.0f} ({g['custodian_resources']:,.0f}) "
                     f"| {g['consented_facts_requests']:,.0f} / {g['custodian_facts_requests']:,.0f} |")
    return "\n".join(lines)
