"""The voucher API, ``/vouchers``: thin routes over ``EligibilityService`` and ``ClaimService``.

- ``GET /vouchers/eligibility?patient=Patient/<id>&date=YYYY-MM-DD&service=<type>[&location=Location/<id>]``
  (JSON) and ``POST /vouchers/$eligibility`` (a CoverageEligibilityRequest in, a
  CoverageEligibilityResponse out): scope ``system/CoverageEligibilityRequest.c``.
- ``POST /vouchers/claims``: JSON (``patient``, ``service_type``, ``service_date``, ``amount``,
  ``currency`` HKD or RMB, optional ``location``), or a FHIR ``Claim`` (answered with a
  ``ClaimResponse``); ``GET /vouchers/claims/{id}``; ``POST /vouchers/claims/{id}/void`` and
  ``/refund`` (``amount`` in HKD). Scope ``system/Claim.c`` (``Claim.r`` to read one).

Every call needs an access token naming an institution, and ``system/Patient.r``: the
Patient is read through the repository, so the release gate decides whether this institution
may see it. One request is one transaction (``UnitOfWork``), audited like a FHIR request.
Errors are ``FhirError``s, rendered as OperationOutcome by the application's handler.

Money in the JSON answers is written as strings ("150.00"), exact; FHIR Money values are JSON
numbers written from the Decimal (no float on the way).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from fhir_exchange.api.rendering import fhir_response
from fhir_exchange.api.runtime import UnitOfWorkDep
from fhir_exchange.errors import InvalidRequest, NotFound
from referral.voucher.claims import (
    Allowance,
    ClaimRequest,
    ClaimService,
    hong_kong_day,
    parse_amount,
    parse_currency,
)
from referral.voucher.eligibility import Eligibility, parse_day, parse_reference, parse_service_type
from referral.voucher.ledger import Ledger
from referral.voucher.models import LedgerEntry, VoucherClaim
from referral.voucher.rules import ConversionFactors, Rules, default_rules, read_factors

INSURER = {"display": "Elderly Health Care Voucher Scheme, Department of Health, HKSAR"}
RULE_SYSTEM = "http://baylink.example.org/fhir/CodeSystem/ehcv-eligibility-rule"
CLAIM_SYSTEM = "http://baylink.example.org/fhir/sid/ehcv-claim"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
FHIR_OUTCOME = {"approved": "complete", "partial": "partial", "refused": "error"}

router = APIRouter(prefix="/vouchers", tags=["Elderly Health Care Voucher"])


@dataclass
class VoucherRuntime:
    """What the voucher routes need, held on ``app.state.vouchers`` by the composition root."""

    rules: Rules = field(default_factory=default_rules)
    factors: ConversionFactors = field(default_factory=read_factors)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _runtime(request: Request) -> VoucherRuntime:
    return request.app.state.vouchers


RuntimeDep = Annotated[VoucherRuntime, Depends(_runtime)]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("the request body is empty; a JSON object was expected")
    try:
        body = json.loads(raw, parse_float=Decimal)  # amounts exactly as written, never floats
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


JsonBody = Annotated[dict[str, Any], Depends(_json_body)]


# --- rendering ---------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _fhir_money(value: Decimal, currency: str = "HKD") -> dict[str, Any]:
    return {"value": orjson.Fragment(f"{value:.2f}".encode()), "currency": currency}


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def allowance_json(allowance: Allowance | None) -> dict[str, Any] | None:
    if allowance is None:
        return None
    return {"available": _money(allowance.available), "regular": _money(allowance.regular),
            "reward": _money(allowance.reward), "annual_credit_due": _money(allowance.annual_credit_due),
            "optometry_left": _money(allowance.optometry_left),
            "optometry_cycle": ({"start": allowance.optometry_window[0].isoformat(),
                                 "end": allowance.optometry_window[1].isoformat()} if allowance.optometry_window else None),
            "currency": "HKD"}


def eligibility_json(result: Eligibility, allowance: Allowance | None, rules: Rules) -> dict[str, Any]:
    return {
        "eligible": result.eligible,
        "patient": f"Patient/{result.patient_id}",
        "service_date": result.service_date.isoformat(),
        "service_type": result.service_type,
        "service_point": result.service_point,
        "reasons": [c.message for c in result.failures],
        "checks": [{"rule": c.rule, "passed": c.passed, "message": c.message, **({"rule_id": c.rule_id} if c.rule_id else {})}
                   for c in result.checks],
        "rules_version": rules.version,
        "balance": allowance_json(allowance),
    }


def _entry_json(entry: LedgerEntry) -> dict[str, Any]:
    return {"kind": entry.kind, "amount": _money(entry.amount), "balance_after": _money(entry.balance_after),
            "reward": entry.note if entry.reward_pk is not None else None, "rule_version": entry.rule_version,
            "created": _instant(entry.created)}


def claim_json(claim: VoucherClaim, entries: Iterable[LedgerEntry] = ()) -> dict[str, Any]:
    return {
        "id": claim.id,
        "patient": f"Patient/{claim.patient_id}",
        "institution": f"Organization/{claim.institution}",
        "location": f"Location/{claim.location}" if claim.location else None,
        "service_type": claim.service_type,
        "service_date": claim.service_date.isoformat(),
        "claimed": {"amount": _money(claim.claimed_amount), "currency": claim.currency},
        "conversion_factor": f"{claim.conversion_factor.normalize():f}" if claim.conversion_factor is not None else None,
        "factor_month": claim.factor_month,
        "claimed_hkd": _money(claim.claimed_hkd),
        "approved_hkd": _money(claim.approved_hkd),
        "refunded_hkd": _money(claim.refunded_hkd),
        "outcome": claim.outcome,
        "reason": claim.reason,
        "status": claim.status,
        "rule_version": claim.rule_version,
        "created": _instant(claim.created),
        "voided": _instant(claim.voided),
        "void_reason": claim.void_reason,
        "entries": [_entry_json(e) for e in entries],
    }


def _service_coding(rules: Rules, code: str) -> dict[str, Any]:
    return {"coding": [{"system": rules.service_type_system, "code": code, "display": rules.service_types[code].display}]}


def eligibility_resource(result: Eligibility, allowance: Allowance | None, rules: Rules, now: datetime,
                         request: dict[str, Any] | None = None, institution: str | None = None) -> dict[str, Any]:
    """A CoverageEligibilityResponse: ``insurance.inforce`` says whether vouchers may be used,
    a benefit gives what is available, each failed check is an ``error`` in words."""
    benefits = []
    if allowance is not None:
        benefits.append({"type": {"text": "voucher amount available for this service"},
                         "allowedMoney": _fhir_money(allowance.available)})
        if allowance.optometry_left is not None:
            benefits.append({"type": {"text": "optometry limit left in the two-year cycle"},
                             "allowedMoney": _fhir_money(allowance.optometry_left)})
    item: dict[str, Any] = {"productOrService": _service_coding(rules, result.service_type)}
    if benefits:
        item["benefit"] = benefits
    reference = ({"reference": f"CoverageEligibilityRequest/{request['id']}"} if request and request.get("id")
                 else {"display": "the CoverageEligibilityRequest posted"})
    resource: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": ["validation", "benefits"],
        "patient": {"reference": f"Patient/{result.patient_id}"},
        "servicedDate": result.service_date.isoformat(),
        "created": _instant(now),
        "request": reference,
        "outcome": "complete",
        "disposition": "eligible" if result.eligible else f"not eligible: {result.reasons()}",
        "insurer": INSURER,
        "insurance": [{"coverage": {"display": "Elderly Health Care Voucher account"}, "inforce": result.eligible,
                       "item": [item]}],
    }
    if institution:
        resource["requestor"] = {"reference": f"Organization/{institution}"}
    if not result.eligible:
        resource["error"] = [{"code": {"coding": [{"system": RULE_SYSTEM, "code": c.rule}], "text": c.message}}
                             for c in result.failures]
    return resource


def claim_response_resource(claim: VoucherClaim, rules: Rules) -> dict[str, Any]:
    """A ClaimResponse: ``outcome`` complete (approved), partial, or error (refused), the reason
    in ``disposition``; the submitted and the benefit (approved) amounts in HKD."""
    submitted = {"category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]},
                 "amount": _fhir_money(claim.claimed_hkd)}
    benefit = {"category": {"coding": [{"system": ADJUDICATION, "code": "benefit"}]},
               "amount": _fhir_money(claim.approved_hkd - claim.refunded_hkd)}
    resource: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": claim.id,
        "identifier": [{"system": CLAIM_SYSTEM, "value": claim.id}],
        "status": "cancelled" if claim.status == "voided" else "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": f"Patient/{claim.patient_id}"},
        "created": _instant(claim.created),
        "insurer": INSURER,
        "requestor": {"reference": f"Organization/{claim.institution}"},
        "request": {"identifier": {"system": CLAIM_SYSTEM, "value": claim.id}},
        "outcome": FHIR_OUTCOME[claim.outcome],
        "disposition": claim.reason or f"approved {claim.approved_hkd:.2f} HKD",
        "item": [{"itemSequence": 1, "adjudication": [submitted, benefit]}],
        "total": [submitted, benefit],
    }
    if claim.outcome == "refused":
        resource["error"] = [{"code": {"text": claim.reason or "refused"}}]
    return resource


# --- parsing -------------------------------------------------------------------------------------


def claim_request_from_json(body: dict[str, Any], rules: Rules) -> ClaimRequest:
    patient = parse_reference(body.get("patient"), "Patient", "patient")
    assert patient is not None
    return ClaimRequest(
        patient_id=patient,
        service_type=parse_service_type(body.get("service_type"), rules, "service_type"),
        service_date=parse_day(body.get("service_date"), "service_date"),
        amount=parse_amount(body.get("amount"), "amount"),
        currency=parse_currency(body.get("currency", "HKD"), "currency"),
        location=parse_reference(body.get("location"), "Location", "location", required=False),
    )


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (the field is then reported missing)."""
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> dict[str, Any]:
    return _dict(value[0]) if isinstance(value, list) and value else {}


