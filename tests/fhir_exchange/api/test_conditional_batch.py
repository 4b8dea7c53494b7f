"""A transaction's conditional matches looked up together (``FhirRepository.match_ids_many``,
one statement per sequence of shapes, built once): the same answers as one ``match_ids`` per
entry, whatever the mix of matches, the same writes, and the same index lookups."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fhir_exchange.bundles import BundleProcessor
from fhir_exchange.errors import InvalidRequest, PreconditionFailed
from fhir_exchange.ports import AllowAllGate, RequestContext
from fhir_exchange.service import FhirService
from fhir_exchange.store.repository import CUSTODIAN_SYSTEM, FhirRepository
from fhir_exchange.store.search_sql import token_matches_statement, token_shape

OBS_SYSTEM = "http://example.org/fhir/sid/lab/observation"
HKID = "http://baylink.example.org/fhir/sid/hkid"
AWKWARD = "tab\there\nnew line \\ back\\slash \\N 中文 'quote' \"double\" ,;| {\"json\": [1]}"


@contextmanager
def as_institution(app, institution: str | None = "hosp-a") -> Iterator[FhirService]:  # type: ignore[no-untyped-def]
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="test", institution=institution,
                             scopes=("system/*.cruds",))
    with app.state.fhir.sessions() as session, session.begin():
        yield FhirService(FhirRepository(session, context, AllowAllGate()), "http://testserver/fhir")


def observation(value: str, reading: float = 5.4, system: str = OBS_SYSTEM) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "glucose"},
            "identifier": [{"system": system, "value": value}],
            "valueQuantity": {"value": reading, "unit": "mmol/L"}}


def put(value: str, reading: float = 5.4, institution: str = "hosp-a") -> dict:
    return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation(value, reading),
            "request": {"method": "PUT",
                        "url": f"Observation?identifier={OBS_SYSTEM}|{value}&_tag={CUSTODIAN_SYSTEM}|{institution}"}}


def transaction(app, entries: list[dict], institution: str = "hosp-a") -> dict:  # type: ignore[no-untyped-def]
    with as_institution(app, institution) as service:
        return BundleProcessor(service, service.repo.session).process(
            {"resourceType": "Bundle", "type": "transaction", "entry": entries})


def stored_observations(app) -> dict[str, tuple[str, int]]:  # type: ignore[no-untyped-def]
    """identifier value -> (id, version) of every live Observation."""
    with as_institution(app, None) as service:
        found = service.repo.load(service.repo.search_pks(service.parser.parse("Observation", [])))
    return {s.content["identifier"][0]["value"]: (s.id, s.version_id) for s in found}


def test_two_observations_one_existing_one_new_then_resent(app) -> None:  # type: ignore[no-untyped-def]
    transaction(app, [put("F1-1")])
    (first_id, first_version), = stored_observations(app).values()
    assert first_version == 1

    response = transaction(app, [put("F1-1", 6.1), put("F1-2")])
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["200 OK", "201 Created"]
    stored = stored_observations(app)
    assert set(stored) == {"F1-1", "F1-2"}
    assert stored["F1-1"] == (first_id, 2)  # matched and updated, not duplicated
    assert stored["F1-2"][1] == 1

    again = transaction(app, [put("F1-1", 6.1), put("F1-2")])  # the same message again
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK", "200 OK"]
    assert stored_observations(app) == stored  # nothing created, nothing changed


def test_a_match_held_by_another_institution_is_not_taken(app) -> None:  # type: ignore[no-untyped-def]
    transaction(app, [put("F2-1")], institution="hosp-b")
    transaction(app, [put("F2-1"), put("F2-2")], institution="hosp-a")
    with as_institution(app, None) as service:
        found = service.repo.load(service.repo.search_pks(service.parser.parse("Observation", [])))
    held = sorted((s.content["identifier"][0]["value"], s.content["meta"]["tag"][-1]["code"]) for s in found)
    assert held == [("F2-1", "hosp-a"), ("F2-1", "hosp-b"), ("F2-2", "hosp-a")]


def test_an_ambiguous_match_fails_the_whole_transaction(app) -> None:  # type: ignore[no-untyped-def]
    with as_institution(app) as service:  # two records with one identifier, written directly
        service.create("Observation", observation("F3-1"))
        service.create("Observation", observation("F3-1", 7.0))
    before = stored_observations(app)
    with pytest.raises(PreconditionFailed) as refused:
        transaction(app, [put("F3-2"), put("F3-1")])
    assert "Bundle.entry[1]" in refused.value.issues[0].diagnostics  # the 412 names the entry
    assert stored_observations(app) == before  # F3-2 was not written either


def test_match_ids_many_answers_as_match_ids_each(app) -> None:  # type: ignore[no-untyped-def]
    with as_institution(app) as service:
        a1 = service.create("Observation", observation("M-1")).stored
        service.create("Observation", observation("M-2"))
        service.create("Observation", observation("M-2", 7.0))  # M-2 matches two
        service.create("Observation", observation("M-1", system="http://example.org/other"))  # other system
        gone = service.create("Observation", observation("M-4")).stored
        service.delete("Observation", gone.id)  # a deleted record matches nothing
        service.create("Patient", {"resourceType": "Patient", "identifier": [{"system": HKID, "value": "A123456(3)"}],
                                   "name": [{"family": "CHAN"}]})
    assert a1 is not None
    with as_institution(app, "hosp-b") as service:
        service.create("Observation", observation("M-3"))
    tag_a, tag_b = f"{CUSTODIAN_SYSTEM}|hosp-a", f"{CUSTODIAN_SYSTEM}|hosp-b"
    criteria = [
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-1"), ("_tag", tag_a)]),
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-2"), ("_tag", tag_a)]),
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-3"), ("_tag", tag_a)]),  # held by hosp-b
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-3"), ("_tag", tag_b)]),
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-4"), ("_tag", tag_a)]),
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-9"), ("_tag", tag_a)]),  # nothing
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-1"), ("_tag", tag_a)]),  # the same query twice
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-1")]),  # another shape
        ("Observation", [("identifier", "M-1")]),  # no system: not a token shape, runs on its own
        ("Observation", [("identifier", f"{OBS_SYSTEM}|M-1,{OBS_SYSTEM}|M-2")]),  # two values: on its own
        ("Patient", [("identifier", f"{HKID}|A123456(3)"), ("_tag", tag_a)]),  # blind index
        ("Patient", [("identifier", f"{HKID}|A123456(3)"), ("_tag", tag_b)]),
    ]
    with as_institution(app) as service:
        queries = [service.parse_conditional(t, c) for t, c in criteria]
        one_by_one = [service.repo.match_ids(q) for q in queries]
        together = service.repo.match_ids_many(queries)
    assert together == one_by_one
    assert one_by_one[0] == [a1.id] and len(one_by_one[1]) == 2 and one_by_one[2] == [] and len(one_by_one[3]) == 1
    assert one_by_one[4] == [] and one_by_one[5] == [] and one_by_one[7] == [a1.id] and len(one_by_one[10]) == 1
    assert one_by_one[11] == []


def test_the_statement_is_built_once_per_shape(app) -> None:  # type: ignore[no-untyped-def]
    with as_institution(app) as service:
        one = service.parse_conditional("Observation", f"identifier={OBS_SYSTEM}|X&_tag={CUSTODIAN_SYSTEM}|hosp-a")
        two = service.parse_conditional("Observation", f"identifier=http://other|Y&_tag={CUSTODIAN_SYSTEM}|hosp-b")
    shape = token_shape("Observation", one.criteria)
    assert shape == token_shape("Observation", two.criteria) == ("Observation", ("identifier", "_tag"))
    assert token_matches_statement((shape, shape), 2) is token_matches_statement((shape, shape), 2)  # values bound


def test_a_transactions_new_resources_get_pks_in_the_order_written(app) -> None:  # type: ignore[no-untyped-def]
    """Their pks are reserved together on PostgreSQL (one statement) and used in the order
    of the writes, as one INSERT each gives them; everything is readable and searchable."""
    transaction(app, [put("R-1")])
    posts = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": {**observation(f"R-P{i}"), "note": [{"text": AWKWARD}]},
              "request": {"method": "POST", "url": "Observation"}} for i in range(3)]
    response = transaction(app, [put("R-1", 6.0), put("R-2"), *posts, put("R-3")])
    assert [e["response"]["status"] for e in response["entry"]] == ["200 OK", "201 Created"] + ["201 Created"] * 4
    with as_institution(app, None) as service:
        found = service.repo.load(service.repo.search_pks(service.parser.parse("Observation", [])))
        by_value = {s.content["identifier"][0]["value"]: s for s in found}
        # written in the spec's order: the POSTs, then the PUTs
        order = ["R-P0", "R-P1", "R-P2", "R-2", "R-3"]
        pks = [by_value[v].pk for v in order]
        assert pks == sorted(pks) and len(set(pks)) == 5 and by_value["R-1"].pk < pks[0]
        for value in order:
            query = service.parse_conditional("Observation", f"identifier={OBS_SYSTEM}|{value}")
            assert service.repo.match_ids(query) == [by_value[value].id]
            assert service.read("Observation", by_value[value].id).body["identifier"][0]["value"] == value
        history = service.history("Observation", by_value["R-2"].id, [])
        assert history.body["total"] == 1
        # the resource row and the version row hold the document as written, awkward text too
        current = service.read("Observation", by_value["R-P1"].id).body
        assert service.vread("Observation", by_value["R-P1"].id, "1").body == current
        assert current["note"] == [{"text": AWKWARD}] and current["valueQuantity"]["value"] == 5.4


def test_a_failed_transaction_writes_none_of_its_new_resources(app) -> None:  # type: ignore[no-untyped-def]
    transaction(app, [put("S-1")])
    before = stored_observations(app)
    bad = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": {**observation("S-9"), "noSuchElement": True},
           "request": {"method": "POST", "url": "Observation"}}
    posts = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation(f"S-P{i}"),
              "request": {"method": "POST", "url": "Observation"}} for i in range(3)]
    with pytest.raises(InvalidRequest):
        transaction(app, [put("S-2"), *posts, bad])
    assert stored_observations(app) == before
    transaction(app, [put("S-2"), *posts])  # and the same again, valid, goes in whole
    assert set(stored_observations(app)) == {"S-1", "S-2", "S-P0", "S-P1", "S-P2"}


def test_each_match_is_looked_up_by_the_index_not_scanned(app) -> None:  # type: ignore[no-untyped-def]
    """Each branch finds its identifier by type, param, code and system (as ``match_ids``
    does), however many identifiers the type holds; shown by SQLite's planner, which needs
    no statistics to decide."""
    if app.state.engine.dialect.name != "sqlite":
        pytest.skip("the plan is checked on SQLite, whose planner is deterministic")
    with as_institution(app) as service:
        queries = [service.parse_conditional("Observation", f"identifier={OBS_SYSTEM}|P-{i}&_tag={CUSTODIAN_SYSTEM}|hosp-a")
                   for i in range(3)]
        shapes = tuple(token_shape(q.resource_type, q.criteria) for q in queries)
        statement = token_matches_statement(shapes, 2)  # type: ignore[arg-type]
        compiled = statement.compile(dialect=app.state.engine.dialect)
        params = {**compiled.params, **{name: "x" for name in compiled.params if name[0] in "sc" and "_" in name}}
        positional = tuple(params[name] for name in compiled.positiontup or ())
        plan = " ".join(str(row[3]) for row in service.repo.session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(compiled), positional).all())
    assert plan.count("ix_idx_token_lookup (res_type=? AND param=? AND code=? AND system=?)") == 3
    assert "SCAN idx_token" not in plan


def test_concurrent_transactions_share_the_statements_and_get_their_own_answers(app) -> None:  # type: ignore[no-untyped-def]
    """Threads writing at once (each its own transaction, the shared statement, pks reserved
    per transaction): every resource once, each match its own, no pk twice."""
    from concurrent.futures import ThreadPoolExecutor

    def one(worker: int) -> None:
        for round_ in range(3):
            transaction(app, [put(f"C{worker}-{round_}-{i}") for i in range(4)])
            transaction(app, [put(f"C{worker}-{round_}-{i}", 9.9) for i in range(4)])  # matched, updated

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(4)))
    stored = stored_observations(app)
    assert len(stored) == 4 * 3 * 4
    assert all(version == 2 for _, version in stored.values())
    with as_institution(app, None) as service:
        found = service.repo.load(service.repo.search_pks(service.parser.parse("Observation", [])))
    assert len({s.pk for s in found}) == len(found) == 48
    assert all(s.content["valueQuantity"]["value"] == 9.9 for s in found)
