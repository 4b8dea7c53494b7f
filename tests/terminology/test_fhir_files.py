"""Loading FHIR JSON terminology files (a resource or a Bundle of them) with load_source: the
same all-or-nothing rule as CSV tables, and the same strict checks for concept maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_exchange.errors import FhirError
from terminology.errors import InvalidContent
from terminology.loader import Source
from tests.terminology.support import (
    ICD10,
    counts,
    load,
    load_starter,
    resource_rows,
    terminology_service,
)

SENSITIVE = "http://baylink.example.org/fhir/ValueSet/sensitive-diagnoses"


def _fhir_file(directory: Path, name: str, document: dict) -> Source:
    path = directory / name
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return Source(path, "fhir", {})


def _concept_map(*groups: dict) -> dict:
    return {"resourceType": "ConceptMap", "id": "two-groups", "url": "urn:test:map:fhir", "version": "1",
            "status": "active", "group": list(groups)}


def _group(source: str, code: str, target: str, target_code: str) -> dict:
    return {"source": source, "target": target,
            "element": [{"code": code, "target": [{"code": target_code, "equivalence": "equivalent"}]}]}


@pytest.fixture
def four_systems(sessions, tmp_path):  # type: ignore[no-untyped-def]
    """Two pairs of small code systems to map between: urn:test:cs:a1 -> a2 and b1 -> b2."""
    for name, code in (("a1", "A"), ("a2", "AA"), ("b1", "B"), ("b2", "BB")):
        path = tmp_path / f"{name}.csv"
        path.write_text(f"code,display\n{code},{name}\n", encoding="utf-8")
        load(sessions, Source(path, "CodeSystem", {"url": f"urn:test:cs:{name}", "version": "1"}))
    return sessions


def test_starter_fhir_files_load(sessions) -> None:
    results = load_starter(sessions, "icd10-who.csv", "administrative-gender.json", "valueset-sensitive-diagnoses.json")
    assert [(r.kind, r.url, r.status) for r in results] == [
        ("CodeSystem", ICD10, "loaded"),
        ("CodeSystem", "http://hl7.org/fhir/administrative-gender", "loaded"),
        ("ValueSet", SENSITIVE, "loaded"),
    ]
    with terminology_service(sessions) as service:
        assert service.lookup("http://hl7.org/fhir/administrative-gender", "female", language="zh-Hant").display == "女"
        hiv = service.validate_code_in_value_set(SENSITIVE, ICD10, "B20")
        assert hiv.result is True
        assert service.validate_code_in_value_set(SENSITIVE, ICD10, "E11.9").result is False


def test_a_fhir_map_to_unknown_codes_is_refused(four_systems, tmp_path) -> None:
    sessions = four_systems
    before = counts(sessions)
    with pytest.raises(InvalidContent) as exc:
        load(sessions, _fhir_file(tmp_path, "map.json", _concept_map(_group("urn:test:cs:a1", "A", "urn:test:cs:a2", "ZZ"))))
    assert [str(p) for p in exc.value.problems] == ["target code 'ZZ' is not in urn:test:cs:a2"]
    assert counts(sessions) == before
    assert resource_rows(sessions, "ConceptMap") == []


def test_a_fhir_map_with_one_group_loads(four_systems, tmp_path) -> None:
    one_group = _concept_map(_group("urn:test:cs:a1", "A", "urn:test:cs:a2", "AA"))
    [result] = load(four_systems, _fhir_file(tmp_path, "map.json", one_group))
    assert (result.kind, result.status) == ("ConceptMap", "loaded")
    with terminology_service(four_systems) as service:
        assert [m.code for m in service.translate("urn:test:cs:a1", "A").matches] == ["AA"]


# Regression, once a bug (terminology/store.py, TerminologyStore.check_map): the strict check takes the source and
# target system of the first row only, so a FHIR ConceptMap with several groups has the codes of
# its other groups checked against the wrong systems (and their systems never checked at all).
def test_a_fhir_map_with_several_groups_is_checked_per_group(four_systems, tmp_path) -> None:
    groups = (_group("urn:test:cs:a1", "A", "urn:test:cs:a2", "AA"), _group("urn:test:cs:b1", "B", "urn:test:cs:b2", "BB"))
    [result] = load(four_systems, _fhir_file(tmp_path, "map.json", _concept_map(*groups)))
    assert result.status == "loaded"
    with terminology_service(four_systems) as service:
        assert [m.code for m in service.translate("urn:test:cs:b1", "B").matches] == ["BB"]


def test_a_bundle_with_a_bad_entry_stores_none_of_it(sessions, tmp_path) -> None:
    good = {"resourceType": "CodeSystem", "id": "good", "url": "urn:test:cs:good", "status": "active",
            "content": "complete", "concept": [{"code": "A", "display": "Alpha"}]}
    duplicate = {"resourceType": "CodeSystem", "id": "bad", "url": "urn:test:cs:bad", "status": "active",
                 "content": "complete", "concept": [{"code": "A"}, {"code": "A"}]}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": good}, {"resource": duplicate}]}
    with pytest.raises(FhirError) as refused:
        load(sessions, _fhir_file(tmp_path, "bundle.json", bundle))
    assert "code 'A' appears more than once" in str(refused.value.issues)
    assert set(counts(sessions).values()) == {0}

    patient = {"resourceType": "Patient", "id": "p1"}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": good}, {"resource": patient}]}
    with pytest.raises(InvalidContent) as exc:
        load(sessions, _fhir_file(tmp_path, "bundle.json", bundle))
    assert "bundle.json #2: Patient is not a CodeSystem, ConceptMap or ValueSet" in [str(p) for p in exc.value.problems]
    assert set(counts(sessions).values()) == {0}
    assert resource_rows(sessions, "CodeSystem") == []
