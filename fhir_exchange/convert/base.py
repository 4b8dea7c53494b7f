"""What every reader (HL7 v2, CDA, FHIR bundles in other profiles) gives the ingest path.

A reader turns one input (one message, one document) into one ``Conversion``: a FHIR R4
``transaction`` Bundle that the ingest path applies atomically, with the key that makes a
resend harmless (``message_id``, unique per sender). Readers are pure: no database, no
network; they may call ``terminology`` (translate codes, display names). They never decide
identity themselves: a Patient is written as a conditional update on its identity document
(``PUT Patient?identifier=system|value``), so the same person sent twice is one Patient, and
record linkage (``fhir_exchange/identity``) links it to the same person's other records.

The ingest path adds what is common to every format: the original kept as an encrypted
Binary, a Provenance pointing at it for every resource written, ``meta.source`` naming the
sending institution, the AuditEvent, and the acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent the input: the sending institution (from the caller's token) and its local
    flavour, chosen from the institution's registration: "hk" (Hong Kong: HKID, Traditional
    Chinese, HA-style local codes), "cn" (mainland: resident ID or permits, Simplified Chinese,
    national clinical ICD-10 and drug codes), "mo" (Macao), or None (international)."""

    institution: str | None = None
    profile: str | None = None


@dataclass
class Conversion:
    kind: str  # hl7v2 | cda | fhir
    message_id: str  # the resend key within one sender: MSH-10; ClinicalDocument id (+ version)
    event: str  # e.g. "ADT^A01", "ORU^R01", "CCD", "WS/T 500 出院小结"
    bundle: dict[str, Any]  # a FHIR R4 transaction Bundle
    original: bytes
    content_type: str  # of the original: application/hl7-v2, application/xml (CDA), application/fhir+json
    warnings: list[str] = field(default_factory=list)  # what was dropped or guessed, said plainly
    version: str | None = None  # the document's version (a later version of the same id replaces it)


class ConversionError(ValueError):
    """An input that cannot be converted, said precisely enough to fix it.

    For HL7 v2, ``segment`` (e.g. "PID"), ``sequence`` (the segment's 1-based position in the
    message), ``field`` (e.g. 3) and ``code``: "AE" (application error: the message is
    understood but wrong) or "AR" (application reject: not processable at all, e.g. an unknown
    trigger or undecodable bytes), with the HL7 error code (table 0357, e.g. 101 required field
    missing, 102 data type error, 200 unsupported message type, 207 application internal error).
    For XML, ``element`` is an XPath-like location and ``line`` the source line.
    """

    def __init__(self, message: str, *, code: str = "AE", hl7_error: str = "207", segment: str | None = None,
                 sequence: int | None = None, field: int | None = None, element: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hl7_error = hl7_error
        self.segment = segment
        self.sequence = sequence
        self.field = field
        self.element = element
        self.line = line

    def where(self) -> str:
        if self.segment:
            return f"{self.segment}" + (f"-{self.field}" if self.field else "") + (
                f" (segment {self.sequence})" if self.sequence else "")
        if self.element:
            return self.element + (f" (line {self.line})" if self.line else "")
        return f"line {self.line}" if self.line else ""
