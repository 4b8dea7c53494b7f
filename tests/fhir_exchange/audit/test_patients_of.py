"""Which patients a resource is about: the usual fields first, else any reference to a
Patient inside it (the Patient compartment reaches patients by many paths). What is found
here is what the audit trail records and what the release gate asks the patient about."""

from __future__ import annotations

from fhir_exchange.audit.trail import patients_of


def test_usual_fields() -> None:
    assert patients_of("Observation", "o", {"subject": {"reference": "Patient/p1"}}) == {"p1"}
    assert patients_of("Coverage", "c", {"beneficiary": {"reference": "Patient/p2/_history/3"}}) == {"p2"}
    assert patients_of("Patient", "p9", {}) == {"p9"}


def test_patients_named_elsewhere_in_the_resource() -> None:
    appointment = {"participant": [{"actor": {"reference": "Practitioner/d"}}, {"actor": {"reference": "Patient/p1"}}]}
    assert patients_of("Appointment", "a", appointment) == {"p1"}
    assert patients_of("Provenance", "v", {"target": [{"reference": "Patient/p3"}]}) == {"p3"}
    group = {"member": [{"entity": {"reference": "Patient/p4"}}, {"entity": {"reference": "Patient/p5"}}]}
    assert patients_of("Group", "g", group) == {"p4", "p5"}
    assert patients_of("ResearchSubject", "r", {"individual": {"reference": "Patient/p6"}}) == {"p6"}


def test_no_patient_no_patients() -> None:
    assert patients_of("Organization", "o", {"partOf": {"reference": "Organization/x"}}) == set()
    assert patients_of("Practitioner", "d", {"name": [{"text": "Dr Lee"}]}) == set()
    # the audit trail names patients but is not their clinical data (it has its own access rules)
    assert patients_of("AuditEvent", "e", {"entity": [{"what": {"reference": "Patient/p1"}}]}) == set()
