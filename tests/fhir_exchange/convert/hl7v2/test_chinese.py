"""The Chinese cases, on fixtures written for BayLink (no open-licence Chinese HL7 v2 samples
exist; see fixtures/README.md): mainland ADT^A01 and ORU^R01 in GB18030 without MSH-18,
a Hong Kong ADT^A01 in Big5-HKSCS declared in MSH-18, and a Hong Kong ORU^R01 in UTF-8.
Asserted field by field: names with their script, identity documents under BayLink's systems,
codes as sent and as translated by the starter terminology, units in UCUM; then accepted by
the server as they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_exchange.convert.base import Conversion, Source
from fhir_exchange.convert.hl7v2 import read
from fhir_exchange.identity.documents import hkid_check_character, resident_id_check_character
from terminology import api
from terminology.api import Terminology
from tests.conftest import TEST_INSTITUTION
from tests.terminology.support import load_starter

FIXTURES = Path(__file__).with_name("fixtures")
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
HKID = "http://baylink.example.org/fhir/sid/hkid"
RESIDENT_ID = "http://baylink.example.org/fhir/sid/cn-resident-id"
TRAVEL_PERMIT = "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CN = "http://baylink.example.org/fhir/sid/icd-10-cn-clinical"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
CN_LAB = "http://baylink.example.org/fhir/CodeSystem/cn-example-lab"
HK_LAB = "http://baylink.example.org/fhir/CodeSystem/hk-example-lab"
CN_DRUG = "http://baylink.example.org/fhir/sid/cn-nhsa-drug"
HK_DRUG = "http://baylink.example.org/fhir/sid/hk-drug-registration"
LOCAL = f"http://baylink.example.org/fhir/sid/hl7v2/{TEST_INSTITUTION}"
# the starter terminology each message needs (terminology/content/manifest.json)
UNITS = ("ucum-common.csv", "unit-spellings.csv", "unit-spellings-to-ucum.csv")
STARTER = {
    "cn-adt-a01-gb18030.hl7": ("icd10-who.csv", "icd10-cn-clinical.csv", "icd10-cn-to-who.csv", "atc.csv",
                               "cn-nhsa-drug.csv", "cn-nhsa-drug-to-atc.csv"),
    "cn-oru-r01-gb18030.hl7": ("loinc-common.csv", "cn-example-lab.csv", "cn-example-lab-to-loinc.csv", *UNITS),
    "hk-adt-a01-big5hkscs.hl7": ("icd10-who.csv", "atc.csv", "hk-drug-registration.csv", "hk-drug-registration-to-atc.csv"),
    "hk-oru-r01-utf8.hl7": ("loinc-common.csv", "hk-example-lab.csv", "hk-example-lab-to-loinc.csv", *UNITS),
}


@pytest.fixture
def terms(app, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Terminology:  # type: ignore[no-untyped-def]
    """The starter terminology the test's message (the parameter) needs, loaded into this
    test's emptied store, answering at once (no cache interval)."""
    sessions = app.state.fhir.sessions
    load_starter(sessions, *STARTER[request.param])
    fresh = Terminology(sessions, check_interval=0)
    monkeypatch.setattr(api, "_default", fresh)
    return fresh


def convert(name: str, profile: str) -> Conversion:
    [conversion] = read((FIXTURES / name).read_bytes(), Source(TEST_INSTITUTION, profile))
    return conversion


def resources(conversion: Conversion, kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == kind]


def entry(conversion: Conversion, kind: str) -> dict[str, Any]:
    [found] = [e for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == kind]
    return found


def script(name: dict[str, Any]) -> str:
    [extension] = name["extension"]
    assert extension["url"] == REPRESENTATION
    return extension["valueCode"]


