"""Write-time index extraction: concrete expectations on official examples, every data type
the R4 search spec maps, and the compiled accessors agreeing with fhirpathpy everywhere."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_exchange.search.extract import compiled_expressions, extract
from fhir_exchange.search.index import (
    DateEntry,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_exchange.search.registry import registry
from fhir_exchange.search.values import MAX_DATE, MIN_DATE, normalize_string, parse_date_range

ROOT = Path(__file__).resolve().parents[3]
CORPORA = ROOT / ".." / "shared" / "corpora"


def corpus_dir(name: str) -> Path:
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: ../shared/corpora is not beside this checkout")
    return path


def example(name: str) -> dict[str, Any]:
    return json.loads((corpus_dir("fhir-r4-examples") / name).read_text(encoding="utf-8"))


def entries_of(resource: dict[str, Any], param: str) -> list[Any]:
    return [e for e in extract(resource) if e.param == param]


def dt(*parts: int) -> datetime:
    return datetime(*parts)  # type: ignore[arg-type]


# --- official examples -----------------------------------------------------------------------


def test_patient_example() -> None:
    patient = example("Patient-example.json")
    entries = extract(patient)
    assert StringEntry("family", "chalmers", "Chalmers") in entries
    assert StringEntry("name", "chalmers", "Chalmers") in entries
    assert StringEntry("name", "windsor", "Windsor") in entries
    assert {e.value for e in entries_of(patient, "given")} == {"peter", "james", "jim"}
    assert (
        TokenEntry(
            "identifier",
            "urn:oid:1.2.36.146.595.217.0.1",
            "12345",
            None,
            "http://terminology.hl7.org/CodeSystem/v2-0203",
            "MR",
        )
        in entries
    )
    assert entries_of(patient, "birthdate") == [
        DateEntry("birthdate", dt(1974, 12, 25), dt(1974, 12, 25, 23, 59, 59, 999999))
    ]
    assert TokenEntry("gender", None, "male") in entries
    assert TokenEntry("active", None, "true") in entries
    assert TokenEntry("deceased", None, "false") in entries
    assert ReferenceEntry("organization", "Organization", "1") in entries
    assert StringEntry("address-city", "pleasantville", "PleasantVille") in entries
    assert StringEntry("address", "534 erewhon st", "534 Erewhon St") in entries
    # ContactPoint tokens: only the value, no [system]| part
    assert TokenEntry("phone", None, "(03) 5555 6473") in entries
    assert TokenEntry("telecom", None, "(03) 3410 5613") in entries
    assert entries_of(patient, "email") == []


def test_observation_example() -> None:
    observation = example("Observation-example.json")
    entries = extract(observation)
    assert QuantityEntry("value-quantity", 185.0, "http://unitsofmeasure.org", "[lb_av]", "lbs") in entries
    assert ReferenceEntry("subject", "Patient", "example") in entries
    assert ReferenceEntry("patient", "Patient", "example") in entries
    assert TokenEntry("code", "http://loinc.org", "29463-7", "body weight") in entries
    assert TokenEntry("status", None, "final") in entries
    assert DateEntry("date", dt(2016, 3, 28), dt(2016, 3, 28, 23, 59, 59, 999999)) in entries


def test_observation_effective_period_with_open_end() -> None:
    observation = example("Observation-f001.json")  # effectivePeriod.start 2013-04-02T09:30:10+01:00
    assert entries_of(observation, "date") == [DateEntry("date", dt(2013, 4, 2, 8, 30, 10), MAX_DATE)]
    assert QuantityEntry("value-quantity", 6.3, "http://unitsofmeasure.org", "mmol/L", "mmol/l") in extract(observation)
    assert ReferenceEntry("patient", "Patient", "f001") in extract(observation)


def test_condition_onset_age() -> None:
    condition = example("Condition-f202.json")
    assert entries_of(condition, "onset-age") == [
        QuantityEntry("onset-age", 52.0, "http://unitsofmeasure.org", "a", "years")
    ]
    assert entries_of(condition, "abatement-age") == [
        QuantityEntry("abatement-age", 54.0, "http://unitsofmeasure.org", "a", "years")
    ]


def test_absolute_references_keep_the_url_and_the_parsed_target() -> None:
    bundle = example("Bundle-father.json")
    resources = [e["resource"] for e in bundle["entry"]]
    entries = [e for r in resources for e in extract(r)]
    url = "http://fhir.healthintersections.com.au/open/Patient/d1"
    assert ReferenceEntry("subject", "Patient", "d1", url) in entries


# --- every data type the spec maps -------------------------------------------------------------


def test_resource_level_parameters() -> None:
    resource = {
        "resourceType": "Binary",
        "id": "b",
        "meta": {
            "tag": [{"system": "http://example.org/tags", "code": "t1", "display": "Tag One"}],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            "profile": ["http://example.org/StructureDefinition/p|1.0"],
            "source": "http://example.org/source#abc",
            "lastUpdated": "2020-01-01T00:00:00Z",
        },
        "contentType": "text/plain",
    }
    assert set(extract(resource)) == {
        TokenEntry("_tag", "http://example.org/tags", "t1", "tag one"),
        TokenEntry("_security", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
        UriEntry("_profile", "http://example.org/StructureDefinition/p|1.0"),
        UriEntry("_source", "http://example.org/source#abc"),
    }  # _id and _lastUpdated come from the resource table


@pytest.mark.parametrize(
    ("reference", "expected_subject", "is_patient"),
    [
        ("Patient/1", ReferenceEntry("subject", "Patient", "1"), True),
        ("Patient/1/_history/2", ReferenceEntry("subject", "Patient", "1"), True),
        ("Group/g", ReferenceEntry("subject", "Group", "g"), False),
        (
            "http://other.org/fhir/Patient/7",
            ReferenceEntry("subject", "Patient", "7", "http://other.org/fhir/Patient/7"),
            True,
        ),
        (
            "http://other.org/fhir/Patient/7/_history/3",
            ReferenceEntry("subject", "Patient", "7", "http://other.org/fhir/Patient/7/_history/3"),
            True,
        ),
        (
            "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d",
            ReferenceEntry("subject", None, None, "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d"),
            False,
        ),
        ("urn:oid:1.2.3", ReferenceEntry("subject", None, None, "urn:oid:1.2.3"), False),
        ("http://example.org/not-fhir", ReferenceEntry("subject", None, None, "http://example.org/not-fhir"), False),
        ("#contained", None, False),
        ("NotAType/1", None, False),
    ],
)
def test_reference_forms(reference: str, expected_subject: ReferenceEntry | None, is_patient: bool) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": reference},
    }
    assert entries_of(observation, "subject") == ([expected_subject] if expected_subject else [])
    patient = entries_of(observation, "patient")
    assert len(patient) == (1 if is_patient else 0)
    if is_patient:
        assert (patient[0].target_type, patient[0].target_id) == ("Patient", expected_subject.target_id)  # type: ignore[union-attr]


def test_references_outside_the_targets_are_not_indexed() -> None:
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "x"},
        "subject": {"reference": "Patient/p"},
        "dispenseRequest": {"performer": {"reference": "Practitioner/f001"}},  # targets: Organization
    }
    assert entries_of(request, "intended-dispenser") == []
    assert ReferenceEntry("subject", "Patient", "p") in extract(request)


def test_identifier_only_and_display_only_references_are_not_indexed() -> None:
    observation = {"resourceType": "Observation", "subject": {"identifier": {"value": "1"}, "display": "Jim"}}
    assert entries_of(observation, "subject") == []


def test_canonical_references_drop_the_version() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "http://example.org/Questionnaire/q1|2.0",
    }
    assert entries_of(response, "questionnaire") == [
        ReferenceEntry("questionnaire", None, None, "http://example.org/Questionnaire/q1")
    ]


def test_choice_references_and_codes() -> None:
    by_reference = {"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/m1"}}
    by_code = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {"coding": [{"system": "s", "code": "c"}]},
    }
    assert entries_of(by_reference, "medication") == [ReferenceEntry("medication", "Medication", "m1")]
    assert entries_of(by_reference, "code") == []
    assert entries_of(by_code, "code") == [TokenEntry("code", "s", "c")]
    assert entries_of(by_code, "medication") == []


def test_codeable_concept_tokens() -> None:
    condition = {
        "resourceType": "Condition",
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "39065001", "display": "Burn of ear"}],
            "text": "Brûlure",
        },
        "category": [{"text": "Only text"}],
        "subject": {"reference": "Patient/p"},
    }
    assert set(entries_of(condition, "code")) == {
        TokenEntry("code", "http://snomed.info/sct", "39065001", "burn of ear"),
        TokenEntry("code", None, None, "brulure"),
    }
    assert entries_of(condition, "category") == [TokenEntry("category", None, None, "only text")]


def test_identifier_tokens() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:a", "value": "1"},
            {
                "system": "urn:b",
                "value": "2",
                "type": {
                    "coding": [{"system": "urn:t", "code": "MR"}, {"system": "urn:u", "code": "PI"}],
                    "text": "Médical",
                },
            },
            {"type": {"text": "no value, no system"}},
        ],
    }
    assert set(entries_of(patient, "identifier")) == {
        TokenEntry("identifier", "urn:a", "1"),
        TokenEntry("identifier", "urn:b", "2", "medical", "urn:t", "MR"),
        TokenEntry("identifier", "urn:b", "2", "medical", "urn:u", "PI"),
    }


def test_contact_point_tokens() -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [
            {"system": "email", "value": "a@example.org"},
            {"system": "phone", "value": "+852 1234 5678"},
            {"system": "phone"},
        ],
    }
    assert entries_of(patient, "email") == [TokenEntry("email", None, "a@example.org")]
    assert entries_of(patient, "phone") == [TokenEntry("phone", None, "+852 1234 5678")]
    assert len(entries_of(patient, "telecom")) == 2


def test_address_and_human_name_parts() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "陳", "given": ["大文"], "prefix": ["Dr."], "suffix": ["Jr"], "text": "陳大文"}],
        "address": [
            {
                "line": ["1 Queen's Road", "Flat 2"],
                "city": "Hong Kong",
                "district": "Central",
                "state": "HK",
                "postalCode": "000",
                "country": "CN",
                "text": "Somewhere",
            }
        ],
    }
    assert {e.exact for e in entries_of(patient, "name")} == {"陳", "大文", "Dr.", "Jr", "陳大文"}
    assert {e.exact for e in entries_of(patient, "address")} == {
        "1 Queen's Road",
        "Flat 2",
        "Hong Kong",
        "Central",
        "HK",
        "000",
        "CN",
        "Somewhere",
    }
    assert entries_of(patient, "address-postalcode") == [StringEntry("address-postalcode", "000", "000")]
    assert StringEntry("family", "陳", "陳") in extract(patient)


def test_dates_periods_and_timings() -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "period": {"end": "2020-05"},
    }
    assert entries_of(encounter, "date") == [DateEntry("date", MIN_DATE, dt(2020, 5, 31, 23, 59, 59, 999999))]
    request = {  # the date parameter is MedicationRequest.dosageInstruction.timing.event
        "resourceType": "MedicationRequest",
        "dosageInstruction": [{"timing": {"event": ["2020-01-01", "2020-01-02T08:00:00Z"]}}],
    }
    assert set(entries_of(request, "date")) == {
        DateEntry("date", dt(2020, 1, 1), dt(2020, 1, 1, 23, 59, 59, 999999)),
        DateEntry("date", dt(2020, 1, 2, 8), dt(2020, 1, 2, 8, 0, 0, 999999)),
    }
    observation = {  # Observation.effective as Timing: each event and the bounds
        "resourceType": "Observation",
        "effectiveTiming": {
            "event": ["2020-01-03"],
            "repeat": {"boundsPeriod": {"start": "2020-01-01", "end": "2020-01-31"}, "frequency": 1},
        },
    }
    assert set(entries_of(observation, "date")) == {
        DateEntry("date", dt(2020, 1, 3), dt(2020, 1, 3, 23, 59, 59, 999999)),
        DateEntry("date", dt(2020, 1, 1), dt(2020, 1, 31, 23, 59, 59, 999999)),
    }
    goal = {"resourceType": "Goal", "startDate": "2021-06-01"}
    assert entries_of(goal, "start-date") == [DateEntry("start-date", *parse_date_range("2021-06-01"))]


def test_quantities_money_and_ranges() -> None:
    condition = {"resourceType": "Condition", "onsetRange": {"low": {"value": 10, "unit": "a"}, "high": {"value": 20}}}
    assert set(entries_of(condition, "onset-age")) == {
        QuantityEntry("onset-age", 10.0, None, None, "a"),
        QuantityEntry("onset-age", 20.0, None, None, None),
    }
    invoice = {"resourceType": "Invoice", "status": "issued", "totalNet": {"value": 12.5, "currency": "HKD"}}
    assert entries_of(invoice, "totalnet") == [QuantityEntry("totalnet", 12.5, "urn:iso:std:iso:4217", "HKD")]
    sampled = {
        "resourceType": "Observation",
        "valueSampledData": {"origin": {"value": 1}, "period": 1, "dimensions": 1},
    }
    assert entries_of(sampled, "value-quantity") == []


def test_numbers_and_uris() -> None:
    assessment = {
        "resourceType": "RiskAssessment",
        "prediction": [
            {"probabilityDecimal": 0.25},
            {"probabilityRange": {"low": {"value": 0.1}, "high": {"value": 0.4}}},
        ],
    }
    assert set(entries_of(assessment, "probability")) == {
        NumberEntry("probability", 0.25),
        NumberEntry("probability", 0.1),
        NumberEntry("probability", 0.4),
    }
    value_set = {"resourceType": "ValueSet", "status": "active", "url": "http://example.org/vs"}
    assert entries_of(value_set, "url") == [UriEntry("url", "http://example.org/vs")]


def test_booleans_and_codes() -> None:
    patient = {"resourceType": "Patient", "active": False, "gender": "female", "deceasedBoolean": True}
    entries = extract(patient)
    assert TokenEntry("active", None, "false") in entries
    assert TokenEntry("gender", None, "female") in entries
    assert TokenEntry("deceased", None, "true") in entries


def test_entries_are_deduplicated() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Li"}, {"family": "Li"}]}
    entries = extract(patient)
    assert len(entries) == len(set(entries))
    assert entries_of(patient, "family") == [StringEntry("family", "li", "Li")]


def test_unknown_or_missing_resource_type() -> None:
    assert extract({"resourceType": "NoSuchType", "id": "x"}) == []
    assert extract({"id": "x"}) == []


ODD_RESOURCES = [
    {"resourceType": "Patient", "birthDate": "not-a-date", "name": [{"family": 5, "given": [None, "", "A"]}]},
    {"resourceType": "Patient", "identifier": [None, "x", {"type": "MR", "value": "1"}], "telecom": [{"value": ""}]},
    {"resourceType": "Patient", "meta": {"tag": "x", "profile": [1, None]}, "address": ["x"], "gender": 3},
    {"resourceType": "Observation", "valueQuantity": {"value": "abc"}, "effectivePeriod": {"start": "2020-99"}},
    {"resourceType": "Observation", "valueQuantity": {"value": "1e999"}, "subject": {"reference": 7}},
    {"resourceType": "Observation", "code": {"coding": {"code": "x"}}, "subject": "Patient/1", "component": [5]},
    {"resourceType": "MedicationRequest", "dosageInstruction": [{"timing": {"event": ["x", 5], "repeat": []}}]},
    {"resourceType": "RiskAssessment", "prediction": [{"probabilityDecimal": True}]},
    {"resourceType": "Patient", "deceasedBoolean": [True, False], "active": "yes"},
]


@pytest.mark.parametrize("resource", ODD_RESOURCES)
def test_odd_values_are_skipped_not_raised(resource: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="fhir_exchange.search.extract"):
        for engine in ("compiled", "fhirpath"):
            entries = extract(resource, engine=engine)  # type: ignore[arg-type]
            assert all(e.param for e in entries)


def test_odd_values_keep_the_good_ones() -> None:
    patient = ODD_RESOURCES[0]
    assert entries_of(patient, "given") == [StringEntry("given", "a", "A")]
    assert entries_of(patient, "birthdate") == []


# --- compiled accessors agree with fhirpathpy ---------------------------------------------------


def _corpus_resources() -> list[tuple[str, dict[str, Any]]]:
    resources = []
    for folder in ("fhir-r4-examples", "ips-examples"):
        path = CORPORA / folder
        if not path.is_dir():
            continue
        for file in sorted(path.glob("*.json")):
            if file.name.startswith("_"):
                continue
            resource = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(resource, dict) or "resourceType" not in resource:
                continue
            resources.append((f"{folder}/{file.name}", resource))
            if resource["resourceType"] == "Bundle":
                for i, entry in enumerate(resource.get("entry", [])):
                    if isinstance(entry.get("resource"), dict):
                        resources.append((f"{folder}/{file.name}#entry{i}", entry["resource"]))
    return resources


CORPUS = _corpus_resources()


@pytest.mark.parametrize(("name", "resource"), CORPUS, ids=[name for name, _ in CORPUS])
def test_compiled_accessors_match_fhirpathpy(name: str, resource: dict[str, Any]) -> None:
    compiled = extract(resource)
    reference = extract(resource, engine="fhirpath")
    assert sorted(map(repr, compiled)) == sorted(map(repr, reference))


def test_the_corpus_comparison_covers_every_entry_type() -> None:
    if not CORPUS:
        pytest.skip(f"{CORPORA} is absent: ../shared/corpora is not beside this checkout")
    kinds = {type(e) for _, r in CORPUS for e in extract(r)}
    assert kinds == {StringEntry, TokenEntry, DateEntry, ReferenceEntry, QuantityEntry, NumberEntry, UriEntry}
    assert len(CORPUS) > 700


def test_almost_every_expression_is_compiled() -> None:
    fallbacks = {
        f"{t}.{code}"
        for t in registry().resource_types()
        for code, compiled in compiled_expressions(t).items()
        if not compiled
    }
    # exists()/and/!= and an indexer: evaluated by fhirpathpy
    assert fallbacks == {"Patient.deceased", "Bundle.composition", "Bundle.message"}


# --- property: what is written is found -----------------------------------------------------------

CJK = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=6)
NAME_TEXT = st.one_of(
    CJK,
    st.text(
        alphabet=st.characters(categories=("L", "M", "N", "Zs"), exclude_characters="\x00"), min_size=1, max_size=20
    ),
).filter(lambda s: normalize_string(s) != "")
SYSTEM = st.from_regex(r"(urn:oid:1\.2\.[0-9]{1,5}|http://example\.org/[a-z]{1,10})", fullmatch=True)
VALUE = st.text(alphabet=st.characters(categories=("L", "N", "P")), min_size=1, max_size=20)
BIRTH_DATE = st.dates().map(lambda d: d.isoformat())


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=NAME_TEXT,
    given_names=st.lists(NAME_TEXT, min_size=1, max_size=3),
    system=SYSTEM,
    value=VALUE,
    birth_date=BIRTH_DATE,
)
def test_written_patient_values_are_extracted(
    family: str, given_names: list[str], system: str, value: str, birth_date: str
) -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": given_names}],
        "identifier": [{"system": system, "value": value}],
        "birthDate": birth_date,
    }
    entries = extract(patient)
    assert StringEntry("family", normalize_string(family), family) in entries
    assert StringEntry("name", normalize_string(family), family) in entries
    for name in given_names:
        assert StringEntry("given", normalize_string(name), name) in entries
    assert TokenEntry("identifier", system, value) in entries
    assert DateEntry("birthdate", *parse_date_range(birth_date)) in entries
    assert set(entries) == set(extract(patient, engine="fhirpath"))
