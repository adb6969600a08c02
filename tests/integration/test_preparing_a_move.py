"""Preparing a move (docs/design.md §12) through the API: a leg's `needed_by` bounds an urgent
leg's deadlines (across a Québec holiday), goes with the leg when it is forwarded, shows in the
FHIR export; employers and insertion enterprises read names and contact channels only, unless
the consent shares the details, and every answer says what was withheld."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from flask import Flask

from hub.consent.visibility import WITHHELD_FROM_NEED_TO_KNOW
from hub.followups.checklist_reminders import remind_on
from hub.followups.deadlines import is_business_day
from hub.referrals.checklists import DEFAULT_ITEMS
from tests.helpers import PARTICIPANT, Network, Partner
from tests.integration.test_check_mails import (
    address,
    body,
    contact,
    french_day,
    listed_legs,
    moment,
    run_checks,
    sent_mails,
    set_entry,
)
from tests.integration.test_fhir import bundle_of

# Monday 21 June 2027, 10:00 in Montréal; Thursday the 24th is the Fête nationale.
MONDAY = datetime(2027, 6, 21, 14, 0, tzinfo=UTC)
FRIDAY = date(2027, 6, 25)


class Clock:
    """The use cases' clock (`hub.referrals.handoffs.utcnow`), moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def deadlines(leg: dict[str, Any]) -> dict[str, str | None]:
    return leg["deadlines"]


