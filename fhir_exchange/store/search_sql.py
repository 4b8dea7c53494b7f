"""Turn a parsed ``SearchQuery`` into SQL over the resource and index tables.

Positive criteria are ``pk IN (SELECT resource_pk FROM idx_… WHERE …)`` semi-joins, so the
database can drive the search from the index rather than scanning every resource of the
type. Prefix semantics follow search.html of R4: a value denotes a range (its precision),
and the prefixes compare the resource's range with the search value's range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)

from fhir_exchange.errors import InvalidRequest
from fhir_exchange.search.params import Criterion, ParamRef, SearchValue, SortKey
from fhir_exchange.search.values import normalize_string
from fhir_exchange.store.models import (
    DateIndex,
    NumberIndex,
    QuantityIndex,
    ReferenceIndex,
    ResourceRow,
    StringIndex,
    TokenIndex,
    UriIndex,
)

TABLE_FOR_TYPE: dict[str, Any] = {
    "string": StringIndex,
    "token": TokenIndex,
    "date": DateIndex,
    "reference": ReferenceIndex,
    "quantity": QuantityIndex,
    "number": NumberIndex,
    "uri": UriIndex,
}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SearchSQL:
    """Builds the WHERE clauses and ORDER BY of a search. ``base_urls`` are the server's own
    base URLs, so absolute references to this server match local ones."""

    def __init__(self, base_urls: tuple[str, ...] = ()) -> None:
        self._base_urls = tuple(u.rstrip("/") for u in base_urls if u)

    # --- entry points ----------------------------------------------------------------------

    def matching(self, resource_type: str, criteria: list[Criterion]) -> Select[Any]:
        """SELECT pk of the live resources of ``resource_type`` that meet every criterion.

        One positive index criterion drives the query (``pk IN (index rows)``); the others are
        checked per candidate (``EXISTS`` on the index by resource). Index rows carry the type,
        so with a driver the resource table is reached by primary key only; without one, the
        type's rows are scanned.
        """
        r = ResourceRow.__table__
        return select(r.c.pk).where(*self._conditions(resource_type, criteria, r))

    def _conditions(self, resource_type: str, criteria: list[Criterion], r: Any) -> list[ColumnElement[bool]]:
        driver = _choose_driver(criteria)
        conditions: list[ColumnElement[bool]] = [r.c.deleted == false()]
        if driver is None:
            conditions.append(r.c.res_type == resource_type)
        for c in criteria:
            conditions.append(self.criterion(resource_type, c, r, correlated=c is not driver))
        return conditions

    def order_by(self, resource_type: str, sort: list[SortKey]) -> list[ColumnElement[Any]]:
        r = ResourceRow
        clauses: list[ColumnElement[Any]] = []
        for key in sort:
            expr = self._sort_expression(resource_type, key)
            clauses.append((expr.desc() if key.descending else expr.asc()).nulls_last())
        clauses.append(r.pk.asc())
        return clauses

    # --- criteria --------------------------------------------------------------------------

    def criterion(self, resource_type: str, c: Criterion, r: Any, *, correlated: bool = False) -> ColumnElement[bool]:
        """The condition ``c`` puts on the resource table (or alias) ``r``."""
        pk_col, id_col = r.c.pk, r.c.res_id
        if c.has is not None:
            return id_col.in_(self._has_subquery(resource_type, c))
        if c.chained:
            return pk_col.in_(self._chain_subquery(resource_type, c))
        p = c.param
        if p.code == "_id":
            return self._id_clause(c, id_col)
        if p.code == "_lastUpdated":
            return or_(*[self._date_clause(_aware(v), r.c.last_updated, None) for v in c.values])
        table = TABLE_FOR_TYPE[p.type]
        base = [table.res_type == resource_type, table.param == p.code]
        if c.modifier == "missing":
            present = pk_col.in_(select(table.resource_pk).where(*base))
            return not_(present) if c.values[0].raw == "true" else present
        if c.modifier == "not":
            # :not matches resources with no value equal to any given (including none at all).
            inner = or_(*[self._token_value(table, v) for v in c.values])
            return not_(pk_col.in_(select(table.resource_pk).where(*base, inner)))
        if c.values and all(v.prefix == "ne" for v in c.values) and p.type in ("date", "number", "quantity"):
            inner = or_(*[self._value_clause(p, c.modifier, table, v, negate_ne=True) for v in c.values])
            return not_(pk_col.in_(select(table.resource_pk).where(*base, inner)))
        inner = or_(*[self._value_clause(p, c.modifier, table, v) for v in c.values])
        if correlated:
            # resource_pk implies the type: leaving res_type out keeps planners on the
            # (resource_pk, param) index, one seek per candidate.
            return exists().where(table.resource_pk == pk_col, table.param == p.code, inner)
        return pk_col.in_(select(table.resource_pk).where(*base, inner))

    def _id_clause(self, c: Criterion, id_col: Any) -> ColumnElement[bool]:
        ids = [v.code if v.code is not None else v.raw for v in c.values]
        if c.modifier == "not":
            return not_(id_col.in_(ids))
        if c.modifier == "missing":
            return false() if c.values[0].raw == "true" else true()
        return id_col.in_(ids)

    def _value_clause(
        self, p: ParamRef, modifier: str | None, table: Any, v: SearchValue, negate_ne: bool = False
    ) -> ColumnElement[bool]:
        kind = p.type
        if kind == "string":
            text = normalize_string(v.raw)
            if modifier == "exact":
                return table.exact == v.raw
            if modifier == "contains":
                return table.value.like(f"%{_like_escape(text)}%", escape="\\")
            return table.value.like(f"{_like_escape(text)}%", escape="\\")
        if kind == "token":
            if modifier == "text":
                return table.text.like(f"{_like_escape(normalize_string(v.raw))}%", escape="\\")
            if modifier == "of-type":
                return and_(table.type_system == v.system, table.type_code == v.type_code, table.code == v.code)
            return self._token_value(table, v)
        if kind == "date":
            if negate_ne:
                v = _with_prefix(v, "eq")
            return self._date_clause(v, table.low, table.high)
        if kind in ("number", "quantity"):
            if negate_ne:
                v = _with_prefix(v, "eq")
            clause = self._number_clause(v, table.value)
            if kind == "quantity" and (v.system or v.code):
                if v.system:
                    clause = and_(clause, table.system == v.system)
                if v.code:
                    clause = and_(clause, or_(table.code == v.code, and_(table.code.is_(None), table.unit == v.code)))
            return clause
        if kind == "reference":
            return self._reference_value(p, modifier, table, v)
        if kind == "uri":
            if modifier == "below":
                return table.value.like(f"{_like_escape(v.raw)}%", escape="\\")
            if modifier == "above":
                # the stored uri is a prefix of the search value
                return func.substr(v.raw, 1, func.length(table.value)) == table.value
            return table.value == v.raw
        raise InvalidRequest(f"search parameter type '{kind}' is not supported")

    @staticmethod
    def _token_value(table: Any, v: SearchValue) -> ColumnElement[bool]:
        if not v.has_system:
            return table.code == v.code
        if v.system is None:  # |code: no system
            return and_(table.system.is_(None), table.code == v.code)
        if v.code is None:  # system|
            return table.system == v.system
        return and_(table.system == v.system, table.code == v.code)

    def _reference_value(self, p: ParamRef, modifier: str | None, table: Any, v: SearchValue) -> ColumnElement[bool]:
        raw = v.raw
        for base in self._base_urls:
            if raw.startswith(base + "/"):
                raw = raw[len(base) + 1 :]
                break
        if "://" in raw or raw.startswith("urn:"):
            return table.url == raw.split("|", 1)[0]
        parts = raw.split("/")
        if len(parts) >= 4 and parts[2] == "_history":
            parts = parts[:2]
        if len(parts) == 2:
            type_name, ident = parts
            if modifier and modifier != type_name:
                return false()
            return and_(table.target_type == type_name, table.target_id == ident)
        if modifier:
            return and_(table.target_type == modifier, table.target_id == raw)
        return table.target_id == raw

    @staticmethod
    def _number_clause(v: SearchValue, column: Any) -> ColumnElement[bool]:
        n, low, high = v.number, v.low, v.high
        match v.prefix:
            case "eq":
                return and_(column >= low, column < high)
            case "ne":
                return or_(column < low, column >= high)
            case "gt" | "sa":
                return column > n
            case "lt" | "eb":
                return column < n
            case "ge":
                return column >= n
            case "le":
                return column <= n
            case "ap":
                margin = abs(n) * 0.1  # search.html: "approximately the same (within 10%)"
                return and_(column >= n - margin, column <= n + margin)
        raise InvalidRequest(f"unknown prefix '{v.prefix}'")

    @staticmethod
    def _date_clause(v: SearchValue, low_col: Any, high_col: Any | None) -> ColumnElement[bool]:
        """Compare the resource's range [low_col, high_col] with the search range [ls, hs]."""
        high_col = low_col if high_col is None else high_col
        ls, hs = v.low, v.high
        match v.prefix:
            case "eq":
                return and_(low_col >= ls, high_col <= hs)
            case "ne":
                return or_(low_col < ls, high_col > hs)
            case "gt":
                return high_col > hs
            case "lt":
                return low_col < ls
            case "ge":
                return or_(high_col > hs, and_(low_col >= ls, high_col <= hs))
            case "le":
                return or_(low_col < ls, and_(low_col >= ls, high_col <= hs))
            case "sa":
                return low_col > hs
            case "eb":
                return high_col < ls
            case "ap":
                now = datetime.now(UTC) if ls.tzinfo else datetime.now(UTC).replace(tzinfo=None)
                margin = max(abs(now - ls) * 0.1, timedelta(days=1))
                return and_(high_col >= ls - margin, low_col <= hs + margin)
        raise InvalidRequest(f"unknown prefix '{v.prefix}'")

    # --- chains ------------------------------------------------------------------------------

    def _chain_subquery(self, resource_type: str, c: Criterion) -> Select[Any]:
        ref = ReferenceIndex
        branches = []
        for target_type, chained in zip(c.chain_types, c.chained, strict=True):
            target = ResourceRow.__table__.alias()
            ids = select(target.c.res_id).where(*self._conditions(target_type, [chained], target))
            branches.append(and_(ref.target_type == target_type, ref.target_id.in_(ids)))
        return select(ref.resource_pk).where(ref.res_type == resource_type, ref.param == c.param.code, or_(*branches))

    def _has_subquery(self, resource_type: str, c: Criterion) -> Select[Any]:
        assert c.has is not None
        ref = ReferenceIndex
        source = ResourceRow.__table__.alias()
        inner = self.criterion(c.has.source_type, c.has.criterion, source)
        return (
            select(ref.target_id)
            .join(source, source.c.pk == ref.resource_pk)
            .where(
                ref.res_type == c.has.source_type,
                ref.param == c.has.reference_param.code,
                ref.target_type == resource_type,
                source.c.deleted == false(),
                inner,
            )
        )

    # --- sorting -----------------------------------------------------------------------------

    def _sort_expression(self, resource_type: str, key: SortKey) -> ColumnElement[Any]:
        r = ResourceRow
        p = key.param
        if p.code == "_id":
            return r.res_id
        if p.code == "_lastUpdated":
            return r.last_updated
        table = TABLE_FOR_TYPE[p.type]
        if p.type == "token":
            column = table.code
        elif p.type == "reference":
            column = table.target_id
        elif p.type == "date":
            column = table.high if key.descending else table.low
        else:  # string, number, quantity, uri
            column = table.value
        aggregate = func.max(column) if key.descending else func.min(column)
        return (
            select(aggregate)
            .where(table.resource_pk == r.pk, table.res_type == resource_type, table.param == p.code)
            .scalar_subquery()
        )


