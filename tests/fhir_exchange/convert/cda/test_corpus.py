"""Every C-CDA document of the shared corpora converts, and the server accepts the
transaction: the 22 documents of ccda-msconverter/, and every whole document (root
ClinicalDocument with a recordTarget) found among the HL7 C-CDA examples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from lxml import etree

from fhir_exchange.convert.base import Conversion, Source
from fhir_exchange.convert.cda import read
from tests.conftest import shared_path

V3 = "urn:hl7-org:v3"
# Documents of the corpora BayLink does not convert, each with its reason. None so far.
UNSUPPORTED_BY_DESIGN: dict[str, str] = {}


def _msconverter() -> list[Path]:
    return sorted(shared_path("corpora", "ccda-msconverter").glob("*.ccda"))


def _whole_documents() -> list[Path]:
    """The HL7 examples that are documents, not fragments: found by their root element and a
    recordTarget, never by a list."""
    found = []
    for path in sorted(shared_path("corpora", "ccda-hl7-examples").rglob("*")):
        if path.suffix.lower() != ".xml" or not path.is_file():
            continue
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            root = etree.parse(str(path), parser).getroot()
        except etree.XMLSyntaxError:
            continue
        if root.tag == f"{{{V3}}}ClinicalDocument" and root.find(f"{{{V3}}}recordTarget") is not None:
            found.append(path)
    return found


def _convert(path: Path) -> Conversion:
    conversion = read(path.read_bytes(), Source(institution="test-hospital"), terminology=None)
    Bundle.model_validate(conversion.bundle)
    return conversion


def _post(client, conversion: Conversion, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.post("/fhir", json=conversion.bundle)
    assert response.status_code == 200, f"{name}: {response.status_code} {response.text[:800]}"
    body = response.json()
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert len(statuses) == len(conversion.bundle["entry"])
    assert all(s.startswith(("200", "201")) for s in statuses), f"{name}: {statuses}"
    return body


def _check_shape(conversion: Conversion, name: str) -> None:
    entries = conversion.bundle["entry"]
    assert conversion.bundle["type"] == "transaction"
    kinds = Counter(e["resource"]["resourceType"] for e in entries)
    assert kinds["Patient"] == 1 and kinds["Composition"] == 1 and kinds["Bundle"] == 1, (name, kinds)
    document = next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Bundle")
    assert document["type"] == "document"
    assert document["entry"][0]["resource"]["resourceType"] == "Composition"
    patient = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    assert patient["request"]["method"] in ("PUT", "POST")
    composition = next(e for e in entries if e["resource"]["resourceType"] == "Composition")
    assert composition["request"]["url"].startswith("Composition?identifier=")
    assert conversion.message_id and conversion.kind == "cda"


def test_every_msconverter_document_converts_and_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    paths = _msconverter()
    assert len(paths) == 22
    for path in paths:
        if path.name in UNSUPPORTED_BY_DESIGN:
            continue
        conversion = _convert(path)
        _check_shape(conversion, path.name)
        body = _post(client, conversion, path.name)
        answer = body["entry"][-1]["response"]  # the document Bundle comes last
        if answer["status"].startswith("201"):  # (200: the samples reuse ids; the same id is the same document)
            stored = client.get(f"/fhir/{answer['location'].split('/_history')[0]}").json()
            composition = stored["entry"][0]["resource"]
            assert composition["subject"]["reference"].startswith("Patient/"), path.name


def test_every_whole_hl7_example_document_converts_and_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    paths = _whole_documents()
    assert len(paths) >= 15, [p.name for p in paths]
    for path in paths:
        conversion = _convert(path)
        _check_shape(conversion, path.name)
        _post(client, conversion, path.name)


@pytest.mark.parametrize("name", ["CCD.ccda", "Discharge_Summary.ccda"])
def test_the_same_document_twice_is_one_patient_and_one_composition(client, name: str) -> None:  # type: ignore[no-untyped-def]
    path = shared_path("corpora", "ccda-msconverter", name)
    for _ in range(2):
        _post(client, _convert(path), name)
    assert client.get("/fhir/Patient").json()["total"] == 1
    assert client.get("/fhir/Composition").json()["total"] == 1
    assert client.get("/fhir/Bundle").json()["total"] == 1


def _of_type(conversion: Conversion, resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def test_a_non_xml_body_becomes_a_document_reference() -> None:
    embedded = _convert(shared_path("corpora", "ccda-msconverter", "CDA_with_Embedded_PDF.ccda"))
    reference = _of_type(embedded, "DocumentReference")[0]
    attachment = reference["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    import base64

    assert base64.b64decode(attachment["data"]).startswith(b"%PDF")
    composition = _of_type(embedded, "Composition")[0]
    assert composition["section"][0]["entry"][0]["reference"] == next(
        e["fullUrl"] for e in embedded.bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference")
    linked = _convert(shared_path("corpora", "ccda-msconverter", "Unstructured_Document_reference.ccda"))
    assert _of_type(linked, "DocumentReference")[0]["content"][0]["attachment"]["url"] == "UD_sample.pdf"


def test_codes_keep_their_original_systems() -> None:
    conversion = _convert(shared_path("corpora", "ccda-msconverter", "C-CDA_R2-1_CCD.xml.ccda"))
    systems = {c["system"] for r in _of_type(conversion, "Observation") for c in r["code"].get("coding", [])}
    assert "http://loinc.org" in systems
    conditions = _of_type(conversion, "Condition")
    assert any(c["system"] == "http://snomed.info/sct" for r in conditions for c in r["code"].get("coding", []))
    vaccines = _of_type(conversion, "Immunization")
    assert vaccines and all(r["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx" for r in vaccines)
    medicines = _of_type(conversion, "MedicationStatement") + _of_type(conversion, "MedicationRequest")
    assert any(c["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
               for r in medicines for c in r["medicationCodeableConcept"].get("coding", []))
    allergy = _of_type(conversion, "AllergyIntolerance")[0]
    assert allergy["patient"]["reference"] == next(
        e["fullUrl"] for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def test_a_later_version_replaces_the_composition(client) -> None:  # type: ignore[no-untyped-def]
    path = Path(__file__).with_name("fixtures") / "wst500-lab-report.xml"
    first = path.read_bytes()
    second = (first.replace(b'<versionNumber value="2"/>', b'<versionNumber value="3"/>')
              .replace(b'extension="LAB-2026-004567"/>\n  <code', b'extension="LAB-2026-004567-v3"/>\n  <code')
              .replace("<title>检验报告</title>".encode(), "<title>检验报告（更正）</title>".encode()))
    for data in (first, second):
        conversion = read(data, Source(profile="cn"), terminology=None)
        _post(client, conversion, path.name)
    assert conversion.version == "3"
    compositions = client.get("/fhir/Composition").json()
    assert compositions["total"] == 1
    assert compositions["entry"][0]["resource"]["title"] == "检验报告（更正）"
    assert client.get("/fhir/Bundle").json()["total"] == 2  # each version's document is kept
    assert client.get("/fhir/Patient").json()["total"] == 1
