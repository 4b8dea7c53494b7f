"""The consent gate's batch and per-request decisions: a batch is decided exactly as each of its
resources would be alone; nothing decided in one request carries over to the next (a consent
withdrawn between two requests of the same client counts at once); the caller's own records are
counted without asking; what the store keeps as release facts is decided as the resources are."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent.gate import ConsentGate
from consent.policy import CROSS_BORDER_URL, DATA_CATEGORY
from fhir_exchange.institutions.registry import load_registry
from fhir_exchange.ports import AllowAllGate, Release, ReleaseDecision, RequestContext, decide_many
from fhir_exchange.search.params import SearchParser
from fhir_exchange.service import FhirService
from fhir_exchange.store.db import make_sessionmaker
from fhir_exchange.store.repository import FhirRepository
from tests.conftest import issue_token

HKID = "http://baylink.example.org/fhir/sid/hkid"
PERMIT_SYSTEM = "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo"
PSY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}


@contextmanager
def held_by(app, institution: str | None) -> Iterator[FhirService]:  # type: ignore[no-untyped-def]
    """Writes as ``institution``'s system (the custodian of what it creates), ungated."""
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="test", institution=institution,
                             scopes=("system/*.cruds",))
    with app.state.fhir.sessions() as session, session.begin():
        yield FhirService(FhirRepository(session, context, AllowAllGate()), "http://testserver/fhir")


def consent(provision: dict[str, Any], *, status: str = "active", cid: str = "c1") -> dict[str, Any]:
    return {"resourceType": "Consent", "id": cid, "status": status, "patient": {"reference": "Patient/p1"},
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "sourceAttachment": {"contentType": "application/pdf", "url": "https://records.example.org/forms/c1.pdf"},
            "provision": provision}


# Shenzhen may see p1's results, problems and demographics across the boundary, but no result
# from before 2025 and never medicines; mental health is not named, so it stays closed.
GRANT = {"type": "permit", "period": {"start": "2026-01-01", "end": "2027-06-30"},
         "actor": [{"reference": {"reference": "Organization/hku-szh"}}],
         "code": [{"coding": [{"system": DATA_CATEGORY, "code": c}]} for c in ("results", "problems", "demographics")],
         "extension": [{"url": CROSS_BORDER_URL, "valueBoolean": True}],
         "provision": [{"type": "deny", "code": [{"coding": [{"system": DATA_CATEGORY, "code": "medications"}]}]},
                       {"type": "deny", "dataPeriod": {"end": "2024-12-31"},
                        "code": [{"coding": [{"system": DATA_CATEGORY, "code": "results"}]}]}]}


def observation(rid: str, patient: str = "p1", when: str = "2026-10-01", **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": f"Patient/{patient}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}, "effectiveDateTime": when, **more}


