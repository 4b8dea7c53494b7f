"""The HL7 v2 reader (versions 2.3 to 2.5.1, and the later 2.x messages real feeds send):
bytes in, one ``Conversion`` (a FHIR R4 transaction Bundle) per message out.

Parser: **python-hl7** (PyPI ``hl7``), not hl7apy. Both are maintained and parse ER7; the
reasons for python-hl7:

- it is tolerant as real feeds need: it splits by the message's own delimiters and imposes no
  version's message structure, so a 2.3 hospital feed, a 2.5.1 laboratory and a 2.8 message
  with newer segments (PRT, ARV, IAM) all parse. hl7apy validates against its structure
  definitions and, in tolerant mode, still rejects segments its version does not define (three
  of the 139 corpus messages: ``PRT`` in 2.5.1);
- it is fast: the 139 corpus messages parse in about 0.4 s, against about 11 s with hl7apy
  (``find_groups=False``), and parse-and-convert throughput matters for the ingest benchmark;
- it has no dependencies, and ships MLLP helpers the ingest path's tests can use.
The structure hl7apy would check (which segment follows which) is checked here from a small
table (``tables/events.json``, ``segment_requires``), the part of it a converter depends on.

Nothing is parsed by hand beyond framing and the character set (``message.py``,
``charset.py``); values are converted by ``datatypes.py`` and segments by ``resources.py``.

Errors: a message that cannot be converted raises ``ConversionError`` naming the segment, its
position and the field, with AR (rejected: undecodable bytes, not HL7, unsupported message
type, trigger or version, a missing MSH-9/MSH-10) or AE (understood but wrong: segments out of
order, PID-3 missing, an invalid embedded document) and the table-0357 error code. Nothing else
escapes: what cannot be converted inside a valid message is left out with a warning.
"""

from __future__ import annotations

import re
from typing import Any

from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.convert.hl7v2 import charset
from fhir_exchange.convert.hl7v2.bundle import FACILITY_TAG, MESSAGE_TAG, BundleBuilder
from fhir_exchange.convert.hl7v2.datatypes import DTM, Types
from fhir_exchange.convert.hl7v2.message import Message, parse, split_messages
from fhir_exchange.convert.hl7v2.profiles import Profile, profile
from fhir_exchange.convert.hl7v2.resources import Converter
from fhir_exchange.convert.hl7v2.tables import EVENTS

CONTENT_TYPE = "application/hl7-v2"
VERSION = re.compile(r"^2\.(\d+)(\.\d+)*$")
TESTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")


def read(data: bytes, source: Source) -> list[Conversion]:
    """Every message of ``data`` (one message, or a batch) converted; the first message that
    cannot be converted raises ``ConversionError`` (``read_each`` reports each on its own)."""
    results = read_each(data, source)
    for result in results:
        if isinstance(result, ConversionError):
            raise result
    return [r for r in results if isinstance(r, Conversion)]


def read_each(data: bytes, source: Source) -> list[Conversion | ConversionError]:
    """Like ``read``, but a batch's messages each on their own: a Conversion or the error that
    message has, in order (for batch jobs that record each message's fate). Undecodable input
    fails as a whole: its messages cannot be found. A single message's ``original`` is the input
    byte for byte; a batch's messages are each their own text, re-encoded in the input's
    character set, without the FHS/BHS envelope."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ConversionError("the input must be bytes", code="AR", hl7_error="102")
    data = bytes(data)
    chosen = profile(source.profile)
    decoded = charset.decode(data, chosen.undeclared_charsets)
    texts = split_messages(decoded.text)
    if not texts:
        raise ConversionError("no HL7 v2 message found: the input is empty", code="AR", hl7_error="100",
                              segment="MSH", sequence=1)
    results: list[Conversion | ConversionError] = []
    for position, text in enumerate(texts, 1):
        original = data if len(texts) == 1 else text.encode(decoded.codec, errors="strict") + b"\r"
        try:
            results.append(_convert(text, original, source, chosen, list(decoded.warnings)))
        except ConversionError as error:
            if len(texts) > 1:
                error.message = f"message {position} of {len(texts)}: {error.message}"
                error.args = (error.message,)
            results.append(error)
    return results


def _required(message: Message, number: int, what: str, code: str = "AR") -> str:
    value = message.msh.get(number)
    if not value:
        raise message.msh.error(f"{what} is required", number, code=code, hl7_error="101")
    return value


def _event(message: Message) -> tuple[str, str, str, dict[str, Any]]:
    msh = message.msh
    kind = _required(message, 9, "the message type (MSH-9)").upper()
    trigger = msh.get(9, 2).upper()
    if not trigger:
        evn = message.first("EVN")
        trigger = evn.get(1).upper() if evn is not None else ""
    if not trigger:
        raise msh.error("the trigger event (MSH-9.2) is required", 9, code="AR", hl7_error="101")
    known = EVENTS["messages"].get(kind)
    if known is None:
        raise msh.error(f"{kind} messages are not converted (supported: {', '.join(sorted(EVENTS['messages']))})", 9,
                        code="AR", hl7_error="200")
    event = known["triggers"].get(trigger)
    if event is None:
        raise msh.error(f"{kind}^{trigger} is not a trigger BayLink converts (supported for {kind}: "
                        f"{', '.join(sorted(known['triggers']))})", 9, code="AR", hl7_error="201")
    return kind, trigger, known["family"], event


def _offset(message: Message) -> str | None:
    """The UTC offset of MSH-7, if it has one: the sender's local time for times sent without."""
    match = DTM.match(message.msh.get(7))
    if match and match.group(8):
        offset = match.group(8)
        return f"{offset[:3]}:{offset[3:]}"
    return None


def _convert(text: str, original: bytes, source: Source, chosen: Profile, warnings: list[str]) -> Conversion:
    message = parse(text)
    kind, trigger, family, event = _event(message)
    control_id = _required(message, 10, "the message control id (MSH-10)")
    version = _required(message, 12, "the version (MSH-12)")
    if not VERSION.match(version):
        raise message.msh.error(f"version '{version}' is not an HL7 v2 version", 12, code="AR", hl7_error="203")
    if version not in TESTED_VERSIONS:
        warnings.append(f"version {version}: read with the 2.5.1 field layout (BayLink is tested on 2.3 to 2.5.1 and "
                        f"on 2.6/2.8 samples)")
    facility = message.msh.rep(4)
    facility_name = " ".join((facility.c(1) or facility.c(2)).split())
    scope = source.institution or facility_name or "unknown-sender"
    types = Types(chosen, scope, _offset(message))
    tags = [{"system": MESSAGE_TAG, "code": " ".join(control_id.split())}]
    if facility_name:
        tags.append({"system": FACILITY_TAG, "code": facility_name})
    bundle = BundleBuilder(tags)
    Converter(message, source, chosen, types, bundle, family, trigger, event).run()
    return Conversion(kind="hl7v2", message_id=control_id, event=f"{kind}^{trigger}", bundle=bundle.build(),
                      original=original, content_type=CONTENT_TYPE, warnings=[*warnings, *types.warnings])
