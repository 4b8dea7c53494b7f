"""Write-time extraction of search index entries from a resource.

For every search parameter of the resource's type (``registry.params_for``) the
parameter's FHIRPath expression is evaluated, and each resulting FHIR value is turned into
index entries (``fhir_exchange.search.index``) as R4 search.html describes for the
parameter's type. ``_id`` and ``_lastUpdated`` come from the resource table, and
composite and special parameters are not indexed.

Evaluation. fhirpathpy is the reference evaluator but costs about 0.2 ms per expression;
the common shapes of the R4 definitions (``Type.a.b``, ``(Type.a as X)``, ``Type.a.as(X)``,
``.ofType(X)``, unions, ``.where(resolve() is T)``, ``.where(field='literal')``) are
compiled once per (type, parameter) into plain Python accessors that mirror fhirpathpy's
navigation exactly: the same R4 structure model decides element types and choice
(``value[x]``) keys, so both evaluators hand the converters the same typed values. The
rest (``exists() and``, ``entry[0]``, ...) is evaluated by fhirpathpy.

Two deliberate readings of the R4 expressions, applied by both evaluators:

- ``resolve()`` does not fetch anything: it yields a stub of the type named by the
  reference (``Patient/1``, ``http://x/fhir/Patient/1``, with or without ``_history``), so
  ``.where(resolve() is Patient)`` filters references by their literal type.
- ``X as T`` filters each item of X by type (what R5 writes as ``X.ofType(T)``); fhirpathpy
  would raise for a collection of more than one item, e.g. several Observation.component.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Literal

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode

from fhir_exchange.search.index import (
    DateEntry,
    IndexEntry,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_exchange.search.registry import (
    ABSTRACT_BASES,
    SearchParamDef,
    r4_model,
    r4_resource_types,
    registry,
    split_union,
    type_ancestors,
)
from fhir_exchange.search.values import MAX_DATE, MIN_DATE, normalize_string, parse_date_range

logger = logging.getLogger(__name__)

Engine = Literal["compiled", "fhirpath"]
TypedValue = tuple[str, Any]  # (FHIR type, or fhirpathpy's element path for a backbone element; JSON value)
Accessor = Callable[[dict[str, Any]], list[TypedValue]]

NOT_INDEXED_CODES = frozenset({"_id", "_lastUpdated"})
NOT_INDEXED_TYPES = frozenset({"composite", "special"})
ISO_4217 = "urn:iso:std:iso:4217"


def extract(resource: dict[str, Any], *, engine: Engine = "compiled") -> list[IndexEntry]:
    """The search index entries of a resource (parsed JSON with ``resourceType``), deduplicated.

    ``engine="fhirpath"`` evaluates every expression with fhirpathpy instead of the
    compiled accessors (for comparison and benchmarks; the entries are the same). Values
    that cannot be converted are skipped and logged at debug level.
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return []
    entries: dict[IndexEntry, None] = {}
    for plan in _plans(resource_type):
        values = plan.evaluate(resource, engine)
        for entry in plan.convert(values):
            entries[entry] = None
    return list(entries)


# --- per-type plans ---------------------------------------------------------------------------


@dataclass(slots=True)
class _ParamPlan:
    definition: SearchParamDef
    expression: str  # with Resource./DomainResource. roots replaced by the concrete type
    compiled: Accessor | None
    _fhirpath: Accessor | None = None

    def evaluate(self, resource: dict[str, Any], engine: Engine) -> list[TypedValue]:
        if engine == "compiled" and self.compiled is not None:
            return self.compiled(resource)
        if self._fhirpath is None:
            self._fhirpath = _fhirpath_accessor(self.expression)
        return self._fhirpath(resource)

    def convert(self, values: list[TypedValue]) -> Iterator[IndexEntry]:
        converter = _CONVERTERS[self.definition.type]
        for fhir_type, data in values:
            if data is None:
                continue
            yield from converter(self.definition, _fhir_type(fhir_type), data)


