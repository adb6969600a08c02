"""Consent enforcement asked inside the queries a step runs anyway (issue 3's performance
target), with the same guarantees: checked in the transaction of the change, the participant
locked against a concurrent withdrawal, every read logged, redaction decided per reader."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event

from hub.accounts.callers import Caller
from hub.consent import consents, withdrawal
from tests.helpers import Network, Partner


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block, whitespace folded."""
    engine = app.extensions["hub_db"][0]
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def reads_by(sender: Partner, participant: str, organization: Partner) -> int:
    log = sender.get(f"/api/v1/participants/{participant}/access-log").get_json()["items"]
    return sum(row["organization_id"] == organization.organization_id for row in log)


def test_sending_locks_the_participant_in_the_query_that_loads_them(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    sender.grant_consent(participant, receiver)
    with statements(app) as seen:
        sent = sender.post("/api/v1/referrals", {
            "participant_id": participant, "to_organization_id": receiver.organization_id,
            "pathway": "employment"})
    assert sent.status_code == 201, sent.get_data(as_text=True)
    on_participants = [s for s in seen if " FROM participants" in s]
    # One statement loads the participant and takes the lock: FOR UPDATE on PostgreSQL, the
    # no-op UPDATE ... RETURNING on SQLite.  No second statement only to lock.
    assert len(on_participants) + sum(s.startswith("UPDATE participants") for s in seen) == 1
    loading = next(s for s in seen if "given_name" in s and "participants" in s)
    assert "FOR UPDATE" in loading or loading.startswith("UPDATE participants")
    # The consent question is still asked, after the lock, and the sender's read is logged.
    assert sum(" FROM consents" in s for s in seen) == 1
    assert seen.index(loading) < next(i for i, s in enumerate(seen) if " FROM consents" in s)
    assert reads_by(sender, participant, sender) == 1  # noted ahead, not again when shown


def test_a_refused_step_logs_no_read(network: Network) -> None:
    """Reads are noted ahead only once the change is made: a refused step shows nothing and
    logs nothing."""
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    assert receiver.act(leg["id"], "acknowledge").status_code == 200
    stale = receiver.act(leg["id"], "accept", headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert reads_by(sender, participant, receiver) == 1


def test_a_receiver_step_asks_the_consent_question_inside_the_leg_load(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    with statements(app) as seen:
        answer = receiver.act(leg["id"], "acknowledge")
    assert answer.status_code == 200
    assert answer.get_json()["participant"]["given_name"] == "Amina"
    with_consents = [s for s in seen if " FROM consents" in s]
    assert len(with_consents) == 1 and with_consents[0].startswith("SELECT referrals.id")
    # The receiver's read is logged once: on PostgreSQL by the statement that appends the
    # event, on SQLite by one INSERT before the commit.
    inserts = [s for s in seen if s.startswith("INSERT INTO personal_data_reads")]
    with_event = [s for s in seen if s.startswith("WITH") and "INSERT INTO events" in s]
    if with_event:  # PostgreSQL
        assert inserts == [] and "INSERT INTO personal_data_reads" in with_event[0]
    else:
        assert len(inserts) == 1
    assert reads_by(sender, participant, receiver) == 1


def test_a_step_after_a_withdrawal_shows_nothing_and_logs_nothing(network: Network) -> None:
    """The answer read with the leg is the one of the current transaction, never an earlier
    one: once the consent is withdrawn (and the leg cancelled) the receiver is refused."""
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    assert receiver.act(leg["id"], "acknowledge").status_code == 200
    consent_id = sender.get(f"/api/v1/participants/{participant}/consents"
                            ).get_json()["items"][0]["id"]
    assert sender.post(f"/api/v1/consents/{consent_id}/withdraw").status_code == 200
    refused = receiver.act(leg["id"], "accept")
    assert refused.status_code == 409
    assert "Amina" not in refused.get_data(as_text=True)
    view = receiver.get(f"/api/v1/referrals/{leg['id']}").get_json()
    assert view["participant"] == {"id": participant, "redacted": True}
    assert reads_by(sender, participant, receiver) == 1  # the acknowledgement's only


def test_a_remembered_answer_is_forgotten_when_a_consent_ends_in_the_transaction(
        app: Flask, network: Network) -> None:
    from sqlalchemy.orm import Session

    from hub.referrals.participants import Participant

    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    participant_id = uuid.UUID(leg["participant"]["id"])
    receiving = uuid.UUID(receiver.organization_id)
    owner = Caller(uuid.UUID(sender.organization_id), "test:owner")
    engine = app.extensions["hub_db"][0]
    with Session(engine) as session:
        person = session.get(Participant, participant_id)
        assert person is not None
        consents.remember(session, participant_id, receiving, "referral_sharing", True)
        given = consents.history(session, participant_id)[0]
        withdrawal.withdraw(session, owner, given.id)
        assert not consents.covers(session, person, receiving, "referral_sharing")
        session.rollback()
        # Nothing remembered outlives its transaction: the database answers again.
        consents.remember(session, participant_id, receiving, "referral_sharing", False)
        session.commit()
        assert consents.covers(session, person, receiving, "referral_sharing")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_step_racing_a_withdrawal_is_refused_and_shows_nothing(
        app: Flask, network: Network) -> None:
    """The receiver's step reads the consent with the leg, before the withdrawal commits; the
    withdrawal cancels that leg, so the step's change fails on the version, is retried on the
    new state and refused: no personal data leaves, no read is logged."""
    from sqlalchemy.orm import Session

    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    consent_id = sender.get(f"/api/v1/participants/{participant}/consents"
                            ).get_json()["items"][0]["id"]
    owner = Caller(uuid.UUID(sender.organization_id), "test:owner")
    engine = app.extensions["hub_db"][0]
    answers: list[object] = []
    token = receiver.token

    def acknowledge_meanwhile() -> None:
        answers.append(receiver.act(leg["id"], "acknowledge", token=token))

    with Session(engine) as withdrawing:
        withdrawal.withdraw(withdrawing, owner, uuid.UUID(consent_id))  # leg cancelled, not yet
        racer = threading.Thread(target=acknowledge_meanwhile)  # committed
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive(), "the step must wait for the withdrawal's row lock on the leg"
        withdrawing.commit()
    racer.join(timeout=10)
    assert len(answers) == 1
    answer = answers[0]
    assert answer.status_code == 409, answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Amina" not in answer.get_data(as_text=True)  # type: ignore[attr-defined]
    assert reads_by(sender, participant, receiver) == 0
