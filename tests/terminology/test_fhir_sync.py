"""CodeSystem, ConceptMap and ValueSet resources written to the FHIR store (FhirService, the
path REST writes take) are applied to the terminology tables in the same transaction;
deleting them removes what they brought."""

from __future__ import annotations

import pytest

from fhir_exchange.errors import FhirError
from terminology.errors import NotFound
from tests.terminology.support import (
    counts,
    csv_source,
    load,
    resource_rows,
    term_loads,
    terminology_service,
    unit_of_work,
    write_csv,
)

URL = "urn:test:cs:store"
MAP_URL = "urn:test:map:store"
VS_URL = "urn:test:vs:store"


def code_system(**extra: object) -> dict:
    return {
        "resourceType": "CodeSystem",
        "url": URL,
        "version": "1",
        "status": "active",
        "content": "complete",
        "hierarchyMeaning": "is-a",
        "concept": [
            {
                "code": "BLOOD",
                "display": "Blood tests",
                "designation": [{"language": "zh-Hans", "value": "血液检查"}],
                "concept": [
                    {"code": "WBC", "display": "White cell count",
                     "designation": [{"language": "zh-HK", "value": "白血球"}]},
                    {"code": "HB", "display": "Haemoglobin"},
                ],
            },
        ],
        **extra,
    }


def create(sessions, resource: dict) -> str:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as (service, _):
        outcome = service.create(resource["resourceType"], resource)
    assert outcome.status == 201
    return outcome.stored.id


def update(sessions, resource_id: str, resource: dict) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as (service, _):
        assert service.update(resource["resourceType"], resource_id, {**resource, "id": resource_id}).status == 200


def delete(sessions, resource_type: str, resource_id: str) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as (service, _):
        service.delete(resource_type, resource_id)


def test_a_written_code_system_is_served_and_deleting_it_removes_it(sessions) -> None:
    resource_id = create(sessions, code_system())
    with terminology_service(sessions) as service:
        blood = service.lookup(URL, "BLOOD", language="zh-Hant")
        assert (blood.version, blood.display, blood.children) == ("1", "血液檢查", ["WBC", "HB"])
        wbc = service.lookup(URL, "WBC", language="zh-Hans")
        assert (wbc.display, wbc.parents) == ("白血球", ["BLOOD"])
        assert {(d.language, d.value, d.derived_by) for d in wbc.designations} == {
            ("zh-Hant", "白血球", None), ("zh-Hans", "白血球", "opencc:hk2s"),
        }
        assert service.subsumes(URL, "BLOOD", "HB") == "subsumes"
        assert service.code_system(None, resource_id=resource_id).url == URL
    assert [(kind, url) for kind, url, _ in term_loads(sessions)] == [("CodeSystem", URL)]

    delete(sessions, "CodeSystem", resource_id)
    with terminology_service(sessions) as service:
        with pytest.raises(NotFound):
            service.lookup(URL, "WBC")
        assert service.validate_code_in_system(URL, "WBC").result is False
    assert counts(sessions, ["term_code_system", "term_concept", "term_designation", "term_concept_parent"]) == {
        "term_code_system": 0, "term_concept": 0, "term_designation": 0, "term_concept_parent": 0,
    }
    assert [(kind, url) for kind, url, _ in term_loads(sessions)] == [("CodeSystem", URL), ("-CodeSystem", URL)]


def test_an_update_replaces_the_concepts(sessions) -> None:
    resource_id = create(sessions, code_system())
    update(sessions, resource_id, code_system(concept=[{"code": "WBC", "display": "Leukocytes"}]))
    with terminology_service(sessions) as service:
        assert service.lookup(URL, "WBC").display == "Leukocytes"
        assert service.validate_code_in_system(URL, "HB").result is False
    assert counts(sessions, ["term_code_system", "term_concept"]) == {"term_code_system": 1, "term_concept": 1}


def test_an_invalid_code_system_is_refused_and_nothing_is_stored(sessions) -> None:
    bad = code_system(concept=[{"code": "A", "display": "Alpha"}, {"code": "A", "display": "Again"}])
    with pytest.raises(FhirError) as exc:
        create(sessions, bad)
    assert exc.value.status == 400
    assert "code 'A' appears more than once" in str(exc.value.issues)
    assert resource_rows(sessions, "CodeSystem") == []
    assert set(counts(sessions).values()) == {0}


def test_a_code_system_without_concepts_stores_no_terminology(sessions) -> None:
    create(sessions, code_system(content="not-present", concept=[]))
    assert len(resource_rows(sessions, "CodeSystem")) == 1
    assert counts(sessions, ["term_code_system", "term_load"]) == {"term_code_system": 0, "term_load": 0}


def test_concept_maps_and_value_sets_follow_their_resources(sessions) -> None:
    create(sessions, code_system())
    concept_map = {
        "resourceType": "ConceptMap", "url": MAP_URL, "status": "active",
        "group": [{"source": URL, "target": "http://loinc.org",
                   "element": [{"code": "HB", "target": [{"code": "718-7", "equivalence": "equivalent"}]}]}],
    }
    value_set = {"resourceType": "ValueSet", "url": VS_URL, "status": "active",
                 "compose": {"include": [{"system": URL, "filter": [{"property": "concept", "op": "descendent-of",
                                                                     "value": "BLOOD"}]}]}}
    map_id, vs_id = create(sessions, concept_map), create(sessions, value_set)
    with terminology_service(sessions) as service:
        assert [(m.code, m.equivalence) for m in service.translate(URL, "HB").matches] == [("718-7", "equivalent")]
        assert [e.code for e in service.expand(VS_URL).entries] == ["WBC", "HB"]

    delete(sessions, "ConceptMap", map_id)
    delete(sessions, "ValueSet", vs_id)
    with terminology_service(sessions) as service:
        assert service.translate(URL, "HB").matches == []
        with pytest.raises(NotFound):
            service.expand(VS_URL)
    assert counts(sessions, ["term_concept_map", "term_map_element", "term_value_set"]) == {
        "term_concept_map": 0, "term_map_element": 0, "term_value_set": 0,
    }


def test_deleting_a_later_version_makes_the_file_loaded_one_current_again(sessions, tmp_path) -> None:
    path = write_csv(tmp_path, "store.csv", "code,display\nWBC,WBC from the file\n")
    load(sessions, csv_source(path, url=URL, version="0"))
    resource_id = create(sessions, code_system())
    with terminology_service(sessions) as service:
        assert service.lookup(URL, "WBC").display == "White cell count"
    delete(sessions, "CodeSystem", resource_id)
    with terminology_service(sessions) as service:
        assert service.code_system(URL).version == "0"
        assert service.lookup(URL, "WBC").display == "WBC from the file"
