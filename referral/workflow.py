"""The referral's states and who may move it between them (pure; no database).

A referral is a ServiceRequest (what is asked) and a Task (its progress), as HL7 BSeR and
IHE 360X model a closed-loop referral; the mainland's two-way referral standard (WS/T 790
part 16) has the same stages. ``Task.status`` holds the state:

    requested ──► received ──► accepted ──► in-progress ──► completed (with the summary)
        │             │           │              │
        │             └─► rejected (with a reason)└─► failed
        └─ cancelled by the initiator, from any open state; on-hold and back, by either side

The receiving institution (``Task.owner``) reports progress; the initiating one
(``Task.requester``) may cancel, and either may put an open referral on hold and take it off.
"""

from __future__ import annotations

from dataclasses import dataclass

OWNER = "owner"  # the receiving institution
REQUESTER = "requester"  # the initiating institution
EITHER = "either"

OPEN = ("requested", "received", "accepted", "in-progress", "on-hold")
FINAL = ("completed", "rejected", "cancelled", "failed")
# from → {to: who may}
TRANSITIONS: dict[str, dict[str, str]] = {
    "requested": {"received": OWNER, "cancelled": REQUESTER, "on-hold": EITHER},
    "received": {"accepted": OWNER, "rejected": OWNER, "cancelled": REQUESTER, "on-hold": EITHER},
    "accepted": {"in-progress": OWNER, "cancelled": REQUESTER, "failed": OWNER, "on-hold": EITHER},
    "in-progress": {"completed": OWNER, "failed": OWNER, "cancelled": REQUESTER, "on-hold": EITHER},
    "on-hold": {"requested": EITHER, "received": EITHER, "accepted": EITHER, "in-progress": EITHER,
                "cancelled": REQUESTER},
    "completed": {}, "rejected": {}, "cancelled": {}, "failed": {},
}
STATES = tuple(TRANSITIONS)


class TransitionRefused(Exception):
    """Why a change of state is not allowed: ``status`` 409 (not from this state) or 403
    (not by this side)."""

    def __init__(self, message: str, status: int, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.status = status
        self.allowed = allowed


@dataclass(frozen=True, slots=True)
class Transition:
    before: str
    after: str
    by: str  # owner | requester


def allowed_from(state: str, side: str) -> tuple[str, ...]:
    return tuple(to for to, who in TRANSITIONS.get(state, {}).items() if who in (side, EITHER))


def check(before: str, after: str, side: str | None) -> Transition:
    """The transition, or TransitionRefused saying which ones are allowed."""
    if after not in TRANSITIONS:
        raise TransitionRefused(f"'{after}' is not a referral state (one of: {', '.join(STATES)})", 422, ())
    if side is None:
        raise TransitionRefused("only the initiating or the receiving institution may change a referral", 403, ())
    if before == after:
        return Transition(before, after, side)
    who = TRANSITIONS.get(before, {}).get(after)
    allowed = allowed_from(before, side)
    if who is None:
        listed = ", ".join(allowed) or "none: the referral is closed"
        raise TransitionRefused(f"a referral cannot go from '{before}' to '{after}'; from '{before}' the "
                                f"{'receiving' if side == OWNER else 'initiating'} institution may go to: {listed}",
                                409, allowed)
    if who not in (side, EITHER):
        other = "receiving" if who == OWNER else "initiating"
        raise TransitionRefused(f"only the {other} institution may move a referral from '{before}' to '{after}'",
                                403, allowed)
    return Transition(before, after, side)
