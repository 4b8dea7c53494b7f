"""Parse FHIR search parameters (search.html of the R4 spec) into a typed query.

Nothing here touches the database: ``fhir_exchange.store.search_sql`` turns a
``SearchQuery`` into SQL. Every refusal names the parameter that caused it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fhir_exchange import crypto
from fhir_exchange.errors import InvalidRequest, UnknownParameter
from fhir_exchange.identity.documents import InvalidIdentifier, document_for
from fhir_exchange.search.registry import SearchParamDef, registry
from fhir_exchange.search.values import decimal_precision_range, parse_date_range
from fhir_exchange.validation import PERSON_TYPES

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
PREFIXED_TYPES = {"date", "number", "quantity"}
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "of-type", "missing"},
    "reference": {"missing", "identifier"},  # plus :[Type], checked separately
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"below", "above", "missing"},
}
# Result parameters (search.html#return) and paging parameters this server understands.
RESULT_PARAMETERS = {
    "_count", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude",
    "_format", "_pretty", "_getpages", "_offset",
}
SUMMARY_MODES = {"true", "false", "count", "data", "text"}
TOTAL_MODES = {"none", "accurate", "estimate"}
_SPECIAL_CODES = {"_id", "_lastUpdated"}


@dataclass(frozen=True, slots=True)
class SearchValue:
    """One OR-ed value of a parameter, already parsed for its type."""

    raw: str
    prefix: str = "eq"
    # date: the precision range of the value; number/quantity: the number and its
    # implicit precision range; token: system/code split; quantity: system/code.
    low: datetime | float | None = None
    high: datetime | float | None = None
    number: float | None = None
    system: str | None = None
    code: str | None = None
    has_system: bool = False  # token `system|code` or `|code` was used
    type_code: str | None = None  # token :of-type: system is the type's system, code the identifier value


@dataclass(frozen=True, slots=True)
class ParamRef:
    """A search parameter of one resource type; ``type`` is the parameter type."""

    resource_type: str
    code: str
    type: str
    target: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Criterion:
    """One query parameter: its values are OR-ed; separate criteria are AND-ed.

    A chained parameter (``subject:Patient.name=x``) has ``chain`` set: the reference
    parameter and target types to follow, and ``chained`` the criterion on the target.
    A reverse chain (``_has:Observation:patient:code=x``) has ``has`` set.
    """

    param: ParamRef
    modifier: str | None = None
    values: tuple[SearchValue, ...] = ()
    chain_types: tuple[str, ...] = ()
    chained: tuple[Criterion, ...] = ()  # one per chain type, parsed against that type
    has: HasClause | None = None


@dataclass(frozen=True, slots=True)
class HasClause:
    source_type: str  # the type that refers to us (Observation)
    reference_param: ParamRef  # its reference parameter (patient)
    criterion: Criterion  # the criterion on the referring resource


@dataclass(frozen=True, slots=True)
class SortKey:
    param: ParamRef
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Include:
    """``_include=Source:param[:Target]`` or ``_revinclude=Source:param[:Target]``."""

    source_type: str
    param: ParamRef | None  # None for the wildcard `*`
    target_type: str | None
    iterate: bool
    raw: str


@dataclass(slots=True)
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    total: str = "accurate"
    summary: str | None = None
    elements: tuple[str, ...] = ()
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    used: list[tuple[str, str]] = field(default_factory=list)  # the parameters applied, for the self link
    ignored: list[str] = field(default_factory=list)  # unknown parameters ignored (lenient handling)


def non_negative_int(key: str, raw: str, upper: int | None = None) -> int:
    """A whole-number parameter (``_count``, ``_offset``), refused with a 400 naming it."""
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{key} must be a whole number; got '{raw}'") from None
    if value < 0:
        raise InvalidRequest(f"{key} must not be negative; got '{raw}'")
    return min(value, upper) if upper is not None else value


def _split_escaped(raw: str, sep: str, *, unescape: bool = True) -> list[str]:
    """Split ``raw`` on ``sep`` where it is not escaped with a backslash (search.html#escaping).
    With ``unescape`` the escapes are removed; without, they are kept for a later split."""
    if "\\" not in raw:  # nothing escaped (the usual case): a plain split gives the same parts
        return raw.split(sep)
    parts, current, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            current.append(raw[i + 1] if unescape else raw[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _split_values(raw: str) -> list[str]:
    """The OR-ed values of a parameter: split on unescaped commas, escapes kept."""
    return _split_escaped(raw, ",", unescape=False)


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw)


def _split_prefix(raw: str) -> tuple[str, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES and not raw[2:3].isalpha():
        return raw[:2], raw[2:]
    return "eq", raw


class SearchParser:
    """Parses query parameters for one resource type against the R4 search parameter registry."""

    def __init__(self, *, default_count: int = 20, max_count: int = 1000) -> None:
        self._registry = registry()
        self._default_count = default_count
        self._max_count = max_count

    def known_type(self, resource_type: str) -> bool:
        return resource_type in self._registry.resource_types()

    def param(self, resource_type: str, code: str) -> ParamRef | None:
        if code == "_id":
            return ParamRef(resource_type, "_id", "token")
        if code == "_lastUpdated":
            return ParamRef(resource_type, "_lastUpdated", "date")
        definition: SearchParamDef | None = self._registry.get(resource_type, code)
        if definition is None or definition.type in ("composite", "special"):
            return None
        return ParamRef(resource_type, code, definition.type, tuple(definition.target))

    def parse(self, resource_type: str, items: Iterable[tuple[str, str]], *, lenient: bool = False) -> SearchQuery:
        query = SearchQuery(resource_type, count=self._default_count)
        for key, raw in items:
            if "\x00" in key or "\x00" in raw:  # no stored value holds one, and no database takes one in a query
                raise InvalidRequest(f"search parameter '{key.replace(chr(0), '')}': contains a NUL character (U+0000)")
            if key in RESULT_PARAMETERS:
                self._result_parameter(query, key, raw)
                continue
            try:
                criterion = self._criterion(resource_type, key, raw)
            except UnknownParameter:
                if not lenient:
                    raise
                query.ignored.append(key)
                continue
            query.criteria.append(criterion)
            query.used.append((key, raw))
        return query

    # --- result parameters -------------------------------------------------------------

    def _result_parameter(self, query: SearchQuery, key: str, raw: str) -> None:
        if key == "_count":
            query.count = non_negative_int(key, raw, upper=self._max_count)
        elif key == "_offset":
            query.offset = non_negative_int(key, raw)
        elif key == "_total":
            if raw not in TOTAL_MODES:
                raise InvalidRequest(f"_total must be one of none, accurate, estimate; got '{raw}'")
            query.total = raw
        elif key == "_summary":
            if raw not in SUMMARY_MODES:
                raise InvalidRequest(f"_summary must be one of {', '.join(sorted(SUMMARY_MODES))}; got '{raw}'")
            query.summary = None if raw == "false" else raw
        elif key == "_elements":
            query.elements = tuple(e.strip() for e in raw.split(",") if e.strip())
        elif key == "_sort":
            query.sort.extend(self._sort(query.resource_type, raw))
        elif key in ("_include", "_revinclude"):
            include = self._include(key, raw, iterate=False)
            (query.includes if key == "_include" else query.revincludes).append(include)
        else:  # _format, _pretty, _getpages are handled at the edge
            return
        if key not in ("_offset",):
            query.used.append((key, raw))

    def parse_include_key(self, query: SearchQuery, key: str, raw: str) -> bool:
        """Handle ``_include:iterate`` / ``_revinclude:iterate`` (and the R3 ``:recurse``)."""
        base, _, modifier = key.partition(":")
        if base not in ("_include", "_revinclude") or modifier not in ("iterate", "recurse"):
            return False
        include = self._include(base, raw, iterate=True)
        (query.includes if base == "_include" else query.revincludes).append(include)
        query.used.append((key, raw))
        return True

    def _sort(self, resource_type: str, raw: str) -> list[SortKey]:
        keys = []
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            descending = item.startswith("-")
            code = item[1:] if descending else item
            param = self.param(resource_type, code)
            if param is None:
                raise UnknownParameter(f"Unknown sort parameter '{code}' for {resource_type}", expression=["_sort"])
            keys.append(SortKey(param, descending))
        return keys

    def _include(self, key: str, raw: str, *, iterate: bool) -> Include:
        parts = raw.split(":")
        if raw == "*":
            raise InvalidRequest(f"{key}=* needs a source type: use {key}=Type:*")
        if len(parts) < 2 or len(parts) > 3:
            raise InvalidRequest(f"{key} must be Source:parameter[:Target]; got '{raw}'")
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if not self.known_type(source):
            raise InvalidRequest(f"{key}: unknown resource type '{source}'")
        if target is not None and not self.known_type(target):
            raise InvalidRequest(f"{key}: unknown target type '{target}'")
        if code == "*":
            return Include(source, None, target, iterate, raw)
        param = self.param(source, code)
        if param is None or param.type != "reference":
            raise InvalidRequest(f"{key}: '{code}' is not a reference search parameter of {source}")
        return Include(source, param, target, iterate, raw)

    # --- criteria ------------------------------------------------------------------------

    def _criterion(self, resource_type: str, key: str, raw: str) -> Criterion:
        if key.startswith("_has:"):
            return self._has(resource_type, key, raw)
        head, dot, tail = key.partition(".")
        code, _, modifier = head.partition(":")
        param = self.param(resource_type, code)
        if param is None:
            raise UnknownParameter(
                f"Unknown search parameter '{code}' for resource type {resource_type}", expression=[key]
            )
        if dot:
            return self._chain(resource_type, key, param, modifier or None, tail, raw)
        return Criterion(param, modifier or None, self._values(param, modifier or None, raw, key))

    def _chain(self, resource_type: str, key: str, param: ParamRef, modifier: str | None, tail: str, raw: str) -> Criterion:
        if param.type != "reference":
            raise InvalidRequest(f"'{key}': only reference parameters can be chained; {param.code} is {param.type}")
        if modifier is not None:
            if not self.known_type(modifier):
                raise InvalidRequest(f"'{key}': unknown resource type '{modifier}' in chain")
            candidates: tuple[str, ...] = (modifier,)
        else:
            candidates = param.target or tuple(self._registry.resource_types())
        tail_code = tail.partition(".")[0].partition(":")[0]
        types = tuple(t for t in candidates if tail_code.startswith("_has") or self.param(t, tail_code) is not None)
        if not types:
            raise UnknownParameter(
                f"'{key}': no target type of {resource_type}.{param.code} has a search parameter '{tail_code}'",
                expression=[key],
            )
        chained = tuple(self._criterion(t, tail, raw) for t in types)
        return Criterion(param, modifier, chain_types=types, chained=chained)

    def _has(self, resource_type: str, key: str, raw: str) -> Criterion:
        parts = key.split(":", 3)
        if len(parts) != 4:
            raise InvalidRequest(f"'{key}': _has must be _has:Type:reference:parameter")
        _, source, ref_code, rest = parts
        if not self.known_type(source):
            raise InvalidRequest(f"'{key}': unknown resource type '{source}'")
        ref = self.param(source, ref_code)
        if ref is None or ref.type != "reference":
            raise InvalidRequest(f"'{key}': '{ref_code}' is not a reference search parameter of {source}")
        inner = self._criterion(source, rest, raw)
        id_param = ParamRef(resource_type, "_id", "token")
        return Criterion(id_param, has=HasClause(source, ref, inner))

    def _values(self, param: ParamRef, modifier: str | None, raw: str, key: str) -> tuple[SearchValue, ...]:
        if modifier is not None:
            allowed = MODIFIERS.get(param.type, set())
            type_modifier = param.type == "reference" and self.known_type(modifier)
            if modifier not in allowed and not type_modifier:
                raise InvalidRequest(
                    f"'{key}': modifier ':{modifier}' is not supported for {param.type} parameters "
                    f"(supported: {', '.join(sorted(allowed)) or 'none'})"
                )
            if modifier == "missing":
                if raw not in ("true", "false"):
                    raise InvalidRequest(f"'{key}': :missing takes true or false; got '{raw}'")
                return (SearchValue(raw),)
            if modifier == "identifier":
                raise InvalidRequest(f"'{key}': the :identifier modifier is not supported by this server")
        values = []
        for item in _split_values(raw):
            if item == "":
                raise InvalidRequest(f"'{key}': empty value")
            values.append(self._value(param, modifier, item, key))
        return tuple(values)

    def _value(self, param: ParamRef, modifier: str | None, item: str, key: str) -> SearchValue:
        kind = param.type
        if kind == "date":
            prefix, rest = _split_prefix(item)
            try:
                low, high = parse_date_range(rest)
            except ValueError as exc:
                raise InvalidRequest(f"'{key}': '{item}' is not a valid date: {exc}") from None
            return SearchValue(item, prefix, low, high)
        if kind == "number":
            prefix, rest = _split_prefix(item)
            number, low, high = self._number(key, item, rest)
            return SearchValue(item, prefix, low, high, number)
        if kind == "quantity":
            prefix, rest = _split_prefix(item)
            parts = _split_escaped(rest, "|")
            if len(parts) not in (1, 3):
                raise InvalidRequest(f"'{key}': quantity must be [prefix]number[|system|code]; got '{item}'")
            number, low, high = self._number(key, item, parts[0])
            system = parts[1] or None if len(parts) == 3 else None
            code = parts[2] or None if len(parts) == 3 else None
            return SearchValue(item, prefix, low, high, number, system, code)
        if kind == "token" and modifier not in ("text",):
            if modifier == "of-type":
                parts = _split_escaped(item, "|")
                if len(parts) != 3:
                    raise InvalidRequest(f"'{key}': :of-type takes type-system|type-code|value; got '{item}'")
                return SearchValue(item, system=parts[0] or None, code=parts[2], type_code=parts[1] or None)
            parts = _split_escaped(item, "|")
            if len(parts) == 1:
                return SearchValue(item, code=parts[0])
            if len(parts) == 2:
                system, code = parts[0] or None, parts[1] or None
                document = document_for(system)
                if document is not None and code:
                    # identity document numbers are stored in canonical form under the
                    # preferred system; an alias or another spelling finds them too
                    try:
                        system, code = document.system, document.validate(code)
                    except InvalidIdentifier:
                        system = document.system
                    if param.resource_type in PERSON_TYPES:
                        # a person's numbers are indexed by their blind index only (crypto.py)
                        code = crypto.vault().blind(system, code)
                return SearchValue(item, system=system, code=code, has_system=True)
            raise InvalidRequest(f"'{key}': token must be [system|]code; got '{item}'")
        return SearchValue(_unescape(item))

    @staticmethod
    def _number(key: str, item: str, text: str) -> tuple[float, float, float]:
        try:
            number = float(text)
            low, high = decimal_precision_range(text)
        except ValueError:
            raise InvalidRequest(f"'{key}': '{item}' is not a valid number") from None
        return number, low, high
