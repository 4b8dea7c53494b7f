"""The one error type of ``fhir_exchange``: rendered once at the edge as an OperationOutcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # IssueType: invalid, not-found, conflict, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


class FhirError(Exception):
    """A refusal with an HTTP status and one or more OperationOutcome issues."""

    status = 400
    code = "invalid"

    def __init__(
        self,
        diagnostics: str,
        *,
        expression: tuple[str, ...] | list[str] = (),
        issues: list[Issue] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.issues = issues or [Issue("error", self.code, diagnostics, tuple(expression))]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


class InvalidRequest(FhirError):
    status, code = 400, "invalid"


class UnknownParameter(FhirError):
    status, code = 400, "not-supported"


class Forbidden(FhirError):
    status, code = 403, "forbidden"


class NotFound(FhirError):
    status, code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class Gone(FhirError):
    status, code = 410, "deleted"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class UnsupportedMediaType(FhirError):
    status, code = 415, "not-supported"


class Unprocessable(FhirError):
    status, code = 422, "processing"


def from_terminology(exc: Any) -> FhirError:
    """A ``terminology.errors.TerminologyError`` as a FhirError: the same status and issue
    code, then one issue per problem it lists (an element path becomes the expression)."""
    issues = [Issue("error", exc.code, exc.message)]
    for problem in exc.problems:
        if problem.where.startswith(("CodeSystem.", "ConceptMap.", "ValueSet.")):
            issues.append(Issue("error", exc.code, problem.message, (problem.where,)))
        else:
            issues.append(Issue("error", exc.code, str(problem)))
    return FhirError(exc.message, issues=issues, status=exc.status)
