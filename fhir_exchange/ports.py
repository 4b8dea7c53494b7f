"""The ports ``fhir_exchange`` needs from outside, as Protocols it owns.

The composition root (``baylink.app``) supplies the implementations; ``fhir_exchange``
never imports the packages that implement them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fhir_exchange.release_facts import ReleaseFacts


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, for whom and why: built once per request at the edge.

    ``institution`` is the Organization id of the caller's institution (None for an
    anonymous development caller); ``purpose_of_use`` a v3 ActReason code (TREAT by default).
    """

    request_id: str
    client_id: str | None = None
    institution: str | None = None
    user: str | None = None
    roles: tuple[str, ...] = ()
    purpose_of_use: str = "TREAT"
    scopes: tuple[str, ...] = field(default=())
    reason: str | None = None  # why, in words: required for break-glass (header X-Break-Glass-Reason)


class Release(enum.Enum):
    PERMIT = "permit"
    DENY = "deny"
    PERMIT_WITH_MASKING = "permit-with-masking"


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """The gate's answer for one resource.

    With ``PERMIT_WITH_MASKING`` the gate returns the masked copy in ``resource``; the
    caller releases that copy and never the original. ``reason`` says what decided it
    (e.g. the Consent and provision), for the audit.
    """

    outcome: Release
    resource: dict[str, Any] | None = None
    reason: str | None = None


class ReleaseGate(Protocol):
    """Decides whether one stored resource may be returned to the caller.

    Contract: called for every resource that any read path is about to return (read,
    vread, search matches and includes, history, bundles, operations), after it has been
    loaded and before it is serialised. Must not modify ``resource``; must be safe to call
    many times within one request; must not raise for an ordinary refusal (return DENY).
    Optional capabilities, found with ``getattr``: ``releases_everything``,
    ``releases_own_records``, ``reads_with_caller``, ``decide_many``, ``decide_facts`` and
    ``decide_undated`` (see the functions of those names below); a gate that wraps another must pass on only
    those that still hold for it.
    """

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision: ...


def releases_everything(gate: ReleaseGate) -> bool:
    """A gate may declare ``releases_everything = True`` to spare callers the per-resource
    check when counting (search totals)."""
    return bool(getattr(gate, "releases_everything", False))


def releases_own_records(gate: ReleaseGate) -> bool:
    """A gate may declare ``releases_own_records = True``: it releases to an institution,
    whole, every record that institution holds (the custodian tag the store stamps), so a
    caller may count those from the search index without loading them."""
    return bool(getattr(gate, "releases_own_records", False))


def reads_with_caller(gate: ReleaseGate) -> bool:
    """A gate may declare ``reads_with_caller = True``: its ``decide_many`` and
    ``decide_facts`` then take a ``session`` keyword, the caller's database session, and read
    what they need through it (in the caller's transaction, seeing what it sees) instead of
    on a connection of their own."""
    return bool(getattr(gate, "reads_with_caller", False))


def _session_for(gate: ReleaseGate, session: Any) -> dict[str, Any]:
    return {"session": session} if session is not None and reads_with_caller(gate) else {}


def decide_facts(gate: ReleaseGate, context: RequestContext, facts: Sequence[ReleaseFacts], *,
                 session: Any = None) -> list[Release | None]:
    """The gate's outcomes for resources known by their release facts only (the store keeps
    them with each version: release_facts.py), in order; None for each it cannot decide
    without the resource (the caller then loads it and asks ``decide``). A gate may offer
    ``decide_facts(context, facts)``, deciding exactly as ``decide`` would on the resources
    (PERMIT_WITH_MASKING counts as a release; the masking is done when the resource itself
    is released); otherwise nothing is decided on facts."""
    return _on_facts(gate, "decide_facts", context, facts, session)


def decide_undated(gate: ReleaseGate, context: RequestContext, facts: Sequence[ReleaseFacts], *,
                   session: Any = None) -> list[Release | None]:
    """For facts given without their clinical date (each standing for every version whose facts
    differ from it by the date alone: a ``FactsReader`` head), the gate's outcome where it is the
    same whatever that date is; None where the date can change it or the gate cannot tell on
    facts (the caller then asks ``decide_facts`` with each version's own date). A gate may offer
    ``decide_undated(context, facts)``; otherwise every version is asked about with its date."""
    return _on_facts(gate, "decide_undated", context, facts, session)


def _on_facts(gate: ReleaseGate, capability: str, context: RequestContext, facts: Sequence[ReleaseFacts],
              session: Any) -> list[Release | None]:
    """The gate's ``capability`` asked about ``facts``; None for each where it has none."""
    many = getattr(gate, capability, None)
    if many is None:
        return [None] * len(facts)
    outcomes = list(many(context, facts, **_session_for(gate, session)))
    if len(outcomes) != len(facts):
        raise RuntimeError(f"the release gate gave {len(outcomes)} outcomes for {len(facts)} resources")
    return outcomes


def decide_many(gate: ReleaseGate, context: RequestContext, resources: Sequence[dict[str, Any]], *,
                session: Any = None) -> list[ReleaseDecision]:
    """The gate's decisions for several resources, in order. A gate may offer
    ``decide_many(context, resources)`` (the same contract as ``decide``, one decision per
    resource) to share its lookups across a batch; otherwise each is decided alone."""
    many = getattr(gate, "decide_many", None)
    if many is None:
        return [gate.decide(context, resource) for resource in resources]
    decisions = list(many(context, resources, **_session_for(gate, session)))
    if len(decisions) != len(resources):
        raise RuntimeError(f"the release gate gave {len(decisions)} decisions for {len(resources)} resources")
    return decisions


class WriteRule(Protocol):
    """A rule another package adds to what may be written (e.g. the consent package: an
    institution cannot alter a patient's own consent).

    Called for every create, update and delete through the API, inside the request's
    transaction (``session``), before anything is written: ``previous`` is the current stored
    version (None for a create), ``new`` the version to be written, with its id (None for a
    delete). Refuses by raising a ``fhir_exchange.errors.FhirError`` (Forbidden,
    Unprocessable, …), which rolls the whole request back; may also write in ``session``
    what must commit with the change (e.g. a notification in the outbox), and may return an
    amended copy of ``new`` to be written instead (None: write ``new`` as it is). BayLink's
    own internal writes do not pass these rules.
    """

    def check(self, session: Any, context: RequestContext, resource_type: str, previous: dict[str, Any] | None,
              new: dict[str, Any] | None) -> dict[str, Any] | None: ...


class AllowAllGate:
    """Releases everything: for operator tooling and tests of the FHIR core. BayLink serves
    with the consent package's gate."""

    releases_everything = True

    def decide(self, context: RequestContext, resource: dict[str, Any]) -> ReleaseDecision:
        return ReleaseDecision(Release.PERMIT, resource, "allow-all gate")