@cache
def _plans(resource_type: str) -> tuple[_ParamPlan, ...]:
    plans = []
    for code, definition in sorted(registry().params_for(resource_type).items()):
        if code in NOT_INDEXED_CODES or definition.type in NOT_INDEXED_TYPES or not definition.expression:
            continue
        expression = concrete_expression(definition.expression, resource_type)
        plans.append(_ParamPlan(definition, expression, compile_accessor(expression, resource_type)))
    return tuple(plans)


def concrete_expression(expression: str, resource_type: str) -> str:
    """``Resource.meta.tag`` → ``Observation.meta.tag``: fhirpathpy matches a leading type
    name against the resource's own type only."""
    roots = "|".join(ABSTRACT_BASES)
    return " | ".join(
        re.sub(rf"^(\(*\s*)(?:{roots})\.", rf"\g<1>{resource_type}.", branch) for branch in split_union(expression)
    )


def compiled_expressions(resource_type: str) -> dict[str, bool]:
    """For each indexed parameter of a type: whether its expression runs compiled (else fhirpathpy)."""
    return {p.definition.code: p.compiled is not None for p in _plans(resource_type)}


# --- the R4 structure model ------------------------------------------------------------------

_SYSTEM_TYPES = {
    "System.String": "string",
    "System.Boolean": "boolean",
    "System.Integer": "integer",
    "System.Decimal": "decimal",
    "System.Date": "date",
    "System.DateTime": "dateTime",
    "System.Time": "time",
}


def _fhir_type(type_path: str) -> str:
    return _SYSTEM_TYPES.get(type_path, type_path)


@dataclass(frozen=True, slots=True)
class _Child:
    """How to read element ``key`` of a value of some type: the JSON keys to look at, each
    with the type of the value found there (several for a choice element ``value[x]``)."""

    keys: tuple[tuple[str, str], ...]
    choice: bool


@cache
def _child(parent_type: str, key: str) -> _Child:
    # Mirrors fhirpathpy's member navigation (engine.evaluators.create_reduce_member_invocation).
    model = r4_model()
    path = model["pathsDefinedElsewhere"].get(f"{parent_type}.{key}", f"{parent_type}.{key}")
    choices = model["choiceTypePaths"].get(path)
    if choices:
        return _Child(tuple((key + t, model["path2Type"].get(path + t, path + t)) for t in choices), True)
    if key == "extension":
        return _Child(((key, "Extension"),), False)
    return _Child(((key, model["path2Type"].get(path, path)),), False)


def _member(values: list[TypedValue], key: str) -> list[TypedValue]:
    out: list[TypedValue] = []
    for parent_type, data in values:
        if not isinstance(data, dict):
            continue
        child = _child(parent_type, key)
        for json_key, child_type in child.keys:
            found = data.get(json_key)
            if found is None:
                if child.choice and data.get("_" + json_key) is not None:
                    break  # the choice is present, with an extension but no value
                continue
            if isinstance(found, list):
                out.extend(_typed(child_type, item) for item in found if item is not None)
            else:
                out.append(_typed(child_type, found))
            break
    return out


def _typed(type_path: str, data: Any) -> TypedValue:
    if isinstance(data, dict) and isinstance(data.get("resourceType"), str):
        return data["resourceType"], data  # a contained or Bundle entry resource
    return type_path, data


def is_type(type_path: str, wanted: str) -> bool:
    """FHIRPath ``is``: whether a value of ``type_path`` is a ``wanted`` (or a subtype)."""
    if type_path.startswith("System."):
        return type_path[len("System.") :] == wanted
    name = "BackboneElement" if "." in type_path else type_path
    return name == wanted or wanted in type_ancestors(name)


def reference_target(reference: str) -> tuple[str, str] | None:
    """(type, id) of a literal reference ``Type/id``, ``Type/id/_history/v`` or an absolute
    URL ending in one, where Type is an R4 resource type; else None."""
    match = _REFERENCE_RE.search(reference)
    if match is None or match["type"] not in r4_resource_types():
        return None
    if match.start() > 0 and reference[match.start() - 1] != "/":
        return None
    return match["type"], match["id"]


