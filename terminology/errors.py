"""The terminology package's errors. Each carries a stable ``code`` (a FHIR issue type) and
an HTTP status, so the FHIR edge renders it as an OperationOutcome without knowing more."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, and where: a file line (``line 12``), an element path, or ''."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class TerminologyError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  {p}" for p in self.problems)


class InvalidContent(TerminologyError):
    """A code system, map or value set (a file or a resource) is not acceptable; ``problems``
    lists every fault found, line by line, and nothing from it was stored."""


class NotFound(TerminologyError):
    status = 404
    code = "not-found"


class Unsupported(TerminologyError):
    code = "not-supported"


class Conflict(TerminologyError):
    """The content clashes with what another resource already holds (e.g. its url|version)."""

    status = 409
    code = "duplicate"