def _code_of(concept: Any, rules: Rules, field_name: str) -> str:
    codings = [c for c in _dict(concept).get("coding") or [] if isinstance(c, dict)]
    code = next((c.get("code") for c in codings if c.get("system") == rules.service_type_system), None)
    if code is None:
        code = next((c.get("code") for c in codings if c.get("code") in rules.service_types), None)
    return parse_service_type(code, rules, field_name)


def claim_request_from_fhir(body: dict[str, Any], rules: Rules) -> ClaimRequest:
    item = _first(body.get("item"))
    if not item:
        raise InvalidRequest("Claim.item is required: one item with productOrService, servicedDate and net",
                             expression=("Claim.item",))
    money = _dict(body.get("total")) or _dict(item.get("net"))
    day = item.get("servicedDate") or _dict(body.get("billablePeriod")).get("start")
    patient = parse_reference(_dict(body.get("patient")).get("reference"), "Patient", "Claim.patient")
    assert patient is not None
    return ClaimRequest(
        patient_id=patient,
        service_type=_code_of(item.get("productOrService"), rules, "Claim.item[0].productOrService"),
        service_date=parse_day(day[:10] if isinstance(day, str) else day, "Claim.item[0].servicedDate"),
        amount=parse_amount(money.get("value"), "Claim.total.value"),
        currency=parse_currency(money.get("currency", "HKD"), "Claim.total.currency"),
        location=parse_reference((_dict(body.get("facility")) or _dict(item.get("locationReference"))).get("reference"),
                                 "Location", "Claim.facility", required=False),
    )