def codings(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


def translations(coding: dict[str, Any]) -> dict[str, str]:
    found = {}
    for extension in (coding.get("_display") or {}).get("extension") or []:
        assert extension["url"] == TRANSLATION
        parts = {p["url"]: p for p in extension["extension"]}
        found[parts["lang"]["valueCode"]] = parts["content"]["valueString"]
    return found


def accepted(client, conversion: Conversion) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = client.post("/fhir", json=conversion.bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [e["response"]["status"][:1] for e in entries] == ["2"] * len(conversion.bundle["entry"])
    return entries


def test_the_fixtures_carry_valid_identity_numbers() -> None:
    assert resident_id_check_character("44030119850312451") == "7"  # 440301198503124517, odd sequence: male
    assert hkid_check_character("K", "623517") == "4"
    assert hkid_check_character("R", "765432") == "3"


@pytest.mark.parametrize("terms", ["cn-adt-a01-gb18030.hl7"], indirect=True)
def test_mainland_adt_in_gb18030_without_msh18(client, terms) -> None:  # type: ignore[no-untyped-def]
    raw = (FIXTURES / "cn-adt-a01-gb18030.hl7").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert b"\xab\x7c" in raw  # 珅 in GB18030: its second byte is "|", the field separator
    conversion = convert("cn-adt-a01-gb18030.hl7", "cn")
    assert (conversion.event, conversion.message_id, conversion.content_type) == (
        "ADT^A01", "SZ20260301001", "application/hl7-v2")
    assert any("read as GB18030" in w for w in conversion.warnings)

    patient_entry = entry(conversion, "Patient")
    patient = patient_entry["resource"]
    assert patient_entry["request"] == {"method": "PUT", "url": f"Patient?identifier={RESIDENT_ID}|440301198503124517,"
                                                                f"{LOCAL}/patient/SZRMYY|M0012345"}
    assert [(i["system"], i["value"], i["type"]["coding"][0]["code"]) for i in patient["identifier"]] == [
        (RESIDENT_ID, "440301198503124517", "NI"), (f"{LOCAL}/patient/SZRMYY", "M0012345", "MR")]
    ideographic, alphabetic = patient["name"]
    assert (script(ideographic), ideographic["use"], ideographic["text"], ideographic["family"], ideographic["given"]) == (
        "IDE", "official", "陈珅", "陈", ["珅"])
    assert (script(alphabetic), alphabetic["family"], alphabetic["given"]) == ("ABC", "CHEN", ["SHEN"])
    assert "text" not in alphabetic
    assert (patient["gender"], patient["birthDate"]) == ("male", "1985-03-12")
    assert patient["address"] == [{"use": "home", "line": ["福田区深南大道1001号"], "city": "深圳市", "state": "广东省",
                                   "postalCode": "518000", "country": "CHN"}]
    assert patient["telecom"] == [{"system": "phone", "value": "+86 13800138000", "use": "mobile"}]
    [contact] = patient["contact"]
    assert contact["name"]["text"] == "李小红" and contact["relationship"][0]["coding"][0]["code"] == "SPO"
    assert ("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M") in codings(patient["maritalStatus"])

    encounter = entry(conversion, "Encounter")
    assert encounter["request"]["url"] == f"Encounter?identifier={LOCAL}/visit/SZRMYY|V20260301001"
    assert encounter["resource"]["status"] == "in-progress"
    assert encounter["resource"]["class"]["code"] == "IMP"
    assert encounter["resource"]["period"] == {"start": "2026-03-01T10:00:00+08:00"}
    assert encounter["resource"]["location"][0]["location"]["display"] == "深圳市第一人民医院, 心内科, room 301, bed 02"

    diabetes, hypertension = resources(conversion, "Condition")
    assert codings(diabetes["code"]) == [(ICD10_CN, "E11.900"), (ICD10, "E11.9")]
    original, shared = diabetes["code"]["coding"]
    assert original["display"] == "2型糖尿病不伴有并发症" and "userSelected" not in original
    assert shared["display"] == "Type 2 diabetes mellitus without complications" and shared["userSelected"] is False
    assert translations(shared)["zh-Hans"] == "2型糖尿病不伴有并发症"
    assert translations(shared)["zh-Hant"] == "2型糖尿病不伴有併發症"
    assert codings(hypertension["code"]) == [(ICD10_CN, "I10.x00"), (ICD10, "I10")]
    assert diabetes["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert diabetes["recordedDate"] == "2026-03-01"

    [allergy] = resources(conversion, "AllergyIntolerance")
    assert codings(allergy["code"]) == [(CN_DRUG, "XA10BAE901A001010100001"), (ATC, "A10BA02")]
    assert allergy["code"]["coding"][1]["display"] == "metformin"
    assert (allergy["category"], allergy["type"], allergy["reaction"][0]["manifestation"][0]["text"]) == (
        ["medication"], "allergy", "皮疹")

    [doctor] = resources(conversion, "Practitioner")
    assert doctor["name"][0]["text"] == "王建国"

    stored = accepted(client, conversion)
    assert stored[0]["resource"]["identifier"][0] == {
        "system": RESIDENT_ID, "value": "440301198503124517",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}}
    found = client.get("/fhir/Patient", params={"identifier": f"{RESIDENT_ID}|440301198503124517"}).json()
    assert found["total"] == 1


@pytest.mark.parametrize("terms", ["cn-oru-r01-gb18030.hl7"], indirect=True)
def test_mainland_oru_in_gb18030_without_msh18(client, terms) -> None:  # type: ignore[no-untyped-def]
    conversion = convert("cn-oru-r01-gb18030.hl7", "cn")
    assert (conversion.event, conversion.message_id) == ("ORU^R01", "GZLIS0000123")
    patient = entry(conversion, "Patient")
    assert patient["request"]["url"] == (f"Patient?identifier={TRAVEL_PERMIT}|H12345678,"
                                         f"{LOCAL}/patient/GZRMYY|L0098765")
    assert patient["resource"]["name"][0]["text"] == "黄美玲"
    assert [script(n) for n in patient["resource"]["name"]] == ["IDE", "ABC"]

    report = entry(conversion, "DiagnosticReport")
    assert report["request"]["url"] == f"DiagnosticReport?identifier={LOCAL}/order/LIS|F20260302001"
    assert report["resource"]["status"] == "final"
    assert report["resource"]["issued"] == "2026-03-02T09:25:00+08:00"
    observations = resources(conversion, "Observation")
    assert len(report["resource"]["result"]) == len(observations) == 5
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}

    wbc = by_code["XC001"]
    assert codings(wbc["code"]) == [(CN_LAB, "XC001"), (LOINC, "6690-2")]
    assert wbc["code"]["coding"][0]["display"] == "白细胞计数(WBC)"
    assert wbc["code"]["coding"][1]["display"] == "Leukocytes [#/volume] in Blood by Automated count"
    assert wbc["valueQuantity"] == {"value": 11.2, "unit": "10^9/L", "system": UCUM, "code": "10*9/L"}
    assert wbc["referenceRange"][0]["low"]["value"] == 3.5 and wbc["referenceRange"][0]["high"]["code"] == "10*9/L"
    assert wbc["interpretation"][0]["coding"][0]["code"] == "H"
    assert wbc["effectiveDateTime"] == "2026-03-02T09:00:00+08:00"
    assert wbc["status"] == "final" and wbc["category"][0]["coding"][0]["code"] == "laboratory"
    assert wbc["identifier"] == [{"system": f"{LOCAL}/observation", "value": "F20260302001-1"}]

    hgb = by_code["XC003"]
    assert codings(hgb["code"]) == [(CN_LAB, "XC003"), (LOINC, "718-7")]
    assert hgb["valueQuantity"] == {"value": 128, "unit": "克/升", "system": UCUM, "code": "g/L"}
    glucose = by_code["SH017"]
    assert codings(glucose["code"]) == [(CN_LAB, "SH017"), (LOINC, "14749-6")]
    assert glucose["valueQuantity"] == {"value": 6.8, "unit": "毫摩尔/升", "system": UCUM, "code": "mmol/L"}
    hbsag = by_code["MY005"]
    assert codings(hbsag["code"]) == [(CN_LAB, "MY005"), (LOINC, "5196-1")]
    assert hbsag["valueCodeableConcept"] == {"coding": [{"system": "http://snomed.info/sct", "code": "260385009",
                                                         "display": "阴性"}], "text": "阴性"}
    remark = by_code["XC900"]
    assert remark["valueString"] == "未见异常细胞" and remark["note"] == [{"text": "请结合临床"}]
    assert [c["system"] for c in remark["code"]["coding"]] == [CN_LAB]  # no map for it: the original alone

    accepted(client, conversion)


@pytest.mark.parametrize("terms", ["hk-adt-a01-big5hkscs.hl7"], indirect=True)
def test_hong_kong_adt_in_big5_hkscs(client, terms) -> None:  # type: ignore[no-untyped-def]
    raw = (FIXTURES / "hk-adt-a01-big5hkscs.hl7").read_bytes()
    assert "許".encode("big5hkscs") in raw and "許".encode("big5hkscs")[1:] == b"\\"  # the escape character
    with pytest.raises(UnicodeEncodeError):
        "堃".encode("big5")  # only in the Hong Kong supplementary set
    conversion = convert("hk-adt-a01-big5hkscs.hl7", "hk")
    assert conversion.warnings == []  # MSH-18 declared it
    patient_entry = entry(conversion, "Patient")
    assert patient_entry["request"]["url"] == f"Patient?identifier={HKID}|K623517(4),{LOCAL}/patient/QEH|HN26000123"
    patient = patient_entry["resource"]
    assert patient["identifier"][0] == {"system": HKID, "value": "K623517(4)", "type": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}}
    traditional, romanised = patient["name"]
    assert (script(traditional), traditional["text"], traditional["family"], traditional["given"]) == (
        "IDE", "許大堃", "許", ["大堃"])
    assert (script(romanised), romanised["family"], romanised["given"]) == ("ABC", "HUI", ["TAI KWAN"])
    assert patient["address"][0]["line"] == ["石硤尾邨美蓮樓12樓1203室"]
    assert patient["address"][0]["city"] == "深水埗"
    assert patient["telecom"] == [{"system": "phone", "value": "+852 91234567", "use": "mobile"}]

    encounter = entry(conversion, "Encounter")
    assert encounter["request"]["url"] == f"Encounter?identifier={LOCAL}/visit/QEH|HN2600012345"
    [condition] = resources(conversion, "Condition")
    assert codings(condition["code"]) == [(ICD10, "I10")]  # WHO ICD-10 already: nothing to translate
    assert translations(condition["code"]["coding"][0])["zh-Hant"].startswith("特發性")
    [allergy] = resources(conversion, "AllergyIntolerance")
    assert codings(allergy["code"]) == [(HK_DRUG, "HK-90001"), (ATC, "A10BA02")]
    assert allergy["code"]["coding"][0]["display"] == "鹽酸二甲雙胍片 500毫克"
    assert translations(allergy["code"]["coding"][1]) == {"zh-Hant": "二甲雙胍", "zh-Hans": "二甲双胍"}
    [doctor] = resources(conversion, "Practitioner")
    assert doctor["name"][0]["text"] == "陳功"

    accepted(client, conversion)
    found = client.get("/fhir/Patient", params={"identifier": f"{HKID}|K6235174"}).json()
    assert found["total"] == 1 and found["entry"][0]["resource"]["name"][0]["text"] == "許大堃"


