"""A referral reaches the institution it is addressed to.

The receiving institution named by a referral (``Task.owner``, ``ServiceRequest.performer``)
sees that referral's Task and ServiceRequest: the treating clinician sent it there, and
without it the receiver cannot act (nor ask to see more). Everything the referral points to —
supporting information, the patient's record — stays behind the consent gate, which this
wraps and asks for every other decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_exchange.ports import (
    Release,
    ReleaseDecision,
    ReleaseGate,
    RequestContext,
    decide_facts,
    decide_many,
    decide_undated,
    reads_with_caller,
    releases_everything,
    releases_own_records,
)
from fhir_exchange.release_facts import ReleaseFacts
from referral.rules import REFERRAL_CATEGORY_CODE, is_referral_task

REFERRAL_TYPES = ("Task", "ServiceRequest")


def addressed_to(resource: dict[str, Any], institution: str | None) -> bool:
    if institution is None:
        return False
    me = f"Organization/{institution}"
    kind = resource.get("resourceType")
    if kind == "Task":
        return is_referral_task(resource) and (resource.get("owner") or {}).get("reference") == me
    if kind == "ServiceRequest":
        referral = any(c.get("code") == REFERRAL_CATEGORY_CODE for cat in resource.get("category") or []
                       for c in cat.get("coding") or [])
        return referral and any(p.get("reference") == me for p in resource.get("performer") or [])
    return False


class ReferralAddresseeGate:
    def __init__(self, inner: ReleaseGate) -> None:
        self.inner = inner

    @property
    def releases_everything(self) -> bool:
        return releases_everything(self.inner)

    @property
    def reads_with_caller(self) -> bool:
        return reads_with_caller(self.inner)

    @property
    def releases_own_records(self) -> bool:
        # this wrapper only adds releases (referrals addressed to the caller), so whatever the
        # inner gate releases whole to its custodian, the wrapper releases whole too
        return releases_own_records(self.inner)

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        if addressed_to(resource, context.institution):
            return ReleaseDecision(Release.PERMIT, resource, "a referral addressed to the requesting institution")
        return self.inner.decide(context, resource)

    def decide_many(self, context: RequestContext, resources: Sequence[dict[str, Any]], *,
                    session: Any = None) -> list[ReleaseDecision]:
        addressed = [addressed_to(r, context.institution) for r in resources]
        others = decide_many(self.inner, context, [r for r, a in zip(resources, addressed, strict=True) if not a],
                             session=session)
        decided = iter(others)
        return [ReleaseDecision(Release.PERMIT, r, "a referral addressed to the requesting institution") if a
                else next(decided) for r, a in zip(resources, addressed, strict=True)]

    def decide_facts(self, context: RequestContext, facts: Sequence[ReleaseFacts], *,
                     session: Any = None) -> list[Release | None]:
        """The inner gate's outcomes; where it withholds a Task or ServiceRequest, whether the
        referral is addressed to the caller can only be read from the resource itself (None)."""
        outcomes = decide_facts(self.inner, context, facts, session=session)
        return [None if outcome is Release.DENY and known.resource_type in REFERRAL_TYPES and context.institution
                else outcome for known, outcome in zip(facts, outcomes, strict=True)]

    def decide_undated(self, context: RequestContext, facts: Sequence[ReleaseFacts], *,
                       session: Any = None) -> list[Release | None]:
        """As ``decide_facts``: a Task or ServiceRequest the inner gate withholds is left to be
        read (None)."""
        outcomes = decide_undated(self.inner, context, facts, session=session)
        return [None if outcome is Release.DENY and known.resource_type in REFERRAL_TYPES and context.institution
                else outcome for known, outcome in zip(facts, outcomes, strict=True)]
