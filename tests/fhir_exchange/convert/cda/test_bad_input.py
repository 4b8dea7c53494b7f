"""Bad input is a ConversionError naming the element and line, never another exception:
invalid XML, another root, no recordTarget, entity expansion (billion laughs), external
entities (XXE); and mutated real documents (hypothesis) give a Conversion or a
ConversionError, nothing else."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.convert.cda import read

FIXTURES = Path(__file__).with_name("fixtures")
MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <id root="2.16.840.1.113883.19.5" extension="DOC-1"/>
  <code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Summary</title>
  <effectiveTime value="20260101120000+0800"/>
  {record_target}
  <component><structuredBody>{body}</structuredBody></component>
</ClinicalDocument>
"""
RECORD_TARGET = """<recordTarget><patientRole><id root="2.16.840.1.113883.19.5.1" extension="P1"/>
  <patient><name><given>Tai Man</given><family>Chan</family></name></patient></patientRole></recordTarget>"""


def _read(data: bytes) -> Conversion:
    return read(data, Source(), terminology=None)


def _error(data: bytes) -> ConversionError:
    with pytest.raises(ConversionError) as caught:
        _read(data)
    return caught.value


def test_a_minimal_document_converts() -> None:
    conversion = _read(MINIMAL.format(record_target=RECORD_TARGET, body="").encode())
    assert conversion.message_id == "2.16.840.1.113883.19.5^DOC-1"


def test_invalid_xml_names_the_line() -> None:
    broken = MINIMAL.format(record_target=RECORD_TARGET, body="<component><section>").encode()
    error = _error(broken)
    assert error.element == "/"
    assert error.line is not None and error.line >= 8
    assert "not well-formed" in error.message
    assert error.where().startswith("/ (line ")


@pytest.mark.parametrize("data", [b"", b"   ", b"\xff\xfe\x00<", "<文档/>".encode("gb18030")])
def test_bytes_that_are_not_xml(data: bytes) -> None:
    error = _error(data)
    assert error.element == "/"


def test_a_root_that_is_not_a_clinical_document() -> None:
    error = _error(b'<?xml version="1.0"?>\n<Bundle xmlns="http://hl7.org/fhir"><type value="document"/></Bundle>')
    assert error.element == "/Bundle"
    assert error.line == 2
    assert "not a CDA document" in error.message
    no_namespace = _error(b"<ClinicalDocument><id root='1.2'/></ClinicalDocument>")
    assert "no namespace" in no_namespace.message


def test_a_document_without_record_target() -> None:
    error = _error(MINIMAL.format(record_target="", body="").encode())
    assert error.element == "/ClinicalDocument"
    assert "recordTarget" in error.message
    empty_target = _error(MINIMAL.format(record_target="<recordTarget/>", body="").encode())
    assert empty_target.element == "/ClinicalDocument/recordTarget"
    assert empty_target.line == 7


def test_an_invalid_resident_id_is_refused_at_its_element() -> None:
    target = RECORD_TARGET.replace('<id root="2.16.840.1.113883.19.5.1" extension="P1"/>',
                                   '<id root="2.16.156.10011.1.3" extension="440304198503120022"/>')
    error = _error(MINIMAL.format(record_target=target, body="").encode())
    assert error.element == "/ClinicalDocument/recordTarget/patientRole/id"
    assert error.line == 7
    assert "check character" in error.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>