@pytest.mark.parametrize("terms", ["hk-oru-r01-utf8.hl7"], indirect=True)
def test_hong_kong_oru_in_utf8(client, terms) -> None:  # type: ignore[no-untyped-def]
    conversion = convert("hk-oru-r01-utf8.hl7", "hk")
    assert conversion.warnings == []
    patient = entry(conversion, "Patient")["resource"]
    assert patient["identifier"][0]["value"] == "R765432(3)" and patient["identifier"][0]["system"] == HKID
    assert [(script(n), n.get("text")) for n in patient["name"]] == [("IDE", "張美華"), ("ABC", None)]
    by_code = {o["code"]["coding"][0]["code"]: o for o in resources(conversion, "Observation")}
    haemoglobin = by_code["HB"]
    assert codings(haemoglobin["code"]) == [(HK_LAB, "HB"), (LOINC, "718-7")]
    assert translations(haemoglobin["code"]["coding"][0]) == {"en": "Haemoglobin", "zh-Hant": "血紅素", "zh-Hans": "血红素"}
    assert haemoglobin["valueQuantity"] == {"value": 13.5, "unit": "g/dL", "system": UCUM, "code": "g/dL"}
    potassium = by_code["K"]
    assert codings(potassium["code"]) == [(HK_LAB, "K"), (LOINC, "2823-3")]
    assert potassium["valueQuantity"]["code"] == "mmol/L" and potassium["interpretation"][0]["coding"][0]["code"] == "H"
    creatinine = by_code["CREAT"]
    assert creatinine["valueQuantity"] == {"value": 88, "unit": "umol/L", "system": UCUM, "code": "umol/L"}
    assert by_code["COMMENT"]["valueString"] == "血鉀偏高，請覆檢。"
    report = entry(conversion, "DiagnosticReport")["resource"]
    assert codings(report["code"]) == [(HK_LAB, "RFT")] and report["code"]["text"] == "腎功能及血常規"
    accepted(client, conversion)


def test_without_terminology_the_original_codes_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_default", None)
    conversion = convert("cn-oru-r01-gb18030.hl7", "cn")
    wbc = next(o for o in resources(conversion, "Observation") if o["code"]["coding"][0]["code"] == "XC001")
    assert codings(wbc["code"]) == [(CN_LAB, "XC001")]
    assert wbc["valueQuantity"] == {"value": 11.2, "unit": "10^9/L"}


def test_a_big5_message_is_read_right_whatever_the_flavour() -> None:
    for profile in ("cn", None, "mo"):
        patient = entry(convert("hk-adt-a01-big5hkscs.hl7", profile), "Patient")["resource"]
        assert patient["name"][0]["text"] == "許大堃"
