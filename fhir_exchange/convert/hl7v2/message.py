"""Framing, and the parsed message as the converters read it.

Framing is the only text handling done here by hand: MLLP block characters and line endings
are removed, a batch (FHS/BHS … BTS/FTS, or simply several MSH) is cut into messages at each
MSH, and the MSH encoding characters are checked so that the parser cannot be misled. Each
message is then parsed by python-hl7 (``hl7.parse``), which splits fields, repetitions,
components and subcomponents with the message's own delimiters; its ``unescape`` resolves the
escape sequences (``\\F\\``, ``\\S\\``, ``\\T\\``, ``\\R\\``, ``\\E\\``, ``\\X..\\``, ``\\.br\\``).

``Segment`` gives 1-based access in HL7's own numbering (``pid.get(5, 2)`` is PID-5.2), with
``""`` (the HL7 explicit null) read as empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import hl7
from hl7.util import unescape

from fhir_exchange.convert.base import ConversionError

SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
ENVELOPE = ("FHS", "BHS", "BTS", "FTS")
MLLP_CHARACTERS = str.maketrans("", "", "\x0b\x1c")


class Rep:
    """One repetition of a field: its components, each a list of subcomponents."""

    __slots__ = ("components",)

    def __init__(self, components: list[list[str]]) -> None:
        self.components = components

    def c(self, number: int, sub: int = 1) -> str:
        if number < 1 or number > len(self.components):
            return ""
        subs = self.components[number - 1]
        return subs[sub - 1].strip() if 1 <= sub <= len(subs) else ""

    def subs(self, number: int) -> list[str]:
        return self.components[number - 1] if 1 <= number <= len(self.components) else []

    def __bool__(self) -> bool:
        return any(s.strip() for subs in self.components for s in subs)

    def text(self, separator: str = " ") -> str:
        """Every non-empty component, joined: for display where structure does not matter."""
        return separator.join(s.strip() for subs in self.components for s in subs if s.strip())


EMPTY = Rep([])


@dataclass(slots=True)
class Segment:
    name: str
    sequence: int  # the segment's 1-based position in its message
    raw: list  # type: ignore[type-arg]  # python-hl7's fields (raw[n] is field n)
    container: hl7.Message  # whose delimiters and escape character unescape the values
    _fields: dict[int, list[Rep]] = field(default_factory=dict)  # fields read so far, unescaped

    def reps(self, number: int) -> list[Rep]:
        """The non-empty repetitions of a field (read, and unescaped, when first asked for)."""
        if number < 1 or number >= len(self.raw):
            return []
        found = self._fields.get(number)
        if found is None:
            if self.name == "MSH" and number in (1, 2):  # the delimiters themselves
                found = [Rep([[str(self.raw[number][0]) if len(self.raw[number]) else ""]])]
            else:
                found = [rep for rep in _reps(self.raw[number], self.container, self.name, self.sequence, number) if rep]
            self._fields[number] = found
        return found

    def rep(self, number: int) -> Rep:
        found = self.reps(number)
        return found[0] if found else EMPTY

    def get(self, number: int, component: int = 1, sub: int = 1) -> str:
        return self.rep(number).c(component, sub)

    def error(self, message: str, field: int | None = None, *, code: str = "AE", hl7_error: str = "102") -> ConversionError:
        where = f"{self.name}-{field}" if field else self.name
        return ConversionError(f"{where} (segment {self.sequence}): {message}", code=code, hl7_error=hl7_error,
                               segment=self.name, sequence=self.sequence, field=field)


@dataclass(slots=True)
class Message:
    segments: list[Segment]
    text: str  # the message as parsed, segments separated by \r
    separators: str = "|^~\\&"
    _by_name: dict[str, list[Segment]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for segment in self.segments:
            self._by_name.setdefault(segment.name, []).append(segment)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        found = self._by_name.get(name)
        return found[0] if found else None

    def all(self, name: str) -> list[Segment]:
        return self._by_name.get(name, [])

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)


def split_messages(text: str) -> list[str]:
    """The messages of an input (one message, or a batch), each with \\r between segments.
    Batch envelope segments are dropped; blank lines and MLLP block characters are ignored."""
    lines = text.translate(MLLP_CHARACTERS).replace("\r\n", "\r").replace("\n", "\r").split("\r")
    messages: list[list[str]] = []
    for line in lines:
        if not line.strip():
            continue
        if line.startswith(ENVELOPE):
            continue
        if line.startswith("MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return ["\r".join(segments) for segments in messages]


def _check_header(text: str) -> None:
    if not text.startswith("MSH"):
        name = text[:3]
        raise ConversionError(f"the message starts with '{name}', not MSH: the MSH segment must come first",
                              code="AR", hl7_error="100", segment=name if SEGMENT_NAME.match(name) else None, sequence=1)
    header = text.split("\r", 1)[0]
    if len(header) < 5 or header[3].isalnum() or header[3].isspace():
        raise ConversionError("MSH-1 (the field separator) is missing or invalid", code="AR", hl7_error="102",
                              segment="MSH", sequence=1, field=1)
    separator = header[3]
    end = header.find(separator, 4)
    encoding = header[4:] if end == -1 else header[4:end]
    if (not 2 <= len(encoding) <= 5 or len(set(encoding + separator)) != len(encoding) + 1
            or any(ch.isalnum() or ch.isspace() for ch in encoding)):
        raise ConversionError(f"MSH-2 (the encoding characters) '{encoding}' is invalid: it must be the component, "
                              f"repetition, escape and subcomponent characters, e.g. ^~\\&", code="AR", hl7_error="102",
                              segment="MSH", sequence=1, field=2)


def _reps(raw: list, container: hl7.Message, segment: str, sequence: int, number: int) -> list[Rep]:  # type: ignore[type-arg]
    def text(value: object) -> str:
        value = str(value)
        if value == '""':
            return ""
        try:
            return unescape(container, value).replace("\r", "\n")
        except (ValueError, IndexError):
            raise ConversionError(f"{segment}-{number} (segment {sequence}): the escape sequence in '{value[:40]}' "
                                  f"is not valid", hl7_error="102", segment=segment, sequence=sequence,
                                  field=number) from None

    if not raw:
        return []
    if all(isinstance(item, str) for item in raw):
        return [Rep([[text(item)]]) for item in raw]
    reps = []
    for repetition in raw:
        if isinstance(repetition, str):
            reps.append(Rep([[text(repetition)]]))
            continue
        components = []
        for component in repetition:
            if isinstance(component, str):
                components.append([text(component)])
            else:
                components.append([text(sub) for sub in component])
        reps.append(Rep(components))
    return reps


def _refuse_nul(text: str) -> None:
    """HL7 v2 text carries no NUL character (0x00), and no database BayLink stores into can hold
    one: a message with one is refused, naming where it is."""
    at = text.find("\x00")
    if at < 0:
        return
    segments = text[:at].split("\r")
    sequence, line = len(segments), segments[-1]
    name = line[:3]
    separator = text[3] if len(text) > 3 else "|"
    number = line.count(separator) + (1 if name == "MSH" else 0)  # MSH-1 is the field separator itself
    raise ConversionError(f"{name}-{number} (segment {sequence}): contains a NUL character (0x00), which HL7 v2 "
                          f"text may not carry", code="AR", hl7_error="102", segment=name, sequence=sequence,
                          field=number)


def parse(text: str) -> Message:
    """One message (segments separated by \\r) parsed by python-hl7."""
    _refuse_nul(text)
    _check_header(text)
    try:
        parsed = hl7.parse(text)
    except (hl7.ParseException, ValueError, IndexError, AssertionError) as error:
        raise ConversionError(f"the message cannot be parsed: {error}", code="AR", hl7_error="102",
                              segment="MSH", sequence=1) from None
    separators = text[3] + text[4:8]
    segments = []
    for sequence, raw in enumerate(parsed, 1):
        name = str(raw[0][0]) if len(raw) and len(raw[0]) else ""
        if not SEGMENT_NAME.match(name):
            raise ConversionError(f"segment {sequence} has no valid segment name ('{name[:10]}'): the message is "
                                  f"truncated or its segments are not separated by carriage returns",
                                  code="AR", hl7_error="100", sequence=sequence)
        segments.append(Segment(name, sequence, raw, parsed))
    return Message(segments, text, separators)