_REFERENCE_RE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def _resolved_type(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("reference"), str):
        target = reference_target(data["reference"])
        return target[0] if target else None
    return None


# --- compiling the common expression shapes --------------------------------------------------


class NotCompilable(ValueError):
    """The expression uses FHIRPath beyond the compiled subset; fhirpathpy evaluates it."""


_TOKEN_RE = re.compile(r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[().|=]))")


def _tokenize(expression: str) -> list[str]:
    tokens = []
    pos = 0
    text = expression.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise NotCompilable(f"unsupported syntax at {text[pos:]!r}")
        tokens.append(match.group(match.lastgroup or 0))
        pos = match.end()
    return tokens


class _Compiler:
    """Recursive descent over the subset::

        union   := path ('|' path)*
        path    := primary ('.' step)* ['as' TYPE]
        primary := TYPE | '(' union ')'
        step    := NAME | ('as' | 'ofType') '(' TYPE ')' | 'where' '(' cond ')'
        cond    := 'resolve' '(' ')' 'is' TYPE | NAME '=' STRING
    """

    def __init__(self, expression: str, resource_type: str) -> None:
        self.tokens = _tokenize(expression)
        self.pos = 0
        self.resource_type = resource_type

    def compile(self) -> Accessor:
        accessor = self._union()
        if self.pos != len(self.tokens):
            raise NotCompilable(f"unexpected {self.tokens[self.pos]!r}")
        return accessor

    def _peek(self, offset: int = 0) -> str | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _accept(self, token: str) -> bool:
        if self._peek() == token:
            self.pos += 1
            return True
        return False

    def _expect(self, token: str) -> None:
        if not self._accept(token):
            raise NotCompilable(f"expected {token!r} at {self._peek()!r}")

    def _name(self) -> str:
        token = self._peek()
        if token is None or not (token[0].isalpha() or token[0] == "_"):
            raise NotCompilable(f"expected a name at {token!r}")
        self.pos += 1
        return token

    def _union(self) -> Accessor:
        branches = [self._path()]
        while self._accept("|"):
            branches.append(self._path())
        if len(branches) == 1:
            return branches[0]
        return lambda resource: [value for branch in branches for value in branch(resource)]

    def _path(self) -> Accessor:
        accessor = self._primary()
        while self._accept("."):
            accessor = self._step(accessor)
        if self._accept("as"):
            accessor = _of_type(accessor, self._name())
        return accessor

    def _primary(self) -> Accessor:
        if self._accept("("):
            accessor = self._union()
            self._expect(")")
            return accessor
        root = self._name()
        if root != self.resource_type:
            raise NotCompilable(f"expression starts at {root}, not {self.resource_type}")
        return lambda resource: [(root, resource)] if resource.get("resourceType") == root else []

    def _step(self, accessor: Accessor) -> Accessor:
        name = self._name()
        if self._peek() != "(":
            return lambda resource: _member(accessor(resource), name)
        self._expect("(")
        if name in ("as", "ofType"):
            wanted = self._name()
            self._expect(")")
            return _of_type(accessor, wanted)
        if name == "where":
            keep = self._condition()
            self._expect(")")
            return lambda resource: [value for value in accessor(resource) if keep(value)]
        raise NotCompilable(f"function {name}() is not compiled")

    def _condition(self) -> Callable[[TypedValue], bool]:
        if self._peek() == "resolve" and self._peek(1) == "(" and self._peek(2) == ")" and self._peek(3) == "is":
            self.pos += 4
            wanted = self._name()

            def resolves_to(value: TypedValue) -> bool:
                target = _resolved_type(value[1])
                return target is not None and is_type(target, wanted)

            return resolves_to
        field = self._name()
        self._expect("=")
        literal = self._peek()
        if literal is None or not literal.startswith("'"):
            raise NotCompilable("only string literals are compiled in where()")
        self.pos += 1
        expected = [_unquote(literal)]
        return lambda value: [data for _, data in _member([value], field)] == expected