"""


def test_billion_laughs_is_refused() -> None:
    error = _error(BILLION_LAUGHS)
    assert error.element == "/!DOCTYPE"
    assert error.line == 2
    assert "entities" in error.message


@pytest.fixture
def secret_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request: an XXE that reached the network would
    show up here."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"SECRET-FROM-NETWORK")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_external_entities_are_refused(tmp_path: Path, secret_server: tuple[str, list[str]]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-FROM-DISK", encoding="utf-8")
    base, requests = secret_server
    body = '<recordTarget><patientRole><id root="1.2.3" extension="&xxe;"/></patientRole></recordTarget>'
    for target in (secret.as_uri(), f"{base}/xxe"):
        document = (f'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [ <!ENTITY xxe SYSTEM "{target}"> ]>\n'
                    f'<ClinicalDocument xmlns="urn:hl7-org:v3">{body}</ClinicalDocument>').encode()
        error = _error(document)
        assert error.element == "/!DOCTYPE"
        assert "SECRET" not in error.message
    parameter = (f'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [ <!ENTITY % remote SYSTEM "{base}/dtd"> %remote; ]>\n'
                 '<ClinicalDocument xmlns="urn:hl7-org:v3"/>').encode()
    assert _error(parameter).element in ("/!DOCTYPE", "/")
    external_dtd = (f'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument SYSTEM "{base}/cda.dtd">\n'
                    '<ClinicalDocument xmlns="urn:hl7-org:v3"/>').encode()
    assert _error(external_dtd).element == "/!DOCTYPE"
    assert requests == [], "the parser reached the network"


def test_a_malformed_time_in_an_entry_is_left_out_with_a_warning() -> None:
    body = """<component><section><code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/><title>Results</title>
      <text>Glucose 5.1</text><entry><observation classCode="OBS" moodCode="EVN">
      <code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><effectiveTime value="2026013"/>
      <value xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="PQ" value="5.1" unit="mmol/L"/>
      </observation></entry></section></component>"""
    conversion = _read(MINIMAL.format(record_target=RECORD_TARGET, body=body).encode())
    observation = next(e["resource"] for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert "effectiveDateTime" not in observation
    assert observation["valueQuantity"]["value"] == 5.1
    assert any("'2026013' is not an HL7 timestamp" in w and "effectiveTime" in w for w in conversion.warnings)


def test_a_malformed_document_time_is_an_error() -> None:
    document = MINIMAL.format(record_target=RECORD_TARGET, body="").replace("20260101120000+0800", "20261301")
    error = _error(document.encode())
    assert error.element == "/ClinicalDocument/effectiveTime"
    assert error.line == 6


# --- fuzz -------------------------------------------------------------------------------------

SEEDS = [FIXTURES / "wst500-lab-report.xml", FIXTURES / "wst500-discharge-summary.xml"]
_SHARED = Path(__file__).resolve().parents[4].parent / "shared" / "corpora" / "ccda-msconverter"
for _name in ("CCD.ccda", "Patient-and-Provider-Organization-Direct-Address-C-CDAR2.1.ccda"):
    if (_SHARED / _name).exists():
        SEEDS.append(_SHARED / _name)
SEED_BYTES = [p.read_bytes() for p in SEEDS]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEED_BYTES)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "delete", "insert", "swap"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from([b"<", b">", b"&", b'"', b"&amp;", b"<!--", b"]]>", b"\x00", b"\xe4\xb8",
                                                b'xsi:type="PQ" value="x"', b"<entry>", b"</section>", b"nullFlavor='NI' "]))
        else:
            end = min(len(data), at + draw(st.integers(1, 200)))
            other = draw(st.integers(0, len(data) - 1))
            chunk = bytes(data[at:end])
            del data[at:end]
            data[min(other, len(data)):min(other, len(data))] = chunk
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_documents_convert_or_fail_cleanly(data: bytes) -> None:
    try:
        conversion = read(data, Source(profile="cn"), terminology=None)
    except ConversionError as error:
        assert error.message
        assert error.element
        return
    assert conversion.bundle["type"] == "transaction"
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(conversion.bundle)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_fail_cleanly(data: bytes) -> None:
    with pytest.raises(ConversionError):
        read(data, Source(), terminology=None)


def test_an_hkid_is_matched_on_in_canonical_form() -> None:
    target = """<recordTarget><patientRole><id root="2.16.840.1.113883.19.5.1" extension="HN001"/>
      <id root="2.999.344.1" extension="a1234563"/><patient>
      <name use="IDE">陳大文</name><name use="ABC"><family>CHAN</family><given>Tai Man</given></name>
      </patient></patientRole></recordTarget>"""
    document = MINIMAL.format(record_target=target, body="").replace("<title>", '<languageCode code="zh-HK"/><title>')
    conversion = read(document.encode(), Source(profile="hk"), terminology=None)
    patient = next(e for e in conversion.bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["request"]["url"] == "Patient?identifier=http%3A%2F%2Fbaylink.example.org%2Ffhir%2Fsid%2Fhkid%7CA123456%283%29"
    names = patient["resource"]["name"]
    assert names[0]["text"] == "陳大文" and names[0]["extension"][0]["valueCode"] == "IDE"
    assert names[1]["family"] == "CHAN" and names[1]["given"] == ["Tai Man"]
    assert patient["resource"]["language"] == "zh-HK"
