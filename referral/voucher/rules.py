"""The scheme's rules as dated, versioned data (``rules.json`` beside this module), and the
monthly RMB conversion factors (``conversion_factors.json``).

Every rule has an id, a kind, the days it holds (``effective_from`` to ``effective_to``,
inclusive) and a source. A claim is judged under the rules in force on its service date; an
annual credit under those in force on 1 January of its year. What the ledger writes records
the ids of the rules it applied, so a later change of rules never rewrites the past.

Money is ``Decimal`` throughout: the files are read with ``parse_float=Decimal`` and amounts
are written as strings; a float never appears.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from fhir_exchange.errors import Unprocessable

RULES_FILE = Path(__file__).with_name("rules.json")
FACTORS_FILE = Path(__file__).with_name("conversion_factors.json")
CENT = Decimal("0.01")
KINDS = ("eligibility-age", "annual-amount", "accumulation-limit", "optometry-cap", "reward", "conversion")
ROUNDINGS = {"ROUND_HALF_UP": ROUND_HALF_UP}


class RulesFileError(ValueError):
    """A rules or factors file that cannot be used; the message lists every problem."""


class NoRuleInForce(Unprocessable):
    """No rule of a kind the scheme needs holds on the day asked about (422)."""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str
    effective_from: date
    effective_to: date | None
    value: dict[str, Any]
    source: str
    note: str | None = None

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def amount(self, name: str = "amount") -> Decimal:
        return Decimal(self.value[name])


@dataclass(frozen=True, slots=True)
class ServiceType:
    code: str
    display: str
    category: str


@dataclass(frozen=True, slots=True)
class RewardPeriod:
    id: str
    start: date
    end: date
    usable_until: date
    rule: Rule

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Rules:
    version: str
    rules: tuple[Rule, ...]
    service_types: dict[str, ServiceType]
    service_type_system: str
    sources: dict[str, str]

    def find(self, kind: str, day: date) -> Rule | None:
        return next((r for r in self.rules if r.kind == kind and r.in_force(day)), None)

    def require(self, kind: str, day: date) -> Rule:
        rule = self.find(kind, day)
        if rule is None:
            raise NoRuleInForce(f"no '{kind}' rule of the Elderly Health Care Voucher Scheme is in force on "
                                f"{day.isoformat()} (rules version {self.version})")
        return rule

    def minimum_age(self, day: date) -> tuple[int, Rule]:
        rule = self.require("eligibility-age", day)
        return int(rule.value["minimum_age"]), rule

    def reward_periods(self) -> list[RewardPeriod]:
        return [RewardPeriod(p["id"], date.fromisoformat(p["from"]), date.fromisoformat(p["to"]),
                             date.fromisoformat(p["usable_until"]), rule)
                for rule in self.rules if rule.kind == "reward" for p in rule.value["periods"]]

    def reward_period_of(self, day: date) -> RewardPeriod | None:
        return next((p for p in self.reward_periods() if p.covers(day) and p.rule.in_force(day)), None)

    def designated(self, service_type: str, day: date) -> bool:
        """Whether a service counts as designated primary healthcare for the reward (and may
        be paid with reward money) on ``day``."""
        for rule in self.rules:
            if (rule.kind == "reward" and rule.effective_from <= day <= self._reward_reach(rule)
                    and service_type in rule.value["designated_service_types"]):
                return True
        return False

    @staticmethod
    def _reward_reach(rule: Rule) -> date:
        """The last day reward money under ``rule`` can be spent (a pilot's last reward is
        usable for a year after the pilot ends)."""
        return max(date.fromisoformat(p["usable_until"]) for p in rule.value["periods"])

    def version_of(self, *rules: Rule | None) -> str:
        """What the ledger records: the file's version and the ids of the rules applied."""
        return f"{self.version}:{'+'.join(r.id for r in rules if r is not None)}"