# --- routes ----------------------------------------------------------------------------------------


def _eligibility(uow: Any, runtime: VoucherRuntime, query: str, patient: str, day: date, service: str,
                 location: str | None) -> tuple[Eligibility, Allowance | None, str | None, datetime]:
    now = runtime.clock()
    with uow.transaction("operation", query) as fhir:
        fhir.repo.require("CoverageEligibilityRequest", "c")
        claims = ClaimService(fhir, runtime.rules, runtime.factors, now)
        result, _ = claims.eligibility.check(patient, day, service, location)
        allowance = None
        if result.eligible:
            assert result.document is not None
            allowance = claims.allowance(claims.ledger.find(result.document.person_key()), result)
        return result, allowance, uow.context.institution, now


@router.get("/eligibility")
def eligibility(request: Request, uow: UnitOfWorkDep, runtime: RuntimeDep, patient: str | None = None,
                date: str | None = None, service: str | None = None, location: str | None = None) -> Response:
    """Whether the patient may use vouchers at the calling institution for this service on
    that date (default: today in Hong Kong), every rule's outcome in words, and what is available."""
    patient_id = parse_reference(patient, "Patient", "patient")
    assert patient_id is not None
    day = parse_day(date, "date") if date is not None else hong_kong_day(runtime.clock())
    service_type = parse_service_type(service, runtime.rules, "service")
    location_id = parse_reference(location, "Location", "location", required=False)
    result, allowance, _, _ = _eligibility(uow, runtime, f"$eligibility {request.url.query}", patient_id, day,
                                           service_type, location_id)
    return _json(eligibility_json(result, allowance, runtime.rules))


@router.post("/$eligibility")
def eligibility_fhir(request: Request, uow: UnitOfWorkDep, runtime: RuntimeDep, body: JsonBody) -> Response:
    """A CoverageEligibilityRequest (patient, servicedDate, item[0].productOrService, optional
    facility Location) answered with a CoverageEligibilityResponse."""
    if body.get("resourceType") != "CoverageEligibilityRequest":
        raise InvalidRequest("the body must be a CoverageEligibilityRequest", expression=("resourceType",))
    patient_id = parse_reference(_dict(body.get("patient")).get("reference"), "Patient",
                                 "CoverageEligibilityRequest.patient")
    assert patient_id is not None
    served = body.get("servicedDate")
    day = parse_day(served, "CoverageEligibilityRequest.servicedDate") if served else hong_kong_day(runtime.clock())
    service_type = _code_of(_first(body.get("item")).get("productOrService"), runtime.rules,
                            "CoverageEligibilityRequest.item[0].productOrService")
    location_id = parse_reference(_dict(body.get("facility")).get("reference"), "Location",
                                  "CoverageEligibilityRequest.facility", required=False)
    result, allowance, institution, now = _eligibility(uow, runtime, "$eligibility", patient_id, day, service_type,
                                                       location_id)
    return fhir_response(eligibility_resource(result, allowance, runtime.rules, now, body, institution), request=request)


