"""What the REST edge needs per request: a unit of work that opens one database
transaction and builds the request-scoped repository and service over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from fhir_exchange.audit.trail import AuditRecorder, append
from fhir_exchange.auth.tokens import TokenSigner
from fhir_exchange.errors import FhirError
from fhir_exchange.ports import ReleaseGate, RequestContext, WriteRule
from fhir_exchange.service import FhirService, ServiceConfig
from fhir_exchange.store.repository import FhirRepository


def _no_context(request: Request) -> RequestContext:
    raise RuntimeError("no context provider: the composition root must give FhirRuntime one (BearerAuth)")


@dataclass
class FhirRuntime:
    """Held on ``app.state.fhir`` by the composition root."""

    sessions: sessionmaker[Session]
    gate: ReleaseGate
    config: ServiceConfig = field(default_factory=ServiceConfig)
    public_base_url: str = ""
    context_provider: Callable[[Request], RequestContext] = _no_context
    signer: TokenSigner | None = None
    max_search_results: int = 1_000_000
    write_rules: tuple[WriteRule, ...] = ()
    # called with (session, AuditEvent) after each AuditEvent is appended, in the request's
    # transaction: what must follow an access, lossless (e.g. telling the patient of a break-glass)
    audit_listeners: tuple[Callable[[Session, dict[str, Any]], None], ...] = ()


class UnitOfWork:
    """One request, one database transaction: ``with uow.transaction() as service: …``
    commits when the block succeeds and rolls back on any exception."""

    def __init__(self, runtime: FhirRuntime, context: RequestContext, base_url: str) -> None:
        self.runtime = runtime
        self.context = context
        self.base_url = base_url
        self.session: Session | None = None

    @contextmanager
    def transaction(self, interaction: str, query: str | None = None) -> Iterator[FhirService]:
        """``interaction`` (a restful-interaction code) and ``query`` go into the AuditEvent
        written, before commit, if the request touched any patient's data. What the gate
        withheld is audited too (outcome 4) — even when the request then fails (a withheld
        read answers 404): that record is written in a transaction of its own."""
        recorder = AuditRecorder(self.context, interaction, query)
        try:
            with self.runtime.sessions() as session, session.begin():
                self.session = session
                repository = self._repository(session)
                repository.audit = recorder
                yield FhirService(repository, self.base_url, self.runtime.config)
                event = recorder.event()
                if event is not None:
                    stored = append(repository, event)
                    for listener in self.runtime.audit_listeners:
                        listener(session, stored.content or event)
                refusal = recorder.refusal_event()
                if refusal is not None:
                    append(repository, refusal)
        except FhirError:
            refusal = recorder.refusal_event()
            if refusal is not None:
                with self.runtime.sessions() as session, session.begin():
                    append(self._repository(session), refusal)
            raise

    def _repository(self, session: Session) -> FhirRepository:
        return FhirRepository(
            session, self.context, self.runtime.gate,
            base_urls=(self.base_url,), max_search_results=self.runtime.max_search_results,
            write_rules=self.runtime.write_rules,
        )


def base_url_of(request: Request, runtime: FhirRuntime) -> str:
    if runtime.public_base_url:
        return runtime.public_base_url.rstrip("/")
    return str(request.base_url).rstrip("/") + "/fhir"


def get_unit_of_work(request: Request) -> UnitOfWork:
    runtime: FhirRuntime = request.app.state.fhir
    context = runtime.context_provider(request)
    request.state.context = context
    return UnitOfWork(runtime, context, base_url_of(request, runtime))


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
