"""The whole ingest path with the real readers: HL7 v2 over HTTP (ACKs, resends, refusals that
write nothing, batches as jobs), over MLLP with a real TCP client (acknowledged only after
commit; a dropped connection loses nothing acknowledged), and CDA documents."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid

from sqlalchemy import func, select

from fhir_exchange.ingest.mllp import MllpServer, frame, unframe
from fhir_exchange.ingest.models import IngestedInput
from fhir_exchange.ingest.receive import Receiver, ack_for
from fhir_exchange.ports import RequestContext
from fhir_exchange.store.models import ResourceRow
from tests.conftest import issue_token, shared_path

HL7 = {"Content-Type": "application/hl7-v2"}


def _headers(app, institution: str = "ha-queen-mary") -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {issue_token(app, institution=institution)}", **HL7}


def _message(name: str) -> bytes:
    return shared_path("corpora", "hl7v2-msconverter", name).read_bytes()


def _msa(ack: str) -> list[str]:
    return next(segment for segment in ack.split("\r") if segment.startswith("MSA")).split("|")


def _count(app, resource_type: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with app.state.engine.connect() as conn:
        query = select(func.count()).select_from(ResourceRow)
        if resource_type:
            query = query.where(ResourceRow.res_type == resource_type)
        return conn.execute(query).scalar_one()


def test_an_oru_over_http_is_stored_once_and_acknowledged(client, app) -> None:  # type: ignore[no-untyped-def]
    message = _message("ORU-R01-01.hl7")
    first = client.post("/ingest/hl7v2", content=message, headers=_headers(app))
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/hl7-v2")
    msa = _msa(first.text)
    assert msa[1] == "AA" and msa[2] == "2.16.840.1.114222.4.3.3.5.1.2-20120314235954.325", first.text
    observations, patients = _count(app, "Observation"), _count(app, "Patient")
    assert observations >= 1 and patients == 1 and _count(app, "Provenance") == 1
    again = client.post("/ingest/hl7v2", content=message, headers=_headers(app))
    assert _msa(again.text)[1] == "AA" and "already received" in again.text
    assert (_count(app, "Observation"), _count(app, "Patient"), _count(app, "Provenance")) == (observations, patients, 1)


def test_a_broken_message_is_refused_with_its_place_and_writes_nothing(client, app) -> None:  # type: ignore[no-untyped-def]
    good = _message("ORU-R01-01.hl7").replace(b"\n", b"\r")
    without_patient_ids = b"\r".join(  # PID-2 and PID-3 emptied: nobody to file the results under
        segment if not segment.startswith(b"PID") else b"|".join([*segment.split(b"|")[:2], b"", b"", *segment.split(b"|")[4:]])
        for segment in good.split(b"\r"))
    refused = client.post("/ingest/hl7v2", content=without_patient_ids, headers=_headers(app))
    assert refused.status_code == 200
    assert _msa(refused.text)[1] in ("AE", "AR")
    err = next(s for s in refused.text.split("\r") if s.startswith("ERR"))
    assert "PID" in err.split("|")[2]
    truncated = client.post("/ingest/hl7v2", content=good[:40], headers=_headers(app))
    assert _msa(truncated.text)[1] in ("AE", "AR")
    undecodable = client.post("/ingest/hl7v2", content=b"MSH|^~\\&|A|B|C|D|2026||ADT^A01|1|P|2.5\rPID|1||\xff\xfe\xfd\x80",
                              headers=_headers(app))
    assert _msa(undecodable.text)[1] in ("AE", "AR")
    assert _count(app) == 0
    with app.state.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IngestedInput)).scalar_one() == 0


def test_a_nul_character_is_refused_where_it_is_and_writes_nothing(client, app) -> None:  # type: ignore[no-untyped-def]
    """NUL (0x00) is no HL7 v2 text, and PostgreSQL cannot store it: refused with its segment and
    field (found by the hypothesis fuzzing below), in MSH (the control id) or later."""
    good = _message("ORU-R01-01.hl7").replace(b"\n", b"\r")
    segments = good.split(b"\r")
    pid = next(i for i, s in enumerate(segments) if s.startswith(b"PID"))
    fields = segments[pid].split(b"|")
    fields[3] = fields[3][:2] + b"\x00" + fields[3][2:]
    in_pid = b"\r".join([*segments[:pid], b"|".join(fields), *segments[pid + 1:]])
    refused = client.post("/ingest/hl7v2", content=in_pid, headers=_headers(app))
    assert _msa(refused.text)[1] == "AR", refused.text
    err = next(s for s in refused.text.split("\r") if s.startswith("ERR")).split("|")
    assert err[2] == f"PID^{pid + 1}^3" and err[3].startswith("102^")  # ERR-2: segment, sequence, field
    assert "PID-3" in err[8] and "NUL" in err[8]
    msh = segments[0].split(b"|")
    msh[9] = msh[9] + b"\x00"  # MSH-10, the message control id
    in_msh = b"\r".join([b"|".join(msh), *segments[1:]])
    assert _msa(client.post("/ingest/hl7v2", content=in_msh, headers=_headers(app)).text)[1] == "AR"
    assert _count(app) == 0
    with app.state.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(IngestedInput)).scalar_one() == 0


def test_a_batch_becomes_a_job(client, app) -> None:  # type: ignore[no-untyped-def]
    messages = [_message(name).replace(b"\n", b"\r").rstrip(b"\r") for name in
                ("ADT-A01-01.hl7", "ADT-A04-01.hl7", "ORU-R01-01.hl7")]
    batch = b"\r".join([b"BHS|^~\\&|HIS|QMH|BAYLINK|BL|20261124", *messages, b"BTS|3"]) + b"\r"
    accepted = client.post("/ingest/hl7v2", content=batch, headers=_headers(app))
    assert _msa(accepted.text)[1] == "AA" and "job" in accepted.text
    job = accepted.headers["location"]
    status = client.get(job, headers=_headers(app)).json()
    assert status["total"] == 3 and status["status"] == "finished"  # tasks run eagerly in tests, as in make run
    assert status["done"] + status["duplicate"] + status["failed"] == 3 and status["failed"] == 0, status
    assert client.get(job, headers=_headers(app, "hku-szh")).status_code == 404  # another institution's job


def test_a_cda_document(client, app) -> None:  # type: ignore[no-untyped-def]
    document = shared_path("corpora", "ccda-msconverter", "CCD.ccda").read_bytes()
    headers = {**_headers(app), "Content-Type": "application/xml", "Accept": "application/fhir+json"}
    stored = client.post("/ingest/cda", content=document, headers=headers)
    assert stored.status_code == 201, stored.text[:500]
    kinds = {e["response"]["location"].split("/")[0] for e in stored.json()["entry"]}
    assert {"Patient", "Composition", "Bundle", "Binary", "Provenance"} <= kinds
    assert client.post("/ingest/cda", content=document, headers=headers).status_code == 200  # a resend
    bad = client.post("/ingest/cda", content=b"<ClinicalDocument><unclosed>", headers=headers)
    assert bad.status_code == 422 and bad.json()["resourceType"] == "OperationOutcome"


def test_mllp_acknowledges_after_commit_and_a_dropped_connection_loses_nothing(app) -> None:  # type: ignore[no-untyped-def]
    context = RequestContext(request_id=str(uuid.uuid4()), client_id="mllp:ha-queen-mary", institution="ha-queen-mary",
                             purpose_of_use="HOPERAT", scopes=("system/*.cruds",))
    receiver = Receiver(app.state.fhir, context, "http://testserver/fhir")

    def handle(message: bytes) -> bytes:
        header, received = receiver.hl7v2(message)
        return ack_for(header, received).encode()

    loop = asyncio.new_event_loop()
    server = MllpServer(handle, "127.0.0.1", 0)
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    first, second = _message("ADT-A01-01.hl7"), _message("ORU-R01-01.hl7")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(frame(first))
            reply = b""
            while b"\x1c\x0d" not in reply:
                reply += sock.recv(4096)
            acks, _ = unframe(reply)
            assert _msa(acks[0].decode())[1] == "AA"
            stored_after_ack = _count(app, "Patient")
            assert stored_after_ack == 1  # committed before it was acknowledged
            sock.sendall(frame(second)[: len(second) // 2])  # the connection drops mid-message
        # the half message was never acknowledged and never stored; the engine resends it whole
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(frame(first) + frame(second))  # resending the acknowledged one too
            reply = b""
            while reply.count(b"\x1c\x0d") < 2:
                reply += sock.recv(4096)
        acks, _ = unframe(reply)
        assert [_msa(a.decode())[1] for a in acks] == ["AA", "AA"]
        assert b"already received" in acks[0]
        with app.state.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(IngestedInput)).scalar_one() == 2
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_fuzzed_inputs_never_fail_the_server_nor_write_half(client, app) -> None:  # type: ignore[no-untyped-def]
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seed = _message("ORU-R01-01.hl7")
    headers = _headers(app)

    @st.composite
    def inputs(draw: st.DrawFn) -> bytes:
        if draw(st.booleans()):
            return draw(st.binary(max_size=400))
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 6))):
            position = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(("flip", "cut", "insert")))
            if action == "flip":
                data[position] = draw(st.integers(0, 255))
            elif action == "cut":
                del data[position:position + draw(st.integers(1, 80))]
            else:
                data[position:position] = draw(st.sampled_from((b"|", b"^", b"\r", b"~", b"\\", b"\xff", b"MSH|")))
        return bytes(data)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(inputs())
    def one(data: bytes) -> None:
        before = _count(app)
        with app.state.engine.connect() as conn:
            inputs_before = conn.execute(select(func.count()).select_from(IngestedInput)).scalar_one()
        response = client.post("/ingest/hl7v2", content=data, headers=headers)
        assert response.status_code == 200, response.text[:300]
        code = _msa(response.text)[1]
        assert code in ("AA", "AE", "AR")
        with app.state.engine.connect() as conn:
            inputs_after = conn.execute(select(func.count()).select_from(IngestedInput)).scalar_one()
        if code != "AA":
            assert _count(app) == before and inputs_after == inputs_before  # nothing half-written
        elif "job" not in response.text and "already received" not in response.text:
            assert inputs_after == inputs_before + 1  # stored whole, and remembered

    one()
