"""``create_app``: builds the FastAPI application and wires the packages together.

This is the only place that chooses implementations for ``fhir_exchange``'s ports: the
release gate (the consent package's), the database, the request context provider.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import terminology
from baylink.settings import Settings, get_settings, identifier_vault, token_signing_key
from consent.gate import ConsentGate
from consent.notices import notify_break_glass
from consent.policy import ImplicitPolicy
from consent.rules import ConsentWriteRule
from consent.web.routes import ConsentPage
from consent.web.routes import router as consent_router
from fhir_exchange import crypto
from fhir_exchange.api.rendering import error_response
from fhir_exchange.api.routes import router as fhir_router
from fhir_exchange.api.runtime import FhirRuntime
from fhir_exchange.auth.context import BearerAuth
from fhir_exchange.auth.routes import router as auth_router
from fhir_exchange.auth.tokens import TokenSigner
from fhir_exchange.errors import FhirError, InvalidRequest, Issue, MethodNotAllowed, NotFound, operation_outcome
from fhir_exchange.ingest.api import router as ingest_router
from fhir_exchange.ingest.receive import run_job
from fhir_exchange.notify.outbox import ConsoleSender, deliver
from fhir_exchange.ports import AllowAllGate, ReleaseGate
from fhir_exchange.service import ServiceConfig
from fhir_exchange.store.db import make_engine, make_sessionmaker
from referral.api import router as referral_router
from referral.gate import ReferralAddresseeGate
from referral.notices import compose
from referral.rules import ReferralWriteRule
from referral.voucher.api import VoucherRuntime, balance_for
from referral.voucher.api import router as voucher_router

log = logging.getLogger("baylink")
FHIR_PREFIX = "/fhir"


def create_app(settings: Settings | None = None, *, gate: ReleaseGate | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    app = FastAPI(title="BayLink", version="0.1.0", docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    sessions = make_sessionmaker(engine)
    # read-only work (the terminology API, the consent gate) runs beside the request's own
    # transaction, on connections that never take SQLite's write lock
    reader = make_engine(settings.database_url, read_only=True)
    app.state.reader_engine = reader
    reader_sessions = make_sessionmaker(reader)
    terminology.configure(reader_sessions)
    crypto.configure(identifier_vault(settings))
    signer = TokenSigner(token_signing_key(settings))
    release_gate = gate or (AllowAllGate() if settings.release_gate == "allow-all" else ReferralAddresseeGate(
        ConsentGate(reader_sessions, implicit=ImplicitPolicy(settings.consent_implicit_policy))))
    write_rules = (ConsentWriteRule(), ReferralWriteRule(release_gate))
    sender = ConsoleSender()

    def kick() -> None:
        """Deliver the outbox now: in-process when tasks run eagerly (make run, tests), else by
        asking the worker. If the broker is down, the beat delivers it later: nothing is lost."""
        if settings.celery_eager:
            deliver(sessions, sender, compose)
            return
        try:
            from baylink.worker import celery_app

            celery_app.send_task("baylink.deliver_notifications")
        except Exception:
            log.warning("could not reach the broker; the notification beat will deliver the outbox", exc_info=True)

    app.state.consent_page = ConsentPage(sessions=sessions, sender=sender, write_rules=write_rules,
                                         development=settings.environment != "production",
                                         cookie_secure=settings.consent_cookie_secure, kick=kick, voucher=balance_for)
    app.state.fhir = FhirRuntime(
        sessions=sessions,
        signer=signer,
        context_provider=BearerAuth(signer, sessions, tuple(settings.purposes_of_use.split())),
        gate=release_gate,
        config=ServiceConfig(default_count=settings.default_page_size, max_count=settings.max_page_size),
        public_base_url=settings.public_base_url,
        max_search_results=settings.max_search_results,
        write_rules=write_rules,
        audit_listeners=(notify_break_glass,),
    )
    app.include_router(fhir_router, prefix=FHIR_PREFIX)
    app.include_router(consent_router)
    app.state.vouchers = VoucherRuntime()  # the scheme's rules and RMB factors, from referral/voucher/*.json
    app.include_router(voucher_router)
    app.include_router(referral_router)
    app.include_router(ingest_router)

    def dispatch_ingest_job(job_id: str) -> None:
        """A batch's items are applied by the worker (``acks_late``, retries); eagerly here in
        development. If the broker is down the job stays queued for ``baylink.ingest_job``."""
        if settings.celery_eager:
            run_job(app.state.fhir, job_id, settings.public_base_url or f"http://{settings.host}:{settings.port}/fhir")
            return
        try:
            from baylink.worker import celery_app

            celery_app.send_task("baylink.ingest_job", args=[job_id])
        except Exception:
            log.warning("could not reach the broker; ingest job %s stays queued", job_id, exc_info=True)

    app.state.ingest_dispatch = dispatch_ingest_job

    @app.middleware("http")
    async def deliver_after_writes(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        # after writes (they may queue messages) and emergency reads (the patient is told)
        emergency = request.headers.get("x-purpose-of-use", "").upper() == "ETREAT"
        if (request.method != "GET" or emergency) and (_is_fhir(request) or request.url.path.startswith("/referrals")) \
                and response.status_code < 400:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(kick)
        return response
    app.include_router(auth_router)
    _install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def home() -> JSONResponse:
        return JSONResponse({"service": "BayLink", "fhir": f"{FHIR_PREFIX}/metadata", "consent": "/consent"})

    @app.get("/healthz", include_in_schema=False)
    def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


def _is_fhir(request: Request) -> bool:
    return request.url.path == FHIR_PREFIX or request.url.path.startswith(FHIR_PREFIX + "/")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def fhir_error(request: Request, exc: FhirError) -> Response:
        return error_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_fhir(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if exc.status_code == 404:
            return error_response(NotFound(f"no FHIR interaction at {request.method} {request.url.path}"), request)
        if exc.status_code == 405:
            return error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"), request)
        return error_response(FhirError(str(exc.detail), status=exc.status_code), request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(InvalidRequest(f"invalid request: {exc.errors()}"), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = operation_outcome([Issue("fatal", "exception", "internal server error; the request was not applied")])
        return JSONResponse(body, status_code=500, media_type="application/fhir+json")
