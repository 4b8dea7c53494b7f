"""Bad input is refused with a ConversionError that says where (segment, its position, field),
how (AR: not processable; AE: understood but wrong) and the HL7 table-0357 code; never with
another exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.convert.hl7v2 import read, read_each

FIXTURES = Path(__file__).with_name("fixtures")
SOURCE = Source("test-hospital", None)
MSH = "MSH|^~\\&|HIS|HOSP|BAYLINK|BAYLINK|20260301101500+0800||ADT^A01^ADT_A01|MSG0001|P|2.5.1"
PID = "PID|1||M0012345^^^HOSP^MR||CHAN^TAI MAN||19700101|M"
PV1 = "PV1|1|I|W1^1^1||||||||||||||||V001^^^HOSP^VN"


def message(*segments: str) -> bytes:
    return "\r".join(segments).encode() + b"\r"


def refused(data: bytes, source: Source = SOURCE) -> ConversionError:
    with pytest.raises(ConversionError) as caught:
        read(data, source)
    return caught.value


def where(error: ConversionError) -> tuple[str, str, str | None, int | None, int | None]:
    return error.code, error.hl7_error, error.segment, error.sequence, error.field


def test_a_good_message_converts() -> None:
    [conversion] = read(message(MSH, PID, PV1), SOURCE)
    assert conversion.event == "ADT^A01" and conversion.message_id == "MSG0001"


@pytest.mark.parametrize(("data", "expected"), [
    # not HL7 at all, or nothing
    (b"", ("AR", "100", "MSH", 1, None)),
    (b"\r\n\r\n", ("AR", "100", "MSH", 1, None)),
    (b"hello world", ("AR", "100", None, 1, None)),
    (message(PID, MSH), ("AR", "100", "PID", 1, None)),
    # truncated: inside MSH (no message type), after MSH (no patient)
    (MSH[:40].encode(), ("AR", "101", "MSH", 1, 9)),
    (message(MSH), ("AE", "100", "PID", None, None)),
    # required MSH fields
    (message(MSH.replace("ADT^A01^ADT_A01", ""), PID), ("AR", "101", "MSH", 1, 9)),
    (message(MSH.replace("|MSG0001|", "||"), PID), ("AR", "101", "MSH", 1, 10)),
    (message(MSH.replace("|2.5.1", "|"), PID), ("AR", "101", "MSH", 1, 12)),
    (message(MSH.replace("^~\\&", "^^^^"), PID), ("AR", "102", "MSH", 1, 2)),
    # unsupported message type, trigger event and version
    (message(MSH.replace("ADT^A01^ADT_A01", "ACK^A01^ACK"), PID), ("AR", "200", "MSH", 1, 9)),
    (message(MSH.replace("ADT^A01^ADT_A01", "ADT^A99"), PID), ("AR", "201", "MSH", 1, 9)),
    (message(MSH.replace("|2.5.1", "|3.0"), PID), ("AR", "203", "MSH", 1, 12)),
    # wrong segment order
    (message(MSH, PV1, PID), ("AE", "100", "PV1", 2, None)),
    (message(MSH, PID, "PV2|||^chest pain", PV1), ("AE", "100", "PV2", 3, None)),
    (message(MSH.replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01"), "OBX|1|NM|718-7^Hb^LN||13.5|g/dL", PID),
     ("AE", "100", "OBX", 2, None)),
    # required patient identifiers
    (message(MSH, "PID|1||||CHAN^TAI MAN||19700101|M", PV1), ("AE", "101", "PID", 2, 3)),
    (message(MSH.replace("ADT^A01^ADT_A01", "ADT^A40^ADT_A39"), PID, "MRG|"), ("AE", "101", "MRG", 3, 1)),
    # a segment without a name: segments run together or cut
    (message(MSH, PID, "|1|I"), ("AR", "100", None, 3, None)),
    # an embedded document that is not what it says
    (message(MSH.replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01"), PID, "OBR|1||F1|11488-4^Consult note^LN",
             "OBX|1|ED|11488-4^Consult note^LN||^application^pdf^Base64^not*base64!||||||F"), ("AE", "102", "OBX", 4, 5)),
    # an escape sequence that cannot be read
    (message(MSH, "PID|1||M1^^^HOSP^MR||CHAN\\.spx\\^TAI MAN", PV1), ("AE", "102", "PID", 2, 5)),
])
def test_refused_naming_where(data: bytes, expected: tuple[str, str, str | None, int | None, int | None]) -> None:
    error = refused(data)
    assert where(error) == expected, error.message
    assert error.message


def test_the_error_says_where_in_words() -> None:
    error = refused(message(MSH, PV1, PID))
    assert error.where() == "PV1 (segment 2)"
    assert "PV1 must follow PID" in error.message
    error = refused(message(MSH, "PID|1||||CHAN^TAI MAN", PV1))
    assert error.where() == "PID-3 (segment 2)"


def test_undecodable_bytes_are_refused_naming_segment_and_field() -> None:
    # no MSH-18, and the bytes are neither UTF-8 nor GB18030
    error = refused(message(MSH, PID) + b"PV1|1|I|\xff\xfe\r")
    assert where(error) == ("AR", "102", "PV1", 3, 3)
    # MSH-18 says UTF-8 but the name is GB18030
    declared = (MSH + "|||AL|NE|CHN|UNICODE UTF-8").encode()
    error = refused(declared + b"\rPID|1||M1^^^HOSP^MR||" + "陈".encode("gb18030") + b"^DAWEN\r")
    assert where(error) == ("AR", "102", "PID", 2, 5)
    assert "MSH-18 declares 'UNICODE UTF-8'" in error.message
    # a character set nobody can decode
    error = refused(message(MSH + "|||AL|NE|CHN|CNS 11643-1992", PID))
    assert where(error) == ("AR", "103", "MSH", 1, 18)


def test_a_gb18030_message_cut_inside_a_character_is_refused() -> None:
    raw = (FIXTURES / "cn-adt-a01-gb18030.hl7").read_bytes()
    cut = raw[: raw.index("陈".encode("gb18030")) + 1]  # the first byte of a two-byte character
    error = refused(cut, Source("test-hospital", "cn"))
    assert where(error)[:3] == ("AR", "102", "PID")
    assert error.field == 5


def test_a_declared_big5_message_with_invalid_bytes_is_refused() -> None:
    raw = (FIXTURES / "hk-adt-a01-big5hkscs.hl7").read_bytes()
    broken = raw.replace("石硤尾邨".encode("big5hkscs"), b"\xff\xff")
    error = refused(broken, Source("test-hospital", "hk"))
    assert where(error) == ("AR", "102", "PID", 3, 11)
    assert "BIG-5" in error.message


def test_batches() -> None:
    second = MSH.replace("MSG0001", "MSG0002")
    batch = "\r".join(["FHS|^~\\&|HIS|HOSP", "BHS|^~\\&|HIS|HOSP", MSH, PID, PV1, second, PID, "BTS|2", "FTS|1"]).encode()
    conversions = read(batch, SOURCE)
    assert [c.message_id for c in conversions] == ["MSG0001", "MSG0002"]
    assert conversions[1].original.startswith(b"MSH|") and b"BHS" not in conversions[1].original
    # several messages without an envelope, one of them bad: read refuses naming it, read_each reports each
    mixed = message(MSH, PID, second.replace("ADT^A01^ADT_A01", "ADT^A99"), PID)
    error = refused(mixed)
    assert error.message.startswith("message 2 of 2:") and where(error) == ("AR", "201", "MSH", 1, 9)
    first, failed = read_each(mixed, SOURCE)
    assert isinstance(first, Conversion) and first.message_id == "MSG0001"
    assert isinstance(failed, ConversionError) and failed.hl7_error == "201"


def test_mllp_framing_and_line_endings_are_accepted() -> None:
    framed = b"\x0b" + message(MSH, PID, PV1).replace(b"\r", b"\r\n") + b"\x1c\r"
    [conversion] = read(framed, SOURCE)
    assert conversion.message_id == "MSG0001"
    assert conversion.original == framed  # a single message is kept byte for byte


def test_input_that_is_not_bytes_is_refused() -> None:
    with pytest.raises(ConversionError):
        read("MSH|^~\\&|", SOURCE)  # type: ignore[arg-type]