def _of_type(accessor: Accessor, wanted: str) -> Accessor:
    return lambda resource: [value for value in accessor(resource) if is_type(value[0], wanted)]


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def compile_accessor(expression: str, resource_type: str) -> Accessor | None:
    """A fast accessor for the expression evaluated on a ``resource_type`` resource, or None
    if it uses FHIRPath beyond the compiled subset."""
    try:
        return _Compiler(expression, resource_type).compile()
    except NotCompilable as reason:
        logger.debug("search expression %r runs on fhirpathpy: %s", expression, reason)
        return None


# --- the fhirpathpy fallback -------------------------------------------------------------------


def _resolve(inputs: list[Any]) -> list[ResourceNode]:
    out = []
    for data in inputs:
        target = _resolved_type(data)
        if target is not None:
            out.append(ResourceNode.create_node({"resourceType": target}))
    return out


_FHIRPATH_OPTIONS = {
    "returnRawData": True,
    "userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}},
}
_AS_OPERATOR_RE = re.compile(r"\(([^()]*?)\s+as\s+([A-Za-z]+)\)")
_AS_FUNCTION_RE = re.compile(r"\.as\(([A-Za-z]+)\)")


def fhirpath_expression(expression: str) -> str:
    """The expression with ``as`` applied per item, in a form fhirpathpy evaluates."""
    expression = _AS_OPERATOR_RE.sub(r"\1.where($this is \2)", expression)
    return _AS_FUNCTION_RE.sub(r".where($this is \1)", expression)


def _fhirpath_accessor(expression: str) -> Accessor:
    # Top-level union branches are evaluated one by one: fhirpathpy's ``|`` drops the
    # type of every value it returns (engine.invocations.existence.distinct_fn).
    branches = [
        fhirpathpy.compile(fhirpath_expression(branch), r4_model(), _FHIRPATH_OPTIONS)
        for branch in split_union(expression)
    ]

    def accessor(resource: dict[str, Any]) -> list[TypedValue]:
        values: list[TypedValue] = []
        for evaluate in branches:
            try:
                result = evaluate(resource, {})
            except (ValueError, TypeError) as error:  # a value of an unexpected shape
                logger.debug("search expression %r failed on %s: %s", expression, resource.get("resourceType"), error)
                continue
            values.extend(_from_fhirpath(item) for item in result)
        return values

    return accessor


def _from_fhirpath(item: Any) -> TypedValue:
    if isinstance(item, ResourceNode):
        return _typed(item.path or "", item.data)
    if isinstance(item, bool):
        return "boolean", item
    if isinstance(item, int):
        return "integer", item
    if isinstance(item, (float, Decimal)):
        return "decimal", item
    if isinstance(item, str):
        return "string", item
    return type(item).__name__, item


# --- converting FHIR values into entries (search.html, per parameter type) ---------------------

Converter = Callable[[SearchParamDef, str, Any], Iterable[IndexEntry]]

STRING_PRIMITIVES = frozenset({"string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid"})
DATE_PRIMITIVES = frozenset({"date", "dateTime", "instant"})
NUMBER_PRIMITIVES = frozenset({"decimal", "integer", "positiveInt", "unsignedInt", "integer64"})
CANONICAL_PRIMITIVES = frozenset({"canonical", "uri", "url"})
HUMAN_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _skip(definition: SearchParamDef, fhir_type: str, data: Any, why: str = "") -> Iterator[IndexEntry]:
    logger.debug("not indexing %s value %r of type %s%s", definition.code, data, fhir_type, f": {why}" if why else "")
    return iter(())


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(data: dict[str, Any], part: str) -> Iterator[str]:
    value = data.get(part)
    for item in value if isinstance(value, list) else [value]:
        if (text := _text(item)) is not None:
            yield text


def _string_entry(code: str, text: str) -> StringEntry | None:
    value = normalize_string(text)
    return StringEntry(code, value, text) if value else None


