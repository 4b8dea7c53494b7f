"""``ConceptMap/$translate`` over the starter maps (R4 conceptmap-operation-translate): every
target of an ambiguous map, each as a ``match`` with equivalence, concept and source."""

from __future__ import annotations

from typing import Any

from tests.fhir_exchange.operations.support import (
    CN_TO_WHO,
    HK_LAB,
    HK_LAB_TO_LOINC,
    ICD10,
    ICD10_CN,
    LOINC,
    groups,
    ok,
    out,
    outcome,
    parameters,
    value_of,
)

TRANSLATE = "/fhir/ConceptMap/$translate"


def matches(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each match as {equivalence, concept, source[, comment]} (R4 output parts)."""
    found = []
    for match in groups(body, "match"):
        assert set(match) <= {"equivalence", "concept", "source", "comment", "product"}, match
        found.append({name: value_of(part) for name, part in match.items()})
    return found


def test_mainland_clinical_code_to_who_in_traditional_chinese(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"system": ICD10_CN, "code": "E11.900", "displayLanguage": "zh-Hant"}))
    assert out(body, "result") is True
    assert matches(body) == [{
        "equivalence": "equivalent",
        "concept": {"system": ICD10, "code": "E11.9", "display": "2型糖尿病不伴有併發症"},
        "source": CN_TO_WHO,
    }]


def test_without_a_language_the_target_systems_display(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"system": ICD10_CN, "code": "E11.900"}))
    assert [m["concept"]["display"] for m in matches(body)] == ["Type 2 diabetes mellitus without complications"]


def test_ambiguous_map_gives_every_target(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"system": ICD10_CN, "code": "E11.201"}))
    assert out(body, "result") is True
    found = matches(body)
    assert sorted((m["concept"]["system"], m["concept"]["code"], m["equivalence"]) for m in found) == [
        (ICD10, "E11.2", "wider"), (ICD10, "N08.3", "wider"),
    ]
    assert all(m["source"] == CN_TO_WHO and m["comment"] for m in found)


def test_hong_kong_lab_code_to_loinc_in_simplified_chinese(loaded_client) -> None:
    response = loaded_client.get(TRANSLATE, params={"system": HK_LAB, "code": "HB"}, headers={"Accept-Language": "zh-CN"})
    found = matches(ok(response))
    assert [(m["concept"]["system"], m["concept"]["code"], m["equivalence"]) for m in found] == [(LOINC, "718-7", "equivalent")]
    assert found[0]["concept"]["display"] == "血红蛋白（血液，质量浓度）"
    assert found[0]["source"] == HK_LAB_TO_LOINC


def test_code_with_no_map_is_false_with_a_message(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"system": HK_LAB, "code": "NO-SUCH-TEST"}))
    assert out(body, "result") is False
    assert "NO-SUCH-TEST" in out(body, "message")
    assert matches(body) == []


def test_targetsystem_filters_the_targets(loaded_client) -> None:
    kept = ok(loaded_client.get(TRANSLATE, params={"system": HK_LAB, "code": "HB", "targetsystem": LOINC}))
    assert [m["concept"]["code"] for m in matches(kept)] == ["718-7"]
    none = ok(loaded_client.get(TRANSLATE, params={"system": HK_LAB, "code": "HB", "targetsystem": ICD10}))
    assert out(none, "result") is False
    assert ICD10 in out(none, "message")


def test_reverse(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"system": ICD10, "code": "E11.9", "reverse": "true"}))
    assert out(body, "result") is True
    found = matches(body)
    assert [(m["concept"]["system"], m["concept"]["code"]) for m in found] == [(ICD10_CN, "E11.900")]
    assert found[0]["concept"]["display"] == "2型糖尿病不伴有并发症"
    assert found[0]["source"] == CN_TO_WHO


def test_reverse_turns_the_equivalence_round(loaded_client) -> None:
    # E11.201 -> E11.2 is "wider" (the WHO code is wider); read backwards E11.201 is narrower than E11.2
    body = ok(loaded_client.get(TRANSLATE, params={"system": ICD10, "code": "E11.2", "reverse": "true"}))
    found = {m["concept"]["code"]: m["equivalence"] for m in matches(body)}
    assert found["E11.201"] == "narrower"


def test_reverse_with_targetsystem(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"system": LOINC, "code": "718-7", "reverse": "true", "targetsystem": HK_LAB}))
    assert [(m["concept"]["system"], m["concept"]["code"]) for m in matches(body)] == [(HK_LAB, "HB")]


def test_coding_and_codeable_concept_by_post(loaded_client) -> None:
    by_coding = ok(loaded_client.post(TRANSLATE, json=parameters(
        {"name": "coding", "valueCoding": {"system": ICD10_CN, "code": "E11.900"}},
    )))
    by_concept = ok(loaded_client.post(TRANSLATE, json=parameters(
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [{"system": ICD10_CN, "code": "E11.900"}]}},
        {"name": "targetsystem", "valueUri": ICD10},
    )))
    assert matches(by_coding) == matches(by_concept)
    assert [m["concept"]["code"] for m in matches(by_coding)] == ["E11.9"]


def test_map_named_by_url(loaded_client) -> None:
    body = ok(loaded_client.get(TRANSLATE, params={"url": CN_TO_WHO, "system": ICD10_CN, "code": "E11.900"}))
    assert [m["concept"]["code"] for m in matches(body)] == ["E11.9"]
    # another map does not translate this code
    other = ok(loaded_client.get(TRANSLATE, params={"url": HK_LAB_TO_LOINC, "system": ICD10_CN, "code": "E11.900"}))
    assert out(other, "result") is False


def test_instance_level(loaded_client) -> None:
    body = ok(loaded_client.get("/fhir/ConceptMap/icd10-cn-to-who/$translate", params={"system": ICD10_CN, "code": "E11.900"}))
    assert [m["concept"]["code"] for m in matches(body)] == ["E11.9"]
    other = ok(loaded_client.get("/fhir/ConceptMap/hk-example-lab-to-loinc/$translate",
                                 params={"system": ICD10_CN, "code": "E11.900"}))
    assert out(other, "result") is False


def test_unknown_map_url_is_404_naming_it(loaded_client) -> None:
    url = "http://example.org/ConceptMap/no-such-map"
    assert url in outcome(loaded_client.get(TRANSLATE, params={"url": url, "system": ICD10_CN, "code": "E11.900"}), 404)


def test_unknown_map_instance_is_404(loaded_client) -> None:
    response = loaded_client.get("/fhir/ConceptMap/no-such-map/$translate", params={"system": ICD10_CN, "code": "E11.900"})
    assert "no-such-map" in outcome(response, 404)


def test_the_system_is_needed(loaded_client) -> None:
    assert "system" in outcome(loaded_client.get(TRANSLATE, params={"code": "E11.900"}), 400)
