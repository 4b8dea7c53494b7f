"""``CodeSystem/$lookup`` over the starter terminology (R4 codesystem-operation-lookup)."""

from __future__ import annotations

import pytest

from tests.fhir_exchange.operations.support import (
    HK_LAB,
    ICD10,
    ICD10_CN,
    designations,
    groups,
    ok,
    out,
    outcome,
    parameters,
    properties,
)

LOOKUP = "/fhir/CodeSystem/$lookup"


def test_get_gives_name_version_display_designations_and_hierarchy(loaded_client) -> None:
    body = ok(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11"}))
    assert out(body, "name") == "ICD10"
    assert out(body, "version") == "2019"
    assert out(body, "display") == "Type 2 diabetes mellitus"
    assert designations(body) == {
        "en": {"value": "Type 2 diabetes mellitus", "derived_by": None},
        "zh-Hant": {"value": "2型糖尿病", "derived_by": None},
        "zh-Hans": {"value": "2型糖尿病", "derived_by": None},
    }
    assert properties(body, "parent") == ["E10-E14"]
    assert sorted(properties(body, "child")) == ["E11.2", "E11.3", "E11.4", "E11.5", "E11.6", "E11.9"]
    # R4 shapes: designation parts language + value, property parts code + value
    assert all(set(g) == {"language", "value"} for g in groups(body, "designation"))
    assert all(set(g) == {"code", "value"} for g in groups(body, "property"))


def test_a_leaf_has_a_parent_and_no_children(loaded_client) -> None:
    body = ok(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11.9"}))
    assert properties(body, "parent") == ["E11"]
    assert properties(body, "child") == []


def test_post_with_a_coding(loaded_client) -> None:
    body = ok(loaded_client.post(LOOKUP, json=parameters(
        {"name": "coding", "valueCoding": {"system": ICD10, "code": "E11.9"}},
        {"name": "displayLanguage", "valueCode": "zh-Hans"},
    )))
    assert out(body, "display") == "2型糖尿病不伴有并发症"
    assert properties(body, "parent") == ["E11"]


def test_get_with_a_coding_written_system_bar_code(loaded_client) -> None:
    body = ok(loaded_client.get(LOOKUP, params={"coding": f"{ICD10}|E11.9"}))
    assert out(body, "display") == "Type 2 diabetes mellitus without complications"


@pytest.mark.parametrize(("language", "display"), [
    ("zh-Hant", "2型糖尿病不伴有併發症"),
    ("zh-Hans", "2型糖尿病不伴有并发症"),
    ("en", "Type 2 diabetes mellitus without complications"),
    ("zh-HK", "2型糖尿病不伴有併發症"),  # a region tag maps to its script
    ("zh-CN", "2型糖尿病不伴有并发症"),
])
def test_display_language(loaded_client, language: str, display: str) -> None:
    body = ok(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11.9", "displayLanguage": language}))
    assert out(body, "display") == display
    # the designations are all given whatever the display language
    assert set(designations(body)) == {"en", "zh-Hant", "zh-Hans"}


@pytest.mark.parametrize(("accept_language", "display"), [
    ("zh-HK", "2型糖尿病不伴有併發症"),
    ("zh-CN", "2型糖尿病不伴有并发症"),
    ("en-GB,en;q=0.8", "Type 2 diabetes mellitus without complications"),
    ("en;q=0.3, zh-HK;q=0.9", "2型糖尿病不伴有併發症"),  # by q-value, not header order
])
def test_accept_language(loaded_client, accept_language: str, display: str) -> None:
    response = loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11.9"}, headers={"Accept-Language": accept_language})
    assert out(ok(response), "display") == display


def test_display_language_wins_over_accept_language(loaded_client) -> None:
    response = loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11.9", "displayLanguage": "en"},
                                 headers={"Accept-Language": "zh-CN"})
    assert out(ok(response), "display") == "Type 2 diabetes mellitus without complications"


def test_without_a_language_the_code_systems_own_display(loaded_client) -> None:
    body = ok(loaded_client.get(LOOKUP, params={"system": HK_LAB, "code": "HB"}))
    assert out(body, "display") == "Hb"


def test_derived_simplified_designation_carries_the_extension(loaded_client) -> None:
    # hk-example-lab gives HB in Traditional only; the Simplified one is derived with OpenCC
    response = loaded_client.get(LOOKUP, params={"system": HK_LAB, "code": "HB"}, headers={"Accept-Language": "zh-CN"})
    body = ok(response)
    assert out(body, "display") == "血红素"
    assert designations(body) == {
        "en": {"value": "Haemoglobin", "derived_by": None},
        "zh-Hant": {"value": "血紅素", "derived_by": None},
        "zh-Hans": {"value": "血红素", "derived_by": "opencc:hk2s"},
    }


def test_derived_traditional_designation_carries_the_extension(loaded_client) -> None:
    # the mainland clinical edition gives Simplified only; Traditional is derived (s2hk)
    body = ok(loaded_client.get(LOOKUP, params={"system": ICD10_CN, "code": "E11.900", "displayLanguage": "zh-Hant"}))
    assert out(body, "display") == "2型糖尿病不伴有併發症"
    found = designations(body)
    assert found["zh-Hant"] == {"value": "2型糖尿病不伴有併發症", "derived_by": "opencc:s2hk"}
    assert found["zh-Hans"] == {"value": "2型糖尿病不伴有并发症", "derived_by": None}


def test_property_limits_the_output(loaded_client) -> None:
    body = ok(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11", "property": "parent"}))
    assert properties(body, "parent") == ["E10-E14"]
    assert properties(body, "child") == []
    assert designations(body) == {}
    assert out(body, "display") == "Type 2 diabetes mellitus"


def test_instance_level_lookup(loaded_client) -> None:
    body = ok(loaded_client.get("/fhir/CodeSystem/icd10-who/$lookup", params={"code": "E11.9", "displayLanguage": "zh-Hant"}))
    assert out(body, "name") == "ICD10"
    assert out(body, "display") == "2型糖尿病不伴有併發症"


def test_instance_level_lookup_of_an_unknown_code_system(loaded_client) -> None:
    text = outcome(loaded_client.get("/fhir/CodeSystem/no-such-system/$lookup", params={"code": "E11"}), 404)
    assert "CodeSystem/no-such-system" in text


def test_instance_level_lookup_naming_another_system_is_refused(loaded_client) -> None:
    response = loaded_client.get("/fhir/CodeSystem/icd10-who/$lookup", params={"system": ICD10_CN, "code": "E11.900"})
    assert ICD10_CN in outcome(response, 400)


def test_unknown_code_is_404_naming_it(loaded_client) -> None:
    text = outcome(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11.99"}), 404)
    assert "E11.99" in text and ICD10 in text


def test_unknown_system_is_404_naming_it(loaded_client) -> None:
    system = "http://example.org/no-such-system"
    assert system in outcome(loaded_client.get(LOOKUP, params={"system": system, "code": "E11"}), 404)


def test_unknown_version_is_404_listing_the_known_ones(loaded_client) -> None:
    text = outcome(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11", "version": "2010"}), 404)
    assert "2010" in text and "2019" in text


def test_unknown_parameter_is_400_naming_it(loaded_client) -> None:
    text = outcome(loaded_client.get(LOOKUP, params={"system": ICD10, "code": "E11", "langauge": "en"}), 400)
    assert "langauge" in text


def test_unknown_parameter_by_post_is_400_naming_it(loaded_client) -> None:
    body = parameters({"name": "coding", "valueCoding": {"system": ICD10, "code": "E11"}}, {"name": "bogus", "valueString": "x"})
    assert "bogus" in outcome(loaded_client.post(LOOKUP, json=body), 400)


@pytest.mark.parametrize(("params", "named"), [
    ([("system", ICD10), ("code", "E11"), ("code", "E10")], "code"),  # repeated
    ([("system", ICD10)], "code"),  # no code at all
    ([("system", ICD10), ("code", "E11"), ("coding", f"{ICD10}|E11")], "code"),  # two ways at once
    ([("code", "E11")], "system"),  # no system
    ([("coding", "E11")], "system|code"),  # a GET coding must be system|code
])
def test_malformed_requests_are_400(loaded_client, params: list[tuple[str, str]], named: str) -> None:
    assert named in outcome(loaded_client.get(LOOKUP, params=params), 400)


def test_post_must_send_parameters(loaded_client) -> None:
    response = loaded_client.post(LOOKUP, json={"resourceType": "Patient"})
    assert "Parameters" in outcome(response, 400)
