"""The search parameter registry: complete against the official R4 definitions, with the
per-type branch of every union expression, and shipped exactly as the build script makes it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_exchange.search.registry import (
    SearchParamRegistry,
    branch_root,
    expression_for_type,
    load_table,
    registry,
    split_union,
)

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT / ".." / "shared"
BUNDLE = SHARED / "corpora" / "fhir-r4-definitions" / "Bundle-searchParams.json"
SCRIPT = ROOT / "scripts" / "build_search_params.py"
TABLE = ROOT / "fhir_exchange" / "search" / "search_parameters.json"
RESOURCE_LEVEL = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")


@pytest.fixture(scope="module")
def definitions() -> list[dict]:
    if not BUNDLE.exists():
        pytest.skip(f"{BUNDLE} is absent: ../shared/corpora is not beside this checkout")
    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle["entry"]]


def test_every_indexable_definition_is_registered_for_each_of_its_base_types(definitions: list[dict]) -> None:
    reg = registry()
    types = set(reg.resource_types())
    missing = []
    for definition in definitions:
        if definition["type"] in ("composite", "special") or not definition.get("expression"):
            continue
        for base in definition["base"]:
            if base in ("Resource", "DomainResource") or base not in types:
                continue
            found = reg.get(base, definition["code"])
            if found is None or found.type != definition["type"]:
                missing.append(f"{base}.{definition['code']}")
    assert missing == []


def test_definitions_without_an_expression_are_left_out() -> None:
    for code in ("_text", "_content", "_query"):
        assert registry().get("Patient", code) is None


@pytest.mark.parametrize(
    ("resource_type", "codes"),
    [
        ("Observation", {"code", "subject", "patient", "date", "value-quantity", "combo-code", "component-code"}),
        ("Patient", {"name", "identifier", "birthdate", "family", "given", "gender", "phone", "address-city"}),
        ("Condition", {"code", "patient", "subject", "onset-date", "onset-age", "clinical-status"}),
        ("Bundle", {"identifier", "timestamp", "type", "composition"}),
    ],
)
def test_well_known_parameters(resource_type: str, codes: set[str]) -> None:
    assert codes <= set(registry().params_for(resource_type))


def test_resource_level_parameters_exist_for_every_type() -> None:
    reg = registry()
    for resource_type in reg.resource_types():
        params = reg.params_for(resource_type)
        assert set(RESOURCE_LEVEL) <= set(params), resource_type
        assert params["_tag"].expression == "Resource.meta.tag"
        assert params["_profile"].type == "uri"


def test_resource_types_are_the_r4_types_with_an_r4b_model() -> None:
    types = registry().resource_types()
    assert types == sorted(types)
    assert {"Patient", "Observation", "Bundle", "Binary", "OperationOutcome", "Parameters"} <= set(types)
    assert "MedicinalProduct" not in types  # R4 only: no R4B model
    assert "Resource" not in types and "DomainResource" not in types
    for resource_type in types:
        assert get_fhir_model_class(resource_type).__name__ == resource_type


def test_domain_resource_parameters_skip_plain_resources() -> None:
    # Binary, Bundle and Parameters are Resources but not DomainResources.
    assert set(registry().params_for("Binary")) == set(RESOURCE_LEVEL)


@pytest.mark.parametrize(
    ("resource_type", "code", "expression"),
    [
        ("Condition", "patient", "Condition.subject.where(resolve() is Patient)"),
        ("AllergyIntolerance", "patient", "AllergyIntolerance.patient"),
        ("Observation", "date", "Observation.effective"),
        ("RiskAssessment", "date", "(RiskAssessment.occurrence as dateTime)"),
        ("Medication", "code", "Medication.code"),
        ("MedicationRequest", "code", "(MedicationRequest.medication as CodeableConcept)"),
        ("Person", "birthdate", "Person.birthDate"),
        ("Condition", "onset-age", "Condition.onset.as(Age) | Condition.onset.as(Range)"),
        ("Patient", "phone", "Patient.telecom.where(system='phone')"),
        ("Observation", "value-quantity", "(Observation.value as Quantity) | (Observation.value as SampledData)"),
        ("InsurancePlan", "name", "InsurancePlan.name | InsurancePlan.alias"),  # defined as `name | alias`
    ],
)
def test_union_expressions_are_split_per_type(resource_type: str, code: str, expression: str) -> None:
    definition = registry().get(resource_type, code)
    assert definition is not None
    assert definition.expression == expression


def test_per_type_expressions_only_start_at_their_own_type() -> None:
    reg = registry()
    for resource_type in reg.resource_types():
        for definition in reg.params_for(resource_type).values():
            assert definition.expression
            roots = {branch_root(b) for b in split_union(definition.expression)}
            assert roots <= {resource_type, "Resource", "DomainResource"}, (resource_type, definition)


def test_split_union_respects_parentheses_and_literals() -> None:
    expression = "A.where(x='a|b') | (B.c | B.d).e | (C.value as Quantity)"
    assert split_union(expression) == ["A.where(x='a|b')", "(B.c | B.d).e", "(C.value as Quantity)"]
    assert branch_root("(C.value as Quantity)") == "C"


def test_expression_for_type_matches_whole_type_names() -> None:
    expression = "MedicationRequest.code | Medication.code"
    assert expression_for_type(expression, "Medication", ("Medication", "MedicationRequest")) == "Medication.code"
    assert expression_for_type(expression, "Patient", ("Patient",)) is None
    assert expression_for_type("(value as X) | name", "Basic", ("Basic",)) == "(Basic.value as X) | Basic.name"


def test_unknown_types_and_codes() -> None:
    assert registry().params_for("NoSuchType") == {}
    assert registry().get("Patient", "no-such-code") is None


def test_registry_is_a_singleton() -> None:
    assert registry() is registry()


def test_duplicate_definitions_are_refused() -> None:
    row = {"code": "x", "base": ["Patient"], "type": "token", "expression": "Patient.id"}
    with pytest.raises(ValueError, match=r"Patient\.x"):
        SearchParamRegistry([row, row])


def test_shipped_table_is_what_the_script_generates(definitions: list[dict], tmp_path: Path) -> None:
    out = tmp_path / "search_parameters.json"
    subprocess.run([sys.executable, str(SCRIPT), str(BUNDLE), "--out", str(out)], check=True, capture_output=True)
    assert out.read_text(encoding="utf-8") == TABLE.read_text(encoding="utf-8")


def test_shipped_table_is_compact() -> None:
    text = TABLE.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 1_000_000
    rows = load_table()
    assert len(text.splitlines()) == len(rows) + 2  # one object per line between the brackets
    allowed = {"code", "base", "type", "expression", "target", "component"}
    for row in rows:
        assert set(row) <= allowed
        assert all(row[key] for key in row), row
        if "component" in row:
            assert row["type"] == "composite"
    keys = [(r["code"], r["base"], r["type"], r.get("expression", "")) for r in rows]
    assert keys == sorted(keys)
