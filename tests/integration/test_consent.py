"""Consent (docs/design.md §5) through the API: recorded, enforced on every flow, withdrawn with its
effects, expired by the scheduled check; and what coordinators and the access log see."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from hub.consent import consents as consent
from hub.consent import withdrawal
from hub.db import db
from tests.helpers import PARTICIPANT, Network, Partner

PROBLEM_JSON = "application/problem+json"


def send(sender: Partner, receiver: Partner, participant_id: str, **fields: object):
    return sender.post("/api/v1/referrals", {
        "participant_id": participant_id, "to_organization_id": receiver.organization_id,
        "pathway": "employment", "reason_for_referral": "Cherche un emploi en soudure",
        **fields})


def feed(partner: Partner, after: str = "0") -> list[dict]:
    return partner.get(f"/api/v1/events?limit=500&after={after}").get_json()["items"]


def end_of_feed(partner: Partner) -> str:
    """The cursor after everything already in `partner`'s feed (a coordinator's is the whole
    network's, other tests' events included)."""
    cursor = "0"
    while True:
        page = partner.get(f"/api/v1/events?limit=500&after={cursor}").get_json()
        if not page["items"]:
            return cursor
        cursor = page["next_cursor"]


# --- enforcement ---------------------------------------------------------------------------

def test_sending_without_consent_is_409_consent_required_naming_what_is_missing(
        network: Network) -> None:
    sender, receiver, other = network.partner(), network.partner(), network.partner()
    participant = sender.register_participant()["id"]

    refused = send(sender, receiver, participant)
    assert refused.status_code == 409
    assert refused.mimetype == PROBLEM_JSON
    problem = refused.get_json()
    assert problem["type"].endswith("/consent_required")
    assert (problem["participant_id"], problem["organization_id"], problem["purpose"]) == (
        participant, receiver.organization_id, "referral_sharing")
    assert f"/api/v1/participants/{participant}/consents" in problem["detail"]

    # A consent for another organization, or for another purpose, does not cover it.
    sender.grant_consent(participant, other)
    sender.grant_consent(participant, receiver, purpose="follow_up_contact")
    assert send(sender, receiver, participant).status_code == 409
    assert receiver.get("/api/v1/referrals").get_json()["items"] == []

    sender.grant_consent(participant, receiver)
    assert send(sender, receiver, participant).status_code == 201


def test_a_network_wide_consent_covers_every_organization(network: Network) -> None:
    sender, a, b = network.partner(), network.partner(), network.partner(kind="employer")
    participant = sender.register_participant()["id"]
    granted = sender.grant_consent(participant)
    assert granted["network_wide"] is True and granted["organization_ids"] == []
    assert send(sender, a, participant).status_code == 201
    assert send(sender, b, participant).status_code == 201


def test_forwarding_to_an_organization_not_covered_is_refused_and_changes_nothing(
        network: Network) -> None:
    community, regional, employer = network.partner(), network.partner(), network.partner()
    leg = community.refer(regional)
    regional.act(leg["id"], "acknowledge")

    refused = regional.act(leg["id"], "forward", {"to_organization_id": employer.organization_id})
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert refused.get_json()["organization_id"] == employer.organization_id
    assert regional.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "acknowledged"
    assert employer.get("/api/v1/referrals").get_json()["items"] == []

    community.grant_consent(leg["participant"]["id"], employer)
    assert regional.act(leg["id"], "forward",
                        {"to_organization_id": employer.organization_id}).status_code == 201


def test_a_new_leg_with_forwarded_from_needs_consent_too(network: Network) -> None:
    community, regional, agency = network.partner(), network.partner(), network.partner()
    leg = community.refer(regional)
    regional.act(leg["id"], "acknowledge")
    onward = send(regional, agency, leg["participant"]["id"], forwarded_from=leg["id"])
    assert onward.status_code == 409
    assert onward.get_json()["organization_id"] == agency.organization_id


# --- recording -----------------------------------------------------------------------------

def test_a_consent_is_recorded_with_its_evidence_and_a_12_month_default_expiry(
        network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    response = sender.post(f"/api/v1/participants/{participant}/consents", {
        "purpose": "referral_sharing", "organization_ids": [receiver.organization_id],
        "evidence": "verbal", "note": "Consentement verbal au téléphone"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/consents/{body['id']}")
    assert body["status"] == "active"
    assert body["evidence"] == "verbal"
    assert body["recorded_by"] == f"client:{sender.client_id}"
    granted = datetime.fromisoformat(body["granted_at"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=364) < expires - granted <= timedelta(days=366)
    assert body["withdrawn_at"] is None
    assert "note" not in body  # free text stays with the hub
    assert sender.get(f"/api/v1/consents/{body['id']}").get_json() == body
    history = sender.get(f"/api/v1/participants/{participant}/consents").get_json()
    assert [c["id"] for c in history["items"]] == [body["id"]]
    granted_event = [e for e in feed(sender) if e["subject"] == f"consents/{body['id']}"]
    assert [(e["type"], e["sequence"]) for e in granted_event] == [("consent.granted", 1)]
    assert all(e["subject"] != f"consents/{body['id']}" for e in feed(receiver))


@pytest.mark.parametrize(("body", "field"), [
    ({"purpose": "referral_sharing", "evidence": "written"}, "organization_ids"),
    ({"purpose": "referral_sharing", "evidence": "written", "network_wide": True,
      "organization_ids": ["{org}"]}, "organization_ids"),
    ({"purpose": "referral_sharing", "evidence": "written",
      "organization_ids": [str(uuid.UUID(int=7))]}, "organization_ids"),
    ({"purpose": "gossip", "evidence": "written", "network_wide": True}, "purpose"),
    ({"purpose": "referral_sharing", "evidence": "telepathy", "network_wide": True}, "evidence"),
    ({"purpose": "referral_sharing", "evidence": "written", "network_wide": True,
      "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
])
def test_invalid_consents_are_422_per_field(network: Network, body: dict, field: str) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    body = json.loads(json.dumps(body).replace("{org}", receiver.organization_id))
    response = sender.post(f"/api/v1/participants/{participant}/consents", body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert field in response.get_json()["errors"]


def test_only_the_participants_organization_records_and_reads_consents(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    body = {"purpose": "referral_sharing", "network_wide": True, "evidence": "written"}
    # The receiver holds an open leg and may read the participant, but not their consents.
    assert receiver.get(f"/api/v1/participants/{participant}").status_code == 200
    assert receiver.post(f"/api/v1/participants/{participant}/consents", body).status_code == 404
    assert receiver.get(f"/api/v1/participants/{participant}/consents").status_code == 404
    assert coordinator.post(f"/api/v1/participants/{participant}/consents",
                            body).status_code == 403
    consent_id = sender.get(f"/api/v1/participants/{participant}/consents"
                            ).get_json()["items"][0]["id"]
    assert receiver.post(f"/api/v1/consents/{consent_id}/withdraw").status_code == 404
    assert coordinator.get(f"/api/v1/consents/{consent_id}").status_code == 404


# --- withdrawal ----------------------------------------------------------------------------

def test_withdrawal_cancels_open_legs_redacts_and_tells_the_receivers(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    done = network.partner(kind="employer")
    participant = sender.register_participant()["id"]
    given = sender.grant_consent(participant, receiver, done)
    open_leg = send(sender, receiver, participant).get_json()
    receiver.act(open_leg["id"], "acknowledge")
    receiver.act(open_leg["id"], "accept", {"note": "Rendez-vous avec Mme Benali lundi"})
    closed_leg = send(sender, done, participant).get_json()
    done.act(closed_leg["id"], "decline", {"reason": "no_capacity"})
    assert receiver.get(f"/api/v1/referrals/{open_leg['id']}"
                        ).get_json()["participant"]["given_name"] == "Amina"

    response = sender.post(f"/api/v1/consents/{given['id']}/withdraw")
    assert response.status_code == 200, response.get_data(as_text=True)
    withdrawn = response.get_json()
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_at"]

    # The open leg is cancelled, by the hub, with the reserved reason; the closed one is not.
    leg = sender.get(f"/api/v1/referrals/{open_leg['id']}").get_json()
    assert (leg["status"], leg["cancel_reason"]) == ("cancelled", "consent_withdrawn")
    assert sender.get(f"/api/v1/referrals/{closed_leg['id']}").get_json()["status"] == "declined"

    # Both receivers got the participant's data once: both are told to erase it.
    for organization in (receiver, done):
        events = [e for e in feed(organization) if e["type"] == "consent.withdrawn"]
        assert len(events) == 1, organization.name
        assert events[0]["data"]["erase_personal_data"] is True
        assert events[0]["data"]["consent"]["participant_id"] == participant
        assert events[0]["sequence"] == 2

    # From now on, the receiver sees opaque ids only: the leg, its history, the feed.
    assert receiver.get(f"/api/v1/participants/{participant}").status_code == 404
    view = receiver.get(f"/api/v1/referrals/{open_leg['id']}").get_json()
    assert view["participant"] == {"id": participant, "redacted": True}
    assert view["reason_for_referral"] is None and view["needs"] == []
    everything = json.dumps(feed(receiver)) + json.dumps(
        receiver.get(f"/api/v1/referrals/{open_leg['id']}/events").get_json())
    for personal in ("Amina", "Benali", "amina.", "soudure", "Rendez-vous"):
        assert personal not in everything, personal
    # The sending organization still sees its participant.
    assert sender.get(f"/api/v1/referrals/{open_leg['id']}"
                      ).get_json()["participant"]["given_name"] == "Amina"


def test_withdrawing_twice_answers_the_same_and_records_one_event(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    consent_id = sender.get(f"/api/v1/participants/{leg['participant']['id']}/consents"
                            ).get_json()["items"][0]["id"]
    first = sender.post(f"/api/v1/consents/{consent_id}/withdraw")
    second = sender.post(f"/api/v1/consents/{consent_id}/withdraw")
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    withdrawals = [e for e in feed(sender) if e["subject"] == f"consents/{consent_id}"
                   and e["type"] == "consent.withdrawn"]
    assert len(withdrawals) == 1


def test_a_leg_still_covered_by_another_consent_stays_open(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    named = sender.grant_consent(participant, receiver)
    sender.grant_consent(participant)  # network-wide, too
    leg = send(sender, receiver, participant).get_json()
    assert sender.post(f"/api/v1/consents/{named['id']}/withdraw").status_code == 200
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "sent"
    assert receiver.get(f"/api/v1/participants/{participant}").status_code == 200


def test_withdrawal_cancels_a_forwarded_leg_the_owner_did_not_send(network: Network) -> None:
    community, regional, employer = network.partner(), network.partner(), network.partner()
    first = community.refer(regional)
    participant = first["participant"]["id"]
    employer_consent = community.grant_consent(participant, employer)
    regional.act(first["id"], "acknowledge")
    second = regional.act(first["id"], "forward",
                          {"to_organization_id": employer.organization_id}).get_json()

    assert community.post(f"/api/v1/consents/{employer_consent['id']}/withdraw"
                          ).status_code == 200
    leg = employer.get(f"/api/v1/referrals/{second['id']}").get_json()
    assert (leg["status"], leg["cancel_reason"]) == ("cancelled", "consent_withdrawn")
    assert leg["participant"]["redacted"] is True


def test_a_caller_cannot_use_the_reserved_cancel_reason(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    response = sender.act(leg["id"], "cancel", {"reason": "consent_withdrawn"})
    assert response.status_code == 422


# --- expiry --------------------------------------------------------------------------------

def test_an_expired_consent_covers_no_one_and_the_check_records_the_expiry(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    soon = datetime.now(UTC) + timedelta(hours=1)
    given = sender.grant_consent(participant, receiver,
                                 expires_at=soon.isoformat().replace("+00:00", "Z"))
    leg = send(sender, receiver, participant).get_json()
    later = soon + timedelta(minutes=1)

    with app.app_context(), db.job_session() as session:
        stored = session.get(consent.Consent, uuid.UUID(given["id"]))
        person = stored_participant(session, participant)
        # Past its date it covers no one at once, before any check ran.
        assert consent.covers(session, person, uuid.UUID(receiver.organization_id),
                              "referral_sharing", now=soon - timedelta(seconds=1))
        assert not consent.covers(session, person, uuid.UUID(receiver.organization_id),
                                  "referral_sharing", now=later)
        assert stored.status(later) is consent.ConsentStatus.EXPIRED
        assert withdrawal.expire_due(session, now=later) >= 1
    with app.app_context(), db.job_session() as session:
        assert withdrawal.expire_due(session, now=later) == 0  # once only

    body = sender.get(f"/api/v1/consents/{given['id']}").get_json()
    assert body["status"] == "expired" and body["expired_at"]
    assert [e["type"] for e in feed(receiver) if e["subject"] == f"consents/{given['id']}"] == [
        "consent.expired"]
    cancelled = sender.get(f"/api/v1/referrals/{leg['id']}").get_json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "consent_withdrawn")
    refused = sender.post(f"/api/v1/consents/{given['id']}/withdraw")
    assert refused.status_code == 409
    assert refused.get_json()["consent_status"] == "expired"


def stored_participant(session, participant_id: str):
    from hub.referrals.participants import Participant

    return session.get(Participant, uuid.UUID(participant_id))


# --- coordinators --------------------------------------------------------------------------

def test_coordinators_see_the_network_with_a_stable_pseudonym_and_no_personal_data(
        network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    start = end_of_feed(coordinator)
    participant = sender.register_participant()["id"]
    given = sender.grant_consent(participant)
    first = send(sender, receiver, participant).get_json()
    second = send(sender, network.partner(), participant).get_json()

    views = [coordinator.get(f"/api/v1/referrals/{leg['id']}").get_json()
             for leg in (first, second)]
    references = {view["participant"]["reference"] for view in views}
    assert len(references) == 1 and references.pop().startswith("P-")
    assert all(view["participant"]["redacted"] for view in views)
    assert all("participant_id" not in view for view in views)
    assert views[0]["deadlines"]["acknowledge_by"]
    coordinator_feed = json.dumps(feed(coordinator, start))
    assert participant not in coordinator_feed
    for personal in ("Amina", "Benali", "amina.", "soudure"):
        assert personal not in coordinator_feed
    granted = [e for e in feed(coordinator, start)
               if e["subject"] == f"consents/{given['id']}"]
    assert granted[0]["data"]["consent"]["participant_reference"] == views[0]["participant"][
        "reference"]
    assert coordinator.get(f"/api/v1/participants/{participant}").status_code == 404


# --- the access log ------------------------------------------------------------------------

def test_every_read_of_personal_data_is_logged_and_exported(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    assert receiver.get(f"/api/v1/referrals/{leg['id']}").status_code == 200
    assert sender.get(f"/api/v1/participants/{participant}").status_code == 200
    assert receiver.get("/api/v1/events?limit=500").status_code == 200
    assert coordinator.get(f"/api/v1/referrals/{leg['id']}").status_code == 200  # pseudonym

    log = sender.get(f"/api/v1/participants/{participant}/access-log").get_json()["items"]
    seen = [(row["organization_id"], row["actor"], row["via"]) for row in log]
    receiver_actor, sender_actor = f"client:{receiver.client_id}", f"client:{sender.client_id}"
    assert (receiver.organization_id, receiver_actor,
            "GET /api/v1/referrals/{referral_id}") in seen
    assert (sender.organization_id, sender_actor,
            "GET /api/v1/participants/{participant_id}") in seen
    assert (receiver.organization_id, receiver_actor, "GET /api/v1/events") in seen
    assert coordinator.organization_id not in {row["organization_id"] for row in log}
    assert all(row["participant_id"] == participant and row["read_at"] for row in log)

    exported = sender.get(f"/api/v1/participants/{participant}/access-log?format=csv")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["via"] for r in rows] == [row["via"] for row in log][:len(rows)]
    assert len(rows) >= len(log)

    consents = sender.get(f"/api/v1/participants/{participant}/consents?format=csv")
    rows = list(csv.DictReader(io.StringIO(consents.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["purpose"], r["status"]) for r in rows] == [("referral_sharing", "active")]
    assert rows[0]["organization_ids"] == receiver.organization_id

    assert receiver.get(f"/api/v1/participants/{participant}/access-log").status_code == 404


def test_a_refused_read_logs_nothing(network: Network) -> None:
    sender, outsider = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    assert outsider.get(f"/api/v1/participants/{participant}").status_code == 404
    log = sender.get(f"/api/v1/participants/{participant}/access-log").get_json()["items"]
    assert log == []


# --- duplicates ----------------------------------------------------------------------------

def test_registering_the_same_person_again_returns_the_match_to_confirm(
        network: Network) -> None:
    sender, other = network.partner(), network.partner()
    person = {**PARTICIPANT, "given_name": "Hélène", "family_name": "Tremblay-Côté",
              "email": "helene.tc@example.org", "phone": "514-555-0199"}
    first = sender.register_participant(**person)

    variants = [
        {**person, "given_name": "HELENE", "family_name": "tremblay cote"},
        {**person, "email": "HELENE.TC@Example.org", "phone": None},
        {**person, "email": None, "phone": "+1 (514) 555-0199"},
    ]
    for variant in variants:
        again = sender.post("/api/v1/participants", variant)
        assert again.status_code == 409, variant
        problem = again.get_json()
        assert problem["type"].endswith("/possible-duplicate")
        assert [m["id"] for m in problem["matches"]] == [first["id"]]
        assert "Hélène" not in again.get_data(as_text=True)

    # Same names, another person: another birth year, or no contact in common.
    assert sender.post("/api/v1/participants", {**person, "birth_year": 1991}).status_code == 201
    assert sender.post("/api/v1/participants", {
        **person, "email": "h.t@example.org", "phone": "418-555-0000"}).status_code == 201
    # Confirmed as another person by the counsellor; and other organizations are not searched.
    assert sender.post("/api/v1/participants", {**person, "allow_duplicate": True}
                       ).status_code == 201
    assert other.post("/api/v1/participants", person).status_code == 201


# --- encryption at rest --------------------------------------------------------------------

def test_a_database_dump_reveals_no_names_contacts_or_notes(app: Flask, network: Network) -> None:
    from sqlalchemy import inspect, text

    sender, receiver = network.partner(), network.partner()
    marker = uuid.uuid4().hex[:10]
    response = sender.post("/api/v1/participants", {
        **PARTICIPANT, "given_name": f"Zébulon{marker}", "family_name": f"Nguyễn{marker}",
        "email": f"z{marker}@example.org", "phone": "+1 819 555 0142"},
        headers={"Idempotency-Key": uuid.uuid4().hex})  # the stored answer names her too
    assert response.status_code == 201
    participant = response.get_json()
    sender.grant_consent(participant["id"], receiver, note=f"Signé {marker}")
    leg = send(sender, receiver, participant["id"],
               reason_for_referral=f"Soudure {marker}", needs=[f"logement {marker}"]).get_json()
    receiver.act(leg["id"], "acknowledge", {"note": f"Appel {marker}"})

    with app.app_context():
        engine = db.engine
        dump = []
        with engine.connect() as connection:
            for table in inspect(engine).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    dump.append(repr(tuple(row)))
    everything = "\n".join(dump)
    assert marker not in everything
    assert "819 555 0142" not in everything and "8195550142" not in everything
    # ... while the API still reads it all back for those entitled.
    view = receiver.get(f"/api/v1/referrals/{leg['id']}").get_json()
    assert view["participant"]["given_name"] == f"Zébulon{marker}"
    assert view["needs"] == [f"logement {marker}"]


# --- a send racing a withdrawal --------------------------------------------------------------

@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_send_racing_a_withdrawal_waits_for_it_and_is_refused(
        app: Flask, network: Network) -> None:
    """The withdrawal holds the participant's lock; a send that started meanwhile waits, then
    sees the consent gone, instead of leaving an open leg that no consent covers."""
    import threading

    from sqlalchemy.orm import Session

    from hub.accounts.callers import Caller
    from hub.referrals.handoffs import send_referral

    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    given = sender.grant_consent(participant, receiver)
    engine = app.extensions["hub_db"][0]
    owner = Caller(uuid.UUID(sender.organization_id), "test:owner")
    outcome: list[object] = []

    def send_meanwhile() -> None:
        with Session(engine) as other:
            try:
                send_referral(other, owner, participant_id=uuid.UUID(participant),
                              to_organization_id=uuid.UUID(receiver.organization_id),
                              pathway="employment")
                other.commit()
                outcome.append("sent")
            except consent.ConsentRequired as refused:
                outcome.append(refused)

    with Session(engine) as withdrawing:
        withdrawal.withdraw(withdrawing, owner, uuid.UUID(given["id"]))
        racer = threading.Thread(target=send_meanwhile)
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive(), "the send must wait for the withdrawal's lock"
        withdrawing.commit()
    racer.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], consent.ConsentRequired)
    assert receiver.get("/api/v1/referrals").get_json()["items"] == []


# --- replays and consent events ----------------------------------------------------------------

def test_a_replayed_answer_is_built_again_as_of_now_and_logged(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    participant = leg["participant"]["id"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = receiver.act(leg["id"], "acknowledge", headers=key)
    assert first.get_json()["participant"]["given_name"] == "Amina"
    consent_id = sender.get(f"/api/v1/participants/{participant}/consents"
                            ).get_json()["items"][0]["id"]
    sender.post(f"/api/v1/consents/{consent_id}/withdraw")
    reads_before = len(sender.get(f"/api/v1/participants/{participant}/access-log"
                                  ).get_json()["items"])

    replay = receiver.act(leg["id"], "acknowledge", headers=key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["participant"] == {"id": participant, "redacted": True}
    assert replay.get_json()["status"] == "cancelled"  # today's leg, not yesterday's answer
    # The sender's replay shows its own participant again, and that read is logged.
    sender_key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {**PARTICIPANT, "email": f"{uuid.uuid4().hex[:8]}@example.org", "phone": None}
    registered = sender.post("/api/v1/participants", body, headers=sender_key).get_json()
    again = sender.post("/api/v1/participants", body, headers=sender_key)
    assert again.get_json() == registered
    log = sender.get(f"/api/v1/participants/{registered['id']}/access-log").get_json()["items"]
    assert [row["via"] for row in log] == ["POST /api/v1/participants"]
    # The receiver's redacted replay showed nothing personal: no read to log.
    assert len(sender.get(f"/api/v1/participants/{participant}/access-log"
                          ).get_json()["items"]) == reads_before


def test_receivers_see_of_a_consent_only_what_concerns_them(network: Network) -> None:
    sender, receiver, other = network.partner(), network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    named = sender.grant_consent(participant, receiver, other)
    sender.grant_consent(participant)  # network-wide too: the receiver stays covered
    send(sender, receiver, participant)
    sender.post(f"/api/v1/consents/{named['id']}/withdraw")

    event = next(e for e in feed(receiver) if e["subject"] == f"consents/{named['id']}")
    assert "organization_ids" not in event["data"]["consent"]
    assert other.organization_id not in json.dumps(event)
    assert event["data"]["erase_personal_data"] is False  # still covered: keep the copy
    own = next(e for e in feed(sender) if e["subject"] == f"consents/{named['id']}"
               and e["type"] == "consent.withdrawn")
    assert set(own["data"]["consent"]["organization_ids"]) == {
        receiver.organization_id, other.organization_id}