@pytest.fixture
def stored(app) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Queen Mary's records of p1 and p2, one of p1's held by Shenzhen, and p1's consent; the
    resources as stored (with their custodian tags)."""
    with held_by(app, None) as service:
        load_registry(service)
    resources = []
    with held_by(app, "ha-queen-mary") as service:
        for resource in (
            {"resourceType": "Patient", "id": "p1", "identifier": [{"system": HKID, "value": "A123456(3)"},
                                                                   {"system": PERMIT_SYSTEM, "value": "H12345678"}]},
            {"resourceType": "Patient", "id": "p2"},
            observation("o1"), observation("o2"), observation("o-2019", when="2019-05-01"),
            observation("o-p2", patient="p2"),
            {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "code": {"text": "diabetes"},
             "recordedDate": "2026-01-05"},
            {"resourceType": "Condition", "id": "c-psy", "subject": {"reference": "Patient/p1"}, "code": {"text": "low mood"},
             "meta": {"security": [PSY]}},
            {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"text": "metformin"}, "subject": {"reference": "Patient/p1"}},
        ):
            resources.append(service.repo.update(resource["resourceType"], resource["id"], resource)[0].content)
        service.repo.update("Consent", "c1", consent(GRANT))
    with held_by(app, "hku-szh") as service:
        resources.append(service.repo.update("Observation", "o-szh", observation("o-szh"))[0].content)
    resources.append({"resourceType": "Organization", "id": "not-patient-data", "name": "x"})
    return resources


@pytest.fixture
def gate(app) -> ConsentGate:  # type: ignore[no-untyped-def]
    return ConsentGate(make_sessionmaker(app.state.reader_engine))


def context(institution: str, purpose: str = "TREAT", **more: Any) -> RequestContext:
    return RequestContext(request_id=str(uuid.uuid4()), client_id=f"{institution}-his", institution=institution,
                          purpose_of_use=purpose, scopes=("system/*.rs",), **more)


def _plain(decisions: list[ReleaseDecision]) -> list[tuple[Release, Any, str | None]]:
    return [(d.outcome, d.resource, d.reason) for d in decisions]


@pytest.mark.parametrize("requester", [
    context("hku-szh"), context("mo-kiang-wu"), context("ha-queen-mary"), context("hku-szh", "HPAYMT"),
    context("hku-szh", "ETREAT", roles=("break-glass",), reason="unconscious"), context("unknown-clinic"),
])
def test_a_batch_is_decided_as_each_resource_alone(app, stored, gate: ConsentGate, requester: RequestContext) -> None:  # type: ignore[no-untyped-def]
    batch = gate.decide_many(requester, stored)
    alone = []
    for resource in stored:  # each in a request of its own, by a gate of its own: nothing shared
        fresh = ConsentGate(make_sessionmaker(app.state.reader_engine))
        alone.append(fresh.decide(RequestContext(**{**_fields(requester), "request_id": str(uuid.uuid4())}), resource))
    assert _plain(batch) == _plain(alone)
    assert _plain([gate.decide(requester, r) for r in stored]) == _plain(batch)  # and one by one in that request


@pytest.mark.parametrize("requester", [
    context("hku-szh"), context("mo-kiang-wu"), context("ha-queen-mary"), context("hku-szh", "HPAYMT"),
    context("hku-szh", "ETREAT", roles=("break-glass",), reason="unconscious"), context("unknown-clinic"),
])
@pytest.mark.parametrize("read", ["one by one", "as a search reads them"])
def test_facts_kept_by_the_store_are_decided_as_the_resources(app, stored, gate: ConsentGate,  # type: ignore[no-untyped-def]
                                                              requester: RequestContext, read: str) -> None:
    """What the store keeps for each version (resource.release_facts) gets the outcome the
    resource itself gets, masking included, in another request. Read as a search reads its
    matches (one FactsReader), o1, o2 and o-2019 share their facts but for the date, and the
    Consent denies results from before 2025: each is still decided on its own date."""
    from sqlalchemy import select

    from fhir_exchange.release_facts import FactsReader, facts_of, load_facts
    from fhir_exchange.store.models import ResourceRow

    with app.state.engine.connect() as conn:
        kept = {(t, i): f for t, i, f in conn.execute(select(ResourceRow.res_type, ResourceRow.res_id,
                                                             ResourceRow.release_facts))}
    reader = FactsReader() if read == "as a search reads them" else load_facts
    facts = [reader(r["resourceType"], kept[(r["resourceType"], r["id"])]) if (r["resourceType"], r["id"]) in kept
             else facts_of(r["resourceType"], r["id"], r) for r in stored]
    if read == "as a search reads them":
        shared = {f.head for r, f in zip(stored, facts, strict=True) if r["id"] in ("o1", "o2", "o-2019")}  # type: ignore[union-attr]
        assert len(shared) == 1 and None not in shared
    assert all(f is not None for f in facts)
    on_facts = gate.decide_facts(RequestContext(**{**_fields(requester), "request_id": str(uuid.uuid4())}), facts)  # type: ignore[arg-type]
    assert on_facts == [d.outcome for d in gate.decide_many(requester, stored)]
    assert Release.DENY in on_facts or requester.institution == "ha-queen-mary"


def _fields(context: RequestContext) -> dict[str, Any]:
    return {name: getattr(context, name) for name in context.__slots__}


def test_what_shenzhen_sees_under_the_consent(stored, gate: ConsentGate) -> None:  # type: ignore[no-untyped-def]
    released = {r["id"]: d for r, d in zip(stored, gate.decide_many(context("hku-szh"), stored), strict=True)
                if d.outcome is not Release.DENY}
    # o-2019 is a result from before 2025, c-psy is labelled, m1 is denied, p2 never consented
    assert set(released) == {"p1", "o1", "o2", "c1", "o-szh", "not-patient-data"}
    assert released["p1"].outcome is Release.PERMIT_WITH_MASKING
    assert released["p1"].resource["identifier"] == [{"system": PERMIT_SYSTEM, "value": "H12345678"}]


def test_a_withdrawal_counts_from_the_next_request_of_the_same_client(app, stored, gate: ConsentGate) -> None:  # type: ignore[no-untyped-def]
    o1 = next(r for r in stored if r["id"] == "o1")
    first = context("hku-szh")
    assert gate.decide_many(first, [o1])[0].outcome is Release.PERMIT
    with held_by(app, "ha-queen-mary") as service:
        service.repo.update("Consent", "c1", consent(GRANT, status="inactive"))
    second = RequestContext(**{**_fields(first), "request_id": str(uuid.uuid4())})  # same client, next request
    assert gate.decide_many(second, [o1])[0].outcome is Release.DENY
    assert gate.decide(first, o1).outcome is Release.PERMIT  # a request is decided on one view of the store


def test_a_withdrawal_counts_from_the_next_search_over_rest(app, anonymous_client: TestClient, stored) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {issue_token(app, institution='hku-szh', client_id='hku-szh-his')}"}

    def search() -> tuple[int, set[str]]:
        bundle = anonymous_client.get("/fhir/Observation", params={"patient": "Patient/p1"}, headers=headers).json()
        return bundle["total"], {e["resource"]["id"] for e in bundle.get("entry", [])}

    assert search() == (3, {"o1", "o2", "o-szh"})
    with held_by(app, "ha-queen-mary") as service:
        service.repo.update("Consent", "c1", consent(GRANT, status="inactive"))
    assert search() == (1, {"o-szh"})  # Shenzhen's own record only


class Spy:
    """The consent gate, recording what it is asked to decide."""

    def __init__(self, inner: ConsentGate, *, own_records: bool) -> None:
        self.inner = inner
        self.asked: list[str] = []
        self.releases_own_records = own_records

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        return self.decide_many(context, [resource])[0]

    def decide_many(self, context: RequestContext, resources: list[dict[str, Any]]) -> list[ReleaseDecision]:
        self.asked += [r["id"] for r in resources]
        return self.inner.decide_many(context, resources)


@pytest.mark.parametrize("institution", ["ha-queen-mary", "hku-szh", "mo-kiang-wu"])
def test_own_records_are_counted_from_the_index(app, stored, gate: ConsentGate, institution: str) -> None:  # type: ignore[no-untyped-def]
    counted = {}
    for own_records in (True, False):
        spy = Spy(gate, own_records=own_records)
        with app.state.fhir.sessions() as session:
            repository = FhirRepository(session, context(institution), spy)
            pks = repository.search_pks(SearchParser().parse("Observation", [("patient", "Patient/p1")]))
            released = repository.releasable(pks)
            asked = set(spy.asked)
            counted[own_records] = ({s.id for s in repository.load(released)}, asked)
    assert counted[True][0] == counted[False][0]  # the same answer either way
    held = {"ha-queen-mary": {"o1", "o2", "o-2019"}, "hku-szh": {"o-szh"}, "mo-kiang-wu": set()}[institution]
    assert counted[False][1] == {"o1", "o2", "o-2019", "o-szh"}
    assert counted[True][1] == {"o1", "o2", "o-2019", "o-szh"} - held  # the gate was not asked about its own


def test_decide_many_falls_back_to_decide_and_checks_the_count() -> None:
    class One:
        def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
            return ReleaseDecision(Release.PERMIT, resource, resource["id"])

    class Short(One):
        def decide_many(self, context: RequestContext, resources: list[dict[str, Any]]) -> list[ReleaseDecision]:
            return []

    resources = [{"resourceType": "Basic", "id": "a"}, {"resourceType": "Basic", "id": "b"}]
    assert [d.reason for d in decide_many(One(), context("x"), resources)] == ["a", "b"]
    with pytest.raises(RuntimeError):
        decide_many(Short(), context("x"), resources)


def test_the_app_s_gate_counts_own_records_from_the_index(app, stored, gate: ConsentGate) -> None:  # type: ignore[no-untyped-def]
    """The gate the app runs with (the referral addressee wrapper around the consent gate)
    declares what the consent gate declares, so a custodian's search is counted from the index
    there too, and the wrapper still releases what it adds."""
    from fhir_exchange.ports import releases_own_records
    from referral.gate import ReferralAddresseeGate

    assert releases_own_records(app.state.fhir.gate)
    spy = Spy(gate, own_records=True)
    wrapped = ReferralAddresseeGate(spy)
    with app.state.fhir.sessions() as session:
        repository = FhirRepository(session, context("ha-queen-mary"), wrapped)
        pks = repository.search_pks(SearchParser().parse("Observation", [("patient", "Patient/p1")]))
        releasable = repository.releasable(pks)
        asked = set(spy.asked)
        released = {s.id for s in repository.load(releasable)}
    assert released == {"o1", "o2", "o-2019"}  # its own; Shenzhen's o-szh is not covered by a consent to it
    assert asked == {"o-szh"}  # counting asked only about the record it does not hold
    assert not releases_own_records(ReferralAddresseeGate(AllowAllGate()))


def test_the_gate_reads_in_the_caller_s_transaction(app, stored, gate: ConsentGate) -> None:  # type: ignore[no-untyped-def]
    """Given the caller's session, the gate reads the Consents there: a consent withdrawn earlier
    in the same transaction already counts, before anything is committed (on a connection of
    its own the gate could not see it yet)."""
    from fhir_exchange.ports import reads_with_caller

    assert reads_with_caller(gate) and reads_with_caller(app.state.fhir.gate)
    query = SearchParser().parse("Observation", [("patient", "Patient/p1")])
    with app.state.fhir.sessions() as session, session.begin():
        writer = FhirRepository(session, RequestContext(request_id=str(uuid.uuid4()), client_id="t",
                                                        institution="ha-queen-mary", scopes=("system/*.cruds",)),
                                AllowAllGate())
        reader = FhirRepository(session, context("hku-szh"), gate)
        assert {s.id for s in reader.load(reader.releasable_matches(query))} == {"o1", "o2", "o-szh"}
        writer.update("Consent", "c1", consent(GRANT, status="inactive"))
        again = FhirRepository(session, context("hku-szh"), gate)  # the next request, in the same transaction
        assert {s.id for s in again.load(again.releasable_matches(query))} == {"o-szh"}
        session.rollback()
    fresh = FhirRepository(app.state.fhir.sessions(), context("hku-szh"), gate)
    assert {s.id for s in fresh.load(fresh.releasable_matches(query))} == {"o1", "o2", "o-szh"}  # rolled back
    fresh.session.close()


def test_a_request_s_reads_end_with_its_session(app, stored, gate: ConsentGate) -> None:  # type: ignore[no-untyped-def]
    """A search decided through the caller's session: the gate keeps what it read for the
    request with that session, not beyond it, and nothing of the request is left to the cyclic
    garbage collector (it would run in some later request, and cost that one)."""
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        with app.state.fhir.sessions() as session, session.begin():
            repository = FhirRepository(session, context("hku-szh"), gate)
            pks = repository.releasable_matches(SearchParser().parse("Observation", [("patient", "Patient/p1")]))
            assert sorted(s.id for s in repository.load(pks)) == ["o-szh", "o1", "o2"]
            held = weakref.ref(session)
        assert not gate._requests  # the request's lookups were held by its session
        del session, repository
        assert held() is None  # freed as soon as the request let go of it
    finally:
        gc.enable()


@pytest.mark.parametrize("requester", [
    context("hku-szh"), context("mo-kiang-wu"), context("ha-queen-mary"), context("hku-szh", "HPAYMT"),
    context("hku-szh", "ETREAT", roles=("break-glass",), reason="unconscious"), context("unknown-clinic"),
])
def test_facts_without_their_date_are_decided_only_where_the_date_cannot_matter(  # type: ignore[no-untyped-def]
        app, stored, gate: ConsentGate, requester: RequestContext) -> None:
    """``decide_undated`` on the facts the store keeps, read without their dates: where it gives
    an outcome, every resource with those facts gets that outcome; under Shenzhen's Consent,
    which denies results from before 2025, o1, o2 and o-2019 are left to their dates."""
    from sqlalchemy import select

    from fhir_exchange.release_facts import FactsReader
    from fhir_exchange.store.models import ResourceRow

    with app.state.engine.connect() as conn:
        kept = {(t, i): f for t, i, f in conn.execute(select(ResourceRow.res_type, ResourceRow.res_id,
                                                             ResourceRow.release_facts))}
    reader = FactsReader()
    shared = {r["id"]: reader.shared(r["resourceType"], kept.get((r["resourceType"], r["id"]))) for r in stored}
    heads = {f.head: f for f in shared.values() if f is not None}
    undated = dict(zip(heads, gate.decide_undated(RequestContext(**{**_fields(requester), "request_id": str(uuid.uuid4())}),
                                                  list(heads.values())), strict=True))
    expected = {r["id"]: d.outcome for r, d in zip(stored, gate.decide_many(requester, stored), strict=True)}
    for rid, facts in shared.items():
        if facts is not None and undated[facts.head] is not None:
            assert undated[facts.head] == expected[rid], rid
    if requester.institution == "hku-szh" and requester.purpose_of_use == "TREAT":
        assert undated[shared["o1"].head] is None  # type: ignore[union-attr]
    if requester.institution == "ha-queen-mary":  # its own records: no date can matter
        assert all(undated[head] is not None for head, f in heads.items() if f.custodian == "ha-queen-mary")