def optometry_window(rule: Rule, birth_year: int, minimum_age: int, day: date) -> tuple[date, date]:
    """The two-year cycle of the optometry cap that ``day`` falls in, for a person born in
    ``birth_year``: cycles of ``cycle_years`` calendar years counted from 1 January of the year
    the person first became eligible, the first one starting no earlier than the rule (so for
    those already eligible on 26 Jun 2019: 26 Jun 2019 - 31 Dec 2020, 2021-2022, 2023-2024, ...)."""
    years = int(rule.value.get("cycle_years", 2))
    anchor = max(rule.effective_from.year, birth_year + minimum_age)
    first = anchor + years * ((day.year - anchor) // years)
    return max(date(first, 1, 1), rule.effective_from), date(first + years - 1, 12, 31)


def to_hkd(amount: Decimal, factor: Decimal, rule: Rule) -> Decimal:
    """An RMB amount in HKD: times the month's factor, rounded to the cent as the rule says
    (half-up: 10.865 becomes 10.87)."""
    places = Decimal(rule.value.get("places", "0.01"))
    return (amount * factor).quantize(places, rounding=ROUNDINGS[rule.value.get("rounding", "ROUND_HALF_UP")])


# --- loading ---------------------------------------------------------------------------------


def _day(text: Any, where: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        problems.append(f"{where}: '{text}' is not a date written YYYY-MM-DD")
        return None


def _money(text: Any, where: str, problems: list[str]) -> None:
    if not isinstance(text, str):
        problems.append(f"{where}: amounts are written as strings (\"2000.00\"), got {text!r}")
        return
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.append(f"{where}: '{text}' is not an amount")
        return
    if value < 0 or value != value.quantize(CENT):
        problems.append(f"{where}: '{text}' must be a non-negative amount in whole cents")


def read_rules(path: Path = RULES_FILE) -> Rules:
    """The rules in ``path``, checked whole: every problem is collected and raised together."""
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    problems: list[str] = []
    sources = document.get("sources") or {}
    catalogue = document.get("service_types") or {}
    service_types = {code: ServiceType(code, entry.get("display", code), entry.get("category", code))
                     for code, entry in (catalogue.get("codes") or {}).items()}
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in enumerate(document.get("rules") or []):
        where = f"rules[{index}] ({item.get('id')})"
        if not item.get("id") or item["id"] in seen:
            problems.append(f"{where}: every rule needs an id of its own")
            continue
        seen.add(item["id"])
        if item.get("rule") not in KINDS:
            problems.append(f"{where}: rule '{item.get('rule')}' is not one of {', '.join(KINDS)}")
            continue
        if item.get("source") not in sources:
            problems.append(f"{where}: source '{item.get('source')}' is not listed under sources")
        start = _day(item.get("effective_from"), where, problems)
        end = _day(item["effective_to"], where, problems) if item.get("effective_to") else None
        if start is None:
            continue
        if end is not None and end < start:
            problems.append(f"{where}: effective_to {end} is before effective_from {start}")
        value = item.get("value") or {}
        for name in ("amount", "threshold"):
            if name in value:
                _money(value[name], f"{where} value.{name}", problems)
        for name in ("service_types", "designated_service_types"):
            unknown = [code for code in value.get(name) or [] if code not in service_types]
            if unknown:
                problems.append(f"{where} value.{name}: unknown service types {', '.join(unknown)}")
        if item["rule"] == "conversion" and value.get("rounding") not in ROUNDINGS:
            problems.append(f"{where}: rounding must be one of {', '.join(ROUNDINGS)}")
        for p_index, period in enumerate(value.get("periods") or []):
            dates = [_day(period.get(k), f"{where} periods[{p_index}].{k}", problems) for k in ("from", "to", "usable_until")]
            if None not in dates and not (dates[0] <= dates[1] < dates[2]):  # type: ignore[operator]
                problems.append(f"{where} periods[{p_index}]: needs from <= to < usable_until")
        rules.append(Rule(item["id"], item["rule"], start, end, value, sources.get(item.get("source"), ""), item.get("note")))
    for kind in KINDS:
        of_kind = sorted((r for r in rules if r.kind == kind), key=lambda r: r.effective_from)
        for earlier, later in pairwise(of_kind):
            if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
                problems.append(f"rules {earlier.id} and {later.id} ({kind}) overlap: only one rule of a kind may hold on a day")
    if problems:
        raise RulesFileError(f"{path.name}: {len(problems)} problem(s): " + "; ".join(problems))
    return Rules(str(document.get("version", "")), tuple(rules), service_types, catalogue.get("system", ""), sources)


@cache
def default_rules() -> Rules:
    return read_rules(RULES_FILE)


@dataclass(frozen=True)
class ConversionFactors:
    """HKD per 1 RMB, by service month (``YYYY-MM``)."""

    factors: dict[str, Decimal]

    def for_day(self, day: date) -> tuple[Decimal, str]:
        month = f"{day.year:04d}-{day.month:02d}"
        factor = self.factors.get(month)
        if factor is None:
            raise Unprocessable(f"no RMB conversion factor is recorded for {month} (the month of service_date "
                                f"{day.isoformat()}): claim in HKD, or the operator adds that month's factor to "
                                f"referral/voucher/conversion_factors.json", expression=("service_date",))
        return factor, month


def read_factors(path: Path = FACTORS_FILE) -> ConversionFactors:
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    factors: dict[str, Decimal] = {}
    problems = []
    for index, item in enumerate(document.get("factors") or []):
        month, value = item.get("month", ""), item.get("hkd_per_rmb")
        try:
            date.fromisoformat(f"{month}-01")
            factor = Decimal(value) if isinstance(value, str) else None
        except (ValueError, InvalidOperation):
            factor = None
        if factor is None or factor <= 0 or month in factors or not item.get("source"):
            problems.append(f"factors[{index}]: needs a unique month YYYY-MM, hkd_per_rmb a positive amount written "
                            "as a string, and a source")
            continue
        factors[month] = factor
    if problems:
        raise RulesFileError(f"{path.name}: " + "; ".join(problems))
    return ConversionFactors(factors)
