"""The follow-up checks (docs/design.md §6), with the clock moved by the test: missed deadlines,
expiry at twice the deadline with suggestions to redirect, post-handoff follow-ups only with
consent, directory validation reminders, each exactly once; and the coordinators' list of
stalled handoffs."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta

import pytest
from flask import Flask

from hub.db import db
from hub.directory.organizations import Organization
from hub.followups import tick
from hub.referrals.legs import Referral
from tests.helpers import Network, Partner


def run_checks(app: Flask, now: datetime) -> dict[str, int]:
    handled = tick.run_once(app.extensions["hub_db"][1], now)
    assert all(count >= 0 for count in handled.values()), handled
    return handled


def events_of(partner: Partner, leg_id: str) -> list[dict]:
    return partner.get(f"/api/v1/referrals/{leg_id}/events").get_json()["items"]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expire_by(app: Flask, leg_id: str) -> datetime:
    with app.app_context(), db.job_session() as session:
        leg = session.get(Referral, uuid.UUID(leg_id))
        assert leg is not None and leg.expire_by is not None
        return leg.expire_by


def test_a_missed_acknowledgement_is_signalled_once_then_the_leg_expires(
        app: Flask, network: Network) -> None:
    sender = network.partner()
    receiver = network.partner(kind="regional_partner", region="01")
    # Listed first among the region's partners with room (suggestions go by name).
    alternative = network.partner(kind="regional_partner", region="01", name="0 Alternative")
    serves = alternative.call("PATCH", f"/api/v1/organizations/{alternative.organization_id}",
                              json={"services": [{"name": "Emploi", "pathways": ["employment"]}]})
    assert serves.status_code == 200, serves.get_data(as_text=True)
    leg = sender.refer(receiver)
    acknowledge_by = moment(leg["deadlines"]["acknowledge_by"])

    run_checks(app, acknowledge_by - timedelta(minutes=1))
    assert [e["type"] for e in events_of(sender, leg["id"])] == ["referral.sent"]

    run_checks(app, acknowledge_by + timedelta(minutes=1))
    run_checks(app, acknowledge_by + timedelta(minutes=2))  # again: nothing new
    history = events_of(receiver, leg["id"])
    assert [e["type"] for e in history] == ["referral.sent", "referral.deadline_missed"]
    missed = history[1]["data"]
    assert (missed["check"], missed["due_at"], missed["source"]) == (
        "acknowledge", leg["deadlines"]["acknowledge_by"], "scheduler")
    assert history[1]["source"] == "/hub"
    assert [e["type"] for e in events_of(sender, leg["id"])][-1] == "referral.deadline_missed"

    expiry = expire_by(app, leg["id"])
    assert expiry > acknowledge_by
    run_checks(app, expiry + timedelta(minutes=1))
    history = events_of(sender, leg["id"])
    assert [e["type"] for e in history][-1] == "referral.expired"
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "expired"
    suggested = {s["id"] for s in history[-1]["data"]["redirect_to"]}
    assert alternative.organization_id in suggested
    assert receiver.organization_id not in suggested


def test_a_leg_answered_in_time_raises_nothing(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    receiver.act(leg["id"], "acknowledge")
    run_checks(app, moment(leg["deadlines"]["acknowledge_by"]) + timedelta(hours=1))
    assert [e["type"] for e in events_of(sender, leg["id"])] == [
        "referral.sent", "referral.acknowledged"]


def test_decision_and_first_contact_deadlines(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver, priority="urgent")
    acknowledged = receiver.act(leg["id"], "acknowledge").get_json()
    run_checks(app, moment(acknowledged["deadlines"]["decide_by"]) + timedelta(minutes=1))
    accepted = receiver.act(leg["id"], "accept").get_json()
    run_checks(app, moment(accepted["deadlines"]["start_by"]) + timedelta(minutes=1))
    missed = [e["data"]["check"] for e in events_of(sender, leg["id"])
              if e["type"] == "referral.deadline_missed"]
    assert missed == ["decide", "start"]


def test_follow_ups_need_the_participants_consent(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    with_consent = sender.refer(receiver)
    sender.grant_consent(with_consent["participant"]["id"], sender,
                         purpose="follow_up_contact")
    without = sender.refer(receiver)
    for leg in (with_consent, without):
        for action, body in (("acknowledge", {}), ("accept", {}), ("start", {}),
                             ("complete", {"outcome": "employed"})):
            assert receiver.act(leg["id"], action, body).status_code == 200
    completed = moment(sender.get(f"/api/v1/referrals/{without['id']}").get_json()["updated_at"])

    run_checks(app, completed + timedelta(days=31))
    run_checks(app, completed + timedelta(days=181))
    run_checks(app, completed + timedelta(days=182))
    due = [e["data"]["check"] for e in events_of(sender, with_consent["id"])
           if e["type"] == "referral.followup_due"]
    assert due == ["followup_30", "followup_180"]
    assert not [e for e in events_of(sender, without["id"]) if e["type"] == "referral.followup_due"]
    feed = receiver.get("/api/v1/events?limit=500").get_json()["items"]
    assert not [e for e in feed if e["type"] == "referral.followup_due"]  # the sender's alone


def test_directory_entries_are_reminded_once_a_year(app: Flask, network: Network) -> None:
    partner = network.partner()
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(partner.organization_id))
        assert organization is not None
        validated = organization.last_validated_at
    # A partner said the entry is out of date: the reminder points at it.
    assert network.partner().post(f"/api/v1/organizations/{partner.organization_id}"
                                  "/report-outdated", {"note": "Numéro changé"}
                                  ).status_code == 201
    run_checks(app, validated + timedelta(days=366))
    run_checks(app, validated + timedelta(days=367))
    reminders = [e for e in partner.get("/api/v1/events?limit=500").get_json()["items"]
                 if e["type"] == "organization.validation_due"]
    assert len(reminders) == 1
    assert reminders[0]["data"]["organization"]["id"] == partner.organization_id
    assert reminders[0]["data"]["outdated_reports"] == {
        "open": 1, "url": f"/api/v1/organizations/{partner.organization_id}/outdated-reports"}


def test_coordinators_list_stalled_handoffs_oldest_first_without_personal_data(
        app: Flask, network: Network) -> None:
    coordinator = network.partner(kind="coordination")
    sender, late = network.partner(), network.partner()
    first, second = sender.refer(late), sender.refer(late, priority="urgent")
    assert sender.get("/api/v1/handoffs/stalled").status_code == 403
    stalled = coordinator.get("/api/v1/handoffs/stalled?limit=500").get_json()["items"]
    assert first["id"] not in {s["referral_id"] for s in stalled}  # not late yet

    with app.app_context(), db.job_session() as session:  # time passes for these legs
        for leg_id, days in ((first["id"], 2), (second["id"], 5)):
            leg = session.get(Referral, uuid.UUID(leg_id))
            assert leg is not None and leg.acknowledge_by is not None
            leg.acknowledge_by -= timedelta(days=days + 3)
    stalled = coordinator.get("/api/v1/handoffs/stalled?limit=500").get_json()["items"]
    mine = [s for s in stalled if s["referral_id"] in (first["id"], second["id"])]
    assert [s["referral_id"] for s in mine] == [second["id"], first["id"]]  # oldest first
    assert mine[0]["check"] == "acknowledge" and mine[0]["late_hours"] > 24
    assert mine[0]["to_organization"]["id"] == late.organization_id
    assert mine[0]["participant_reference"].startswith("P-")
    assert mine[0]["receiver_on_time"] == {"acknowledged": 0, "on_time": 0, "share": None}
    assert "Amina" not in json.dumps(stalled)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_schedulers_at_once_fire_each_check_once(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    legs = [sender.refer(receiver) for _ in range(6)]
    when = max(moment(leg["deadlines"]["acknowledge_by"]) for leg in legs) + timedelta(minutes=1)
    barrier = threading.Barrier(2)

    def scheduler() -> None:
        barrier.wait()
        run_checks(app, when)

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for leg in legs:
        missed = [e for e in events_of(sender, leg["id"])
                  if e["type"] == "referral.deadline_missed"]
        assert len(missed) == 1, leg["id"]
