"""The person's copy (docs/design.md §15): `GET /api/v1/participants/{id}/export` gives the
registering organization everything collected from the person, nothing of anyone else, and
logs the read; no other organization gets it.  A property test (hypothesis) checks "exactly
theirs" over registrations, consents, legs, notes and erasures."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import crypto, models
from hub.db import db, utcnow
from hub.followups.checkins import ParticipantCheckin
from hub.privacy import person_copy
from tests.helpers import Network, Partner


def export(partner: Partner, participant_id: str) -> dict:
    response = partner.get(f"/api/v1/participants/{participant_id}/export")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="participant-{participant_id}.json"')
    return response.get_json()


def test_the_copy_holds_identity_consents_legs_notes_and_checkin_answers(
        app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    person = sender.register_participant(given_name="Yasmina", family_name="Oufkir")
    consent = sender.grant_consent(person["id"], receiver, note="Accord donné au téléphone")
    leg = sender.refer(receiver, person["id"], consent=False,
                       reason_for_referral="Soudeuse, cherche un poste à Rimouski")
    assert receiver.act(leg["id"], "acknowledge", {"note": "Appel prévu lundi"}).status_code == 200
    with app.app_context(), db.job_session() as session:
        now = utcnow()
        session.add(ParticipantCheckin(
            referral_id=uuid.UUID(leg["id"]), token_hash=uuid.uuid4().hex * 2, created_at=now,
            expires_at=now + timedelta(days=14), answered_at=now, answer="contacted",
            language="fr"))

    copy = export(sender, person["id"])

    assert copy["export"]["format"] == "maillage.person-copy/1"
    assert copy["export"]["participant_id"] == person["id"]
    assert copy["identity"]["given_name"] == "Yasmina"
    assert copy["identity"]["email"] == person["email"]
    assert [c["id"] for c in copy["consents"]] == [consent["id"]]
    assert copy["consents"][0]["note"] == "Accord donné au téléphone"
    [shown] = copy["referrals"]
    assert shown["id"] == leg["id"] and shown["status"] == "acknowledged"
    assert shown["reason_for_referral"] == "Soudeuse, cherche un poste à Rimouski"
    assert [n["note"] for n in shown["notes"]] == ["Appel prévu lundi"]
    assert [(c["referral_id"], c["answer"]) for c in copy["checkins"]] == [
        (leg["id"], "contacted")]


def test_the_copy_is_the_registering_organizations_only(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    leg = sender.refer(receiver)
    participant_id = leg["participant"]["id"]
    # The receiver sees the person on its open leg, but the copy is for their own organization.
    for other in (receiver, coordinator):
        refused = other.get(f"/api/v1/participants/{participant_id}/export")
        assert refused.status_code == 404
        assert refused.mimetype == "application/problem+json"
    assert sender.get(f"/api/v1/participants/{uuid.uuid4()}/export").status_code == 404


def test_making_the_copy_is_in_the_access_log(network: Network) -> None:
    sender = network.partner()
    person = sender.register_participant()
    export(sender, person["id"])
    log = sender.get(f"/api/v1/participants/{person['id']}/access-log").get_json()["items"]
    assert [(r["via"], r["actor"]) for r in log][-1] == (
        "GET /api/v1/participants/{participant_id}/export", f"client:{sender.client_id}")


def test_every_table_about_a_person_is_in_the_copy_or_said_why_not() -> None:
    """A capability that adds a table with a participant_id adds its section to the copy."""
    about_a_person = {table.name for table in models.Base.metadata.sorted_tables
                      if "participant_id" in table.columns or (
                          "referral_id" in table.columns and any(
                              isinstance(c.type, crypto.EncryptedText | crypto.EncryptedJSON)
                              for c in table.columns))}
    covered = person_copy.tables_covered() | set(person_copy.NOT_COLLECTED)
    assert about_a_person - covered == set()
    assert {"participants", "consents", "referrals"} <= covered


# --- property: exactly the person's, nothing of anyone else --------------------------------

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèçàô", min_size=6, max_size=12)
PERSON = st.fixed_dictionaries({
    "given_name": NAMES, "family_name": NAMES,
    "consent": st.booleans(), "legs": st.integers(0, 2), "note": st.booleans(),
    "erased": st.booleans(),
})


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(people=st.lists(PERSON, min_size=2, max_size=3))
def test_the_copy_holds_exactly_the_persons_data(network: Network, people: list[dict]) -> None:
    sender, receiver = network.partner(), network.partner()
    registered = []
    for index, person in enumerate(people):
        # Unique markers, so that a name found in a copy can only come from its owner.
        given, family = f"{person['given_name']}{index}q", f"{person['family_name']}{index}k"
        participant = sender.register_participant(given_name=given, family_name=family)
        secrets = {given, family, participant["email"], participant["phone"]}
        consent_ids, leg_ids = set(), set()
        if person["consent"] or person["legs"]:
            note = f"note-{uuid.uuid4().hex}" if person["note"] else None
            consent_ids.add(sender.grant_consent(participant["id"], receiver, note=note)["id"])
            if note:
                secrets.add(note)
        for _ in range(person["legs"]):
            reason = f"raison-{uuid.uuid4().hex}"
            leg_ids.add(sender.refer(receiver, participant["id"], consent=False,
                                     reason_for_referral=reason)["id"])
            secrets.add(reason)
        registered.append((participant["id"], secrets, consent_ids, leg_ids))
    # Erasing some of them leaves nothing of theirs to copy, and the others' copies whole.
    erased = {pid for (pid, *_), person in zip(registered, people, strict=True)
              if person["erased"]}
    for participant_id in erased:
        assert sender.post(f"/api/v1/participants/{participant_id}/erase").status_code == 200

    for participant_id, secrets, consent_ids, leg_ids in registered:
        if participant_id in erased:
            assert sender.get(f"/api/v1/participants/{participant_id}/export"
                              ).status_code == 410
            continue
        copy = export(sender, participant_id)
        text = json.dumps(copy, ensure_ascii=False)
        assert all(secret in text for secret in secrets)
        assert {c["id"] for c in copy["consents"]} == consent_ids
        assert {leg["id"] for leg in copy["referrals"]} == leg_ids
        for other_id, other_secrets, other_consents, other_legs in registered:
            if other_id == participant_id:
                continue
            assert other_id not in text
            assert not any(secret in text for secret in other_secrets)
            assert not any(i in text for i in other_consents | other_legs)
