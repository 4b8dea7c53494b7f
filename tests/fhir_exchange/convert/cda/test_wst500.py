"""Mainland WS/T 500 shared documents authored by the project (fixtures/): a 出院小结 and a
检验报告 in Simplified Chinese, with resident IDs, national clinical ICD-10 diagnoses and the
example mainland laboratory codes, converted with the starter terminology and checked field
by field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from baylink.migrate import upgrade
from fhir_exchange.convert.base import Conversion, Source
from fhir_exchange.convert.cda import read
from fhir_exchange.identity.documents import resident_id_check_character
from fhir_exchange.store.db import make_engine, make_sessionmaker
from terminology.api import Terminology
from terminology.loader import read_code_system_csv, read_concept_map_csv, read_manifest
from terminology.store import TerminologyStore
from tests.conftest import ROOT

FIXTURES = Path(__file__).with_name("fixtures")
MANIFEST = ROOT / "terminology" / "content" / "manifest.json"
WANTED = ("icd10-who.csv", "icd10-cn-clinical.csv", "icd10-cn-to-who.csv", "loinc-common.csv", "cn-example-lab.csv",
          "cn-example-lab-to-loinc.csv", "ucum-common.csv", "unit-spellings.csv", "unit-spellings-to-ucum.csv")
RESIDENT_ID = "http://baylink.example.org/fhir/sid/cn-resident-id"
ICD10_CN = "http://baylink.example.org/fhir/sid/icd-10-cn-clinical"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CN_LAB = "http://baylink.example.org/fhir/CodeSystem/cn-example-lab"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminology]:
    """The starter code systems and maps these documents need, in a database of their own."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cda-terminology') / 'terminology.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    sources = {s.path.name: s for s in read_manifest(MANIFEST)}
    with sessions() as session, session.begin():
        store = TerminologyStore(session)
        for name in WANTED:
            source = sources[name]
            if source.kind == "CodeSystem":
                store.save_code_system(read_code_system_csv(source))
            else:
                store.save_concept_map(read_concept_map_csv(source))
    yield Terminology(sessions)
    engine.dispose()


def _read(name: str, terms: Terminology) -> Conversion:
    conversion = read((FIXTURES / name).read_bytes(), Source(institution="test-hospital", profile="cn"), terminology=terms)
    Bundle.model_validate(conversion.bundle)
    return conversion


