"""The ingest routes, authorised like every other route (a SMART token of the sending
institution's client):

- ``POST /ingest/hl7v2`` — one HL7 v2 message or a batch file (``application/hl7-v2``,
  ``x-application/hl7-v2+er7`` or ``text/plain``). Answers the HL7 ACK in the body, always
  with HTTP 200 as the HL7 v2 over HTTP transport specifies: AA once committed, AE/AR with an
  ERR segment naming the segment and field when not, nothing written. A batch answers AA for
  its acceptance and is applied as a job (``/ingest/jobs/{id}``).
- ``POST /ingest/cda`` — one CDA R2 document (``application/xml``, ``text/xml``,
  ``application/cda+xml``): the transaction-response Bundle, or an OperationOutcome naming
  the element.
- ``POST /ingest/fhir`` — a FHIR resource or Bundle (transaction, batch, collection,
  document, message) from another profile, normalised to BayLink's shared profile.
- ``GET /ingest/jobs/{id}`` — a job's counts and its errors per message (its sender only).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from fhir_exchange.api.rendering import fhir_response
from fhir_exchange.api.runtime import UnitOfWorkDep
from fhir_exchange.convert.base import ConversionError
from fhir_exchange.errors import Issue, NotFound, Unprocessable, UnsupportedMediaType
from fhir_exchange.ingest.receive import Receiver, ack_for, job_status, read_cda

HL7_TYPES = ("application/hl7-v2", "x-application/hl7-v2+er7", "text/plain")
CDA_TYPES = ("application/xml", "text/xml", "application/cda+xml")
MAX_BYTES = 50 * 1024 * 1024

router = APIRouter(prefix="/ingest", include_in_schema=False)


def _media(request: Request, allowed: tuple[str, ...]) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in allowed:
        raise UnsupportedMediaType(f"Content-Type '{media or 'none'}' is not accepted here; send one of {', '.join(allowed)}")


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise Unprocessable(f"the input is {len(body)} bytes; at most {MAX_BYTES} are taken in one request")
    return body


def _receiver(request: Request, uow: UnitOfWorkDep) -> Receiver:
    dispatch = getattr(request.app.state, "ingest_dispatch", None)
    return Receiver(uow.runtime, uow.context, uow.base_url, dispatch)


@router.post("/hl7v2")
async def receive_hl7v2(request: Request, uow: UnitOfWorkDep) -> Response:
    _media(request, HL7_TYPES)
    data = await _body(request)
    header, received = await run_in_threadpool(_receiver(request, uow).hl7v2, data)
    headers = {"Location": f"/ingest/jobs/{received.job}"} if received.job else {}
    return Response(ack_for(header, received), status_code=200, media_type="application/hl7-v2", headers=headers)


@router.post("/cda")
async def receive_cda(request: Request, uow: UnitOfWorkDep) -> Response:
    _media(request, CDA_TYPES)
    data = await _body(request)
    receiver = _receiver(request, uow)

    def work() -> Response:
        try:
            conversion = read_cda(data, receiver.source())
        except ConversionError as error:
            where = error.where()
            raise Unprocessable(error.message, issues=[Issue("error", "structure" if error.element else "invalid",
                                                             error.message, (where,) if where else ())]) from error
        return _applied(receiver.apply_one(conversion), request)

    return await run_in_threadpool(work)


@router.post("/fhir")
async def receive_fhir(request: Request, uow: UnitOfWorkDep) -> Response:
    """A FHIR resource or Bundle in another profile, normalised (fhir_exchange/convert/fhir)."""
    _media(request, ("application/fhir+json", "application/json"))
    data = await _body(request)
    receiver = _receiver(request, uow)

    def work() -> Response:
        from fhir_exchange.convert.fhir.reader import read

        try:
            conversion = read(data, receiver.source())
        except ConversionError as error:
            where = error.where()
            raise Unprocessable(error.message, issues=[Issue("error", "invalid", error.message,
                                                             (where,) if where else ())]) from error
        return _applied(receiver.apply_one(conversion), request)

    return await run_in_threadpool(work)


def _applied(applied, request: Request) -> Response:  # type: ignore[no-untyped-def]
    body = {"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "201 Created" if applied.status == "stored" else "200 OK", "location": location}}
        for location in applied.written]}
    return fhir_response(body, 201 if applied.status == "stored" else 200, request=request)


@router.get("/jobs/{job_id}")
def job(request: Request, job_id: str, uow: UnitOfWorkDep) -> Response:
    try:
        status = job_status(uow.runtime, job_id, uow.context.institution or "")
    except LookupError as missing:
        raise NotFound(f"no ingest job {job_id} of this institution") from missing
    return JSONResponse(status)

