"""The decision engine, without a database: each rule, and properties over generated consents."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.policy import (
    CROSS_BORDER_URL,
    DATA_CATEGORY,
    RECIPIENT_CLASS,
    ImplicitPolicy,
    Requester,
    Subject,
    decide,
)
from fhir_exchange.ports import Release

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SZ = Requester("hku-szh", "CN-Shenzhen", frozenset({"jurisdiction:CN", "designated:ehcv", "designated:mmdc"}))
GZ = Requester("gd-second", "CN-Guangzhou", frozenset({"jurisdiction:CN"}))
QMH = Requester("ha-qmh", "HK", frozenset({"jurisdiction:HK", "sector:HA"}))
KW = Requester("mo-kiang-wu", "MO", frozenset({"jurisdiction:MO"}))


def observation(custodian: str = "ha-qmh", jurisdiction: str = "HK", labels: frozenset[str] = frozenset(),
                when: date | None = date(2026, 10, 1), resource_type: str = "Observation") -> Subject:
    return Subject(resource_type, "p1", custodian, jurisdiction, labels, when)


def consent(provision: dict[str, Any], *, status: str = "active", patient: str = "p1", cid: str = "c1") -> dict[str, Any]:
    return {"resourceType": "Consent", "id": cid, "status": status, "patient": {"reference": f"Patient/{patient}"},
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}], "provision": provision}


def permit(*, actor: str | None = "Organization/hku-szh", cross_border: bool = True, **more: Any) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "permit", "period": {"start": "2026-01-01", "end": "2027-06-30"}, **more}
    if actor and actor.startswith("Organization/"):
        provision["actor"] = [{"reference": {"reference": actor}}]
    elif actor:
        provision["actor"] = [{"reference": {"identifier": {"system": RECIPIENT_CLASS, "value": actor}}}]
    if cross_border:
        provision["extension"] = [{"url": CROSS_BORDER_URL, "valueBoolean": True}]
    return provision


def test_the_custodian_sees_its_own_records_without_consent() -> None:
    assert decide(QMH, observation(), [], NOW).outcome is Release.PERMIT


def test_everything_else_is_denied_by_default() -> None:
    decision = decide(SZ, observation(), [], NOW)
    assert decision.outcome is Release.DENY and "deny by default" in decision.reason
    assert decide(GZ, observation("hku-szh", "CN-Shenzhen"), [], NOW).outcome is Release.DENY


def test_a_consent_permits_the_institution_it_names() -> None:
    decision = decide(SZ, observation(), [consent(permit())], NOW)
    assert (decision.outcome, decision.consent, decision.provision) == (Release.PERMIT, "Consent/c1", "provision")
    assert decide(GZ, observation(), [consent(permit())], NOW).outcome is Release.DENY


def test_a_class_of_recipients() -> None:
    designated = consent(permit(actor="designated:ehcv"))
    assert decide(SZ, observation(), [designated], NOW).outcome is Release.PERMIT
    assert decide(GZ, observation(), [designated], NOW).outcome is Release.DENY


@pytest.mark.parametrize(("name", "provision", "subject", "requester", "expected"), [
    ("expired", permit(period={"start": "2025-01-01", "end": "2025-12-31"}), observation(), SZ, Release.DENY),
    ("not yet", permit(period={"start": "2027-01-01"}), observation(), SZ, Release.DENY),
    ("wrong purpose", permit(purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HPAYMT"}]),
     observation(), SZ, Release.DENY),
    ("right purpose", permit(purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]),
     observation(), SZ, Release.PERMIT),
    ("wrong category", permit(code=[{"coding": [{"system": DATA_CATEGORY, "code": "medications"}]}]),
     observation(), SZ, Release.DENY),
    ("right category", permit(code=[{"coding": [{"system": DATA_CATEGORY, "code": "results"}]}]),
     observation(), SZ, Release.PERMIT),
    ("wrong class", permit(**{"class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]}),
     observation(), SZ, Release.DENY),
    ("data period excludes", permit(dataPeriod={"start": "2026-11-01"}), observation(), SZ, Release.DENY),
    ("not cross-border", permit(cross_border=False), observation(), SZ, Release.DENY),
    ("not cross-border, same side", permit(actor="Organization/gd-second", cross_border=False),
     observation("hku-szh", "CN-Shenzhen"), GZ, Release.PERMIT),
    ("sensitive excluded", permit(), observation(labels=frozenset({"HIV"})), SZ, Release.DENY),
    ("sensitive named", permit(securityLabel=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]),
     observation(labels=frozenset({"HIV"})), SZ, Release.PERMIT),
    ("HK to Macao is cross-border", permit(actor="Organization/mo-kiang-wu", cross_border=False), observation(), KW,
     Release.DENY),
])
def test_each_constraint(name: str, provision: dict[str, Any], subject: Subject, requester: Requester,
                         expected: Release) -> None:
    assert decide(requester, subject, [consent(provision)], NOW).outcome is expected, name


def test_consent_states() -> None:
    for status in ("draft", "proposed", "rejected", "inactive", "entered-in-error"):
        assert decide(SZ, observation(), [consent(permit(), status=status)], NOW).outcome is Release.DENY, status
    assert decide(SZ, observation(), [consent(permit(), patient="p2")], NOW).outcome is Release.DENY


def test_nested_provisions_carve_exceptions_and_any_deny_wins() -> None:
    no_mental_health = permit(provision=[{"type": "deny", "securityLabel": [{"code": "PSY"}]}])
    assert decide(SZ, observation(), [consent(no_mental_health)], NOW).outcome is Release.PERMIT
    labelled = observation(labels=frozenset({"PSY"}))
    decision = decide(SZ, labelled, [consent(no_mental_health), consent(permit(securityLabel=[{"code": "PSY"}]), cid="c2")],
                      NOW)
    assert (decision.outcome, decision.consent, decision.provision) == (Release.DENY, "Consent/c1", "provision.provision[0]")
    opt_out = {"type": "deny", "provision": [permit(actor="Organization/hku-szh")]}
    assert decide(SZ, observation(), [consent(opt_out)], NOW).outcome is Release.PERMIT
    assert decide(GZ, observation(), [consent(opt_out)], NOW).outcome is Release.DENY


def test_patients_across_the_boundary_are_masked() -> None:
    decision = decide(SZ, observation(resource_type="Patient"), [consent(permit())], NOW)
    assert decision.outcome is Release.PERMIT_WITH_MASKING and decision.mask


def test_implicit_permit_policy_still_guards_the_boundary_and_sensitive_data() -> None:
    same_side = observation("hku-szh", "CN-Shenzhen")
    assert decide(GZ, same_side, [], NOW, ImplicitPolicy.PERMIT).outcome is Release.PERMIT
    assert decide(SZ, observation(), [], NOW, ImplicitPolicy.PERMIT).outcome is Release.DENY
    sensitive = Subject("Observation", "p1", "hku-szh", "CN-Shenzhen", frozenset({"SUD"}))
    assert decide(GZ, sensitive, [], NOW, ImplicitPolicy.PERMIT).outcome is Release.DENY


def test_break_glass() -> None:
    doctor = Requester("hku-szh", "CN-Shenzhen", purpose="ETREAT", roles=frozenset({"break-glass"}),
                       break_glass_reason="unconscious after a road accident")
    allergy = observation(resource_type="AllergyIntolerance", when=None)
    decision = decide(doctor, allergy, [], NOW)
    assert decision.outcome is Release.PERMIT and decision.break_glass and "road accident" in decision.reason
    assert decide(doctor, observation(when=date(2026, 3, 1)), [], NOW).outcome is Release.PERMIT  # a recent result
    assert decide(doctor, observation(when=date(2024, 3, 1)), [], NOW).outcome is Release.DENY  # an old one
    assert decide(doctor, observation(resource_type="DocumentReference"), [], NOW).outcome is Release.DENY
    assert decide(doctor, observation(labels=frozenset({"PSY"})), [], NOW).outcome is Release.DENY
    for other in (Requester("hku-szh", "CN-Shenzhen", purpose="ETREAT", roles=frozenset({"nurse"}),
                            break_glass_reason="x"),
                  Requester("hku-szh", "CN-Shenzhen", purpose="ETREAT", roles=frozenset({"break-glass"})),
                  Requester("hku-szh", "CN-Shenzhen", purpose="TREAT", roles=frozenset({"break-glass"}),
                            break_glass_reason="x")):
        assert decide(other, allergy, [], NOW).outcome is Release.DENY


# --- properties ---------------------------------------------------------------------------------

REQUESTERS = st.sampled_from([SZ, GZ, QMH, KW])
RANK = {Release.DENY: 0, Release.PERMIT_WITH_MASKING: 1, Release.PERMIT: 2}


@st.composite
def provisions(draw: Any, depth: int = 0) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": draw(st.sampled_from(["permit", "deny"]))}
    if draw(st.booleans()):
        provision["actor"] = [{"reference": draw(st.sampled_from([
            {"reference": "Organization/hku-szh"}, {"reference": "Organization/gd-second"},
            {"identifier": {"system": RECIPIENT_CLASS, "value": "jurisdiction:CN"}},
            {"identifier": {"system": RECIPIENT_CLASS, "value": "jurisdiction:MO"}}]))}]
    if draw(st.booleans()):
        provision["period"] = draw(st.sampled_from([{"start": "2026-01-01"}, {"end": "2025-12-31"}]))
    if draw(st.booleans()):
        provision["code"] = [{"coding": [{"system": DATA_CATEGORY, "code": draw(st.sampled_from(["results", "problems"]))}]}]
    if draw(st.booleans()):
        provision["securityLabel"] = [{"code": draw(st.sampled_from(["HIV", "PSY"]))}]
    if draw(st.booleans()):
        provision["extension"] = [{"url": CROSS_BORDER_URL, "valueBoolean": True}]
    if depth < 1 and draw(st.booleans()):
        provision["provision"] = draw(st.lists(provisions(depth + 1), max_size=2))
    return provision


SUBJECTS = st.builds(
    Subject, st.sampled_from(["Observation", "Condition", "Patient"]), st.just("p1"),
    st.sampled_from(["ha-qmh", "hku-szh"]), st.sampled_from(["HK", "CN-Shenzhen"]),
    st.frozensets(st.sampled_from(["HIV", "PSY"]), max_size=1), st.just(date(2026, 10, 1)))
CONSENTS = st.lists(provisions().map(consent), max_size=3).map(
    lambda items: [{**c, "id": f"c{i}"} for i, c in enumerate(items)])


@settings(max_examples=300, deadline=None)
@given(REQUESTERS, SUBJECTS, CONSENTS, provisions())
def test_adding_a_deny_never_releases_more(requester: Requester, subject: Subject, consents: list[dict[str, Any]],
                                           extra: dict[str, Any]) -> None:
    before = decide(requester, subject, consents, NOW).outcome
    deny = copy.deepcopy(extra)
    deny["type"] = "deny"
    deny.pop("provision", None)
    after = decide(requester, subject, [*consents, {**consent(deny), "id": "added"}], NOW).outcome
    assert RANK[after] <= RANK[before]


@settings(max_examples=300, deadline=None)
@given(REQUESTERS, SUBJECTS, CONSENTS, st.data())
def test_withdrawing_a_consent_never_releases_more(requester: Requester, subject: Subject,
                                                   consents: list[dict[str, Any]], data: Any) -> None:
    """Withdrawing a consent that grants (one without deny provisions) takes access away,
    never adds it."""
    granting = [i for i, c in enumerate(consents) if "deny" not in str(c["provision"])]
    if not granting:
        return
    index = data.draw(st.sampled_from(granting))
    before = decide(requester, subject, consents, NOW).outcome
    withdrawn = [dict(c, status="inactive") if i == index else c for i, c in enumerate(consents)]
    assert RANK[decide(requester, subject, withdrawn, NOW).outcome] <= RANK[before]
