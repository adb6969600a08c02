"""The referral lifecycle: statuses, allowed transitions and who may make them.

This is the one place the rules of docs/design.md §2 live.  It imports neither Flask nor
SQLAlchemy so that the API, the portal, inbound webhooks and the scheduler all ask the same
pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hub.errors import DomainError


class Status(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FORWARDED = "forwarded"


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ACCEPT = "accept"
    DECLINE = "decline"
    START = "start"
    COMPLETE = "complete"
    FORWARD = "forward"
    CANCEL = "cancel"
    EXPIRE = "expire"


class Party(StrEnum):
    """Who asks for a transition, relative to the leg."""

    SENDER = "sender"
    RECEIVER = "receiver"
    SCHEDULER = "scheduler"


class Pathway(StrEnum):
    EMPLOYMENT = "employment"
    SETTLEMENT = "settlement"
    TRAINING = "training"
    ENTREPRENEURSHIP = "entrepreneurship"
    COOPERATIVE_ENTREPRENEURSHIP = "cooperative_entrepreneurship"
    OTHER = "other"


ENTREPRENEURSHIP_PATHWAYS = frozenset(
    {Pathway.ENTREPRENEURSHIP, Pathway.COOPERATIVE_ENTREPRENEURSHIP}
)


class Stage(StrEnum):
    EXPLORATION = "exploration"
    PREVALIDATION = "prevalidation"


class Priority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"


class DeclineReason(StrEnum):
    NOT_ELIGIBLE = "not_eligible"
    NO_CAPACITY = "no_capacity"
    OUT_OF_REGION = "out_of_region"
    PARTICIPANT_UNREACHABLE = "participant_unreachable"
    DUPLICATE = "duplicate"
    OTHER = "other"


class Outcome(StrEnum):
    EMPLOYED = "employed"
    IN_TRAINING = "in_training"
    BUSINESS_STARTED = "business_started"
    SETTLED = "settled"
    SERVICE_DELIVERED = "service_delivered"
    PARTICIPANT_WITHDREW = "participant_withdrew"
    NO_SHOW = "no_show"
    OTHER = "other"


class CancelReason(StrEnum):
    PARTICIPANT_WITHDREW = "participant_withdrew"
    REFERRED_ELSEWHERE = "referred_elsewhere"
    NO_LONGER_NEEDED = "no_longer_needed"
    SENT_BY_MISTAKE = "sent_by_mistake"
    CONSENT_WITHDRAWN = "consent_withdrawn"  # set by the hub when consent is withdrawn
    OTHER = "other"


TERMINAL = frozenset(
    {Status.DECLINED, Status.COMPLETED, Status.CANCELLED, Status.EXPIRED, Status.FORWARDED}
)
OPEN = frozenset(Status) - TERMINAL

# (from status, action) -> to status.  Exactly the diagram of docs/design.md §2.
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (Status.SENT, Action.ACKNOWLEDGE): Status.ACKNOWLEDGED,
    (Status.SENT, Action.DECLINE): Status.DECLINED,
    (Status.SENT, Action.CANCEL): Status.CANCELLED,
    (Status.SENT, Action.EXPIRE): Status.EXPIRED,
    (Status.ACKNOWLEDGED, Action.ACCEPT): Status.ACCEPTED,
    (Status.ACKNOWLEDGED, Action.DECLINE): Status.DECLINED,
    (Status.ACKNOWLEDGED, Action.FORWARD): Status.FORWARDED,
    (Status.ACKNOWLEDGED, Action.CANCEL): Status.CANCELLED,
    (Status.ACCEPTED, Action.START): Status.IN_PROGRESS,
    (Status.ACCEPTED, Action.FORWARD): Status.FORWARDED,
    (Status.ACCEPTED, Action.COMPLETE): Status.COMPLETED,
    (Status.ACCEPTED, Action.CANCEL): Status.CANCELLED,
    (Status.IN_PROGRESS, Action.COMPLETE): Status.COMPLETED,
    (Status.IN_PROGRESS, Action.FORWARD): Status.FORWARDED,
    (Status.IN_PROGRESS, Action.CANCEL): Status.CANCELLED,
}

# Who may ask for each action.
ACTOR: dict[Action, Party] = {
    Action.ACKNOWLEDGE: Party.RECEIVER,
    Action.ACCEPT: Party.RECEIVER,
    Action.DECLINE: Party.RECEIVER,
    Action.START: Party.RECEIVER,
    Action.COMPLETE: Party.RECEIVER,
    Action.FORWARD: Party.RECEIVER,
    Action.CANCEL: Party.SENDER,
    Action.EXPIRE: Party.SCHEDULER,
}

# The FHIR Task status of each status, for the FHIR export.
FHIR_TASK_STATUS: dict[Status, str] = {
    Status.SENT: "requested",
    Status.ACKNOWLEDGED: "received",
    Status.ACCEPTED: "accepted",
    Status.IN_PROGRESS: "in-progress",
    Status.COMPLETED: "completed",
    Status.DECLINED: "rejected",
    Status.CANCELLED: "cancelled",
    Status.EXPIRED: "cancelled",
    Status.FORWARDED: "completed",
}


@dataclass(frozen=True)
class TransitionRefused(DomainError):
    """A transition that the rules do not allow; `allowed` lists what is possible instead."""

    http_status = 409
    title = "Transition not allowed"
    slug = "transition-not-allowed"

    status: Status
    action: Action
    allowed: tuple[Action, ...]

    def members(self) -> dict[str, Any]:
        return {"current_status": self.status.value, "allowed": [a.value for a in self.allowed]}

    def __str__(self) -> str:
        allowed = ", ".join(self.allowed) or "none (the leg is closed)"
        return (
            f"A referral that is '{self.status}' cannot be {_past(self.action)}. "
            f"Allowed now: {allowed}."
        )


@dataclass(frozen=True)
class NotYourTurn(DomainError):
    """The action exists from this status, but belongs to the other party."""

    http_status = 403
    title = "Not your organization's action"
    slug = "wrong-party"

    action: Action
    party: Party

    def __str__(self) -> str:
        who = {
            Party.SENDER: "sending organization",
            Party.RECEIVER: "receiving organization",
            Party.SCHEDULER: "hub's scheduled checks",
        }[self.party]
        return f"Only the {who} may {self.action} a referral."


def _past(action: Action) -> str:
    return {
        Action.ACKNOWLEDGE: "acknowledged",
        Action.ACCEPT: "accepted",
        Action.DECLINE: "declined",
        Action.START: "started",
        Action.COMPLETE: "completed",
        Action.FORWARD: "forwarded",
        Action.CANCEL: "cancelled",
        Action.EXPIRE: "expired",
    }[action]


def allowed_actions(status: Status, party: Party | None = None) -> tuple[Action, ...]:
    """The actions possible from `status`, for `party` if given, in a stable order."""
    return tuple(
        action
        for (source, action) in TRANSITIONS
        if source == status and (party is None or ACTOR[action] == party)
    )


def next_status(status: Status, action: Action, party: Party) -> Status:
    """The status after `party` applies `action` to a leg in `status`, or why not.

    The party is checked first: a receiver trying to cancel is told that cancelling belongs to
    the sender, not that the leg happens to be in a status where cancelling is possible.
    """
    if ACTOR[action] != party:
        raise NotYourTurn(action, ACTOR[action])
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise TransitionRefused(status, action, allowed_actions(status, party))
    return target


def is_terminal(status: Status) -> bool:
    return status in TERMINAL
