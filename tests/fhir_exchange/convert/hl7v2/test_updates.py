"""What later messages do to what earlier ones wrote, through the server: an ADT^A08 or a
resend updates the patient and the visit rather than adding another, a corrected result
replaces the preliminary one, a patient first known by the hospital number is the same
patient when the HKID arrives, and ADT^A40 links the merged records both ways."""

from __future__ import annotations

from typing import Any

from fhir_exchange.convert.base import Source
from fhir_exchange.convert.hl7v2 import read
from tests.conftest import TEST_INSTITUTION

SOURCE = Source(TEST_INSTITUTION, "hk")
HKID = "http://baylink.example.org/fhir/sid/hkid"
MRN = f"http://baylink.example.org/fhir/sid/hl7v2/{TEST_INSTITUTION}/patient/QMH"


def msh(trigger: str, control_id: str, kind: str = "ADT") -> str:
    return (f"MSH|^~\\&|CMS|QMH|BAYLINK|BAYLINK|20260305090000+0800||{kind}^{trigger}|{control_id}|P|2.5.1|||AL|NE|HKG|"
            "UNICODE UTF-8")


def pid(identifiers: str = "A123456(3)^^^HKSARG^NI~QM100^^^QMH^MR", address: str = "香港仔大道1號^^南區^香港島") -> str:
    return f"PID|1||{identifiers}||陳^大文^^^^^L^I~CHAN^TAI MAN^^^^^L^A||19700101|M|||{address}"


def pv1(discharged: str = "") -> str:
    return "PV1|1|I|W1^10^2^QMH||||||||||||||||QMV777^^^QMH^VN|" + "|" * 24 + f"20260305080000+0800|{discharged}"


def post(client, *segments: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    [conversion] = read(("\r".join(segments) + "\r").encode("utf-8"), SOURCE)
    response = client.post("/fhir", json=conversion.bundle)
    assert response.status_code == 200, response.text
    return response.json()["entry"]


def search(client, kind: str, **params: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    bundle = client.get(f"/fhir/{kind}", params=params).json()
    return [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]


def test_an_a08_and_a_resend_update_rather_than_duplicate(client) -> None:  # type: ignore[no-untyped-def]
    post(client, msh("A01", "C1"), "EVN|A01", pid(), pv1(), "DG1|1||I10^Essential (primary) hypertension^I10||20260305|W")
    [patient] = search(client, "Patient")
    [encounter] = search(client, "Encounter")
    assert encounter["status"] == "in-progress"

    update = (msh("A08", "C2"), "EVN|A08", pid(address="薄扶林道102號^^南區^香港島"), pv1("20260306120000+0800"),
              "DG1|1||I10^Essential (primary) hypertension^I10||20260305|F")
    post(client, *update)
    post(client, *update)  # sent again
    [updated] = search(client, "Patient")
    assert updated["id"] == patient["id"] and updated["address"][0]["line"] == ["薄扶林道102號"]
    [visit] = search(client, "Encounter")
    assert visit["id"] == encounter["id"]
    assert visit["status"] == "finished" and visit["period"]["end"] == "2026-03-06T12:00:00+08:00"
    [diagnosis] = search(client, "Condition")
    assert diagnosis["verificationStatus"]["coding"][0]["code"] == "confirmed"


def test_a_corrected_result_replaces_the_preliminary_one(client) -> None:  # type: ignore[no-untyped-def]
    order = ("ORC|RE|O1^CMS|L1^LIS", "OBR|1|O1^CMS|L1^LIS|RFT^Renal^HALAB|||20260305080000+0800")
    post(client, msh("R01", "R1", "ORU"), pid(), *order, "OBX|1|NM|K^K^HALAB||5.8|mmol/L|3.5-5.1|H|||P")
    post(client, msh("R01", "R2", "ORU"), pid(), *order, "OBX|1|NM|K^K^HALAB||5.6|mmol/L|3.5-5.1|H|||C")
    [observation] = search(client, "Observation")
    assert observation["status"] == "corrected" and observation["valueQuantity"]["value"] == 5.6
    [report] = search(client, "DiagnosticReport")
    assert report["result"] == [{"reference": f"Observation/{observation['id']}"}]


def test_the_hospital_number_then_the_hkid_is_one_patient(client) -> None:  # type: ignore[no-untyped-def]
    post(client, msh("A04", "H1"), pid("QM100^^^QMH^MR"), pv1())
    post(client, msh("A08", "H2"), pid(), pv1())
    [patient] = search(client, "Patient")
    assert {(i["system"], i["value"]) for i in patient["identifier"]} == {(HKID, "A123456(3)"), (MRN, "QM100")}
    assert search(client, "Patient", identifier=f"{HKID}|A123456(3)")[0]["id"] == patient["id"]


def test_a40_links_the_merged_records_both_ways(client) -> None:  # type: ignore[no-untyped-def]
    post(client, msh("A01", "M1"), pid("QM100^^^QMH^MR"), pv1())
    post(client, msh("A28", "M2"), pid("QM200^^^QMH^MR"))
    post(client, msh("A40", "M3"), "EVN|A40", pid("QM200^^^QMH^MR"), "MRG|QM100^^^QMH^MR")
    [prior] = search(client, "Patient", identifier=f"{MRN}|QM100")
    [survivor] = search(client, "Patient", identifier=f"{MRN}|QM200")
    assert prior["active"] is False
    assert prior["link"] == [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert survivor["active"] is True
    assert survivor["link"] == [{"other": {"reference": f"Patient/{prior['id']}"}, "type": "replaces"}]
    assert len(search(client, "Patient")) == 2