# --- conditional matches in one statement --------------------------------------------------

# The shape of a conditional match whose criteria are all plain ``system|code`` tokens (an
# identifier, a custodian tag): its resource type and its parameter codes, in order.
TokenShape = tuple[str, tuple[str, ...]]


def token_shape(resource_type: str, criteria: Sequence[Criterion]) -> TokenShape | None:
    """The shape of ``criteria`` if every one is a plain token parameter with one value
    ``system|code`` (both given, no modifier, no chain): then a resource matches exactly when
    it has, for every criterion, an index row with that param, system and code."""
    codes = []
    for c in criteria:
        if c.has is not None or c.chained or c.modifier is not None or c.param.type != "token" or len(c.values) != 1:
            return None
        if c.param.code in ("_id", "_lastUpdated"):
            return None
        v = c.values[0]
        if not v.has_system or v.system is None or v.code is None:
            return None
        codes.append(c.param.code)
    return (resource_type, tuple(codes)) if codes else None


def token_values(criteria: Sequence[Criterion]) -> tuple[tuple[str, str], ...]:
    """The (system, code) of each criterion of a query that has a ``token_shape``."""
    return tuple((c.values[0].system, c.values[0].code) for c in criteria)  # type: ignore[misc]


@lru_cache(maxsize=256)
def token_matches_statement(shapes: tuple[TokenShape, ...], limit: int) -> Select[Any] | CompoundSelect:
    """One statement answering several conditional matches together, one branch per query
    (``shapes``: each query's shape, in order), built once per sequence of shapes and shared
    (SQLAlchemy statements are immutable); the values are bound parameters ``s{query}_{i}``
    and ``c{query}_{i}``, the system and code of the query's criterion ``i``.

    Each branch is the statement ``SearchSQL.matching`` builds for such a query: the first
    criterion drives (``pk IN`` its index rows, found by type, param, code and system), the
    others are checked per candidate (``EXISTS``), live resources only, the first ``limit``
    by pk. Rows: (query, pk, res_id, res_type, release_facts, version_id), ordered by query and
    pk (what the gate needs to decide a match from its facts: ``FhirRepository.match_ids``)."""
    r = ResourceRow.__table__
    token = TokenIndex.__table__
    branches = []
    for q, (resource_type, codes) in enumerate(shapes):
        conditions: list[ColumnElement[bool]] = [r.c.deleted == false()]
        for i, code in enumerate(codes):
            value = and_(token.c.system == bindparam(f"s{q}_{i}"), token.c.code == bindparam(f"c{q}_{i}"))
            if i == 0:
                conditions.append(r.c.pk.in_(select(token.c.resource_pk).where(
                    token.c.res_type == resource_type, token.c.param == code, value)))
            else:
                conditions.append(exists().where(token.c.resource_pk == r.c.pk, token.c.param == code, value))
        branches.append(select(literal(q).label("q"), r.c.pk, r.c.res_id, r.c.res_type, r.c.release_facts,
                               r.c.version_id).where(*conditions)
                        .order_by(r.c.pk).limit(limit))
    if len(branches) == 1:
        return branches[0]
    union = union_all(*[select(branch.subquery()) for branch in branches])
    return union.order_by(union.selected_columns.q, union.selected_columns.pk)