def _string_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    if fhir_type in STRING_PRIMITIVES and isinstance(data, str):
        texts: Iterable[str] = [data]
    elif fhir_type == "HumanName" and isinstance(data, dict):
        texts = (t for part in HUMAN_NAME_PARTS for t in _strings(data, part))
    elif fhir_type == "Address" and isinstance(data, dict):
        texts = (t for part in ADDRESS_PARTS for t in _strings(data, part))
    else:
        return _skip(definition, fhir_type, data)
    return [e for t in texts if (e := _string_entry(definition.code, t)) is not None]


def _coding_entry(code: str, coding: Any) -> TokenEntry | None:
    if not isinstance(coding, dict):
        return None
    system, value, display = _text(coding.get("system")), _text(coding.get("code")), _text(coding.get("display"))
    if system is None and value is None and display is None:
        return None
    return TokenEntry(code, system, value, normalize_string(display) if display else None)


def _codeable_concept_entries(code: str, concept: dict[str, Any]) -> Iterator[TokenEntry]:
    codings = concept.get("coding")
    for coding in codings if isinstance(codings, list) else []:
        if (entry := _coding_entry(code, coding)) is not None:
            yield entry
    if (text := _text(concept.get("text"))) is not None:
        yield TokenEntry(code, None, None, normalize_string(text))


def _identifier_entries(code: str, identifier: dict[str, Any]) -> Iterator[TokenEntry]:
    system, value = _text(identifier.get("system")), _text(identifier.get("value"))
    if system is None and value is None:
        return
    id_type = identifier.get("type") if isinstance(identifier.get("type"), dict) else {}
    type_text = _text(id_type.get("text"))
    text = normalize_string(type_text) if type_text else None
    type_codings = [c for c in id_type.get("coding") or [] if isinstance(c, dict)]
    if not type_codings:
        yield TokenEntry(code, system, value, text)
    for coding in type_codings:
        yield TokenEntry(code, system, value, text, _text(coding.get("system")), _text(coding.get("code")))


def _token_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    code = definition.code
    if fhir_type == "boolean" and isinstance(data, bool):
        return [TokenEntry(code, None, "true" if data else "false")]
    if fhir_type in STRING_PRIMITIVES and isinstance(data, str):
        return [TokenEntry(code, None, data)] if data else []
    if not isinstance(data, dict):
        return _skip(definition, fhir_type, data)
    if fhir_type == "Coding":
        entry = _coding_entry(code, data)
        return [entry] if entry else []
    if fhir_type == "CodeableConcept":
        return _codeable_concept_entries(code, data)
    if fhir_type == "Identifier":
        return _identifier_entries(code, data)
    if fhir_type == "ContactPoint":  # search.html: the [system]| part is not used, only the value
        value = _text(data.get("value"))
        return [TokenEntry(code, None, value)] if value else []
    return _skip(definition, fhir_type, data)


