"""Endpoint management: validation, secrets and rotation, status changes, deletion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from webhooks.endpoints import (
    active_secrets,
    create_endpoint,
    delete_endpoint,
    matches,
    rotate_secret,
    update_endpoint,
)
from webhooks.models import Attempt, Delivery, Endpoint, EndpointStatus
from webhooks.ssrf import UnsafeURL

from .conftest import FakeClock, Receiver
from .support import OWNER, add_endpoint, count, endpoint, put, run_until_idle


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "referral.created", True),
        (["referral.*"], "referral.created", True),
        (["referral.*"], "referral", False),
        (["referral.*"], "consent.referral.created", False),
        (["referral.created"], "referral.created", True),
        (["referral.created"], "referral.createdx", False),
        (["*.created"], "consent.created", True),
        (["referral.*.done"], "referral.step.done", True),
        (["consent.*", "referral.accepted"], "referral.accepted", True),
        (["consent.*", "referral.accepted"], "referral.refused", False),
        (["referral.?"], "referral.x", False),  # only * is special
        (["referral_x"], "referralxx", False),
    ],
)
def test_event_type_patterns(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def _create(session: Session, clock: FakeClock, url: str, **kwargs: object
            ) -> tuple[Endpoint, str]:
    options: dict[str, object] = {"event_types": ["*"], "allow_loopback_http": True}
    options.update(kwargs)
    return create_endpoint(session, owner_id=OWNER, url=url, now=clock(), **options)  # type: ignore[arg-type]


def test_create_returns_the_secret_once_and_validates(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    with sessions.begin() as session:
        created, secret = _create(session, clock, receiver.url, event_types=["referral.*"],
                                  description="CRM")
        assert secret.startswith("whsec_") and created.secret == secret
        assert (created.status, created.event_types) == ("active", ["referral.*"])
        with pytest.raises(UnsafeURL, match="https"):
            _create(session, clock, receiver.url, allow_loopback_http=False)
        with pytest.raises(UnsafeURL):
            _create(session, clock, "https://10.1.2.3/hook")
        for bad in ([], ["Referral.Created"], ["referral-created"], [42], "referral.*",
                    ["x" * 65]):
            with pytest.raises(ValueError, match="event type|event_types"):
                _create(session, clock, receiver.url, event_types=bad)
    assert count(sessions, Endpoint) == 1


def test_rotation_keeps_the_previous_secret_for_24_hours(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    endpoint_id, first = add_endpoint(sessions, clock, receiver)
    with sessions.begin() as session:
        target = session.get(Endpoint, endpoint_id)
        assert active_secrets(target, clock()) == [first]
        second = rotate_secret(session, target, now=clock())
        assert active_secrets(target, clock()) == [second, first]
        assert active_secrets(target, clock() + timedelta(hours=23, minutes=59)) == [
            second, first]
        assert active_secrets(target, clock() + timedelta(hours=24)) == [second]
        third = rotate_secret(session, target, now=clock() + timedelta(hours=1))
        assert active_secrets(target, clock() + timedelta(hours=1)) == [third, second]


def test_owners_pause_and_reactivate_but_never_disable(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver
) -> None:
    endpoint_id, _ = add_endpoint(sessions, clock, receiver)
    with sessions.begin() as session:
        target = session.get(Endpoint, endpoint_id)
        with pytest.raises(ValueError, match="disabled"):
            update_endpoint(session, target, status="disabled", allow_loopback_http=True,
                            now=clock())
        with pytest.raises(UnsafeURL):
            update_endpoint(session, target, url="https://192.168.1.1/",
                            allow_loopback_http=True, now=clock())
        update_endpoint(session, target, status="paused", event_types=["consent.*"],
                        description="", allow_loopback_http=True, now=clock())
    paused = endpoint(sessions, endpoint_id)
    assert (paused.status, paused.event_types, paused.url) == (
        "paused", ["consent.*"], receiver.url_for("/hook"))

    with sessions.begin() as session:  # as the engine does after days of failures
        target = session.get(Endpoint, endpoint_id)
        target.status = EndpointStatus.DISABLED.value
        target.disabled_reason = "failing for 5 days"
        target.failing_since = clock() - timedelta(days=5)
    with sessions.begin() as session:
        update_endpoint(session, session.get(Endpoint, endpoint_id), status="active",
                        allow_loopback_http=True, now=clock())
    active = endpoint(sessions, endpoint_id)
    assert (active.status, active.failing_since, active.disabled_reason) == (
        "active", None, None)


def test_deleting_an_endpoint_takes_its_deliveries_and_attempts(
    sessions: sessionmaker[Session], clock: FakeClock, receiver: Receiver, dispatchers
) -> None:
    doomed, _ = add_endpoint(sessions, clock, receiver, "/a")
    kept, _ = add_endpoint(sessions, clock, receiver, "/b")
    put(sessions, clock, "m1")
    run_until_idle(dispatchers())
    assert count(sessions, Attempt) == 2

    with sessions.begin() as session:
        delete_endpoint(session, session.get(Endpoint, doomed))
    with sessions() as session:
        assert session.get(Endpoint, doomed) is None
        assert set(session.scalars(select(Delivery.endpoint_id))) == {kept}
    assert count(sessions, Attempt) == 1
    assert endpoint(sessions, kept).status == "active"
