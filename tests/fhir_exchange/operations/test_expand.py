"""``ValueSet/$expand`` over the starter terminology (R4 valueset-operation-expand): a ValueSet
with an ``expansion``, filtered by text, paged by offset/count, displayed in the caller's
language."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

from tests.fhir_exchange.operations.support import (
    CONSENT_CATEGORIES,
    CONTENT,
    DERIVED_EXTENSION,
    HK_LAB,
    ICD10,
    ICD10_CN,
    LOINC,
    SENSITIVE_DIAGNOSES,
    codes,
    contains,
    displays,
    expansion_parameters,
    ok,
    outcome,
    parameters,
)

EXPAND = "/fhir/ValueSet/$expand"
ICD10_VS = f"{ICD10}?fhir_vs"
ICD10_CN_VS = f"{ICD10_CN}?fhir_vs"
TYPE_2 = ["E11", "E11.2", "E11.3", "E11.4", "E11.5", "E11.6", "E11.9"]


def expand(client, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return ok(client.get(EXPAND, params=params), "ValueSet")


def inline(*includes: dict[str, Any]) -> dict[str, Any]:
    resource = {"resourceType": "ValueSet", "status": "active", "compose": {"include": list(includes)}}
    return {"name": "valueSet", "resource": resource}


def test_stored_value_set_by_url(loaded_client) -> None:
    value_set = expand(loaded_client, url=SENSITIVE_DIAGNOSES)
    stored = json.loads((CONTENT / "valueset-sensitive-diagnoses.json").read_text(encoding="utf-8"))
    listed = {c["code"] for include in stored["compose"]["include"] for c in include["concept"]}
    expansion = value_set["expansion"]
    assert value_set["url"] == SENSITIVE_DIAGNOSES
    assert value_set["version"] == stored["version"]
    assert expansion["identifier"] and expansion["timestamp"]
    # the includes overlap (F20 is listed under mental health and psychiatric): each code once
    assert sorted(codes(value_set)) == sorted(listed)
    assert expansion["total"] == len(listed)
    assert expansion["offset"] == 0
    assert {c["system"] for c in contains(value_set)} == {ICD10}
    assert all(c["version"] == "2019" and c["display"] for c in contains(value_set))
    assert "B20" in codes(value_set) and "E11.9" not in codes(value_set)


def test_stored_value_set_by_post_and_at_instance_level(loaded_client) -> None:
    by_post = ok(loaded_client.post(EXPAND, json=parameters({"name": "url", "valueUri": SENSITIVE_DIAGNOSES})), "ValueSet")
    instance = ok(loaded_client.get("/fhir/ValueSet/sensitive-diagnoses/$expand"), "ValueSet")
    assert instance["id"] == "sensitive-diagnoses"
    assert codes(by_post) == codes(instance) == codes(expand(loaded_client, url=SENSITIVE_DIAGNOSES))


def test_implicit_value_set_of_a_code_system(loaded_client) -> None:
    with (CONTENT / "icd10-who.csv").open(encoding="utf-8") as handle:
        rows = [row["code"] for row in csv.DictReader(handle)]
    value_set = expand(loaded_client, url=ICD10_VS)
    assert value_set["url"] == ICD10_VS
    assert value_set["expansion"]["total"] == len(rows)
    assert sorted(codes(value_set)) == sorted(rows)


def test_used_codesystem(loaded_client) -> None:
    assert ("used-codesystem", f"{ICD10}|2019") in expansion_parameters(expand(loaded_client, url=SENSITIVE_DIAGNOSES))
    used = [v for n, v in expansion_parameters(expand(loaded_client, url=CONSENT_CATEGORIES)) if n == "used-codesystem"]
    assert sorted(u.split("|")[0] for u in used) == [LOINC, "http://terminology.hl7.org/CodeSystem/v3-ActCode"]


def test_filter_english_word_prefix(loaded_client) -> None:
    value_set = expand(loaded_client, url=ICD10_VS, filter="diab")
    assert value_set["expansion"]["total"] == len(codes(value_set)) > 10
    assert set(TYPE_2) <= set(codes(value_set))
    assert all("diab" in d.lower() for d in displays(value_set).values())
    assert ("filter", "diab") in expansion_parameters(value_set)


def test_filter_matches_the_start_of_words_only(loaded_client) -> None:
    value_set = expand(loaded_client, url=ICD10_VS, filter="abetes")
    assert value_set["expansion"]["total"] == 0
    assert contains(value_set) == []


def test_filter_every_word_must_match(loaded_client) -> None:
    value_set = expand(loaded_client, url=ICD10_VS, filter="Type 2 DIAB")
    assert codes(value_set) == TYPE_2


@pytest.mark.parametrize(("traditional", "simplified"), [("併發症", "并发症"), ("糖尿病", "糖尿病"), ("糖尿", "糖尿")])
def test_filter_chinese_substring_in_either_script(loaded_client, traditional: str, simplified: str) -> None:
    hant = expand(loaded_client, url=ICD10_VS, filter=traditional)
    hans = expand(loaded_client, url=ICD10_VS, filter=simplified)
    assert codes(hant) == codes(hans)
    assert hant["expansion"]["total"] == len(codes(hant)) > 0
    assert "E11.9" in codes(hant)


def test_filter_traditional_finds_a_concept_written_in_simplified_only(loaded_client) -> None:
    # the mainland clinical edition is Simplified only; its Traditional names are derived
    hant = expand(loaded_client, url=ICD10_CN_VS, filter="糖尿病腎病")
    hans = expand(loaded_client, url=ICD10_CN_VS, filter="糖尿病肾病")
    assert codes(hant) == codes(hans) == ["E11.201"]
    assert "E11.201" in codes(expand(loaded_client, url=ICD10_CN_VS, filter="腎病"))


def test_paging_with_count_and_offset(loaded_client) -> None:
    everything = expand(loaded_client, url=ICD10_VS, filter="diab")
    total = everything["expansion"]["total"]
    pages = []
    for offset in range(0, total + 5, 5):
        page = expand(loaded_client, url=ICD10_VS, filter="diab", count=5, offset=offset)
        assert page["expansion"]["total"] == total
        assert page["expansion"]["offset"] == offset
        assert len(codes(page)) == max(0, min(5, total - offset))
        assert ("offset", offset) in expansion_parameters(page) and ("count", 5) in expansion_parameters(page)
        pages.append(codes(page))
    flat = [code for page in pages for code in page]
    assert len(flat) == len(set(flat)) == total  # no overlap, nothing missed
    assert flat == codes(everything)


def test_count_zero_gives_only_the_total(loaded_client) -> None:
    value_set = expand(loaded_client, url=ICD10_VS, count=0)
    assert value_set["expansion"]["total"] == len(codes(expand(loaded_client, url=ICD10_VS)))
    assert contains(value_set) == []


def test_offset_past_the_end(loaded_client) -> None:
    value_set = expand(loaded_client, url=SENSITIVE_DIAGNOSES, offset=5000)
    assert value_set["expansion"]["offset"] == 5000
    assert value_set["expansion"]["total"] > 0
    assert contains(value_set) == []


@pytest.mark.parametrize(("params", "headers", "language", "display"), [
    ({"displayLanguage": "zh-Hant"}, {}, "zh-Hant", "2型糖尿病伴有腎的併發症"),
    ({"displayLanguage": "zh-Hans"}, {}, "zh-Hans", "2型糖尿病伴有肾的并发症"),
    ({"displayLanguage": "en"}, {"Accept-Language": "zh-HK"}, "en", "Type 2 diabetes mellitus with renal complications"),
    ({}, {"Accept-Language": "zh-HK"}, "zh-Hant", "2型糖尿病伴有腎的併發症"),
    ({}, {"Accept-Language": "zh-CN"}, "zh-Hans", "2型糖尿病伴有肾的并发症"),
    ({}, {}, None, "Type 2 diabetes mellitus with renal complications"),
])
def test_display_language(loaded_client, params: dict[str, str], headers: dict[str, str], language: str | None,
                          display: str) -> None:
    response = loaded_client.get(EXPAND, params={"url": ICD10_VS, "filter": "type 2 diab", **params}, headers=headers)
    value_set = ok(response, "ValueSet")
    assert displays(value_set)["E11.2"] == display
    assert value_set.get("language") == language
    assert dict(expansion_parameters(value_set)).get("displayLanguage") == language


def test_display_language_of_a_stored_value_set(loaded_client) -> None:
    value_set = expand(loaded_client, url=SENSITIVE_DIAGNOSES, displayLanguage="zh-Hans")
    assert displays(value_set)["B20"] == "人类免疫缺陷病毒[HIV]病造成的传染病和寄生虫病"


def test_include_designations(loaded_client) -> None:
    plain = expand(loaded_client, url=ICD10_VS, filter="type 2 diab")
    assert all("designation" not in c for c in contains(plain))
    value_set = expand(loaded_client, url=ICD10_VS, filter="type 2 diab", includeDesignations="true")
    e11_9 = next(c for c in contains(value_set) if c["code"] == "E11.9")
    assert {d["language"]: d["value"] for d in e11_9["designation"]} == {
        "en": "Type 2 diabetes mellitus without complications",
        "zh-Hant": "2型糖尿病不伴有併發症",
        "zh-Hans": "2型糖尿病不伴有并发症",
    }


# A derived designation keeps its designation-derived-by extension in $expand too (regression).
def test_include_designations_marks_derived_ones(loaded_client) -> None:
    value_set = expand(loaded_client, url=f"{HK_LAB}?fhir_vs", filter="Haemoglobin", includeDesignations="true")
    hb = next(c for c in contains(value_set) if c["code"] == "HB")
    simplified = next(d for d in hb["designation"] if d["language"] == "zh-Hans")
    assert simplified["value"] == "血红素"
    assert simplified.get("extension") == [{"url": DERIVED_EXTENSION, "valueString": "opencc:hk2s"}]


def test_is_a_filter_in_an_inline_value_set(loaded_client) -> None:
    body = parameters(inline({"system": ICD10, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]}))
    value_set = ok(loaded_client.post(EXPAND, json=body), "ValueSet")
    assert sorted(codes(value_set)) == TYPE_2
    assert value_set["expansion"]["total"] == len(TYPE_2)


def test_descendent_of_leaves_the_code_itself_out(loaded_client) -> None:
    body = parameters(inline({"system": ICD10, "filter": [{"property": "concept", "op": "descendent-of", "value": "E11"}]}))
    assert sorted(codes(ok(loaded_client.post(EXPAND, json=body), "ValueSet"))) == TYPE_2[1:]


def test_exclude_takes_codes_out(loaded_client) -> None:
    body = parameters({"name": "valueSet", "resource": {"resourceType": "ValueSet", "status": "active", "compose": {
        "include": [{"system": ICD10, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]}],
        "exclude": [{"system": ICD10, "concept": [{"code": "E11.9"}, {"code": "E11.2"}]}],
    }}})
    value_set = ok(loaded_client.post(EXPAND, json=body), "ValueSet")
    assert sorted(codes(value_set)) == ["E11", "E11.3", "E11.4", "E11.5", "E11.6"]
    assert value_set["expansion"]["total"] == 5


def test_is_a_over_several_levels(loaded_client) -> None:
    body = parameters(inline({"system": ICD10, "filter": [{"property": "concept", "op": "is-a", "value": "E10-E14"}]}),
                      {"name": "filter", "valueString": "without"})
    assert sorted(codes(ok(loaded_client.post(EXPAND, json=body), "ValueSet"))) == ["E10.9", "E11.9", "E14.9"]


def test_inline_concepts_of_a_system_not_held_here_are_paged_after_the_others(loaded_client) -> None:
    not_held = "http://example.org/not-held"
    value_set = inline(
        {"system": not_held, "concept": [{"code": "a", "display": "Alpha"}, {"code": "b", "display": "Beta"}]},
        {"system": ICD10, "concept": [{"code": "E11"}, {"code": "E11.9"}]},
    )
    pages = []
    for offset in (0, 3):
        page = ok(loaded_client.post(EXPAND, json=parameters(
            value_set, {"name": "offset", "valueInteger": offset}, {"name": "count", "valueInteger": 3},
        )), "ValueSet")
        assert page["expansion"]["total"] == 4
        pages.append([(c["system"], c["code"]) for c in contains(page)])
    assert pages == [[(ICD10, "E11"), (ICD10, "E11.9"), (not_held, "a")], [(not_held, "b")]]


def test_unknown_value_set_is_404_naming_it(loaded_client) -> None:
    url = "http://example.org/ValueSet/no-such-value-set"
    assert url in outcome(loaded_client.get(EXPAND, params={"url": url}), 404)


def test_unknown_code_system_of_an_implicit_value_set_is_404(loaded_client) -> None:
    system = "http://example.org/no-such-system"
    assert system in outcome(loaded_client.get(EXPAND, params={"url": f"{system}?fhir_vs"}), 404)


def test_unknown_value_set_instance_is_404(loaded_client) -> None:
    assert "no-such-value-set" in outcome(loaded_client.get("/fhir/ValueSet/no-such-value-set/$expand"), 404)


def test_count_above_the_maximum_is_400(loaded_client) -> None:
    assert "10000" in outcome(loaded_client.get(EXPAND, params={"url": ICD10_VS, "count": 10_001}), 400)


@pytest.mark.parametrize(("params", "named"), [
    ({"url": ICD10_VS, "count": "-1"}, "count"),
    ({"url": ICD10_VS, "offset": "ten"}, "offset"),
    ({"url": ICD10_VS, "includeDesignations": "yes"}, "includeDesignations"),
    ({"valueSet": "{}"}, "valueSet"),  # a resource only travels by POST
    ({"url": ICD10_VS, "sort": "code"}, "sort"),  # not a parameter of $expand
])
def test_bad_parameters_are_400_naming_them(loaded_client, params: dict[str, str], named: str) -> None:
    assert named in outcome(loaded_client.get(EXPAND, params=params), 400)


def test_unsupported_filter_is_refused(loaded_client) -> None:
    body = parameters(inline({"system": ICD10, "filter": [{"property": "display", "op": "regex", "value": ".*"}]}))
    assert "display" in outcome(loaded_client.post(EXPAND, json=body), 400)
