"""``dates_matter``: where it says the clinical date cannot change a decision, it does not (the
consent gate decides resources that differ only in their date once per request)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.policy import (
    CROSS_BORDER_URL,
    DATA_CATEGORY,
    RECIPIENT_CLASS,
    Requester,
    Subject,
    dates_matter,
    decide,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
REQUESTERS = st.sampled_from([
    Requester("hku-szh", "CN-Shenzhen", frozenset({"jurisdiction:CN", "designated:ehcv"})),
    Requester("ha-qmh", "HK", frozenset({"jurisdiction:HK"})),
    Requester("hku-szh", "CN-Shenzhen", frozenset({"jurisdiction:CN"}), "ETREAT", frozenset({"break-glass"}), "unconscious"),
    Requester("hku-szh", "CN-Shenzhen", frozenset({"jurisdiction:CN"}), "ETREAT", frozenset({"nurse"}), "unconscious"),
])
DAYS = st.one_of(st.none(), st.dates(min_value=date(2015, 1, 1), max_value=date(2027, 12, 31)))
PERIODS = st.sampled_from([{"start": "2025-01-01"}, {"end": "2025-12-31"}, {"start": "2026-03", "end": "2026-09-30"}])


@st.composite
def provisions(draw: Any, depth: int = 0) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": draw(st.sampled_from(["permit", "deny"]))}
    if draw(st.booleans()):
        provision["actor"] = [{"reference": draw(st.sampled_from([
            {"reference": "Organization/hku-szh"}, {"identifier": {"system": RECIPIENT_CLASS, "value": "jurisdiction:CN"}}]))}]
    if draw(st.booleans()):
        provision["code"] = [{"coding": [{"system": DATA_CATEGORY,
                                          "code": draw(st.sampled_from(["results", "problems", "demographics"]))}]}]
    if draw(st.integers(0, 3)) == 0:
        provision["dataPeriod"] = draw(PERIODS)
    if draw(st.booleans()):
        provision["extension"] = [{"url": CROSS_BORDER_URL, "valueBoolean": True}]
    if depth < 1 and draw(st.booleans()):
        provision["provision"] = draw(st.lists(provisions(depth + 1), max_size=2))
    return provision


CONSENTS = st.lists(provisions(), max_size=3).map(lambda items: [
    {"resourceType": "Consent", "id": f"c{i}", "status": "active", "patient": {"reference": "Patient/p1"},
     "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
     "provision": provision} for i, provision in enumerate(items)])
SUBJECTS = st.builds(lambda kind, custodian, labels: Subject(kind, "p1", custodian[0], custodian[1], labels),
                     st.sampled_from(["Observation", "Condition", "Patient", "MedicationRequest"]),
                     st.sampled_from([("ha-qmh", "HK"), ("hku-szh", "CN-Shenzhen")]),
                     st.frozensets(st.sampled_from(["PSY"]), max_size=1))


@settings(max_examples=400, deadline=None)
@given(REQUESTERS, SUBJECTS, CONSENTS, DAYS, DAYS)
def test_where_dates_do_not_matter_they_change_nothing(requester: Requester, subject: Subject,
                                                       consents: list[dict[str, Any]], one: date | None,
                                                       other: date | None) -> None:
    if dates_matter(requester, consents):
        return
    first = decide(requester, Subject(**{**_fields(subject), "when": one}), consents, NOW)
    second = decide(requester, Subject(**{**_fields(subject), "when": other}), consents, NOW)
    assert first == second


def _fields(subject: Subject) -> dict[str, Any]:
    return {name: getattr(subject, name) for name in subject.__slots__}


def test_a_data_period_or_break_glass_makes_dates_matter() -> None:
    plain = Requester("hku-szh", "CN-Shenzhen")
    nested = {"status": "active", "provision": {"type": "permit", "provision": [{"type": "deny", "dataPeriod": {"end": "2024"}}]}}
    assert not dates_matter(plain, [{"status": "active", "provision": {"type": "permit"}}])
    assert dates_matter(plain, [nested])
    assert dates_matter(Requester("hku-szh", "CN-Shenzhen", purpose="ETREAT", roles=frozenset({"break-glass"}),
                                  break_glass_reason="unconscious"), [])
