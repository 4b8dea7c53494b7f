"""What one conversion carries along: the resources made so far (each with its urn:uuid), the
warnings, the terminology to translate with, and the document's settings (language, time
zone rule, narrative ids)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from fhir_exchange.convert.cda.xml import V3, Element, local, location


class Terms(Protocol):
    """What the reader asks of ``terminology.api.Terminology``."""

    def translate(self, system: str, code: str, target_system: str | None = None,
                  language: str | None = None) -> tuple[Any, ...]: ...

    def display(self, system: str, code: str, language: str | None = None) -> str | None: ...

    def normalise_unit(self, spelling: str) -> Any | None: ...


@dataclass
class Made:
    full_url: str
    resource: dict[str, Any]
    request: dict[str, Any]
    in_document: bool = True


@dataclass
class Context:
    terms: Terms | None
    language: str | None = None
    default_offset: str | None = None  # "+08:00" for Bay Area documents; None: times without offset kept to the day
    wst500: bool = False
    made: list[Made] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    narrative: dict[str, str] = field(default_factory=dict)  # ID → text, for originalText/reference
    shared: dict[tuple[Any, ...], str] = field(default_factory=dict)  # dedupe key → fullUrl
    patient: str = ""  # the Patient's fullUrl
    _warned: set[str] = field(default_factory=set)

    def add(self, resource: dict[str, Any], request: dict[str, Any] | None = None, *, key: tuple[Any, ...] | None = None,
            in_document: bool = True) -> str:
        """Record a resource; its urn:uuid fullUrl. With ``key``, the same key gives the
        same resource (one Practitioner for one author named twice)."""
        if key is not None and key in self.shared:
            return self.shared[key]
        full_url = f"urn:uuid:{uuid.uuid4()}"
        self.made.append(Made(full_url, resource, request or {"method": "POST", "url": resource["resourceType"]},
                              in_document))
        if key is not None:
            self.shared[key] = full_url
        return full_url

    def warn(self, message: str, el: Element | None = None, *, once: str | None = None) -> None:
        if once is not None:
            if once in self._warned:
                return
            self._warned.add(once)
        self.warnings.append(f"{location(el)}: {message}" if el is not None else message)

    def index_narrative(self, root: Element) -> None:
        for el in root.iter(f"{{{V3}}}*"):
            ident = el.get("ID")
            if ident and local(el) not in ("ClinicalDocument",):
                value = " ".join("".join(el.itertext()).split())
                if value:
                    self.narrative[ident] = value