@router.post("/claims")
def submit_claim(request: Request, uow: UnitOfWorkDep, runtime: RuntimeDep, body: JsonBody) -> Response:
    """A claim for a service given: 201 with the claim as decided (approved, partial or
    refused, and why); a FHIR Claim is answered with a ClaimResponse."""
    fhir = body.get("resourceType") == "Claim"
    claim_request = claim_request_from_fhir(body, runtime.rules) if fhir else claim_request_from_json(body, runtime.rules)
    with uow.transaction("create", "vouchers/claims") as service:
        claims = ClaimService(service, runtime.rules, runtime.factors, runtime.clock())
        claim = claims.submit(claim_request)
        entries = claims.ledger.claim_entries(claim.pk)
    headers = {"Location": f"/vouchers/claims/{claim.id}"}
    if fhir:
        return fhir_response(claim_response_resource(claim, runtime.rules), 201, headers, request)
    response = _json(claim_json(claim, entries), 201)
    response.headers.update(headers)
    return response


@router.get("/claims/{claim_id}")
def read_claim(claim_id: str, uow: UnitOfWorkDep) -> Response:
    """One of the calling institution's claims, with its ledger entries."""
    with uow.transaction("read") as service:
        service.repo.require("Claim", "r")
        ledger = Ledger(service.repo.session)
        claim = ledger.claim(claim_id)
        if claim is None or claim.institution != uow.context.institution:
            raise NotFound(f"voucher claim {claim_id} is not known to this institution")
        return _json(claim_json(claim, ledger.claim_entries(claim.pk)))


def _reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise InvalidRequest("reason must be text of at most 500 characters", expression=("reason",))
    return reason or None


async def _optional_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    return await _json_body(request) if raw.strip() else {}


@router.post("/claims/{claim_id}/void")
def void_claim(claim_id: str, uow: UnitOfWorkDep, runtime: RuntimeDep,
               body: Annotated[dict[str, Any], Depends(_optional_body)]) -> Response:
    """Void a claim made in error: everything it still holds goes back to the account."""
    reason = _reason(body)
    with uow.transaction("update", f"vouchers/claims/{claim_id}/void") as service:
        claims = ClaimService(service, runtime.rules, runtime.factors, runtime.clock())
        claim = claims.void(claim_id, reason)
        return _json(claim_json(claim, claims.ledger.claim_entries(claim.pk)))


@router.post("/claims/{claim_id}/refund")
def refund_claim(claim_id: str, uow: UnitOfWorkDep, runtime: RuntimeDep, body: JsonBody) -> Response:
    """Give back part (or all) of what a claim was paid, in HKD."""
    amount = parse_amount(body.get("amount"), "amount")
    reason = _reason(body)
    with uow.transaction("update", f"vouchers/claims/{claim_id}/refund") as service:
        claims = ClaimService(service, runtime.rules, runtime.factors, runtime.clock())
        claim = claims.refund(claim_id, amount, reason)
        return _json(claim_json(claim, claims.ledger.claim_entries(claim.pk)))


# --- for the patient's own page ------------------------------------------------------------------


def balance_for(session: Session, patient_ids: Iterable[str], *, limit: int = 5,
                rules: Rules | None = None) -> tuple[Decimal | None, list[dict[str, Any]]]:
    """The voucher balance of the person whose Patient records are ``patient_ids`` (None if
    none of them has led to an account) and their ``limit`` most recent claims, newest first,
    at any institution. Read-only, in the caller's session; for the patient's own consent page
    (the composition root passes this function to it: consent cannot import referral)."""
    rules = rules or default_rules()
    ledger = Ledger(session)
    account = ledger.account_of_patients(list(patient_ids))
    if account is None:
        return None, []
    recent = []
    for claim in ledger.recent_claims(account.pk, limit):
        kind = rules.service_types.get(claim.service_type)
        recent.append({
            "id": claim.id, "service_date": claim.service_date, "service_type": claim.service_type,
            "service": kind.display if kind else claim.service_type, "institution": claim.institution,
            "location": claim.location, "claimed_hkd": claim.claimed_hkd, "approved_hkd": claim.approved_hkd,
            "refunded_hkd": claim.refunded_hkd, "outcome": claim.outcome, "status": claim.status, "reason": claim.reason,
        })
    return account.balance, recent

