"""The lifecycle rules of docs/design.md §2, as pure functions."""

from __future__ import annotations

import pytest

from hub.referrals import lifecycle
from hub.referrals.lifecycle import (
    Action,
    NotYourTurn,
    Party,
    Status,
    TransitionRefused,
    next_status,
)

# The diagram of docs/design.md §2, written out independently of
# hub.referrals.lifecycle.TRANSITIONS.
EXPECTED = {
    ("sent", "acknowledge"): "acknowledged",
    ("sent", "decline"): "declined",
    ("sent", "cancel"): "cancelled",
    ("sent", "expire"): "expired",
    ("acknowledged", "accept"): "accepted",
    ("acknowledged", "decline"): "declined",
    ("acknowledged", "forward"): "forwarded",
    ("acknowledged", "cancel"): "cancelled",
    ("accepted", "start"): "in_progress",
    ("accepted", "forward"): "forwarded",
    ("accepted", "complete"): "completed",
    ("accepted", "cancel"): "cancelled",
    ("in_progress", "complete"): "completed",
    ("in_progress", "forward"): "forwarded",
    ("in_progress", "cancel"): "cancelled",
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_status_and_action_pair_follows_the_diagram(status: Status, action: Action) -> None:
    party = lifecycle.ACTOR[action]
    expected = EXPECTED.get((status.value, action.value))
    if expected is None:
        with pytest.raises(TransitionRefused) as refused:
            next_status(status, action, party)
        assert action not in refused.value.allowed
    else:
        assert next_status(status, action, party) == Status(expected)


def test_terminal_statuses_allow_nothing() -> None:
    for status in lifecycle.TERMINAL:
        assert lifecycle.allowed_actions(status) == ()
    assert {s.value for s in lifecycle.TERMINAL} == {
        "declined", "completed", "cancelled", "expired", "forwarded"}


@pytest.mark.parametrize("action", [a for a in Action if lifecycle.ACTOR[a] is Party.RECEIVER])
def test_sender_may_not_answer(action: Action) -> None:
    with pytest.raises(NotYourTurn, match="receiving organization"):
        next_status(Status.SENT, action, Party.SENDER)


def test_receiver_may_not_cancel_and_nobody_but_the_scheduler_expires() -> None:
    with pytest.raises(NotYourTurn, match="sending organization"):
        next_status(Status.SENT, Action.CANCEL, Party.RECEIVER)
    for party in (Party.SENDER, Party.RECEIVER):
        with pytest.raises(NotYourTurn):
            next_status(Status.SENT, Action.EXPIRE, party)


def test_refusal_lists_the_actions_the_party_may_take_now() -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_status(Status.SENT, Action.COMPLETE, Party.RECEIVER)
    assert refused.value.allowed == (Action.ACKNOWLEDGE, Action.DECLINE)
    assert "acknowledge, decline" in str(refused.value)


def test_every_status_has_a_fhir_task_status() -> None:
    assert set(lifecycle.FHIR_TASK_STATUS) == set(Status)
    assert lifecycle.FHIR_TASK_STATUS[Status.ACKNOWLEDGED] == "received"
    assert lifecycle.FHIR_TASK_STATUS[Status.DECLINED] == "rejected"
