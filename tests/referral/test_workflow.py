"""The referral state machine, transition by transition: every (from, to, side) is either
allowed exactly as the table says, or refused with 409 (not from this state) / 403 (not
by this side) naming what is allowed."""

from __future__ import annotations

import itertools

import pytest

from referral import workflow

ALLOWED = {
    ("requested", "received", "owner"), ("requested", "cancelled", "requester"),
    ("received", "accepted", "owner"), ("received", "rejected", "owner"), ("received", "cancelled", "requester"),
    ("accepted", "in-progress", "owner"), ("accepted", "failed", "owner"), ("accepted", "cancelled", "requester"),
    ("in-progress", "completed", "owner"), ("in-progress", "failed", "owner"), ("in-progress", "cancelled", "requester"),
    ("on-hold", "cancelled", "requester"),
}
ALLOWED |= {(state, "on-hold", side) for state in ("requested", "received", "accepted", "in-progress")
            for side in ("owner", "requester")}
ALLOWED |= {("on-hold", state, side) for state in ("requested", "received", "accepted", "in-progress")
            for side in ("owner", "requester")}


@pytest.mark.parametrize(("before", "after", "side"),
                         list(itertools.product(workflow.STATES, workflow.STATES, ("owner", "requester"))))
def test_every_transition(before: str, after: str, side: str) -> None:
    if before == after:
        assert workflow.check(before, after, side).after == after  # no change of state is no transition
        return
    if (before, after, side) in ALLOWED:
        assert workflow.check(before, after, side) == workflow.Transition(before, after, side)
        return
    with pytest.raises(workflow.TransitionRefused) as refused:
        workflow.check(before, after, side)
    other_side_may = (before, after, "owner" if side == "requester" else "requester") in ALLOWED
    assert refused.value.status == (403 if other_side_may else 409)
    assert refused.value.allowed == workflow.allowed_from(before, side)
    if refused.value.status == 409:
        assert f"from '{before}'" in str(refused.value)


def test_closed_referrals_go_nowhere() -> None:
    for state in workflow.FINAL:
        assert workflow.allowed_from(state, "owner") == () and workflow.allowed_from(state, "requester") == ()


def test_unknown_state_and_unknown_side() -> None:
    with pytest.raises(workflow.TransitionRefused) as unknown:
        workflow.check("requested", "done", "owner")
    assert unknown.value.status == 422
    with pytest.raises(workflow.TransitionRefused) as outsider:
        workflow.check("requested", "received", None)
    assert outsider.value.status == 403
