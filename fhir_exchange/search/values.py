"""Value normalisation shared by index extraction (write side) and query parsing (read side).

Both sides must normalise identically, or stored values and search values drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

MIN_DATE = datetime.min  # open start of a Period
MAX_DATE = datetime.max  # open end of a Period

ONE_MICROSECOND = timedelta(microseconds=1)

# Combining diacritical marks (accents) only: kana voicing marks, Indic vowel signs and
# other combining characters that change a letter's identity are kept.
_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

_DATE_RE = re.compile(
    r"(?P<year>\d{4})"
    r"(?:-(?P<month>\d{2})"
    r"(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?"
    r")?)?)?"
)
_DATE_FORMATS = "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm|-hh:mm]"
_DECIMAL_RE = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def normalize_string(s: str) -> str:
    """Accent- and case-insensitive form of a string for ``string`` search.

    Compatibility-decomposes (NFKD), removes combining diacritical marks, case-folds,
    recomposes (NFC, so Hangul and kana stay whole) and collapses runs of whitespace to
    one space. CJK text is unchanged apart from width/compatibility forms.
    """
    text = unicodedata.normalize("NFKD", s).casefold()
    text = _DIACRITICS.sub("", unicodedata.normalize("NFKD", text))
    return " ".join(unicodedata.normalize("NFC", text).split())


def parse_date_range(s: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date, dateTime or instant denotes, as naive UTC datetimes.

    Returns ``(low, high)``, both inclusive: ``high`` is the last microsecond of the
    value's precision (``2020`` → 2020-01-01T00:00:00 .. 2020-12-31T23:59:59.999999).
    A value without an offset is taken as UTC. Results beyond the datetime range are
    clamped to ``MIN_DATE`` / ``MAX_DATE``. Raises ``ValueError`` on a malformed value.
    """
    match = _DATE_RE.fullmatch(s.strip()) if isinstance(s, str) else None
    if match is None:
        raise ValueError(f"'{s}' is not a valid FHIR date/dateTime/instant: expected {_DATE_FORMATS}")
    parts = match.groupdict()
    try:
        low = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            _microseconds(parts["fraction"]),
        )
    except ValueError as exc:
        raise ValueError(f"'{s}' is not a valid FHIR date/dateTime/instant: {exc}") from None
    high = _end_of_precision(low, parts)
    offset = _utc_offset(parts["tz"], s)
    return _shift(low, -offset), _shift(high, -offset)


def _microseconds(fraction: str | None) -> int:
    return int(fraction[:6].ljust(6, "0")) if fraction else 0


def _end_of_precision(low: datetime, parts: dict[str, str | None]) -> datetime:
    """The last microsecond of the range that starts at ``low`` at the value's precision."""
    if parts["fraction"] is not None:
        digits = len(parts["fraction"])
        return low if digits >= 6 else _shift(low, timedelta(microseconds=10 ** (6 - digits)) - ONE_MICROSECOND)
    if parts["second"] is not None:
        step = timedelta(seconds=1)
    elif parts["minute"] is not None:
        step = timedelta(minutes=1)
    elif parts["day"] is not None:
        step = timedelta(days=1)
    else:
        following = _start_of_next_month(low) if parts["month"] is not None else _start_of_next_year(low)
        return following - ONE_MICROSECOND if following is not None else MAX_DATE
    return _shift(low, step - ONE_MICROSECOND)


def _start_of_next_month(moment: datetime) -> datetime | None:
    if moment.month == 12:
        return _start_of_next_year(moment)
    return moment.replace(month=moment.month + 1, day=1)


def _start_of_next_year(moment: datetime) -> datetime | None:
    """None past the last representable year."""
    return datetime(moment.year + 1, 1, 1) if moment.year < MAX_DATE.year else None


def _utc_offset(tz: str | None, original: str) -> timedelta:
    if tz is None or tz == "Z":
        return timedelta(0)
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"'{original}' is not a valid FHIR dateTime: time zone offset {tz} is out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return -delta if tz[0] == "-" else delta


def _shift(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        return MAX_DATE if delta > timedelta(0) else MIN_DATE


def decimal_precision_range(s: str) -> tuple[float, float]:
    """The range ``[low, high)`` a decimal search value denotes by its implicit precision.

    Per search.html (number): ``100`` means [99.5, 100.5) and ``100.00`` means
    [99.995, 100.005): half a unit of the last significant digit either side. With an
    exponent the unit follows the exponent (``1.0e2`` → [95, 105), ``1e2`` → [50, 150)).
    Raises ``ValueError`` if ``s`` is not a decimal.
    """
    text = s.strip() if isinstance(s, str) else ""
    if not _DECIMAL_RE.fullmatch(text):
        raise ValueError(f"'{s}' is not a valid number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"'{s}' is not a valid number") from None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the regular expression
    half_unit = Decimal(5).scaleb(exponent - 1)
    return float(value - half_unit), float(value + half_unit)
