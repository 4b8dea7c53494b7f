"""Writes keep the terminology the operations answer from in step with the stored
CodeSystem, ConceptMap and ValueSet resources, in the same transaction (these tests write,
so they use the ordinary emptied store through ``fhir``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fhir_exchange.operations.support import codes, designations, ok, out, outcome, properties

SYSTEM = "http://example.org/fhir/CodeSystem/colours"
OTHER = "http://example.org/fhir/CodeSystem/couleurs"
MAP = "http://example.org/fhir/ConceptMap/colours-to-couleurs"
VALUE_SET = "http://example.org/fhir/ValueSet/warm-colours"
LOOKUP = "/fhir/CodeSystem/$lookup"
TRANSLATE = "/fhir/ConceptMap/$translate"


def colours(version: str = "1", *, resource_id: str = "colours", url: str = SYSTEM, red: str = "Red",
            extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem", "id": resource_id, "url": url, "version": version, "name": "Colours",
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "concept": [
            {"code": "R", "display": red, "designation": [{"language": "zh-Hant", "value": "紅色"}]},
            {"code": "G", "display": "Green", "concept": [{"code": "LG", "display": "Light green"}]},
            *(extra or []),
        ],
    }


def colour_map(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ConceptMap", "url": MAP, "version": "1", "status": "active", **extra,
        "group": [{"source": SYSTEM, "target": OTHER, "element": [
            {"code": "R", "target": [{"code": "rouge", "display": "Rouge", "equivalence": "equivalent"}]},
            {"code": "LG", "target": [{"code": "vert", "display": "Vert", "equivalence": "wider"}]},
            {"code": "G", "target": [{"equivalence": "unmatched", "comment": "no plain green"}]},
        ]}],
    }


def lookup(fhir, code: str, **params: str):  # type: ignore[no-untyped-def]
    return fhir.get(LOOKUP, params={"system": SYSTEM, "code": code, **params})


def stored(fhir, resource_type: str, url: str) -> int:  # type: ignore[no-untyped-def]
    return ok(fhir.get(f"/fhir/{resource_type}", params={"url": url}), "Bundle")["total"]


def test_put_code_system_then_the_operations_find_it(fhir) -> None:
    assert fhir.put("/fhir/CodeSystem/colours", json=colours()).status_code == 201
    body = ok(lookup(fhir, "LG"))
    assert (out(body, "name"), out(body, "version"), out(body, "display")) == ("Colours", "1", "Light green")
    assert properties(body, "parent") == ["G"]
    red = ok(lookup(fhir, "R", displayLanguage="zh-Hans"))
    assert out(red, "display") == "红色"  # derived from the Traditional designation
    assert designations(red)["zh-Hans"]["derived_by"] == "opencc:hk2s"
    assert out(ok(fhir.get("/fhir/CodeSystem/colours/$lookup", params={"code": "G"})), "display") == "Green"
    assert out(ok(fhir.get("/fhir/CodeSystem/$subsumes", params={"system": SYSTEM, "codeA": "G", "codeB": "LG"})),
               "outcome") == "subsumes"
    expansion = ok(fhir.get("/fhir/ValueSet/$expand", params={"url": f"{SYSTEM}?fhir_vs"}), "ValueSet")
    assert codes(expansion) == ["R", "G", "LG"]


def test_a_new_version_changes_the_answer(fhir) -> None:
    fhir.put("/fhir/CodeSystem/colours", json=colours("1"))
    changed = colours("2", red="Crimson", extra=[{"code": "B", "display": "Blue"}])
    changed["concept"] = [c for c in changed["concept"] if c["code"] != "G"]
    assert fhir.put("/fhir/CodeSystem/colours", json=changed).status_code == 200
    body = ok(lookup(fhir, "R"))
    assert (out(body, "version"), out(body, "display")) == ("2", "Crimson")
    assert out(ok(lookup(fhir, "B")), "display") == "Blue"
    assert "'G'" in outcome(lookup(fhir, "G"), 404)
    # earlier versions stay answerable when asked for by version
    assert out(ok(lookup(fhir, "G", version="1")), "display") == "Green"


def test_the_same_version_with_new_content_replaces_it(fhir) -> None:
    fhir.put("/fhir/CodeSystem/colours", json=colours("1"))
    fhir.put("/fhir/CodeSystem/colours", json=colours("1", red="Scarlet"))
    assert out(ok(lookup(fhir, "R")), "display") == "Scarlet"
    assert out(ok(lookup(fhir, "R", version="1")), "display") == "Scarlet"


def test_delete_forgets_it(fhir) -> None:
    fhir.put("/fhir/CodeSystem/colours", json=colours())
    assert fhir.delete("/fhir/CodeSystem/colours").status_code == 204
    assert SYSTEM in outcome(lookup(fhir, "R"), 404)
    assert SYSTEM in outcome(fhir.get("/fhir/ValueSet/$expand", params={"url": f"{SYSTEM}?fhir_vs"}), 404)
    assert "deleted" in outcome(fhir.get("/fhir/CodeSystem/colours/$lookup", params={"code": "R"}), 410)
    validation = ok(fhir.get("/fhir/CodeSystem/$validate-code", params={"url": SYSTEM, "code": "R"}))
    assert out(validation, "result") is False


def test_post_a_concept_map_then_translate_uses_it(fhir) -> None:
    fhir.put("/fhir/CodeSystem/colours", json=colours())
    created = fhir.post("/fhir/ConceptMap", json=colour_map())
    assert created.status_code == 201
    map_id = created.json()["id"]
    body = ok(fhir.get(TRANSLATE, params={"system": SYSTEM, "code": "R"}))
    assert out(body, "result") is True
    match = {p["name"]: p for p in body["parameter"][1]["part"]}
    assert match["equivalence"]["valueCode"] == "equivalent"
    assert match["concept"]["valueCoding"] == {"system": OTHER, "code": "rouge", "display": "Rouge"}
    assert match["source"]["valueUri"] == MAP
    by_id = ok(fhir.get(f"/fhir/ConceptMap/{map_id}/$translate", params={"system": SYSTEM, "code": "LG"}))
    assert out(by_id, "result") is True
    # a code mapped only as 'unmatched' is no translation
    unmatched = ok(fhir.get(TRANSLATE, params={"system": SYSTEM, "code": "G"}))
    assert out(unmatched, "result") is False
    assert "unmatched" in out(unmatched, "message")
    # reverse: what maps to rouge
    reverse = ok(fhir.get(TRANSLATE, params={"system": OTHER, "code": "rouge", "reverse": "true"}))
    assert out(reverse, "result") is True
    assert fhir.delete(f"/fhir/ConceptMap/{map_id}").status_code == 204
    gone = ok(fhir.get(TRANSLATE, params={"system": SYSTEM, "code": "R"}))
    assert out(gone, "result") is False
    assert MAP in outcome(fhir.get(TRANSLATE, params={"url": MAP, "system": SYSTEM, "code": "R"}), 404)


def test_a_concept_map_with_a_bad_equivalence_is_refused_and_not_stored(fhir) -> None:
    bad = colour_map()
    bad["group"][0]["element"][0]["target"][0]["equivalence"] = "same"
    text = outcome(fhir.post("/fhir/ConceptMap", json=bad), 400)
    assert "'same'" in text
    assert stored(fhir, "ConceptMap", MAP) == 0
    assert out(ok(fhir.get(TRANSLATE, params={"system": SYSTEM, "code": "R"})), "result") is False


def test_a_code_system_with_duplicate_codes_is_refused_and_nothing_stored(fhir) -> None:
    duplicated = colours(extra=[{"code": "R", "display": "Red again"}])
    response = fhir.put("/fhir/CodeSystem/colours", json=duplicated)
    text = outcome(response, 400)
    assert "'R'" in text and "more than once" in text
    assert any(i.get("expression") == ["CodeSystem.concept[3]"] for i in response.json()["issue"])
    assert "CodeSystem/colours" in outcome(fhir.get("/fhir/CodeSystem/colours"), 404)
    assert stored(fhir, "CodeSystem", SYSTEM) == 0
    assert SYSTEM in outcome(lookup(fhir, "G"), 404)


def test_a_failed_transaction_stores_no_terminology(fhir) -> None:
    duplicated = colours(resource_id="dups", url=OTHER, extra=[{"code": "G"}])
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": colours(), "request": {"method": "PUT", "url": "CodeSystem/colours"}},
        {"resource": duplicated, "request": {"method": "PUT", "url": "CodeSystem/dups"}},
    ]}
    assert "'G'" in outcome(fhir.post("/fhir", json=bundle), 400)
    assert SYSTEM in outcome(lookup(fhir, "R"), 404)
    assert stored(fhir, "CodeSystem", SYSTEM) == 0


def test_a_value_set_written_expanded_validated_and_deleted(fhir) -> None:
    fhir.put("/fhir/CodeSystem/colours", json=colours())
    value_set = {"resourceType": "ValueSet", "id": "warm", "url": VALUE_SET, "version": "1", "status": "active",
                 "compose": {"include": [{"system": SYSTEM, "concept": [{"code": "R"}]},
                                         {"system": SYSTEM, "filter": [{"property": "concept", "op": "is-a", "value": "LG"}]}]}}
    assert fhir.put("/fhir/ValueSet/warm", json=value_set).status_code == 201
    expansion = ok(fhir.get("/fhir/ValueSet/$expand", params={"url": VALUE_SET, "displayLanguage": "zh-Hant"}), "ValueSet")
    assert codes(expansion) == ["R", "LG"]
    assert expansion["expansion"]["contains"][0]["display"] == "紅色"
    inside = ok(fhir.get("/fhir/ValueSet/warm/$validate-code", params={"system": SYSTEM, "code": "LG"}))
    assert out(inside, "result") is True
    outside = ok(fhir.get("/fhir/ValueSet/$validate-code", params={"url": VALUE_SET, "system": SYSTEM, "code": "G"}))
    assert out(outside, "result") is False
    assert fhir.delete("/fhir/ValueSet/warm").status_code == 204
    assert VALUE_SET in outcome(fhir.get("/fhir/ValueSet/$expand", params={"url": VALUE_SET}), 404)


# --- regressions: bugs these tests found ----------------------------------------------------


@pytest.mark.parametrize("resource_type", ["CodeSystem", "ValueSet"])
def test_changing_the_url_forgets_the_old_one(fhir, resource_type: str) -> None:
    # An update that changes the url forgets what the resource brought under the old url.
    fhir.put("/fhir/CodeSystem/colours", json=colours())
    if resource_type == "CodeSystem":
        fhir.put("/fhir/CodeSystem/colours", json=colours("2", url=f"{SYSTEM}-renamed"))
        assert out(ok(fhir.get(LOOKUP, params={"system": f"{SYSTEM}-renamed", "code": "R"})), "display") == "Red"
        assert stored(fhir, "CodeSystem", SYSTEM) == 0
        outcome(lookup(fhir, "R"), 404)
    else:
        value_set = {"resourceType": "ValueSet", "id": "warm", "url": VALUE_SET, "status": "active",
                     "compose": {"include": [{"system": SYSTEM, "concept": [{"code": "R"}]}]}}
        fhir.put("/fhir/ValueSet/warm", json=value_set)
        fhir.put("/fhir/ValueSet/warm", json={**value_set, "url": f"{VALUE_SET}-renamed"})
        assert stored(fhir, "ValueSet", VALUE_SET) == 0
        outcome(fhir.get("/fhir/ValueSet/$expand", params={"url": VALUE_SET}), 404)


def test_deleting_one_of_two_resources_with_the_same_url_and_version_keeps_the_other(fhir) -> None:
    # One url|version belongs to one resource: a second resource claiming it is refused (409),
    # so deleting it cannot strand the first.
    assert fhir.put("/fhir/CodeSystem/a", json=colours(resource_id="a")).status_code == 201
    second = fhir.put("/fhir/CodeSystem/b", json=colours(resource_id="b"))
    assert second.status_code == 409
    assert "already belongs to CodeSystem/a" in second.json()["issue"][0]["diagnostics"]
    assert fhir.get("/fhir/CodeSystem/b").status_code == 404
    assert fhir.delete("/fhir/CodeSystem/b").status_code == 204
    assert ok(fhir.get("/fhir/CodeSystem/a"), "CodeSystem")["url"] == SYSTEM
    assert out(ok(lookup(fhir, "R")), "display") == "Red"
