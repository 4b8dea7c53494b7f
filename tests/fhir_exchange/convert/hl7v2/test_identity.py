"""PID-3 as each flavour reads it (tables/*.json): which identifiers are identity documents,
under BayLink's naming systems and in canonical form, which is the best to match the patient
on, and what happens to a number that fails its check."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_exchange.convert.base import Source
from fhir_exchange.convert.hl7v2 import read
from fhir_exchange.identity.documents import hkid_check_character, resident_id_check_character

BASE = "http://baylink.example.org/fhir/sid"
MRN = f"{BASE}/hl7v2/clinic/patient/CLINIC"
MSH = "MSH|^~\\&|HIS|CLINIC|BAYLINK|BAYLINK|20260301101500+0800||ADT^A28^ADT_A05|ID{n}|P|2.5.1"


def patient(identifiers: str, profile: str | None) -> tuple[dict[str, Any], str, list[str]]:
    data = f"{MSH}\rPID|1||{identifiers}~M1^^^CLINIC^MR||CHAN^TAI MAN||19700101|M\r".encode()
    [conversion] = read(data, Source("clinic", profile))
    entry = conversion.bundle["entry"][0]
    return entry["resource"], entry["request"]["url"], conversion.warnings


def numbers(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["system"], i["value"]) for i in resource["identifier"]]


RESIDENT_ID = "44030119850312451" + resident_id_check_character("44030119850312451")
PERMIT = "81000019940823002" + resident_id_check_character("81000019940823002")
HKID = "A123456" + hkid_check_character("A", "123456")


@pytest.mark.parametrize(("cx", "profile", "system", "value"), [
    (f"{HKID}^^^HKSARG^NI", "hk", f"{BASE}/hkid", "A123456(3)"),
    (f"{HKID}^^^^NI", "hk", f"{BASE}/hkid", "A123456(3)"),  # NI in Hong Kong: an HKID
    (f"{HKID}^^^^NI", None, f"{BASE}/hkid", "A123456(3)"),
    (f"{RESIDENT_ID}^^^CHN^NI", "cn", f"{BASE}/cn-resident-id", RESIDENT_ID),
    (f"{RESIDENT_ID}^^^^NI", "hk", f"{BASE}/cn-resident-id", RESIDENT_ID),  # NI, not an HKID: the next document
    (f"{PERMIT}^^^^PRC", "cn", f"{BASE}/cn-residence-permit-hkmotw", PERMIT),
    ("H12345678^^^回乡证^TP", "cn", f"{BASE}/cn-travel-permit-hkmo", "H12345678"),
    ("C12345678^^^往来港澳通行证^TP", "cn", f"{BASE}/cn-exit-entry-permit-hkmo", "C12345678"),
    ("1/234567/8^^^^NI", "mo", f"{BASE}/mo-bir", "1234567(8)"),
    ("E12345678^^^CHN^PPN", None, "http://hl7.org/fhir/sid/passport-CHN", "E12345678"),
])
def test_identity_documents_by_flavour(cx: str, profile: str | None, system: str, value: str) -> None:
    resource, url, _ = patient(cx, profile)
    assert numbers(resource)[0] == (system, value)
    assert url.startswith(f"Patient?identifier={system}|") and url.endswith(f",{MRN}|M1")


def test_the_best_document_of_several_is_the_flavours_first() -> None:
    both = f"{RESIDENT_ID}^^^CHN^NI~{HKID}^^^HKSARG^NI"
    assert patient(both, "hk")[1].startswith(f"Patient?identifier={BASE}/hkid|A123456(3),")
    assert patient(both, "cn")[1].startswith(f"Patient?identifier={BASE}/cn-resident-id|{RESIDENT_ID},")


def test_a_labelled_document_that_fails_its_check_is_kept_as_the_senders_number_with_a_warning() -> None:
    resource, url, warnings = patient("A1234564^^^HKSARG^NI", "hk")
    assert numbers(resource)[0] == (f"{BASE}/hl7v2/clinic/patient/HKSARG", "A1234564")
    assert url == f"Patient?identifier={MRN}|M1"
    assert any("labelled as a hkid number but is not valid" in w for w in warnings)


def test_without_a_document_the_hospital_number_is_the_key() -> None:
    resource, url, _ = patient("X99^^^OTHER^PI", None)
    assert url == f"Patient?identifier={BASE}/hl7v2/clinic/patient/OTHER|X99"  # the first of the sender's numbers
    assert numbers(resource) == [(f"{BASE}/hl7v2/clinic/patient/OTHER", "X99"), (MRN, "M1")]
