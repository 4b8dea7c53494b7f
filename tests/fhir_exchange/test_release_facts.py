"""Release facts: read from a version's content when it is written, kept beside it, given back to a
gate that decides on facts; what has none (written before migration 0010, a Binary guarded by
another resource, facts of another FACTS_VERSION) is decided from its content instead."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text, update

from baylink.migrate import upgrade
from fhir_exchange.ports import AllowAllGate, Release, ReleaseDecision, RequestContext
from fhir_exchange.release_facts import (
    CUSTODIAN_SYSTEM,
    FACTS_VERSION,
    FactsReader,
    ReleaseFacts,
    facts_of,
    load_facts,
    stored_facts,
)
from fhir_exchange.search.params import SearchParser
from fhir_exchange.store.models import ResourceRow
from fhir_exchange.store.repository import FhirRepository

HIV = {"system": "http://hl7.org/fhir/sid/icd-10", "code": "B20"}


def test_facts_read_from_content() -> None:
    appointment = {"resourceType": "Appointment", "id": "a1", "status": "booked", "start": "2026-03-04T09:00:00+08:00",
                   "meta": {"tag": [{"system": CUSTODIAN_SYSTEM, "code": "ha-queen-mary"}],
                            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]},
                   "participant": [{"actor": {"reference": "Patient/p2"}}, {"actor": {"reference": "Patient/p1"}},
                                   {"actor": {"reference": "Practitioner/d1"}}]}
    facts = facts_of("Appointment", "a1", appointment)
    assert facts.patients == ("p1", "p2")  # any reference to a Patient, sorted
    assert facts.custodian == "ha-queen-mary"
    assert facts.security == frozenset({"HIV"})
    assert facts.codings == ()
    assert facts.clinical_date is None  # Appointment.start is not a clinical date field
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [HIV, HIV, {"system": "http://snomed.info/sct"}]}, "recordedDate": "2025-06-30"}
    facts = facts_of("Condition", "c1", condition)
    assert facts.codings == (("http://hl7.org/fhir/sid/icd-10", "B20"),)  # each once; a coding without a code is none
    assert facts.clinical_date == date(2025, 6, 30)
    assert facts_of("Patient", "p9", {"resourceType": "Patient"}).patients == ("p9",)
    assert facts_of("Organization", "o", {"resourceType": "Organization"}).patients == ()


def test_kept_as_text_and_read_back() -> None:
    observation = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"},
                   "valueCodeableConcept": {"coding": [HIV]}, "effectivePeriod": {"start": "2024-01-02T00:00:00Z"}}
    kept = stored_facts("Observation", "o1", observation)
    assert kept is not None and load_facts("Observation", kept) == facts_of("Observation", "o1", observation)
    assert load_facts("Observation", None) is None
    older = kept.replace(f"[{FACTS_VERSION},", f"[{FACTS_VERSION - 1},", 1)
    assert load_facts("Observation", older) is None  # another version's facts are not trusted
    # a Binary guarded by another resource is decided as that resource is, at the time
    guarded = {"resourceType": "Binary", "id": "b", "securityContext": {"reference": "DocumentReference/d1"}}
    assert stored_facts("Binary", "b", guarded) is None
    own = {"resourceType": "Binary", "id": "b", "securityContext": {"reference": "Patient/p1"}}
    assert load_facts("Binary", stored_facts("Binary", "b", own)).patients == ("p1",)  # type: ignore[union-attr]


def test_a_search_s_reader_reads_as_load_facts() -> None:
    """A search reads its matches' facts with one FactsReader: the same facts as load_facts,
    and those that differ only by their date share a head (the gate's memo key); nothing
    else shares it."""
    def kept(patient: str, code: str, when: str | None, security: list[dict[str, str]] | None = None) -> str:
        resource = {"resourceType": "Observation", "subject": {"reference": f"Patient/{patient}"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "meta": {"tag": [{"system": CUSTODIAN_SYSTEM, "code": "clinic-a"}], "security": security or []},
                    **({"effectiveDateTime": when} if when else {})}
        return stored_facts("Observation", "o", resource)  # type: ignore[return-value]

    texts = [kept("p1", "718-7", "2025-01-02"), kept("p1", "718-7", "2019-05-01T08:00:00+08:00"),
             kept("p1", "718-7", None), kept("p1", "4548-4", "2025-01-02"), kept("p2", "718-7", "2025-01-02"),
             kept("p1", "718-7", "2025-01-02", [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                 "code": "PSY"}]),
             f'[{FACTS_VERSION + 1},["p1"],"clinic-a",[],[],"2025-01-02"]', f"[{FACTS_VERSION + 1}]"]
    reader = FactsReader()
    read = [reader("Observation", t) for t in texts]
    for got, t in zip(read, texts, strict=True):
        expected = load_facts("Observation", t)
        assert (got is None and expected is None) or (got is not None and got._replace(head=None) == expected)
    heads = [f.head if f else None for f in read]
    assert heads[0] == heads[1] == heads[2] is not None  # p1's 718-7 results, on three dates (or none)
    assert len({heads[0], heads[3], heads[4], heads[5]}) == 4  # another code, patient or label: another head
    assert read[6] is None and read[7] is None  # another FACTS_VERSION is not trusted
    assert reader("Patient", texts[0]).head != heads[0]  # type: ignore[union-attr]  # nor another type
    assert reader("Observation", None) is None


class FactsGate:
    """Denies what carries the HIV code; decides on facts when ``on_facts``, and records what it
    is asked each way."""

    releases_own_records = False

    def __init__(self, *, on_facts: bool) -> None:
        self.on_facts = on_facts
        self.by_content: list[str] = []
        self.by_facts = 0

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        self.by_content.append(resource["id"])
        return (ReleaseDecision(Release.DENY, None, "hiv") if facts_of(resource["resourceType"], resource["id"], resource)
                .codings == (("http://hl7.org/fhir/sid/icd-10", "B20"),) else ReleaseDecision(Release.PERMIT, resource, "ok"))

    def decide_facts(self, context: RequestContext, facts: Sequence[ReleaseFacts]) -> list[Release | None]:
        if not self.on_facts:
            return [None] * len(facts)
        self.by_facts += len(facts)
        return [Release.DENY if f.codings == (("http://hl7.org/fhir/sid/icd-10", "B20"),) else Release.PERMIT for f in facts]


def _context() -> RequestContext:
    return RequestContext(request_id=str(uuid.uuid4()), client_id="t", institution="clinic-a", scopes=("system/*.cruds",))


@pytest.fixture
def written(app) -> None:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session, session.begin():
        repository = FhirRepository(session, _context(), AllowAllGate())
        for i in range(6):
            repository.create("Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                                            "code": {"coding": [HIV] if i % 2 else [{"system": "urn:x", "code": str(i)}]}},
                              f"c{i}")
        repository.delete("Condition", "c5")


def _count(app, gate: FactsGate, *, matches: bool) -> list[str]:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session:
        repository = FhirRepository(session, _context(), gate)
        query = SearchParser().parse("Condition", [("patient", "Patient/p1")])
        pks = repository.releasable_matches(query) if matches else repository.releasable(repository.search_pks(query))
        return sorted(s.id for s in FhirRepository(session, _context(), AllowAllGate()).load(pks))


@pytest.mark.parametrize("matches", [True, False])
def test_counted_on_facts_as_on_content(app, written, matches: bool) -> None:  # type: ignore[no-untyped-def]
    on_facts, on_content = FactsGate(on_facts=True), FactsGate(on_facts=False)
    assert _count(app, on_facts, matches=matches) == _count(app, on_content, matches=matches) == ["c0", "c2", "c4"]
    assert on_facts.by_content == [] and on_facts.by_facts == 5  # the tombstone c5 is not asked about
    assert sorted(on_content.by_content) == ["c0", "c1", "c2", "c3", "c4"]


def test_versions_without_facts_are_decided_from_content(app, written) -> None:  # type: ignore[no-untyped-def]
    with app.state.engine.begin() as conn:  # as written before migration 0010, or under an older FACTS_VERSION
        conn.execute(update(ResourceRow).where(ResourceRow.res_id.in_(["c0", "c1"])).values(release_facts=None))
        conn.execute(update(ResourceRow).where(ResourceRow.res_id == "c2").values(release_facts=f'[{FACTS_VERSION + 1}]'))
    gate = FactsGate(on_facts=True)
    assert _count(app, gate, matches=True) == ["c0", "c2", "c4"]
    assert sorted(gate.by_content) == ["c0", "c1", "c2"] and gate.by_facts == 2


def test_facts_follow_every_write(app, written) -> None:  # type: ignore[no-untyped-def]
    with app.state.fhir.sessions() as session, session.begin():
        FhirRepository(session, _context(), AllowAllGate()).update(
            "Condition", "c1", {"resourceType": "Condition", "subject": {"reference": "Patient/p2"}, "code": {"text": "x"}})
    with app.state.engine.connect() as conn:
        facts = dict(conn.execute(select(ResourceRow.res_id, ResourceRow.release_facts)).all())
    assert load_facts("Condition", facts["c1"]) == ReleaseFacts("Condition", ("p2",), "clinic-a", frozenset(), (), None)
    assert facts["c5"] is None  # deleted


def test_migration_gives_existing_resources_their_facts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/old.db"
    upgrade(url, "0009")
    engine = create_engine(url)
    content = ('{"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}, '
               '"meta": {"tag": [{"system": "' + CUSTODIAN_SYSTEM + '", "code": "clinic-a"}]}}')
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO resource (res_type, res_id, version_id, last_updated, deleted, content) VALUES "
                          "('Observation', 'o1', 1, '2026-01-01 00:00:00', 0, :c), "
                          "('Observation', 'gone', 2, '2026-01-01 00:00:00', 1, NULL)"), {"c": content})
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        facts = dict(conn.execute(text("SELECT res_id, release_facts FROM resource")).all())
    engine.dispose()
    assert load_facts("Observation", facts["o1"]) == ReleaseFacts("Observation", ("p1",), "clinic-a", frozenset(), (), None)
    assert facts["gone"] is None


def test_a_version_released_on_facts_is_not_decided_again(app, written) -> None:  # type: ignore[no-untyped-def]
    """The page that follows a count loads what the facts released without asking the gate
    again, but only that version: one written since (by another transaction) is decided anew."""
    gate = FactsGate(on_facts=True)
    query = SearchParser().parse("Condition", [("patient", "Patient/p1")])
    with app.state.fhir.sessions() as session:
        repository = FhirRepository(session, _context(), gate)
        pks = repository.releasable_matches(query)
        session.commit()  # the next statement sees what others commit meanwhile (PostgreSQL; SQLite's reads begin afresh)
        with app.state.fhir.sessions() as other, other.begin():
            FhirRepository(other, _context(), AllowAllGate()).update(
                "Condition", "c2", {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                                    "code": {"coding": [HIV]}})
        released = [s.id for s in repository.load(pks)]
    assert gate.by_content == ["c2"]  # c0 and c4 were not decided twice; c2 changed, and is now withheld
    assert released == ["c0", "c4"]


def test_a_transaction_s_creates_get_their_facts(app, client) -> None:  # type: ignore[no-untyped-def]
    """A transaction's new resources (on PostgreSQL their rows go in together, by COPY, with pks
    reserved ahead) are kept with their facts like any other write."""
    entries = [{"resource": {"resourceType": "Observation", "status": "final", "code": {"coding": [HIV]},
                             "subject": {"reference": f"Patient/p{i}"}, "effectiveDateTime": f"2026-0{i + 1}-01"},
                "request": {"method": "POST", "url": "Observation"}} for i in range(3)]
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.text
    ids = [e["response"]["location"].split("/")[1] for e in response.json()["entry"]]
    with app.state.engine.connect() as conn:
        rows = dict(conn.execute(select(ResourceRow.res_id, ResourceRow.release_facts).where(ResourceRow.res_id.in_(ids))).all())
    for i, rid in enumerate(ids):
        facts = load_facts("Observation", rows[rid])
        assert facts is not None and facts.patients == (f"p{i}",) and facts.clinical_date == date(2026, i + 1, 1)
        assert facts.codings == (("http://hl7.org/fhir/sid/icd-10", "B20"),)


class LookupGate(FactsGate):
    """A FactsGate that, like the consent gate, looks something up through the caller's session
    while it decides (here p1's record), and records what that lookup gave it."""

    reads_with_caller = True

    def __init__(self) -> None:
        super().__init__(on_facts=True)
        self.looked_up: list[str] = []

    def decide_facts(self, context: RequestContext, facts: Sequence[ReleaseFacts], *,  # type: ignore[override]
                     session: Any = None) -> list[Release | None]:
        found = FhirRepository(session, _context(), AllowAllGate()).lookup([("Patient", "p1")])
        self.looked_up += [f"{s.resource_type}/{s.id}" for s in found]
        return super().decide_facts(context, facts)


def test_the_page_is_read_with_the_gate_s_lookup(app, written) -> None:  # type: ignore[no-untyped-def]
    """A search's first page is read in the statement of the lookup its gate makes while
    deciding the matches: loading it then costs no statement, the gate is given only what it
    looked up, and the page is what the gate released. After a write through the session, the
    page is read again."""
    with app.state.fhir.sessions() as session, session.begin():
        FhirRepository(session, _context(), AllowAllGate()).create("Patient", {"resourceType": "Patient"}, "p1")
    statements: list[str] = []

    def record(*executed: Any) -> None:
        statements.append(executed[2])

    event.listen(app.state.engine, "before_cursor_execute", record)
    try:
        gate = LookupGate()
        query = SearchParser().parse("Condition", [("patient", "Patient/p1"), ("_count", "2")])
        with app.state.fhir.sessions() as session:
            repository = FhirRepository(session, _context(), gate)
            pks = repository.releasable_matches(query)
            assert gate.looked_up == ["Patient/p1"]  # not the conditions read beside it
            statements.clear()
            assert [s.id for s in repository.load(pks[:1])] == ["c0"]
            assert statements == []  # read with the lookup
            # the page was read as the first two matches; c1 is withheld, so c2 is read now
            page = repository.load(pks[:2])
            assert len(statements) == 1 and [s.id for s in page] == ["c0", "c2"] and gate.by_content == []
            assert page[0].content is not None and page[0].content["code"]["coding"] == [{"system": "urn:x", "code": "0"}]
            repository.update("Condition", "c0", {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                                                  "code": {"text": "changed"}})
            statements.clear()
            again = repository.load(pks[:2])
            assert statements != [] and again[0].content["code"] == {"text": "changed"}  # type: ignore[index]
    finally:
        event.remove(app.state.engine, "before_cursor_execute", record)


class UndatedGate(FactsGate):
    """A FactsGate that also decides facts standing for every date (``decide_undated``): the
    HIV ones it denies outright, or, ``dated``, leaves to be asked about with each date."""

    def __init__(self, *, dated: bool) -> None:
        super().__init__(on_facts=True)
        self.dated = dated
        self.undated: list[ReleaseFacts] = []

    def decide_undated(self, context: RequestContext, facts: Sequence[ReleaseFacts]) -> list[Release | None]:
        self.undated += facts
        hiv = None if self.dated else Release.DENY
        return [hiv if f.codings == (("http://hl7.org/fhir/sid/icd-10", "B20"),) else Release.PERMIT for f in facts]


@pytest.mark.parametrize("dated", [False, True])
def test_matches_that_differ_only_by_date_are_decided_once(app, written, dated: bool) -> None:  # type: ignore[no-untyped-def]
    """The gate is asked once about the facts that matches share but for the date; where it
    leaves the date to matter, each version is asked about with its own; the count is the
    same either way."""
    with app.state.fhir.sessions() as session, session.begin():
        repository = FhirRepository(session, _context(), AllowAllGate())
        for i in (6, 7):  # two more HIV results, on other dates
            repository.create("Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                                            "code": {"coding": [HIV]}, "recordedDate": f"2026-0{i}-01"}, f"c{i}")
    gate = UndatedGate(dated=dated)
    assert _count(app, gate, matches=True) == _count(app, FactsGate(on_facts=False), matches=True) == ["c0", "c2", "c4"]
    assert all(f.clinical_date is None and f.head for f in gate.undated)
    hiv = [f for f in gate.undated if f.codings == (("http://hl7.org/fhir/sid/icd-10", "B20"),)]
    assert len(hiv) == 1 and len(gate.undated) == 4  # c1, c3, c6, c7 asked about once; c0, c2, c4 each differ
    assert gate.by_facts == (4 if dated else 0) and gate.by_content == []  # the HIV ones, each with its date


def test_a_reader_s_shared_facts() -> None:
    reader = FactsReader()
    one = '[1,["p1"],"clinic-a",[],[["urn:x","1"]],"2025-01-02"]'
    other_day = '[1,["p1"],"clinic-a",[],[["urn:x","1"]],"2026-03-04"]'
    shared = reader.shared("Observation", one)
    assert shared is not None and shared is reader.shared("Observation", other_day) and shared.clinical_date is None
    assert reader("Observation", other_day).head == shared.head  # type: ignore[union-attr]
    assert reader.shared("Observation", f'[{FACTS_VERSION + 1},["p1"],"clinic-a",[],[],null]') is None
    assert reader.shared("Observation", None) is None


def test_a_reader_s_facts_by_the_text_before_the_date() -> None:
    """A search groups its matches by the kept text before its last comma (the date) and reads
    each group's facts once (``FactsReader.undated``): the same facts, and object, as ``shared``."""
    reader = FactsReader()
    text = '[1,["p1"],"clinic-a",[],[["urn:x","1"]],"2025-01-02"]'
    head = text.rpartition(",")[0]
    undated = reader.undated("Observation", head)
    assert undated is not None and undated is reader.shared("Observation", text)
    assert undated.custodian == "clinic-a" and undated.patients == ("p1",) and undated.clinical_date is None
    # another FACTS_VERSION's text, or one with no comma at all, is not read this way
    assert reader.undated("Observation", f'[{FACTS_VERSION + 1},["p1"],"clinic-a",[],[]') is None
    assert reader.undated("Observation", "") is None
