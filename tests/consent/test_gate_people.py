"""The gate decides for people, not only records: a consent given on a person's record at one
institution covers their linked records at another (record linkage links certain matches with
Patient.link); and a resource about several patients is released only if every one allows it."""

from __future__ import annotations

from fhir_exchange.institutions.registry import load_registry
from tests.consent.test_gate_rest import _as, _consent, _grant, operator

HKID = "http://baylink.example.org/fhir/sid/hkid"


def _setup(app, client) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    with operator(app) as service:
        load_registry(service)
    return (_as(app, client, "ha-queen-mary"), _as(app, client, "gd-provincial-tcm"), _as(app, client, "hku-szh"))


def test_a_consent_on_one_record_covers_the_persons_linked_record(app, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    qmh, gd, szh = _setup(app, anonymous_client)
    person = {"identifier": [{"system": HKID, "value": "A123456(3)"}], "name": [{"family": "CHAN", "given": ["Tai Man"]}],
              "birthDate": "1950-03-04", "gender": "male"}
    assert anonymous_client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", **person},
                                headers=qmh).status_code == 201
    # the same person registered in Guangzhou: linkage links the two records (same HKID, name, birth date)
    assert anonymous_client.put("/fhir/Patient/gz1", json={"resourceType": "Patient", "id": "gz1", **person},
                                headers=gd).status_code == 201
    linked = anonymous_client.get("/fhir/Patient/gz1", headers=gd).json()
    assert {"other": {"reference": "Patient/p1"}, "type": "seealso"} in linked.get("link", [])
    obs = {"resourceType": "Observation", "id": "gz-obs", "status": "final", "code": {"text": "HbA1c"},
           "subject": {"reference": "Patient/gz1"}, "effectiveDateTime": "2026-10-01"}
    assert anonymous_client.put("/fhir/Observation/gz-obs", json=obs, headers=gd).status_code == 201
    assert anonymous_client.get("/fhir/Observation/gz-obs", headers=szh).status_code == 404
    # the consent was recorded on the Hong Kong record (Patient/p1), naming HKU-SZH
    _consent(anonymous_client, qmh, _grant(["results"]))
    assert anonymous_client.get("/fhir/Observation/gz-obs", headers=szh).status_code == 200


def test_a_resource_about_two_patients_needs_both(app, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    qmh, _, szh = _setup(app, anonymous_client)
    for pid in ("p1", "p2"):
        assert anonymous_client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid},
                                    headers=qmh).status_code == 201
    group = {"resourceType": "Group", "id": "g1", "type": "person", "actual": True,
             "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}]}
    assert anonymous_client.put("/fhir/Group/g1", json=group, headers=qmh).status_code == 201
    _consent(anonymous_client, qmh, _grant([], cross_border=True) | {"code": []})  # p1 permits everything to HKU-SZH
    assert anonymous_client.get("/fhir/Patient/p1", headers=szh).status_code == 200
    assert anonymous_client.get("/fhir/Group/g1", headers=szh).status_code == 404  # p2 has not consented
    second = anonymous_client.get("/fhir/Consent/consent-1", headers=qmh).json()
    second = {**{k: v for k, v in second.items() if k != "meta"}, "id": "consent-2", "patient": {"reference": "Patient/p2"}}
    assert anonymous_client.put("/fhir/Consent/consent-2", json=second, headers=qmh).status_code == 201
    assert anonymous_client.get("/fhir/Group/g1", headers=szh).status_code == 200  # now both have


def test_a_consent_for_the_hospital_authority_covers_its_hospitals_only(app, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    from consent.policy import RECIPIENT_CLASS

    with operator(app) as service:
        load_registry(service)
    szh = _as(app, anonymous_client, "hku-szh")
    assert anonymous_client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=szh).status_code == 201
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "ECG"},
           "subject": {"reference": "Patient/p1"}}
    assert anonymous_client.put("/fhir/Observation/o1", json=obs, headers=szh).status_code == 201
    _consent(anonymous_client, szh, _grant(["results"], actor={"identifier": {"system": RECIPIENT_CLASS, "value": "sector:HA"}}))
    assert anonymous_client.get("/fhir/Observation/o1", headers=_as(app, anonymous_client, "ha-queen-mary")).status_code == 200
    assert anonymous_client.get("/fhir/Observation/o1", headers=_as(app, anonymous_client, "hk-sanatorium")).status_code == 404
