"""Bytes to text, before any parsing: the character set is chosen before a single field is
split, because in Big5 and GBK the second byte of a Chinese character may be ``|``, ``^`` or
``\\`` (the HL7 delimiters), so splitting bytes first would cut characters in half.

The rules, in order:
1. A byte-order mark says UTF-8 / UTF-16 and wins.
2. MSH-18 (table 0211: ``UNICODE UTF-8``, ``GB 18030-2000``, ``BIG-5``, ``8859/1`` …) is
   honoured. To find it, the first segment is decoded with each candidate set (UTF-8, the
   profile's, Big5-HKSCS, GB18030, finally byte for byte) until one names itself in MSH-18:
   MSH-4 may hold a hospital's Chinese name whose Big5 bytes contain ``|``, so the field cannot
   be counted in raw bytes. Big5 is read as Big5-HKSCS (a superset that holds the Hong Kong
   characters). Bytes the declared set cannot decode are rejected (AR), naming MSH-18: a wrong
   declaration is the sender's to fix, and guessing would risk mojibake.
3. Without MSH-18, valid UTF-8 (ASCII included) is UTF-8.
4. Otherwise the profile's undeclared sets are tried in turn — GB18030 for the mainland and
   international senders (mainland systems often send GB18030/GBK with no MSH-18), Big5-HKSCS
   first for Hong Kong and Macao — and the first that decodes every byte is used, with a
   warning saying so. GB18030 decodes GBK and GB2312 too.
5. Bytes nothing decodes are rejected (AR, error 102) naming the segment and field they sit in.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from fhir_exchange.convert.base import ConversionError
from fhir_exchange.convert.hl7v2.tables import COMMON

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    codec: str  # the Python codec that decoded it, e.g. "utf-8", "gb18030", "big5hkscs"
    declared: str | None  # MSH-18 as sent
    warnings: tuple[str, ...] = ()


def codec_for(declared: str) -> str | None:
    """The Python codec of an MSH-18 value (table 0211), or None when it is not known."""
    name = " ".join(declared.strip().upper().split())
    found = COMMON["charsets"].get(name) or COMMON["charsets"].get(name.replace(" ", ""))
    if found:
        return found
    if not name.isprintable():
        return None
    try:  # a sender may write the codec's own name ("GB18030", "UTF-8", "Big5")
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def _first_segment(data: bytes) -> bytes:
    end = len(data)
    for terminator in (b"\r", b"\n"):
        position = data.find(terminator)
        if position != -1:
            end = min(end, position)
    return data[:end]


def _declared_charset(header: str) -> str | None:
    """MSH-18 (its first repetition) from the first segment's text, or None."""
    if not header.startswith(("MSH", "FHS", "BHS")) or len(header) < 8:
        return None
    separator = header[3]
    fields = header.split(separator)
    # fields[0] is the segment name, fields[1] the encoding characters (MSH-2): MSH-n is fields[n-1]
    if len(fields) < 18:
        return None
    value = fields[17]
    repetition = fields[1][1:2] if len(fields[1]) > 1 else "~"
    component = fields[1][:1] or "^"
    return value.split(repetition)[0].split(component)[0].strip() or None


def _locate(data: bytes, offset: int) -> tuple[int, str | None, int]:
    """(segment position, segment name, field number) of a byte offset, for error messages."""
    before = data[:offset].replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    segments = before.split(b"\r")
    current = segments[-1]
    name = current[:3].decode("ascii", "replace") if len(current) >= 3 else None
    separator = current[3:4] or b"|"
    field = current.count(separator) + (1 if name == "MSH" else 0)
    return len(segments), name, field


def _undecodable(data: bytes, codec: str, error: UnicodeDecodeError, why: str) -> ConversionError:
    offset = error.start
    sequence, segment, field = _locate(data, offset)
    return ConversionError(
        f"{why}: byte {offset} (0x{data[offset:offset + 1].hex()}) is not valid {codec}", code="AR", hl7_error="102",
        segment=segment, sequence=sequence, field=field or None)


def _declaration(header: bytes, undeclared: tuple[str, ...]) -> str | None:
    """MSH-18 as the first segment declares it, read in the character set it declares."""
    for codec in dict.fromkeys(("utf-8", *undeclared, "big5hkscs", "gb18030")):
        try:
            declared = _declared_charset(header.decode(codec))
        except UnicodeDecodeError:
            continue
        if declared is not None and codec_for(declared) == codec:
            return declared
    return _declared_charset(header.decode("latin-1"))


def decode(data: bytes, undeclared: tuple[str, ...] = ("gb18030",)) -> Decoded:
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _undecodable(data, "UTF-8", error, "the input starts with a UTF-8 byte-order mark") from None
        return Decoded(text, "utf-8", _declared_charset(_first_segment(text.encode("utf-8")).decode("utf-8")))
    if data.startswith(UTF16_BOMS):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise ConversionError(f"the input starts with a UTF-16 byte-order mark but is not UTF-16: {error.reason}",
                                  code="AR", hl7_error="102") from None
        return Decoded(text, "utf-16", _declared_charset(_first_segment(text.encode("utf-8")).decode("utf-8")))

    declared = _declaration(_first_segment(data), undeclared)
    if declared is not None:
        codec = codec_for(declared)
        if codec is None:
            raise ConversionError(f"MSH-18 names the character set '{declared}', which BayLink cannot decode "
                                  f"(known: {', '.join(sorted(COMMON['charsets']))})", code="AR", hl7_error="103",
                                  segment="MSH", sequence=1, field=18)
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as error:
            raise _undecodable(data, codec, error, f"MSH-18 declares '{declared}'") from None
        return Decoded(text, codec, declared)

    try:
        return Decoded(data.decode("utf-8"), "utf-8", None)
    except UnicodeDecodeError as error:
        failures = [("UTF-8", error)]
    for codec in undeclared:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as error:
            failures.append((codec.upper(), error))
            continue
        return Decoded(text, codec, None, (
            f"no character set in MSH-18 and the bytes are not UTF-8: read as {codec.upper()}, which decodes every byte; "
            f"the sender should declare it in MSH-18",))
    # where the flavour's own character set stops: for a mainland message cut inside a character,
    # the cut, not the first Chinese byte (which is where UTF-8 stops)
    name, error = failures[1] if len(failures) > 1 else failures[0]
    raise _undecodable(data, name, error,
                       f"no character set in MSH-18, and the bytes are neither UTF-8 nor {', '.join(undeclared).upper()}")
