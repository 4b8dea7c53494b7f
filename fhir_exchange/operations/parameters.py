"""Operation input and output as the FHIR operations framework defines them: parameters
come from the query string (GET) or a Parameters resource (POST); results are Parameters
resources. Unknown or repeated parameters are refused, naming them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_exchange.errors import InvalidRequest, UnknownParameter

# parameter type -> the value[x] keys a Parameters resource may carry it in
_VALUE_KEYS = {
    "string": ("valueString", "valueCode", "valueUri", "valueCanonical", "valueUrl", "valueId"),
    "code": ("valueCode", "valueString"),
    "uri": ("valueUri", "valueCanonical", "valueUrl", "valueString"),
    "boolean": ("valueBoolean",),
    "integer": ("valueInteger", "valueUnsignedInt", "valuePositiveInt"),
    "dateTime": ("valueDateTime", "valueDate", "valueString"),
    "instant": ("valueInstant", "valueDateTime", "valueString"),
    "Coding": ("valueCoding",),
    "CodeableConcept": ("valueCodeableConcept",),
    "Resource": ("resource",),
}
_CONTROL = {"_format", "_pretty"}


@dataclass(frozen=True, slots=True)
class Spec:
    """What an operation accepts: parameter name -> type; ``repeats`` names those allowed
    more than once."""

    operation: str
    parameters: dict[str, str]
    repeats: frozenset[str] = frozenset()


class OperationInput:
    def __init__(self, spec: Spec, values: dict[str, list[Any]]) -> None:
        self.spec = spec
        self._values = values

    @classmethod
    def from_query(cls, spec: Spec, items: list[tuple[str, str]]) -> OperationInput:
        values: dict[str, list[Any]] = {}
        for name, raw in items:
            if name in _CONTROL:
                continue
            kind = cls._check_name(spec, name)
            if kind == "Resource":
                raise InvalidRequest(f"${spec.operation}: '{name}' is a resource and can only be sent by POST in Parameters")
            values.setdefault(name, []).append(cls._from_text(spec, name, kind, raw))
        return cls._checked(spec, values)

    @classmethod
    def from_parameters(cls, spec: Spec, body: Any, query: list[tuple[str, str]]) -> OperationInput:
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise InvalidRequest(f"${spec.operation} by POST takes a Parameters resource")
        values = cls.from_query(spec, query)._values
        for index, parameter in enumerate(body.get("parameter") or []):
            name = parameter.get("name") if isinstance(parameter, dict) else None
            if not name:
                raise InvalidRequest("a parameter has no name", expression=[f"Parameters.parameter[{index}]"])
            kind = cls._check_name(spec, name)
            found = [key for key in _VALUE_KEYS[kind] if key in parameter]
            if not found:
                raise InvalidRequest(
                    f"${spec.operation}: parameter '{name}' needs a {kind} value ({' or '.join(_VALUE_KEYS[kind])})",
                    expression=[f"Parameters.parameter[{index}]"],
                )
            values.setdefault(name, []).append(parameter[found[0]])
        return cls._checked(spec, values)

    @staticmethod
    def _check_name(spec: Spec, name: str) -> str:
        kind = spec.parameters.get(name)
        if kind is None:
            known = ", ".join(sorted(spec.parameters))
            raise UnknownParameter(f"${spec.operation} has no parameter '{name}' (it takes: {known})")
        return kind

    @staticmethod
    def _from_text(spec: Spec, name: str, kind: str, raw: str) -> Any:
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise InvalidRequest(f"${spec.operation}: '{name}' must be true or false, not '{raw}'")
            return raw == "true"
        if kind == "integer":
            if not raw.isdigit():
                raise InvalidRequest(f"${spec.operation}: '{name}' must be a non-negative integer, not '{raw}'")
            return int(raw)
        if kind == "Coding":  # GET carries a Coding as system|code
            system, bar, code = raw.rpartition("|")
            if not bar or not code:
                raise InvalidRequest(f"${spec.operation}: '{name}' by GET is written system|code, not '{raw}'")
            return {"system": system, "code": code}
        if kind == "CodeableConcept":
            raise InvalidRequest(f"${spec.operation}: '{name}' can only be sent by POST in Parameters")
        return raw

    @staticmethod
    def _checked(spec: Spec, values: dict[str, list[Any]]) -> OperationInput:
        for name, items in values.items():
            if len(items) > 1 and name not in spec.repeats:
                raise InvalidRequest(f"${spec.operation}: parameter '{name}' is given {len(items)} times; it takes one")
        return OperationInput(spec, values)

    def get(self, name: str) -> Any:
        items = self._values.get(name)
        return items[0] if items else None

    def all(self, name: str) -> list[Any]:
        return list(self._values.get(name) or [])

    def has(self, name: str) -> bool:
        return name in self._values


def parameters(*items: dict[str, Any] | None) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [i for i in items if i is not None]}


def value(name: str, kind: str, data: Any) -> dict[str, Any] | None:
    """One output parameter (``kind`` is the value[x] suffix: String, Boolean, Code, …);
    None when there is no value to give."""
    if data is None:
        return None
    return {"name": name, f"value{kind}": data}


def part(name: str, *parts: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": name, "part": [p for p in parts if p is not None]}
