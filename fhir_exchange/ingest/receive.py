"""Receiving inputs, whatever the transport (HTTP or MLLP): read, apply in one transaction,
acknowledge. A batch (several messages in one input) becomes a job whose items are applied
one by one, each in its own transaction, by the worker (eagerly in ``make run``)."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from fhir_exchange import crypto
from fhir_exchange.api.runtime import FhirRuntime, UnitOfWork
from fhir_exchange.convert.base import Conversion, ConversionError, Source
from fhir_exchange.errors import FhirError
from fhir_exchange.ingest.ack import Header, ack, header_of
from fhir_exchange.ingest.models import IngestJob, IngestJobItem
from fhir_exchange.ingest.pipeline import Applied, apply, source_for
from fhir_exchange.ports import RequestContext

log = logging.getLogger("baylink.ingest")
MAX_ATTEMPTS = 5


def read_hl7v2(data: bytes, source: Source) -> list[Conversion]:
    from fhir_exchange.convert.hl7v2.reader import read

    return read(data, source)


def read_cda(data: bytes, source: Source) -> Conversion:
    from fhir_exchange.convert.cda.reader import read

    return read(data, source)


@dataclass
class Received:
    """What became of one input: an ACK code and words, and what it wrote or the job it made."""

    code: str  # AA | AE | AR
    text: str
    applied: Applied | None = None
    job: str | None = None
    error: ConversionError | None = None


def _as_conversion_error(error: FhirError) -> ConversionError:
    issue = error.issues[0] if error.issues else None
    where = ", ".join(issue.expression) if issue and issue.expression else None
    return ConversionError(f"the converted record was refused: {issue.diagnostics if issue else error}"
                           + (f" ({where})" if where else ""), code="AE", hl7_error="207")


class Receiver:
    """Applies inputs for one caller (its context: institution, scopes) through a runtime."""

    def __init__(self, runtime: FhirRuntime, context: RequestContext, base_url: str,
                 dispatch: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.context = context
        self.base_url = base_url
        self.dispatch = dispatch  # starts a job's processing (Celery, or in-process)
        self._source: Source | None = None

    def _unit(self) -> UnitOfWork:
        return UnitOfWork(self.runtime, self.context, self.base_url)

    def apply_one(self, conversion: Conversion) -> Applied:
        """One conversion, one transaction; a concurrent resend that wins the race makes this
        one a duplicate."""
        for attempt in (1, 2):
            try:
                with self._unit().transaction("create") as service:
                    return apply(service, conversion, source_for(service, self.context.institution))
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def source(self) -> Source:
        """The sender's flavour (read once per receiver: a registry entry changes rarely, and a
        listener is restarted when its institution's registration changes)."""
        if self._source is None:
            with self._unit().transaction("read") as service:
                self._source = source_for(service, self.context.institution)
        return self._source

    def hl7v2(self, data: bytes) -> tuple[Header, Received]:
        header = header_of(data)
        try:
            conversions = read_hl7v2(data, self.source())
        except ConversionError as error:
            return header, Received(error.code, error.message, error=error)
        if not conversions:
            error = ConversionError("no HL7 v2 message found (the input must start with MSH, FHS or BHS)", code="AR",
                                    hl7_error="100")
            return header, Received("AR", error.message, error=error)
        if len(conversions) > 1:
            job = self.new_job("hl7v2", conversions)
            return header, Received("AA", f"batch of {len(conversions)} messages accepted as job {job}", job=job)
        try:
            applied = self.apply_one(conversions[0])
        except FhirError as refused:
            error = _as_conversion_error(refused)
            return header, Received("AE", error.message, error=error)
        words = "already received; nothing written again" if applied.status == "duplicate" else "stored"
        return header, Received("AA", words, applied=applied)

    # --- jobs --------------------------------------------------------------------------------

    def new_job(self, kind: str, conversions: list[Conversion]) -> str:
        job_id = str(uuid.uuid4())
        with self.runtime.sessions() as session, session.begin():
            session.add(IngestJob(id=job_id, sender=self.context.institution or "", kind=kind, created=datetime.now(UTC),
                                  finished=None, total=len(conversions), client_id=self.context.client_id or "",
                                  scopes=" ".join(self.context.scopes)))
            session.flush()
            for position, conversion in enumerate(conversions, 1):
                session.add(IngestJobItem(job_id=job_id, position=position, status="queued", attempts=0,
                                          message_id=conversion.message_id,
                                          data=crypto.vault().seal_text(base64.b64encode(conversion.original).decode())))
        if self.dispatch is not None:
            self.dispatch(job_id)
        return job_id


