"""The R4 search parameter registry, per resource type.

The table ``search_parameters.json`` beside this module is generated from the official R4
SearchParameter bundle by ``scripts/build_search_params.py``. Many definitions share one
code across several resource types with a union expression (``AllergyIntolerance.patient |
CarePlan.subject.where(resolve() is Patient) | ...``); the registry keeps, for each type,
only the union branches that apply to it.

The R4 type hierarchy (which types are resources, which are DomainResources, which data
types specialise which) comes from the R4 structure model that ships with fhirpathpy, the
evaluator ``fhir_exchange.search.extract`` falls back to.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fhir.resources.R4B import fhirtypes as r4b_types
from fhirpathpy.models import models as _fhirpath_models

TABLE_FILE = "search_parameters.json"
ABSTRACT_BASES = ("Resource", "DomainResource")


@dataclass(frozen=True)
class SearchParamDef:
    """One search parameter as it applies to one resource type.

    ``expression`` is only the part of the definition's expression that applies to that
    type (``None`` never occurs in the registry: parameters without one are left out);
    ``base`` and ``target`` are the definition's own.
    """

    code: str
    type: str
    expression: str | None
    base: tuple[str, ...]
    target: tuple[str, ...]


@cache
def r4_model() -> dict[str, Any]:
    """The R4 structure model (``path2Type``, ``choiceTypePaths``, ``type2Parent``,
    ``pathsDefinedElsewhere``) in the form fhirpathpy evaluates with."""
    return _fhirpath_models["r4"]


def type_ancestors(type_name: str) -> Iterator[str]:
    """The R4 supertypes of a type, nearest first (``Age`` → ``Quantity``, ``Element``...)."""
    parents = r4_model()["type2Parent"]
    seen = {type_name}
    while (type_name := parents.get(type_name)) and type_name not in seen:
        seen.add(type_name)
        yield type_name


@cache
def r4_resource_types() -> frozenset[str]:
    """Every concrete R4 resource type."""
    return frozenset(
        t for t in r4_model()["type2Parent"] if t not in ABSTRACT_BASES and "Resource" in type_ancestors(t)
    )


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression at its top-level ``|`` operators (not inside parentheses,
    brackets or string literals)."""
    branches: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    i = 0
    while i < len(expression):
        ch = expression[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(expression[start:i].strip())
            start = i + 1
        i += 1
    branches.append(expression[start:].strip())
    return [b for b in branches if b]


def branch_root(branch: str) -> str:
    """The type name a union branch starts from: ``(Observation.value as Quantity)`` → ``Observation``."""
    text = branch.lstrip("( ")
    end = 0
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]


def expression_for_type(expression: str, resource_type: str, base: tuple[str, ...]) -> str | None:
    """The branches of ``expression`` that apply to ``resource_type``, joined again with ``|``.

    A branch applies if it starts with the type itself, or with ``Resource`` /
    ``DomainResource`` where the definition has that abstract base. A branch that starts
    with an element name (``name | alias`` of InsurancePlan-name) is relative to the
    resource: it is given the type as its root (``InsurancePlan.name``).
    """
    roots = {resource_type} | {b for b in base if b in ABSTRACT_BASES}
    kept = []
    for branch in split_union(expression):
        root = branch_root(branch)
        if root in roots:
            kept.append(branch)
        elif root[:1].islower():
            kept.append(_RELATIVE_BRANCH.sub(rf"\g<1>{resource_type}.", branch, count=1))
    return " | ".join(kept) if kept else None


_RELATIVE_BRANCH = re.compile(r"^(\(*\s*)")


def _has_r4b_model(resource_type: str) -> bool:
    # The check fhir.resources.R4B.get_fhir_model_class makes, without importing every
    # model module (which takes over a second).
    return hasattr(r4b_types, f"{resource_type}Type")


def _expand_base(base: str, known_types: frozenset[str]) -> frozenset[str]:
    if base == "Resource":
        return known_types
    if base == "DomainResource":
        return frozenset(t for t in known_types if "DomainResource" in type_ancestors(t))
    return frozenset({base}) & known_types


def load_table() -> list[dict[str, Any]]:
    """The raw rows of ``search_parameters.json``."""
    text = resources.files(__package__).joinpath(TABLE_FILE).read_text(encoding="utf-8")
    return json.loads(text)


class SearchParamRegistry:
    """Search parameters per resource type; every lookup is a dict access."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        known_types = frozenset(t for t in r4_resource_types() if _has_r4b_model(t))
        self._by_type: dict[str, dict[str, SearchParamDef]] = {}
        for row in rows:
            self._add(row, known_types)

    def _add(self, row: dict[str, Any], known_types: frozenset[str]) -> None:
        base = tuple(row["base"])
        types = frozenset().union(*(_expand_base(b, known_types) for b in base))
        for resource_type in types:
            params = self._by_type.setdefault(resource_type, {})
            expression = row.get("expression")
            if not expression:
                continue
            own = expression_for_type(expression, resource_type, base)
            if own is None:
                continue
            if row["code"] in params:
                raise ValueError(f"search parameter {resource_type}.{row['code']} is defined twice")
            params[row["code"]] = SearchParamDef(
                code=row["code"], type=row["type"], expression=own, base=base, target=tuple(row.get("target", ()))
            )

    def resource_types(self) -> list[str]:
        """Every resource type with search parameters, sorted."""
        return sorted(self._by_type)

    def params_for(self, resource_type: str) -> dict[str, SearchParamDef]:
        """The parameters of one type by code (empty for an unknown type). Do not mutate."""
        return self._by_type.get(resource_type, {})

    def get(self, resource_type: str, code: str) -> SearchParamDef | None:
        return self._by_type.get(resource_type, {}).get(code)


@cache
def registry() -> SearchParamRegistry:
    """The registry built from the shipped table, built once per process."""
    return SearchParamRegistry(load_table())
