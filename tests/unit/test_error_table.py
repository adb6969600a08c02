"""One error table: every domain refusal says its HTTP status and problem type itself, and the
API and the portal answer with that status (hub.errors)."""

from __future__ import annotations

import uuid

import pytest

import hub.models  # noqa: F401  (every module that defines a refusal)
from hub.accounts.users import WeakPassword
from hub.api.idempotency import IdempotencyKeyInvalid
from hub.consent.consents import ConsentRequired
from hub.errors import DomainError, NotFound, VersionMismatch
from hub.portal.common import status_of
from hub.referrals.lifecycle import Action, Status, TransitionRefused


def _all_refusals() -> list[type[DomainError]]:
    found, todo = [], [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_every_refusal_declares_its_own_status_and_title() -> None:
    refusals = _all_refusals()
    assert len(refusals) >= 12
    for refusal in refusals:
        assert 400 <= refusal.http_status < 500, refusal
        assert "http_status" in vars(refusal) and "title" in vars(refusal), refusal
        assert refusal.slug is None or refusal.slug.replace("-", "_").isidentifier(), refusal


@pytest.mark.parametrize(("error", "status"), [
    (NotFound("referral", uuid.uuid4()), 404),
    (VersionMismatch(expected=1, current=2), 412),
    (TransitionRefused(Status.COMPLETED, Action.ACCEPT, ()), 409),
    (ConsentRequired(uuid.uuid4(), uuid.uuid4()), 409),
    (IdempotencyKeyInvalid(), 400),
    (WeakPassword(), 422),
])
def test_the_portal_answers_with_the_tables_status(error: DomainError, status: int) -> None:
    assert status_of(error) == error.http_status == status


def test_transition_refused_tells_what_is_possible() -> None:
    error = TransitionRefused(Status.ACKNOWLEDGED, Action.START, (Action.ACCEPT, Action.DECLINE))
    assert error.members() == {"current_status": "acknowledged", "allowed": ["accept", "decline"]}
    assert "Allowed now: accept, decline" in error.detail()