def _resources(conversion: Conversion, resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def _entry(conversion: Conversion, resource_type: str) -> dict[str, Any]:
    found = [e for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == resource_type]
    assert len(found) == 1, resource_type
    return found[0]


def _codings(concept: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["system"]: c for c in concept["coding"]}


def test_resident_ids_of_the_fixtures_are_valid() -> None:
    for number in ("440304198503120021", "440106197007010154"):
        assert resident_id_check_character(number[:17]) == number[17]


def test_discharge_summary(terms: Terminology) -> None:
    conversion = _read("wst500-discharge-summary.xml", terms)
    assert conversion.event == "WS/T 500 出院小结"
    assert conversion.message_id == "2.16.156.10011.1.1^DS-2026-000123"
    assert conversion.version == "1"
    assert conversion.content_type == "application/xml"
    assert conversion.warnings == []

    patient = _entry(conversion, "Patient")
    assert patient["request"] == {"method": "PUT",
                                  "url": "Patient?identifier=http%3A%2F%2Fbaylink.example.org%2Ffhir%2Fsid%2Fcn-resident-id"
                                         "%7C440304198503120021"}
    person = patient["resource"]
    assert person["name"] == [{"text": "陈小红"}]
    resident = next(i for i in person["identifier"] if i["system"] == RESIDENT_ID)
    assert resident["value"] == "440304198503120021"
    assert resident["type"]["coding"][0]["code"] == "NI"
    # the inpatient number is kept, but as a per-hospital number it is not matched on
    assert {"system": "urn:oid:2.16.156.10011.1.12", "value": "ZY2026001122"} in person["identifier"]
    assert person["gender"] == "female"
    assert person["birthDate"] == "1985-03-12"
    assert person["language"] == "zh-CN"
    assert person["address"][0]["city"] == "深圳市" and person["address"][0]["district"] == "福田区"
    assert person["telecom"] == [{"system": "phone", "value": "13800138000"}]

    composition_entry = _entry(conversion, "Composition")
    assert composition_entry["request"]["method"] == "PUT"
    assert composition_entry["request"]["url"] == "Composition?identifier=urn%3Aoid%3A2.16.156.10011.1.1%7CDS-2026-000123"
    composition = composition_entry["resource"]
    assert composition["language"] == "zh-CN"
    assert composition["title"] == "出院小结"
    assert composition["status"] == "final"
    assert composition["date"] == "2026-11-20T10:30:00+08:00"
    assert _codings(composition["type"]) == {
        "urn:oid:2.16.156.10011.2.4": {"system": "urn:oid:2.16.156.10011.2.4", "code": "C0053", "display": "出院小结"},
        LOINC: {"system": LOINC, "code": "18842-5", "display": "Discharge summary"},
    }
    assert [s["title"] for s in composition["section"]] == ["主要健康问题", "入院诊断", "出院诊断", "住院过程", "出院带药"]
    assert "住院过程" in [s["title"] for s in composition["section"]]
    course = composition["section"][3]["text"]["div"]
    assert "入院后予抗感染、降糖、降压治疗" in course and course.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert composition["attester"][0]["mode"] == "legal"

    conditions = _resources(conversion, "Condition")
    by_code = {c["code"]["coding"][0]["code"]: c for c in conditions}
    assert set(by_code) == {"J18.900", "E11.900", "I10.x01"}
    diabetes = by_code["E11.900"]
    assert diabetes["code"]["coding"][0] == {"system": ICD10_CN, "code": "E11.900", "display": "2型糖尿病不伴有并发症"}
    assert diabetes["code"]["coding"][1]["system"] == ICD10 and diabetes["code"]["coding"][1]["code"] == "E11.9"
    assert diabetes["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert diabetes["onsetDateTime"] == "2026-11-20"
    assert diabetes["language"] == "zh-CN"
    # a wider map (grade 1 is not in WHO ICD-10) still gives the WHO category
    assert _codings(by_code["I10.x01"]["code"])[ICD10]["code"] == "I10"
    assert _codings(by_code["J18.900"]["code"])[ICD10]["code"] == "J18.9"

    admission = _resources(conversion, "Observation")
    assert [o["code"]["coding"][0]["code"] for o in admission] == ["DE05.10.148.00"]
    assert admission[0]["valueString"] == "多饮、多尿1月，发热咳嗽3天"

    medication = _resources(conversion, "MedicationRequest")[0]
    assert medication["medicationCodeableConcept"] == {"text": "二甲双胍片"}
    assert medication["dosageInstruction"][0]["text"] == "二甲双胍片 0.5g 口服 每日两次"
    assert medication["dosageInstruction"][0]["timing"]["repeat"] == {"frequency": 1, "period": 12.0, "periodUnit": "h"}
    assert medication["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "g"

    encounter = _resources(conversion, "Encounter")[0]
    assert encounter["period"] == {"start": "2026-11-10T08:30:00+08:00", "end": "2026-11-20T10:00:00+08:00"}
    assert encounter["status"] == "finished"
    practitioners = _resources(conversion, "Practitioner")
    assert sorted(p["name"][0]["text"] for p in practitioners) == ["李明", "王建国"]
    # staff numbers are numbered by each hospital: no conditional create on them
    assert all("ifNoneExist" not in e["request"] for e in conversion.bundle["entry"]
               if e["resource"]["resourceType"] == "Practitioner")
    organisation = _entry(conversion, "Organization")
    assert organisation["resource"]["name"] == "深圳市示例人民医院"
    assert organisation["request"]["ifNoneExist"] == "identifier=urn%3Aoid%3A2.16.156.10011.1.5%7C455755001"


def test_lab_report(terms: Terminology) -> None:
    conversion = _read("wst500-lab-report.xml", terms)
    assert conversion.event == "WS/T 500 检验报告"
    assert conversion.version == "2"
    person = _entry(conversion, "Patient")["resource"]
    assert person["name"] == [{"text": "黄志强"}]
    resident = next(i for i in person["identifier"] if i["system"] == RESIDENT_ID)
    assert resident["value"] == "440106197007010154"
    assert person["gender"] == "male"

    composition = _entry(conversion, "Composition")["resource"]
    assert _codings(composition["type"])["urn:oid:2.16.156.10011.2.4"]["code"] == "C0007"
    assert _codings(composition["type"])[LOINC]["code"] == "11502-2"
    assert [s["title"] for s in composition["section"]] == ["诊断记录", "实验室检查", "检验报告"]

    diagnosis = _resources(conversion, "Condition")[0]
    assert _codings(diagnosis["code"]) == {
        ICD10_CN: {"system": ICD10_CN, "code": "E11.900", "display": "2型糖尿病不伴有并发症"},
        ICD10: _codings(diagnosis["code"])[ICD10],
    }
    assert _codings(diagnosis["code"])[ICD10]["code"] == "E11.9"

    results = {o["code"]["coding"][0]["code"]: o for o in _resources(conversion, "Observation")
               if o["code"]["coding"][0]["system"] == CN_LAB}
    glucose = results["SH017"]
    assert glucose["code"]["coding"][0] == {"system": CN_LAB, "code": "SH017", "display": "葡萄糖(GLU)"}
    assert _codings(glucose["code"])[LOINC]["code"] == "14749-6"
    assert glucose["valueQuantity"] == {"value": 7.8, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    assert glucose["referenceRange"] == [{"low": {"value": 3.9, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
                                          "high": {"value": 6.1, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}}]
    assert glucose["interpretation"][0]["coding"][0]["code"] == "H"
    assert glucose["effectiveDateTime"] == "2026-11-18T09:30:00+08:00"
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory"
    assert glucose["status"] == "final"
    creatinine = results["SH010"]
    assert creatinine["valueQuantity"] == {"value": 88, "unit": "μmol/L", "system": UCUM, "code": "umol/L"}
    assert _codings(creatinine["code"])[LOINC]["code"] == "14682-9"
    white_cells = results["XC001"]
    assert white_cells["valueQuantity"] == {"value": 6.5, "unit": "10^9/L", "system": UCUM, "code": "10*9/L"}

    report = _resources(conversion, "DiagnosticReport")[0]
    assert report["code"] == {"text": "生化及血常规"}
    assert len(report["result"]) == 3
    assert report["status"] == "final"
    conclusion = [o for o in _resources(conversion, "Observation") if o["code"]["coding"][0]["code"] == "DE04.50.130.00"]
    assert conclusion[0]["valueString"] == "空腹血糖升高，请结合临床。"


def test_without_terminology_the_original_codes_stay(terms: Terminology) -> None:
    conversion = read((FIXTURES / "wst500-lab-report.xml").read_bytes(), Source(profile="cn"), terminology=None)
    diagnosis = _resources(conversion, "Condition")[0]
    assert [c["system"] for c in diagnosis["code"]["coding"]] == [ICD10_CN]
    creatinine = next(o for o in _resources(conversion, "Observation") if o["code"]["coding"][0]["code"] == "SH010")
    assert creatinine["valueQuantity"] == {"value": 88, "unit": "μmol/L"}  # not UCUM as written, and no table to say


@pytest.mark.parametrize("name", ["wst500-discharge-summary.xml", "wst500-lab-report.xml"])
def test_the_server_accepts_the_wst500_documents(client, terms: Terminology, name: str) -> None:  # type: ignore[no-untyped-def]
    conversion = _read(name, terms)
    response = client.post("/fhir", json=conversion.bundle)
    assert response.status_code == 200, response.text[:800]
    resident = next(i for i in _entry(conversion, "Patient")["resource"]["identifier"] if i["system"] == RESIDENT_ID)
    found = client.get("/fhir/Patient", params={"identifier": f"{RESIDENT_ID}|{resident['value']}"}).json()
    assert found["total"] == 1
    assert found["entry"][0]["resource"]["name"][0]["text"] in ("陈小红", "黄志强")
    conditions = client.get("/fhir/Condition", params={"code": f"{ICD10}|E11.9"}).json()
    assert conditions["total"] == 1
