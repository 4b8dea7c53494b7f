"""HL7 v2 acknowledgements (original mode): MSA with AA, AE or AR, and an ERR segment (v2.5
layout: ERR-2 location, ERR-3 HL7 error code from table 0357, ERR-4 severity, ERR-8 the
words) saying what was wrong and where.

To answer even a message that could not be parsed, the header fields an ACK echoes (sending
and receiving application and facility, control id, version, trigger) are read from the
first segment by its own declared separators; everything else is the parser's business.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fhir_exchange.convert.base import ConversionError


@dataclass(frozen=True, slots=True)
class Header:
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    trigger: str = ""
    version: str = "2.5"
    processing_id: str = "P"


def header_of(data: bytes) -> Header:
    """The MSH fields an ACK echoes; empty ones where the message is too broken to tell."""
    text = data.decode("latin-1", errors="replace").lstrip("\x0b\ufeff \r\n")
    if not text.startswith("MSH") or len(text) < 8:
        return Header()
    separator = text[3]
    first = text.replace("\n", "\r").split("\r", 1)[0]
    fields = first.split(separator)
    component = text[4] if len(text) > 4 else "^"

    def get(index: int) -> str:  # MSH-n is fields[n-1] (MSH-1 is the separator itself)
        return fields[index - 1] if len(fields) >= index else ""

    message_type = get(9).split(component)
    return Header(get(3), get(4), get(5), get(6), get(10)[:199], message_type[1] if len(message_type) > 1 else "",
                  (get(12).split(component)[0] or "2.5"), get(11) or "P")


def _escape(text: str) -> str:
    return (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
            .replace("~", "\\R\\").replace("\r", " ").replace("\n", " "))


def ack(header: Header, code: str, text: str = "", error: ConversionError | None = None) -> str:
    """An ACK for ``header``: ``code`` AA, AE or AR."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    segments = [
        "|".join(["MSH", "^~\\&", "BAYLINK", "BAYLINK", _escape(header.sending_application), _escape(header.sending_facility),
                  now, "", f"ACK^{_escape(header.trigger)}^ACK", str(uuid.uuid4())[:20], header.processing_id or "P",
                  header.version or "2.5"]),
        "|".join(["MSA", code, _escape(header.control_id), _escape(text[:80])]),
    ]
    if error is not None:
        location = "^".join([error.segment or "", str(error.sequence or ""), str(error.field or "")]) if error.segment else ""
        severity = "E"
        code = f"{error.hl7_error}^{_escape(_ERROR_NAMES.get(error.hl7_error, ''))}^HL70357"
        segments.append("|".join(["ERR", "", location, code, severity, "", "", "", _escape(error.message[:250])]))
    return "\r".join(segments) + "\r"


_ERROR_NAMES = {
    "0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
    "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
    "202": "Unsupported processing id", "203": "Unsupported version id", "204": "Unknown key identifier",
    "205": "Duplicate key identifier", "206": "Application record locked", "207": "Application internal error",
}