def run_job(runtime: FhirRuntime, job_id: str, base_url: str) -> dict[str, Any]:
    """Apply every queued item of a job, each in its own transaction. Input errors fail an
    item for good (with the reason); database trouble is retried, and an item that keeps
    failing is marked dead (the dead letter). Safe to run again: done items are skipped."""
    with runtime.sessions() as session:
        job = session.get(IngestJob, job_id)
        if job is None:
            raise LookupError(f"no ingest job {job_id}")
        context = RequestContext(request_id=str(uuid.uuid4()), client_id=job.client_id or "baylink-ingest",
                                 institution=job.sender or None, purpose_of_use="HOPERAT",
                                 scopes=tuple(job.scopes.split()))
        items = session.execute(select(IngestJobItem.pk).where(IngestJobItem.job_id == job_id,
                                                               IngestJobItem.status == "queued")
                                .order_by(IngestJobItem.position)).scalars().all()
        kind = job.kind
    receiver = Receiver(runtime, context, base_url)
    source = receiver.source()
    for pk in items:
        with runtime.sessions() as session:
            item = session.get(IngestJobItem, pk)
            assert item is not None
            data = base64.b64decode(crypto.vault().open_text(item.data or ""))
        status, error = "done", None
        try:
            conversions = read_hl7v2(data, source) if kind == "hl7v2" else [read_cda(data, source)]
            applied = receiver.apply_one(conversions[0])
            status = "done" if applied.status == "stored" else "duplicate"
        except ConversionError as failed:
            status, error = "failed", {"code": failed.code, "where": failed.where(), "message": failed.message}
        except FhirError as refused:
            converted = _as_conversion_error(refused)
            status, error = "failed", {"code": "AE", "where": "", "message": converted.message}
        except (OperationalError, IntegrityError) as trouble:
            log.warning("ingest job %s item %s: %s", job_id, pk, trouble)
            with runtime.sessions() as session, session.begin():
                attempts = session.execute(select(IngestJobItem.attempts).where(IngestJobItem.pk == pk)).scalar_one() + 1
                session.execute(update(IngestJobItem).where(IngestJobItem.pk == pk).values(
                    attempts=attempts, status="dead" if attempts >= MAX_ATTEMPTS else "queued",
                    error={"code": "AE", "where": "", "message": f"{type(trouble).__name__}: {trouble}"[:500]}))
            continue
        with runtime.sessions() as session, session.begin():
            session.execute(update(IngestJobItem).where(IngestJobItem.pk == pk).values(
                status=status, error=error, data=None, attempts=IngestJobItem.attempts + 1))
    return job_status(runtime, job_id)


def job_status(runtime: FhirRuntime, job_id: str, institution: str | None = None) -> dict[str, Any]:
    with runtime.sessions() as session, session.begin():
        job = session.get(IngestJob, job_id)
        if job is None or (institution is not None and job.sender != institution):
            raise LookupError(job_id)
        counts = dict(session.execute(select(IngestJobItem.status, func.count()).where(IngestJobItem.job_id == job_id)
                                      .group_by(IngestJobItem.status)).all())
        errors = [{"position": item.position, "messageId": item.message_id, "status": item.status, **(item.error or {})}
                  for item in session.execute(select(IngestJobItem).where(
                      IngestJobItem.job_id == job_id, IngestJobItem.error.isnot(None)).order_by(IngestJobItem.position))
                  .scalars()]
        finished = counts.get("queued", 0) == 0
        if finished and job.finished is None:
            job.finished = datetime.now(UTC)
        return {"id": job.id, "kind": job.kind, "status": "finished" if finished else "in-progress", "total": job.total,
                "done": counts.get("done", 0), "duplicate": counts.get("duplicate", 0), "failed": counts.get("failed", 0),
                "dead": counts.get("dead", 0), "queued": counts.get("queued", 0), "errors": errors,
                "created": job.created.isoformat(), "finished": job.finished.isoformat() if job.finished else None}


def ack_for(header: Header, received: Received) -> str:
    return ack(header, received.code, received.text, received.error)
