"""Follow-ups as work (docs/design.md §10): the sending organization's list of follow-ups due,
each recorded once, only with the participant's `follow_up_contact` consent, with its event to
both organizations and its note to the sender alone."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import Flask

from hub.db import utcnow
from hub.followups import tick
from hub.outbox.mail import send_due
from tests.helpers import Network, Partner
from tests.integration.test_mail import SmtpServer, smtp_transport


def run_checks(app: Flask, now: datetime) -> None:
    tick.run_once(app.extensions["hub_db"][1], now)


def completed_leg(sender: Partner, receiver: Partner, *, follow_up: bool = True,
                  **fields: Any) -> dict[str, Any]:
    leg = sender.refer(receiver, **fields)
    if follow_up:
        sender.grant_consent(leg["participant"]["id"], sender, purpose="follow_up_contact")
    for action, body in (("acknowledge", {}), ("accept", {}), ("start", {}),
                         ("complete", {"outcome": "employed"})):
        answer = receiver.act(leg["id"], action, body)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def completed_at(leg: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(leg["updated_at"].replace("Z", "+00:00"))


def due_list(partner: Partner) -> list[dict[str, Any]]:
    answer = partner.get("/api/v1/followups/due")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["items"]


RECORD = {"reached": True, "situation": "employed", "in_destination_region": True,
          "note": "Travaille à la fromagerie, cherche un logement pour sa famille."}


def test_a_completed_leg_comes_due_once_and_leaves_the_list_when_recorded(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    leg = completed_leg(sender, receiver)
    assert due_list(sender) == []  # not due before the check fires

    run_checks(app, completed_at(leg) + timedelta(days=31))
    run_checks(app, completed_at(leg) + timedelta(days=32))  # again: nothing new
    due = due_list(sender)
    assert [(d["referral_id"], d["due"]) for d in due] == [(leg["id"], "followup_30")]
    assert due[0]["to_organization_id"] == receiver.organization_id
    assert due[0]["participant"]["given_name"] == "Amina"  # the sender's own participant
    assert due_list(receiver) == []  # the sender's work alone

    recorded = sender.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD)
    assert recorded.status_code == 201, recorded.get_data(as_text=True)
    record = recorded.get_json()
    assert (record["due"], record["referral_id"], record["note"]) == (
        "followup_30", leg["id"], RECORD["note"])
    assert record["recorded_by"].startswith("client:")
    assert due_list(sender) == []

    again = sender.post(f"/api/v1/referrals/{leg['id']}/followups",
                        {**RECORD, "due": "followup_30"})
    assert again.status_code == 409
    assert again.get_json()["type"].endswith("followup-already-recorded")
    ad_hoc = sender.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD)
    assert ad_hoc.status_code == 201 and ad_hoc.get_json()["due"] == "ad_hoc"

    # The 180-day follow-up comes due in its turn.
    run_checks(app, completed_at(leg) + timedelta(days=181))
    assert [d["due"] for d in due_list(sender)] == ["followup_180"]


def test_the_event_carries_codes_and_the_note_stays_with_the_sender(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = completed_leg(sender, receiver)
    run_checks(app, completed_at(leg) + timedelta(days=31))
    assert sender.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD).status_code == 201

    for partner in (sender, receiver):
        history = partner.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
        event = history[-1]
        assert event["type"] == "referral.followup_recorded"
        assert event["data"]["followup"]["situation"] == "employed"
        assert "note" not in event["data"] and "note" not in event["data"]["followup"]
        assert RECORD["note"] not in str(event)
    seen_by_receiver = receiver.get(f"/api/v1/referrals/{leg['id']}/followups").get_json()
    assert [r["note"] for r in seen_by_receiver["items"]] == [None]
    assert seen_by_receiver["items"][0]["reached"] is True
    seen_by_sender = sender.get(f"/api/v1/referrals/{leg['id']}/followups").get_json()
    assert [r["note"] for r in seen_by_sender["items"]] == [RECORD["note"]]


def test_without_follow_up_contact_consent_the_record_is_refused(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = completed_leg(sender, receiver, follow_up=False)
    run_checks(app, completed_at(leg) + timedelta(days=31))
    assert due_list(sender) == []  # nobody to call without consent

    refused = sender.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD)
    assert refused.status_code == 409, refused.get_data(as_text=True)
    problem = refused.get_json()
    assert problem["type"].endswith("consent_required")
    assert problem["purpose"] == "follow_up_contact"
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert sender.get(f"/api/v1/referrals/{leg['id']}/followups").get_json()["items"] == []


def test_only_the_sender_records_and_only_after_completion(
        app: Flask, network: Network) -> None:
    sender, receiver, stranger = network.partner(), network.partner(), network.partner()
    open_leg = sender.refer(receiver)
    sender.grant_consent(open_leg["participant"]["id"], sender, purpose="follow_up_contact")
    not_yet = sender.post(f"/api/v1/referrals/{open_leg['id']}/followups", RECORD)
    assert not_yet.status_code == 409
    problem = not_yet.get_json()
    assert problem["referral_status"] == "sent" and "completed" in problem["detail"]

    leg = completed_leg(sender, receiver)
    assert receiver.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD).status_code == 403
    assert stranger.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD).status_code == 404
    early = sender.post(f"/api/v1/referrals/{leg['id']}/followups",
                        {**RECORD, "due": "followup_180"})
    assert early.status_code == 422 and "due" in early.get_json()["errors"]
    bad = sender.post(f"/api/v1/referrals/{leg['id']}/followups",
                      {**RECORD, "situation": "rich"})
    assert bad.status_code == 422 and "situation" in bad.get_json()["errors"]
    # Before any follow-up came due, a call is recorded as ad hoc.
    made = sender.post(f"/api/v1/referrals/{leg['id']}/followups", RECORD)
    assert made.status_code == 201 and made.get_json()["due"] == "ad_hoc"


def test_an_unrecorded_30_day_follow_up_gives_way_to_the_180_day_one(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    first, second = completed_leg(sender, receiver), completed_leg(sender, receiver)
    run_checks(app, completed_at(second) + timedelta(days=31))
    run_checks(app, completed_at(second) + timedelta(days=181))
    due = due_list(sender)
    assert [(d["referral_id"], d["due"]) for d in due] == [
        (first["id"], "followup_180"), (second["id"], "followup_180")]
    page = sender.get("/api/v1/followups/due?limit=1").get_json()
    assert [d["referral_id"] for d in page["items"]] == [first["id"]]
    rest = sender.get(f"/api/v1/followups/due?limit=1&cursor={page['next_cursor']}").get_json()
    assert [d["referral_id"] for d in rest["items"]] == [second["id"]]
    assert rest["next_cursor"] is None


def test_the_retention_report_counts_consenting_participants_and_withholds_small_cells(
        app: Flask, network: Network) -> None:
    sender = network.partner()
    estrie = network.partner(kind="regional_partner", region="05")
    bas_saint_laurent = network.partner(kind="regional_partner", region="01")
    coordinator = network.partner(kind="coordination")

    def counted_leg(to: Partner, *, reporting: bool = True) -> dict[str, Any]:
        leg = completed_leg(sender, to)
        if reporting:
            sender.grant_consent(leg["participant"]["id"], sender, purpose="outcome_reporting")
        return leg

    settled = [counted_leg(estrie) for _ in range(6)]
    elsewhere = [counted_leg(bas_saint_laurent) for _ in range(2)]
    unconsented = counted_leg(estrie, reporting=False)
    run_checks(app, completed_at(unconsented) + timedelta(days=31))
    run_checks(app, completed_at(unconsented) + timedelta(days=181))
    for index, leg in enumerate([*settled, *elsewhere, unconsented]):
        answer = sender.post(f"/api/v1/referrals/{leg['id']}/followups", {
            "reached": True, "situation": "employed",
            "in_destination_region": index != 0})  # one of Estrie's six left the region
        assert answer.status_code == 201 and answer.get_json()["due"] == "followup_180"

    day = completed_at(unconsented).date()
    report = sender.get(f"/api/v1/reports/retention?from={day}&to={day}").get_json()
    rows = {(row["region"], row["pathway"]): row for row in report["rows"]}
    # Estrie: six counted (the seventh has no outcome_reporting consent), all reached; the
    # five still there would tell who left: withheld.
    assert rows[("05", "employment")] == {
        "region": "05", "pathway": "employment", "completed": 6, "followups_recorded": 6,
        "reached": 6, "in_destination_region": None}
    # Bas-Saint-Laurent: two people, every count withheld.
    assert rows[("01", "employment")] == {
        "region": "01", "pathway": "employment", "completed": None,
        "followups_recorded": None, "reached": None, "in_destination_region": None}
    assert report["legs_left_out_without_consent"] is None  # one: withheld too
    assert "05/employment/in_destination_region" in report["suppression"]["suppressed"]
    assert report["suppression"]["min_cell"] == 5

    csv = sender.get(f"/api/v1/reports/retention?from={day}&to={day}&format=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "region,pathway,completed,followups_recorded,reached,in_destination_region"
    assert "05,employment,6,6,6,<5" in lines and "01,employment,<5,<5,<5,<5" in lines

    # Coordinators read the network's figures; another sender's report has none of these.
    network_wide = coordinator.get(f"/api/v1/reports/retention?from={day}&to={day}").get_json()
    assert network_wide["organization_id"] is None
    assert {(r["region"], r["completed"]) for r in network_wide["rows"]} >= {("05", 6)}
    stranger = network.partner().get(f"/api/v1/reports/retention?from={day}&to={day}")
    assert stranger.get_json()["rows"] == []
    refused = sender.get(f"/api/v1/reports/retention?from={day}&to=yesterday")
    assert refused.status_code == 422 and "query.to" in refused.get_json()["errors"]


def received(app: Flask, server: SmtpServer, to: str) -> list[EmailMessage]:
    send_due(app.extensions["hub_db"][1], smtp_transport(server),
             now=utcnow() + timedelta(days=400), limit=10_000)
    return [email.message_from_bytes(r.data, policy=email.policy.default)  # type: ignore[misc]
            for r in server.received if to in r.rcpt_to]


def test_each_tick_mails_one_digest_of_the_follow_ups_that_came_due(
        app: Flask, network: Network, smtp: SmtpServer) -> None:
    sender, receiver = network.partner(), network.partner(name="Accueil Rimouski")
    desk = f"accueil.{uuid.uuid4().hex[:8]}@example.org"
    entry = sender.call("PATCH", f"/api/v1/organizations/{sender.organization_id}", json={
        "contacts": [{"name": "Accueil", "role": "Accueil", "email": desk}]})
    assert entry.status_code == 200, entry.get_data(as_text=True)
    legs = [completed_leg(sender, receiver) for _ in range(2)]
    without_consent = completed_leg(sender, receiver, follow_up=False)
    later = max(completed_at(leg) for leg in [*legs, without_consent])

    run_checks(app, later + timedelta(days=31))
    run_checks(app, later + timedelta(days=32))  # nothing new came due: no second mail
    [digest] = received(app, smtp, desk)
    body = digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert digest["Subject"] == "2 appels de relance sont à faire"
    assert all(f"/legs/{leg['id']}" in body for leg in legs)
    assert f"/legs/{without_consent['id']}" not in body  # not to be called
    assert "Accueil Rimouski" in body and "Relance à 30 jours" in body
    assert "Amina" not in body and "Benali" not in body  # no data about the person

    run_checks(app, later + timedelta(days=181))
    assert len(received(app, smtp, desk)) == 2  # the 180-day ones, in a digest of their own


def test_follow_ups_beyond_a_digest_limit_wait_for_the_next_digest(
        app: Flask, network: Network, smtp: SmtpServer) -> None:
    """A digest lists at most `limit` follow-ups; the others are mailed by the next one, not
    marked as mailed unsent."""
    from hub.db import db
    from hub.followups import followup_digests, leg_checks

    sender, receiver = network.partner(), network.partner()
    desk = f"relances.{uuid.uuid4().hex[:8]}@example.org"
    entry = sender.call("PATCH", f"/api/v1/organizations/{sender.organization_id}", json={
        "contacts": [{"name": "Relances", "role": "Relances", "email": desk}]})
    assert entry.status_code == 200, entry.get_data(as_text=True)
    legs = [completed_leg(sender, receiver) for _ in range(2)]
    now = max(completed_at(leg) for leg in legs) + timedelta(days=31)
    with app.app_context():
        with db.job_session() as session:
            leg_checks.followups_due(session, now, limit=10_000)
        for _pass in range(100):  # other tests' follow-ups may come first
            with db.job_session() as session:
                if followup_digests.mail_followup_digests(session, now, limit=1) == 0:
                    break
    bodies = [m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
              for m in received(app, smtp, desk)]
    assert all(any(f"/legs/{leg['id']}" in body for body in bodies) for leg in legs)
