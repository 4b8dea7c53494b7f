"""The voucher rules without a database: the data file, the year rule of age, the accumulation
limit, the optometry cycles, RMB rounding, and the identity documents the scheme accepts."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_exchange.institutions.registry import Designation
from referral.voucher.claims import annual_credit, parse_amount
from referral.voucher.eligibility import COE_SYSTEM, ServicePoint, decide, identity_document
from referral.voucher.rules import RULES_FILE, RulesFileError, default_rules, optometry_window, read_rules, to_hkd
from tests.referral.voucher.support import HKID, hkid, patient

RULES = default_rules()
SZH_POINT = ServicePoint("Organization/hku-szh", "HKU-SZH",
                         (Designation("ehcv", "2015-10-06", excludes=("inpatient", "prepaid", "day-surgery")),))


def test_every_rule_is_dated_and_sourced() -> None:
    assert RULES.version
    for rule in RULES.rules:
        assert rule.source, rule.id
        assert rule.effective_from <= (rule.effective_to or date.max)
    assert RULES.minimum_age(date(2017, 6, 30))[0] == 70
    assert RULES.minimum_age(date(2017, 7, 1))[0] == 65
    assert RULES.require("accumulation-limit", date(2019, 6, 25)).amount() == Decimal("5000.00")
    assert RULES.require("accumulation-limit", date(2019, 6, 26)).amount() == Decimal("8000.00")
    assert RULES.find("optometry-cap", date(2019, 6, 25)) is None
    assert RULES.reward_period_of(date(2023, 11, 12)) is None
    assert RULES.reward_period_of(date(2023, 11, 13)).id == "2023-11-13/2024-12-31"  # type: ignore[union-attr]
    assert RULES.reward_period_of(date(2027, 1, 1)) is None  # the pilot ended on 31 Dec 2026
    # the pilot's last reward stays spendable on designated services through 2027
    assert RULES.designated("preventive-care", date(2027, 12, 31)) and not RULES.designated("preventive-care", date(2028, 1, 1))
    assert not RULES.designated("consultation", date(2025, 6, 1))


def test_a_rules_file_with_faults_loads_nothing(tmp_path: Path) -> None:
    document = json.loads(RULES_FILE.read_text())
    document["rules"].append({"id": "annual-amount-overlap", "rule": "annual-amount", "effective_from": "2020-01-01",
                              "value": {"amount": 2500.5}, "source": "nowhere"})
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(RulesFileError) as caught:
        read_rules(bad)
    message = str(caught.value)
    assert "overlap" in message and "source 'nowhere'" in message and "written as strings" in message


@pytest.mark.parametrize(("balance", "reward", "credited"), [
    ("0.00", "0.00", "2000.00"), ("6000.00", "0.00", "2000.00"), ("7000.00", "0.00", "1000.00"),
    ("7999.99", "0.00", "0.01"), ("8000.00", "0.00", "0.00"),
    ("7500.00", "500.00", "1000.00"),  # reward money is not counted against the limit
])
def test_the_annual_credit_never_lifts_the_balance_above_the_limit(balance: str, reward: str, credited: str) -> None:
    assert annual_credit(Decimal(balance), Decimal(reward), Decimal("2000.00"), Decimal("8000.00")) == Decimal(credited)


@pytest.mark.parametrize(("born", "day", "window"), [
    # eligible in 2019: the first cycle runs from the cap's start to the end of 2020, then calendar pairs
    (1950, date(2019, 6, 26), (date(2019, 6, 26), date(2020, 12, 31))),
    (1950, date(2020, 12, 31), (date(2019, 6, 26), date(2020, 12, 31))),
    (1950, date(2021, 1, 1), (date(2021, 1, 1), date(2022, 12, 31))),
    (1950, date(2024, 12, 31), (date(2023, 1, 1), date(2024, 12, 31))),
    (1950, date(2025, 1, 1), (date(2025, 1, 1), date(2026, 12, 31))),
    # eligible from 2024 (born 1959): cycles 2024-2025, 2026-2027
    (1959, date(2024, 12, 31), (date(2024, 1, 1), date(2025, 12, 31))),
    (1959, date(2025, 1, 1), (date(2024, 1, 1), date(2025, 12, 31))),
    (1959, date(2026, 1, 1), (date(2026, 1, 1), date(2027, 12, 31))),
])
def test_optometry_cycles(born: int, day: date, window: tuple[date, date]) -> None:
    rule = RULES.require("optometry-cap", day)
    assert optometry_window(rule, born, 65, day) == window


@pytest.mark.parametrize(("rmb", "factor", "hkd"), [
    ("10.00", "1.0865", "10.87"),  # 10.865: half-up at .005 (banker's rounding would give 10.86)
    ("10.00", "1.0875", "10.88"),  # 10.875
    ("10.00", "1.0864", "10.86"),
    ("0.01", "1.0850", "0.01"),  # 0.01085
    ("999.99", "1.1000", "1099.99"),  # 1099.989
])
def test_rmb_is_converted_half_up_to_the_cent(rmb: str, factor: str, hkd: str) -> None:
    rule = RULES.require("conversion", date(2026, 3, 1))
    assert to_hkd(Decimal(rmb), Decimal(factor), rule) == Decimal(hkd)


def test_amounts_are_exact_or_refused() -> None:
    assert parse_amount(Decimal("150.10"), "amount") == Decimal("150.10")
    assert parse_amount("150", "amount") == Decimal("150.00")
    for bad in ("150.005", "0", "-1", "abc", 1.5, True, None, "NaN", "Infinity"):
        with pytest.raises(Exception) as caught:
            parse_amount(bad, "amount")
        assert caught.value.issues[0].expression == ("amount",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("birth", "day", "eligible"), [
    ("1961-12-31", date(2026, 1, 1), True),  # turns 65 on 31 Dec 2026: aged 65 "in that year" from 1 January
    ("1962-01-01", date(2026, 12, 31), False),  # turns 65 in 2027
    ("1961-06-15", date(2026, 6, 15), True),  # the 65th birthday itself
    ("1961-06-15", date(2025, 12, 31), False),
    ("1961", date(2026, 1, 1), True),  # a year-only birth date is enough for the year rule
    ("1947-12-31", date(2017, 1, 1), True),  # 70 was the age before 1 Jul 2017, by the same year rule
    ("1948-01-01", date(2017, 6, 30), False),
    ("1952-01-01", date(2017, 6, 30), False),  # 65 in 2017, but the age was still 70 on 30 Jun 2017
    ("1952-01-01", date(2017, 7, 1), True),
])
def test_aged_65_or_above_in_the_year_of_the_service(birth: str, day: date, eligible: bool) -> None:
    result = decide(patient("p", hkid("A", "123456"), birth), SZH_POINT, SZH_POINT.reference, "consultation", day, RULES)
    age = next(c for c in result.checks if c.rule == "age")
    assert age.passed is eligible, age.message
    if not eligible:
        assert "not aged" in age.message and "eligible from 1 January" in age.message


def test_identity_documents() -> None:
    day = date(2026, 3, 1)
    document, _ = identity_document(patient("p", "a123456(3)"), day)
    assert document is not None and (document.kind, document.value) == ("hkid", "A123456(3)")
    # an alias of the HKID system keys the same account
    alias = identity_document({"identifier": [{"system": "urn:baylink:hkid", "value": "A1234563"}]}, day)[0]
    assert alias == document
    expired = {"identifier": [{"system": HKID, "value": "A123456(3)", "period": {"end": "2026-02-28"}}]}
    assert identity_document(expired, day) == (None, "its HKID was valid only until 2026-02-28")
    assert identity_document({"identifier": [{"system": HKID, "value": "A123456(4)"}]}, day)[0] is None
    coe = identity_document({"identifier": [{"system": COE_SYSTEM, "value": "ce 123456"}]}, day)[0]
    assert coe is not None and (coe.kind, coe.system, coe.value) == ("coe", COE_SYSTEM, "CE123456")
    none, why = identity_document({"identifier": [{"system": "http://hl7.org/fhir/sid/passport-GBR", "value": "123456789"}]}, day)
    assert none is None and "no Hong Kong Identity Card number nor Certificate of Exemption" in why


def test_every_failed_rule_is_said_in_words() -> None:
    result = decide({"id": "p"}, SZH_POINT, SZH_POINT.reference, "inpatient", date(2026, 3, 1), RULES)
    assert not result.eligible
    assert [c.rule for c in result.failures] == ["identity", "age", "service-type"]
    assert "does not take vouchers for inpatient care" in result.reasons()
    before = decide(patient("p", hkid("A", "123456"), "1940-01-01"), SZH_POINT, SZH_POINT.reference, "consultation",
                    date(2015, 10, 5), RULES)
    assert [c.rule for c in before.failures] == ["service-point"]
    assert "only from 2015-10-06, not on 2015-10-05" in before.reasons()