def _with_prefix(v: SearchValue, prefix: str) -> SearchValue:
    return SearchValue(v.raw, prefix, v.low, v.high, v.number, v.system, v.code, v.has_system, v.type_code)


def _aware(v: SearchValue) -> SearchValue:
    """The value with UTC-aware bounds, for comparison with ``resource.last_updated``."""
    low = v.low.replace(tzinfo=UTC) if isinstance(v.low, datetime) else v.low
    high = v.high.replace(tzinfo=UTC) if isinstance(v.high, datetime) else v.high
    return SearchValue(v.raw, v.prefix, low, high, v.number, v.system, v.code, v.has_system, v.type_code)


# Without statistics, guess which criterion narrows most: references and identifiers first.
_DRIVER_PRIORITY = {"reference": 0, "token": 1, "uri": 2, "string": 3, "quantity": 4, "number": 4, "date": 5}


def _choose_driver(criteria: list[Criterion]) -> Criterion | None:
    """The positive, plain index criterion to drive the search from, if any."""
    candidates = [
        c for c in criteria
        if c.has is None and not c.chained and c.param.code not in ("_id", "_lastUpdated")
        and c.modifier not in ("missing", "not")
        and not (c.values and all(v.prefix == "ne" for v in c.values))
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda c: _DRIVER_PRIORITY.get(c.param.type, 9))