def _date_range(definition: SearchParamDef, text: Any) -> tuple[Any, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_date_range(text)
    except ValueError as error:
        logger.debug("not indexing %s: %s", definition.code, error)
        return None


def _period_entry(definition: SearchParamDef, period: dict[str, Any]) -> DateEntry | None:
    start, end = period.get("start"), period.get("end")
    if start is None and end is None:
        return None
    low = _date_range(definition, start) if start is not None else (MIN_DATE, MIN_DATE)
    high = _date_range(definition, end) if end is not None else (MAX_DATE, MAX_DATE)
    if low is None or high is None:
        return None
    return DateEntry(definition.code, low[0], high[1])


def _timing_entries(definition: SearchParamDef, timing: dict[str, Any]) -> Iterator[DateEntry]:
    events = timing.get("event")
    for event in events if isinstance(events, list) else []:
        if (bounds := _date_range(definition, event)) is not None:
            yield DateEntry(definition.code, *bounds)
    repeat = timing.get("repeat")
    bounds_period = repeat.get("boundsPeriod") if isinstance(repeat, dict) else None
    if isinstance(bounds_period, dict) and (entry := _period_entry(definition, bounds_period)) is not None:
        yield entry


def _date_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    if fhir_type in DATE_PRIMITIVES:
        bounds = _date_range(definition, data)
        return [DateEntry(definition.code, *bounds)] if bounds else []
    if fhir_type == "Period" and isinstance(data, dict):
        entry = _period_entry(definition, data)
        return [entry] if entry else []
    if fhir_type == "Timing" and isinstance(data, dict):
        return _timing_entries(definition, data)
    return _skip(definition, fhir_type, data)


def _reference_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    code = definition.code
    if fhir_type in CANONICAL_PRIMITIVES and isinstance(data, str):
        url = data.split("|", 1)[0]
        return [ReferenceEntry(code, None, None, url)] if url else []
    if fhir_type == "Reference" and isinstance(data, dict):
        reference = data.get("reference")
        return _literal_reference_entries(definition, reference) if isinstance(reference, str) else []
    if isinstance(data, dict) and data.get("resourceType") == fhir_type and isinstance(data.get("id"), str):
        return [ReferenceEntry(code, fhir_type, data["id"])] if _is_target(definition, fhir_type) else []
    return _skip(definition, fhir_type, data)


def _is_target(definition: SearchParamDef, resource_type: str) -> bool:
    return not definition.target or resource_type in definition.target


def _literal_reference_entries(definition: SearchParamDef, reference: str) -> list[ReferenceEntry]:
    code = definition.code
    if not reference or reference.startswith("#"):
        return []  # contained resources are not indexed
    absolute = "://" in reference or reference.startswith("urn:")
    target = None if reference.startswith("urn:") else reference_target(reference)
    if target is not None and not _is_target(definition, target[0]):
        logger.debug("%s reference %r: %s is not one of %s", code, reference, target[0], definition.target)
        target = None
    if absolute:
        return [ReferenceEntry(code, *(target or (None, None)), url=reference)]
    if target is None:
        logger.debug("not indexing %s reference %r", code, reference)
        return []
    return [ReferenceEntry(code, *target)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _quantity_entry(code: str, quantity: Any) -> QuantityEntry | None:
    if not isinstance(quantity, dict) or (value := _number(quantity.get("value"))) is None:
        return None
    system, unit_code, unit = (_text(quantity.get(k)) for k in ("system", "code", "unit"))
    return QuantityEntry(code, value, system, unit_code, unit)


def _quantity_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    code = definition.code
    if fhir_type == "Money" and isinstance(data, dict):
        value = _number(data.get("value"))
        return [QuantityEntry(code, value, ISO_4217, _text(data.get("currency")))] if value is not None else []
    if fhir_type == "Range" and isinstance(data, dict):
        return [e for e in (_quantity_entry(code, data.get("low")), _quantity_entry(code, data.get("high"))) if e]
    if is_type(fhir_type, "Quantity"):
        entry = _quantity_entry(code, data)
        return [entry] if entry else []
    return _skip(definition, fhir_type, data)  # SampledData is not searched by quantity


def _number_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    if fhir_type in NUMBER_PRIMITIVES and (value := _number(data)) is not None:
        return [NumberEntry(definition.code, value)]
    if fhir_type == "Range" and isinstance(data, dict):  # e.g. RiskAssessment.probabilityRange: both limits
        limits = (_number(q.get("value")) for q in (data.get("low"), data.get("high")) if isinstance(q, dict))
        return [NumberEntry(definition.code, value) for value in limits if value is not None]
    return _skip(definition, fhir_type, data)


def _uri_entries(definition: SearchParamDef, fhir_type: str, data: Any) -> Iterable[IndexEntry]:
    if fhir_type in STRING_PRIMITIVES and isinstance(data, str):
        return [UriEntry(definition.code, data)] if data else []
    return _skip(definition, fhir_type, data)


_CONVERTERS: dict[str, Converter] = {
    "string": _string_entries,
    "token": _token_entries,
    "date": _date_entries,
    "reference": _reference_entries,
    "quantity": _quantity_entries,
    "number": _number_entries,
    "uri": _uri_entries,
}
