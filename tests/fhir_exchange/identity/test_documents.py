"""Identity document numbers: published examples, generated numbers, and the REST edge."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_exchange.identity.documents import (
    InvalidIdentifier,
    canonical,
    document_for,
    hkid_check_character,
    naming_systems,
    resident_id_check_character,
    validate_exit_entry_permit,
    validate_hkid,
    validate_macao_bir,
    validate_mainland_travel_permit,
    validate_passport,
    validate_residence_permit,
    validate_resident_id,
)

HKID = "http://baylink.example.org/fhir/sid/hkid"
RIC = "http://baylink.example.org/fhir/sid/cn-resident-id"


@pytest.mark.parametrize(("value", "canonical_form"), [
    ("CA182361(1)", "CA182361(1)"),  # iLexN/HKID-Check-Digit's example (identifiers.md)
    ("A123456(3)", "A123456(3)"),
    ("a1234563", "A123456(3)"),
    ("G123456(A)", "G123456(A)"),
])
def test_published_and_written_forms_of_hkid_are_accepted(value: str, canonical_form: str) -> None:
    assert validate_hkid(value) == canonical_form


def test_hkid_two_letter_prefixes_are_not_padded() -> None:
    # a validator that counts A=1 without padding rejects this valid two-letter HKID
    assert hkid_check_character("CA", "182361") == "1"


@pytest.mark.parametrize(("value", "reason"), [
    ("A123456(4)", "the check character is 4 but A123456 needs 3"),
    ("A12345(6)", "1–2 letters, 6 digits"),
    ("ABC123456(7)", "1–2 letters, 6 digits"),
])
def test_bad_hkids_are_refused_saying_why(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        validate_hkid(value)


@given(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=2), st.text("0123456789", min_size=6, max_size=6))
def test_generated_hkids_validate_and_every_other_check_character_fails(prefix: str, digits: str) -> None:
    check = hkid_check_character(prefix, digits)
    assert validate_hkid(f"{prefix}{digits}({check})") == f"{prefix}{digits}({check})"
    for wrong in "0123456789A":
        if wrong != check:
            with pytest.raises(InvalidIdentifier):
                validate_hkid(f"{prefix}{digits}{wrong}")


def test_published_resident_id_and_residence_permit_examples() -> None:
    assert validate_resident_id("11010519491231002x") == "11010519491231002X"  # GB 11643-1999 example
    # jxlwqq/id-validator.py samples (identifiers.md)
    assert validate_residence_permit("810000199408230021") == "810000199408230021"
    assert validate_residence_permit("830000199201300022") == "830000199201300022"
    with pytest.raises(InvalidIdentifier, match="starts with 810000"):
        validate_residence_permit("11010519491231002X")


@given(
    st.integers(110000, 659999).map(str),
    st.dates(min_value=date(1900, 1, 1), max_value=date.today()),
    st.integers(0, 999),
)
def test_generated_resident_ids_validate_and_a_changed_digit_fails(area: str, born: date, sequence: int) -> None:
    first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
    number = first17 + resident_id_check_character(first17)
    assert validate_resident_id(number) == number
    changed = first17[:16] + str((int(first17[16]) + 1) % 10)
    if resident_id_check_character(changed) != number[17]:
        with pytest.raises(InvalidIdentifier, match="check character"):
            validate_resident_id(changed + number[17])


def test_resident_id_birth_dates_must_be_real_and_past() -> None:
    bad_date = "11010519490231" + "002"
    with pytest.raises(InvalidIdentifier, match="not a real date"):
        validate_resident_id(bad_date + resident_id_check_character(bad_date))
    future = f"110105{date.today() + timedelta(days=400):%Y%m%d}002"
    with pytest.raises(InvalidIdentifier, match="in the future"):
        validate_resident_id(future + resident_id_check_character(future))


def test_format_only_documents() -> None:
    assert validate_macao_bir("1/234567/8") == "1234567(8)"
    assert validate_macao_bir("5234567(8)") == "5234567(8)"
    with pytest.raises(InvalidIdentifier, match="starting 1, 5 or 7"):
        validate_macao_bir("2/234567/8")
    assert validate_mainland_travel_permit("h12345678") == "H12345678"
    with pytest.raises(InvalidIdentifier, match="H or M"):
        validate_mainland_travel_permit("X12345678")
    assert validate_exit_entry_permit("C12345678") == "C12345678"
    with pytest.raises(InvalidIdentifier, match="C or W"):
        validate_exit_entry_permit("H12345678")
    assert validate_passport("K1234567") == "K1234567"
    with pytest.raises(InvalidIdentifier):
        validate_passport("K-123")


def test_naming_systems_publish_each_document_with_its_aliases() -> None:
    systems = {r["id"]: r for r in naming_systems()}
    assert set(systems) == {"hkid", "cn-resident-id", "cn-residence-permit", "cn-travel-permit-hkmo",
                            "cn-exit-entry-permit", "mo-bir"}
    assert document_for("urn:baylink:hkid").system == HKID
    assert canonical("urn:baylink:home-return-permit", "h12345678") == (
        "http://baylink.example.org/fhir/sid/cn-travel-permit-hkmo", "H12345678")
    assert document_for("http://hl7.org/fhir/sid/passport-CHN").type_code == "PPN"
    assert canonical("http://example.org/mrn", "anything") == ("http://example.org/mrn", "anything")


def test_rest_stores_canonical_identifiers_and_refuses_bad_ones(client) -> None:  # type: ignore[no-untyped-def]
    created = client.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": [
        {"system": "urn:baylink:hkid", "value": "a1234563"},
        {"system": "http://example.org/mrn", "value": "mrn-1"},
    ]})
    assert created.status_code == 201, created.text
    assert created.json()["identifier"] == [
        {"system": HKID, "value": "A123456(3)"}, {"system": "http://example.org/mrn", "value": "mrn-1"}]

    refused = client.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": [
        {"system": RIC, "value": "110105194912310021"}]})
    assert refused.status_code == 400
    issue = refused.json()["issue"][0]
    assert issue["expression"] == ["Patient.identifier[0].value"]
    assert "Resident Identity Card" in issue["diagnostics"] and "check character is 1" in issue["diagnostics"]

    in_bundle = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "identifier": [{"system": HKID, "value": "A123456(4)"}]},
         "request": {"method": "POST", "url": "Patient"}}]})
    assert in_bundle.status_code == 400
    assert client.get("/fhir/Patient").json()["total"] == 1

    for spelling in (f"{HKID}|A123456(3)", "urn:baylink:hkid|a1234563"):
        found = client.get("/fhir/Patient", params={"identifier": spelling}).json()
        assert found["total"] == 1, spelling
