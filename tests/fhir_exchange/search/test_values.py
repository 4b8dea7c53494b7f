"""Normalisation shared by the index writer and the query parser."""

from __future__ import annotations

from datetime import datetime

import pytest

from fhir_exchange.search.values import (
    MAX_DATE,
    MIN_DATE,
    decimal_precision_range,
    normalize_string,
    parse_date_range,
)


def dt(*parts: int) -> datetime:
    return datetime(*parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2020", dt(2020, 1, 1), dt(2020, 12, 31, 23, 59, 59, 999999)),
        ("2020-02", dt(2020, 2, 1), dt(2020, 2, 29, 23, 59, 59, 999999)),
        ("2021-02", dt(2021, 2, 1), dt(2021, 2, 28, 23, 59, 59, 999999)),
        ("2020-12", dt(2020, 12, 1), dt(2020, 12, 31, 23, 59, 59, 999999)),
        ("2020-03-04", dt(2020, 3, 4), dt(2020, 3, 4, 23, 59, 59, 999999)),
        ("2020-03-04T10:00", dt(2020, 3, 4, 10), dt(2020, 3, 4, 10, 0, 59, 999999)),
        ("2020-03-04T10:00:00", dt(2020, 3, 4, 10), dt(2020, 3, 4, 10, 0, 0, 999999)),
        ("2020-03-04T10:00:00Z", dt(2020, 3, 4, 10), dt(2020, 3, 4, 10, 0, 0, 999999)),
        ("2020-03-04T10:00:00.5Z", dt(2020, 3, 4, 10, 0, 0, 500000), dt(2020, 3, 4, 10, 0, 0, 599999)),
        ("2020-03-04T10:00:00.123Z", dt(2020, 3, 4, 10, 0, 0, 123000), dt(2020, 3, 4, 10, 0, 0, 123999)),
        ("2020-03-04T10:00:00.123456789Z", dt(2020, 3, 4, 10, 0, 0, 123456), dt(2020, 3, 4, 10, 0, 0, 123456)),
    ],
)
def test_date_ranges_per_precision(value: str, low: datetime, high: datetime) -> None:
    assert parse_date_range(value) == (low, high)


@pytest.mark.parametrize(
    ("value", "low"),
    [
        ("2020-03-04T10:00:00+08:00", dt(2020, 3, 4, 2)),
        ("2020-03-04T02:00:00-05:00", dt(2020, 3, 4, 7)),
        ("2020-03-04T01:30:00+08:00", dt(2020, 3, 3, 17, 30)),  # crosses midnight
        ("2020-03-04T10:00+05:30", dt(2020, 3, 4, 4, 30)),
        ("2020-03-04T10:00:00+00:00", dt(2020, 3, 4, 10)),
    ],
)
def test_offsets_are_converted_to_naive_utc(value: str, low: datetime) -> None:
    start, end = parse_date_range(value)
    assert start == low
    assert start.tzinfo is None and end.tzinfo is None


def test_values_without_offset_are_utc() -> None:
    assert parse_date_range("2020-03-04T10:00:00") == parse_date_range("2020-03-04T10:00:00Z")


def test_overflow_is_clamped() -> None:
    assert parse_date_range("9999") == (dt(9999, 1, 1), MAX_DATE)
    assert parse_date_range("9999-12") == (dt(9999, 12, 1), MAX_DATE)
    assert parse_date_range("9999-12-31T23:00:00-05:00") == (MAX_DATE, MAX_DATE)
    assert parse_date_range("0001-01-01T00:00:00+08:00")[0] == MIN_DATE
    assert (datetime.min, datetime.max) == (MIN_DATE, MAX_DATE)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "20",
        "2020-1",
        "2020-13",
        "2020-02-30",
        "2020-03-04T25:00",
        "2020-03-04T10:60",
        "2020-03-04T10",
        "2020-03-04+08:00",
        "2020-03-04T10:00:00+15:00",
        "2020-03-04T10:00:00+0800",
        "0000",
        "March 2020",
        "2020/03/04",
        "2020-03-04T10:00:00.Z",
    ],
)
def test_malformed_dates_raise(value: str) -> None:
    with pytest.raises(ValueError, match="not a valid FHIR"):
        parse_date_range(value)


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("Bénédicte", "benedicte"),
        ("du Marché", "du marche"),
        ("  ÅNGSTRÖM  de \t la ", "angstrom de la"),
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("中文", "中文"),
        ("张 伟", "张 伟"),
        ("陳大文", "陳大文"),
        ("が", "が"),  # kana voicing marks are not accents
        ("ｶﾞ", "ガ"),  # half-width katakana: compatibility form folded
        ("한국어", "한국어"),
        ("ＡＢＣ", "abc"),  # full-width latin
    ],
)
def test_normalize_string(value: str, normalised: str) -> None:
    assert normalize_string(value) == normalised


def test_normalize_string_is_idempotent() -> None:
    for text in ("Bénédicte", "中文 Name", "ÅNGSTRÖM"):
        assert normalize_string(normalize_string(text)) == normalize_string(text)


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("100", 99.5, 100.5),
        ("100.00", 99.995, 100.005),
        ("0.5", 0.45, 0.55),
        ("-3.5", -3.55, -3.45),
        ("1.0e2", 95.0, 105.0),
        ("1e2", 50.0, 150.0),
        ("5.4E-1", 0.535, 0.545),
    ],
)
def test_decimal_precision_range(value: str, low: float, high: float) -> None:
    assert decimal_precision_range(value) == pytest.approx((low, high))


@pytest.mark.parametrize("value", ["", "abc", "1,5", "NaN", "Infinity", "1e", "--1", ".5"])
def test_malformed_numbers_raise(value: str) -> None:
    with pytest.raises(ValueError, match="not a valid number"):
        decimal_precision_range(value)