def test_an_urgent_leg_needed_after_a_holiday_is_due_before_it(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    clock = Clock(MONDAY)
    with mock.patch("hub.referrals.handoffs.utcnow", clock):
        leg = sender.refer(receiver, priority="urgent", needed_by=FRIDAY.isoformat())
        assert leg["needed_by"] == "2027-06-25"
        # The policy's one business day (Tuesday 10:00) comes before the bound: kept.
        assert deadlines(leg)["acknowledge_by"] == "2027-06-22T14:00:00Z"
        clock.now = MONDAY + timedelta(days=1)
        acknowledged = receiver.act(leg["id"], "acknowledge").get_json()
        # Two business days from Tuesday would be Friday (Thursday is a holiday): bounded to
        # Wednesday 17:00, the close of the last business day before the 25th.
        assert deadlines(acknowledged)["decide_by"] == "2027-06-23T21:00:00Z"
        accepted = receiver.act(leg["id"], "accept").get_json()
        assert deadlines(accepted)["start_by"] == "2027-06-23T21:00:00Z"


def test_a_routine_leg_keeps_the_policys_deadlines(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    clock = Clock(MONDAY)
    with mock.patch("hub.referrals.handoffs.utcnow", clock):
        leg = sender.refer(receiver, priority="routine", needed_by=FRIDAY.isoformat())
        assert leg["needed_by"] == "2027-06-25"
        # Three business days from Monday, the holiday skipped: Friday.
        assert deadlines(leg)["acknowledge_by"] == "2027-06-25T14:00:00Z"
        accepted = [receiver.act(leg["id"], step).get_json() for step in ("acknowledge",
                                                                          "accept")][-1]
        assert deadlines(accepted)["start_by"] > "2027-06-25"


def test_a_past_date_is_refused_with_what_to_fix(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    participant_id = sender.register_participant()["id"]
    sender.grant_consent(participant_id, receiver)
    response = sender.post("/api/v1/referrals", {
        "participant_id": participant_id, "to_organization_id": receiver.organization_id,
        "pathway": "employment", "priority": "urgent",
        "needed_by": (date.today() - timedelta(days=3)).isoformat()})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "is past" in response.get_json()["errors"]["needed_by"][0]
    response = sender.post("/api/v1/referrals", {
        "participant_id": participant_id, "to_organization_id": receiver.organization_id,
        "pathway": "employment", "needed_by": "next friday"})
    assert response.status_code == 422
    assert "needed_by" in response.get_json()["errors"]


def test_the_date_goes_with_a_forwarded_leg_and_into_fhir(network: Network) -> None:
    sender = network.partner()
    first, second = network.partner(kind="regional_partner"), network.partner(
        kind="regional_partner")
    needed = (date.today() + timedelta(days=10)).isoformat()
    participant_id = sender.register_participant()["id"]
    sender.grant_consent(participant_id, first, second)
    leg = sender.refer(first, participant_id, consent=False, priority="urgent",
                       needed_by=needed)
    assert first.act(leg["id"], "acknowledge").status_code == 200
    forwarded = first.act(leg["id"], "forward", {"to_organization_id": second.organization_id})
    assert forwarded.status_code == 201
    assert forwarded.get_json()["needed_by"] == needed
    request = bundle_of(second, forwarded.get_json()["id"])["ServiceRequest"]
    assert request["occurrencePeriod"] == {"end": needed}
    # Without a date, no occurrence.
    plain = sender.refer(first)
    plain_request = bundle_of(sender, plain["id"])["ServiceRequest"]
    assert "occurrencePeriod" not in plain_request
    assert "supportingInfo" not in plain_request  # no opportunity named


# --- need to know ------------------------------------------------------------------------

def _views(receiver: Partner, leg_id: str, participant_id: str) -> dict[str, Any]:
    leg = receiver.get(f"/api/v1/referrals/{leg_id}")
    person = receiver.get(f"/api/v1/participants/{participant_id}")
    history = receiver.get(f"/api/v1/referrals/{leg_id}/events")
    assert leg.status_code == person.status_code == history.status_code == 200
    return {"leg": leg.get_json(), "person": person.get_json(),
            "history": history.get_json()["items"]}


@pytest.mark.parametrize("kind", ["employer", "insertion_enterprise"])
def test_an_employer_reads_names_and_contacts_only(network: Network, kind: str) -> None:
    sender, employer = network.partner(), network.partner(kind=kind, region="05")
    leg = sender.refer(employer, needed_by=(date.today() + timedelta(days=7)).isoformat())
    participant_id = leg["participant"]["id"]
    acknowledged = employer.act(leg["id"], "acknowledge", {"note": "Reçu, on appelle lundi"})
    assert acknowledged.get_json()["withheld"] == list(WITHHELD_FROM_NEED_TO_KNOW)

    views = _views(employer, leg["id"], participant_id)
    shown = views["leg"]
    assert shown["withheld"] == list(WITHHELD_FROM_NEED_TO_KNOW)
    assert shown["reason_for_referral"] is None and shown["needs"] == []
    person = shown["participant"]
    assert (person["given_name"], person["family_name"]) == (PARTICIPANT["given_name"],
                                                             PARTICIPANT["family_name"])
    assert person["email"] and person["phone"]
    assert person["birth_year"] is None and person["region"] is None
    assert views["person"]["withheld"] == ["birth_year", "region"]
    assert views["person"]["birth_year"] is None
    for event in views["history"]:
        assert event["data"]["referral"]["reason_for_referral"] is None
        assert event["data"]["referral"]["withheld"] == list(WITHHELD_FROM_NEED_TO_KNOW)
    # Its own note, it reads; the sender reads everything.
    assert views["history"][-1]["data"]["note"] == "Reçu, on appelle lundi"
    mine = _views(sender, leg["id"], participant_id)
    assert mine["leg"]["reason_for_referral"] == "Cherche un emploi en soudure"
    assert mine["leg"]["withheld"] == [] and "withheld" not in mine["person"]
    # The FHIR export: no reason, no needs, no birth date or address.
    bundle = bundle_of(employer, leg["id"])
    assert "reasonCode" not in bundle["ServiceRequest"]
    assert "note" not in bundle["ServiceRequest"]
    assert "birthDate" not in bundle["Patient"] and "address" not in bundle["Patient"]
    assert bundle["Patient"]["name"][0]["family"] == PARTICIPANT["family_name"]


def test_the_senders_note_is_withheld_from_an_employer(network: Network) -> None:
    sender, employer = network.partner(), network.partner(kind="employer")
    participant_id = sender.register_participant()["id"]
    sender.grant_consent(participant_id, employer)
    # The sender's note on a cancellation, read while the employer still holds another open
    # leg of the person (so it is entitled to the person, and only the rule withholds it).
    sender.refer(employer, participant_id, consent=False)
    cancelled = sender.refer(employer, participant_id, consent=False)
    assert sender.act(cancelled["id"], "cancel", {"note": "Doublon, voir l'autre demande"}
                      ).status_code == 200
    history = employer.get(f"/api/v1/referrals/{cancelled['id']}/events").get_json()["items"]
    assert history[-1]["type"] == "referral.cancelled"
    assert "note" not in history[-1]["data"]
    # With details shared, the same note is read.
    sender.grant_consent(participant_id, employer, share_details=True)
    history = employer.get(f"/api/v1/referrals/{cancelled['id']}/events").get_json()["items"]
    assert history[-1]["data"]["note"] == "Doublon, voir l'autre demande"


def test_a_consent_sharing_details_shows_them_to_the_employer(network: Network) -> None:
    sender, employer = network.partner(), network.partner(kind="employer")
    participant_id = sender.register_participant()["id"]
    consent = sender.grant_consent(participant_id, employer, share_details=True)
    assert consent["share_details"] is True
    leg = sender.refer(employer, participant_id, consent=False)
    views = _views(employer, leg["id"], participant_id)
    assert views["leg"]["withheld"] == []
    assert views["leg"]["reason_for_referral"] == "Cherche un emploi en soudure"
    assert views["leg"]["needs"] == ["francisation"]
    assert views["person"]["birth_year"] == PARTICIPANT["birth_year"]
    assert "withheld" not in views["person"]


def test_other_receivers_are_not_affected(network: Network) -> None:
    sender, partner = network.partner(), network.partner(kind="regional_partner")
    leg = sender.refer(partner)
    shown = partner.get(f"/api/v1/referrals/{leg['id']}").get_json()
    assert shown["withheld"] == []
    assert shown["reason_for_referral"] == "Cherche un emploi en soudure"
    assert shown["participant"]["birth_year"] == PARTICIPANT["birth_year"]


def test_share_details_belongs_to_referral_sharing_only(network: Network) -> None:
    sender = network.partner()
    participant_id = sender.register_participant()["id"]
    response = sender.post(f"/api/v1/participants/{participant_id}/consents", {
        "purpose": "follow_up_contact", "evidence": "written", "network_wide": True,
        "share_details": True})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "referral_sharing" in response.get_json()["errors"]["share_details"][0]


def test_the_digest_says_when_the_person_is_needed_there(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    staff = address()
    set_entry(receiver, contacts=[contact(staff)])
    needed = date.today() + timedelta(days=9)
    urgent = sender.refer(receiver, priority="urgent", needed_by=needed.isoformat())
    plain = sender.refer(receiver, priority="urgent")
    due = max(moment(leg["deadlines"]["acknowledge_by"]) for leg in (urgent, plain))
    run_checks(app, due + timedelta(minutes=1))
    [mail] = sent_mails(app, tmp_path, staff)[staff]
    text = body(mail)
    assert sorted(listed_legs(mail)) == sorted([urgent["id"], plain["id"]])
    assert text.count("attendue sur place") == 1
    after_urgent = text.split(urgent["id"], 1)[1]
    assert f"La personne est attendue sur place le {french_day(needed)}." in after_urgent


def test_items_still_to_do_are_mailed_to_their_owner_two_business_days_before(
        app: Flask, network: Network, tmp_path: Path) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    sender_staff, receiver_staff = address(), address()
    set_entry(sender, contacts=[contact(sender_staff)])
    set_entry(receiver, contacts=[contact(receiver_staff)])
    needed = date.today() + timedelta(days=20)
    while not is_business_day(needed):
        needed += timedelta(days=1)
    leg = sender.refer(receiver, priority="urgent", pathway="settlement",
                       needed_by=needed.isoformat())
    for step in ("acknowledge", "accept", "start"):  # in progress: no deadline mails
        assert receiver.act(leg["id"], step).status_code == 200
    path = f"/api/v1/referrals/{leg['id']}/checklist"
    for code in DEFAULT_ITEMS["settlement"]:
        if code not in ("lease_termination", "housing", "school_or_daycare"):
            assert sender.call("PUT", f"{path}/{code}", json={"status": "done"}
                               ).status_code == 200
    on = remind_on(needed)
    day_before = datetime.combine(on - timedelta(days=1), time(15), tzinfo=UTC)
    run_checks(app, day_before)  # other tests' legs may be due; this one is not yet
    assert sent_mails(app, tmp_path / "before", sender_staff, receiver_staff) == {
        sender_staff: [], receiver_staff: []}
    moment_due = datetime.combine(on, time(15), tzinfo=UTC)
    assert run_checks(app, moment_due)["checklist_reminders"] >= 1
    run_checks(app, moment_due + timedelta(hours=1))  # fired once: no second mail
    mails = sent_mails(app, tmp_path, sender_staff, receiver_staff)
    [to_sender], [to_receiver] = mails[sender_staff], mails[receiver_staff]
    assert "Résilier le bail" in body(to_sender) and "Logement" not in body(to_sender)
    receiver_text = body(to_receiver)
    assert "Logement à l’arrivée" in receiver_text or "Logement à l'arrivée" in receiver_text
    assert "École ou service de garde" in receiver_text
    assert "Résilier le bail" not in receiver_text and "Déménagement" not in receiver_text
    assert f"le {french_day(needed)}" in receiver_text and leg["id"] in receiver_text
    assert "2 éléments" in " ".join(str(to_receiver["Subject"]).split())
    assert "Benali" not in receiver_text  # no personal data in a mail


def test_the_two_business_days_skip_a_holiday() -> None:
    # Friday 25 June 2027, Thursday the 24th a holiday: Tuesday the 22nd.
    assert remind_on(date(2027, 6, 25)) == date(2027, 6, 22)
