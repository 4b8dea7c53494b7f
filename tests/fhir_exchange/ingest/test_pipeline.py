"""The ingest path, independent of any one reader: a conversion (the readers' contract) is
applied once per sender and message id, atomically, with the original kept sealed as a Binary,
every resource traced to it by one Provenance and stamped with its source; HL7 ACKs and MLLP
framing; the HTTP routes' refusals."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import uuid

from sqlalchemy import select

from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.ingest.ack import ack, header_of
from fhir_exchange.ingest.mllp import MllpServer, frame, unframe
from fhir_exchange.ingest.models import IngestedInput
from fhir_exchange.ingest.pipeline import apply
from fhir_exchange.ingest.receive import Receiver
from fhir_exchange.ports import RequestContext
from fhir_exchange.store.models import ResourceRow
from tests.consent.test_gate_rest import operator

HKID = "http://baylink.example.org/fhir/sid/hkid"
ORIGINAL = b"MSH|^~\\&|HIS|QMH|BAYLINK|BL|20261124101500||ORU^R01^ORU_R01|MSG0001|P|2.5\rPID|1||A1234563^^^HKID^NNHKG\r"


def conversion(message_id: str = "MSG0001", *, broken: bool = False) -> Conversion:
    patient = {"resourceType": "Patient", "identifier": [{"system": HKID, "value": "A123456(3)"}],
               "name": [{"family": "CHAN", "given": ["Tai Man"]}]}
    observation = {"resourceType": "Observation", **({} if broken else {"status": "final"}),
                   "code": {"text": "glucose"}, "subject": {"reference": "urn:uuid:patient-1"},
                   "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                     "code": "mmol/L"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:patient-1", "resource": patient,
         "request": {"method": "PUT", "url": f"Patient?identifier={HKID}|A123456(3)"}},
        {"fullUrl": "urn:uuid:obs-1", "resource": observation, "request": {"method": "POST", "url": "Observation"}},
    ]}
    return Conversion("hl7v2", message_id, "ORU^R01", bundle, ORIGINAL, "application/hl7-v2")


def _context(institution: str = "ha-queen-mary") -> RequestContext:
    return RequestContext(request_id=str(uuid.uuid4()), client_id="qmh-his", institution=institution,
                          purpose_of_use="HOPERAT", scopes=("system/*.cruds",))


def _receiver(app) -> Receiver:  # type: ignore[no-untyped-def]
    return Receiver(app.state.fhir, _context(), "http://testserver/fhir")


def test_applied_once_traced_and_sealed(app) -> None:  # type: ignore[no-untyped-def]
    receiver = _receiver(app)
    first = receiver.apply_one(conversion())
    assert first.status == "stored"
    kinds = sorted(w.split("/")[0] for w in first.written)
    assert kinds == ["Binary", "Observation", "Patient", "Provenance"]
    again = receiver.apply_one(conversion())
    assert again.status == "duplicate" and again.written == first.written

    with operator(app) as service:
        provenance = service.read("Provenance", first.provenance.removeprefix("Provenance/")).body
        observations = service.repo.search_pks(service.parser.parse("Observation", []))
        binary_id = next(w for w in first.written if w.startswith("Binary/")).split("/")[1]
        binary = service.read("Binary", binary_id).body
    assert len(observations) == 1  # the resend wrote nothing
    targets = sorted(t["reference"].split("/")[0] for t in provenance["target"])
    assert targets == ["Observation", "Patient"]
    assert provenance["entity"][0]["what"]["reference"] == f"Binary/{binary_id}"
    assert provenance["agent"][0]["who"] == {"reference": "Organization/ha-queen-mary"}
    assert base64.b64decode(binary["data"]) == ORIGINAL
    assert binary["meta"]["source"] == "http://testserver/fhir/Organization/ha-queen-mary"
    patient_id = next(w for w in first.written if w.startswith("Patient/")).split("/")[1]
    assert binary["securityContext"] == {"reference": f"Patient/{patient_id}"}  # gated as the patient's data
    with app.state.engine.connect() as conn:
        stored = conn.execute(select(ResourceRow.content).where(ResourceRow.res_id == binary_id)).scalar_one()
    assert base64.b64decode(binary["data"]) != stored["data"].encode() and "A1234563" not in str(stored)


def test_another_sender_with_the_same_control_id_is_another_message(app) -> None:  # type: ignore[no-untyped-def]
    assert _receiver(app).apply_one(conversion()).status == "stored"
    other = Receiver(app.state.fhir, _context("hku-szh"), "http://testserver/fhir")
    assert other.apply_one(conversion()).status == "stored"


def test_a_refused_conversion_writes_nothing(app) -> None:  # type: ignore[no-untyped-def]
    from fhir_exchange.errors import FhirError

    try:
        _receiver(app).apply_one(conversion(broken=True))
    except FhirError as refused:
        assert "status" in str(refused.issues[0].diagnostics) or refused.issues[0].expression
    else:
        raise AssertionError("an invalid Observation must refuse the whole input")
    with app.state.engine.connect() as conn:
        assert conn.execute(select(ResourceRow.pk)).first() is None
        assert conn.execute(select(IngestedInput.pk)).first() is None


def test_apply_in_a_transaction_that_rolls_back_leaves_nothing(app) -> None:  # type: ignore[no-untyped-def]
    try:
        with operator(app) as service:
            apply(service, conversion("MSG-RB"), Source("ha-queen-mary", "hk"))
            raise RuntimeError("the caller fails after applying")
    except RuntimeError:
        pass
    with app.state.engine.connect() as conn:
        assert conn.execute(select(ResourceRow.pk)).first() is None
        assert conn.execute(select(IngestedInput.pk)).first() is None


def test_ack_names_the_segment_and_field() -> None:
    header = header_of(ORIGINAL)
    assert (header.sending_facility, header.control_id, header.trigger, header.version) == ("QMH", "MSG0001", "R01", "2.5")
    accepted = ack(header, "AA", "stored").split("\r")
    assert accepted[0].startswith("MSH|^~\\&|BAYLINK|BAYLINK|HIS|QMH|") and "|ACK^R01^ACK|" in accepted[0]
    assert accepted[1] == "MSA|AA|MSG0001|stored"
    error = ConversionError("PID-3 is required: the patient's identifiers", code="AE", hl7_error="101", segment="PID",
                            sequence=2, field=3)
    refused = ack(header, "AE", error.message, error).split("\r")
    assert refused[1].startswith("MSA|AE|MSG0001|")
    assert refused[2] == "ERR||PID^2^3|101^Required field missing^HL70357|E||||PID-3 is required: the patient's identifiers"
    assert header_of(b"\x00garbage").control_id == ""  # an ACK can still be made for noise


def test_mllp_framing() -> None:
    messages, rest = unframe(b"noise" + frame(b"one") + frame(b"two") + b"\x0bthr")
    assert messages == [b"one", b"two"] and rest == b"\x0bthr"
    messages, rest = unframe(rest + b"ee\x1c\x0d")
    assert messages == [b"three"] and rest == b""


def test_mllp_acknowledges_each_message_after_handling(app) -> None:  # type: ignore[no-untyped-def]
    handled: list[bytes] = []

    def handle(message: bytes) -> bytes:
        handled.append(message)
        return ack(header_of(message), "AA", "stored").encode()

    loop = asyncio.new_event_loop()
    server = MllpServer(handle, "127.0.0.1", 0)
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            second = ORIGINAL.replace(b"MSG0001", b"MSG0002")
            sock.sendall(frame(ORIGINAL) + frame(second)[:10])  # the second arrives in pieces
            sock.sendall(frame(second)[10:])
            received = b""
            while received.count(b"\x1c\x0d") < 2:
                received += sock.recv(4096)
        acks, _ = unframe(received)
        assert [a.split(b"\r")[1] for a in acks] == [b"MSA|AA|MSG0001|stored", b"MSA|AA|MSG0002|stored"]
        assert handled == [ORIGINAL, second]
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_routes_refuse_what_they_cannot_take(client) -> None:  # type: ignore[no-untyped-def]
    wrong = client.post("/ingest/hl7v2", content=ORIGINAL, headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415 and wrong.json()["resourceType"] == "OperationOutcome"
    anonymous = client.post("/ingest/hl7v2", content=ORIGINAL, headers={"Content-Type": "application/hl7-v2",
                                                                          "Authorization": ""})
    assert anonymous.status_code == 401
    assert client.get("/ingest/jobs/nope").status_code == 404


def test_the_original_is_released_only_as_the_patients_data(app, anonymous_client) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import issue_token

    applied = _receiver(app).apply_one(conversion("MSG-GATE"))
    binary = next(w for w in applied.written if w.startswith("Binary/")).split("/_history")[0]
    holder = {"Authorization": f"Bearer {issue_token(app, institution='ha-queen-mary')}"}
    stranger = {"Authorization": f"Bearer {issue_token(app, institution='hku-szh')}"}
    assert anonymous_client.get(f"/fhir/{binary}", headers=holder).status_code == 200
    assert anonymous_client.get(f"/fhir/{binary}", headers=stranger).status_code == 404  # no consent: as if absent
