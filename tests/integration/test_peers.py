"""Peer matching (docs/design.md §11) through the API and the peer's link: enrolment under the
peer's consent, pseudonymous search, a proposal mailed to the peer, the answer by the link,
the peer's given name and chosen channel to the newcomer's organization only once accepted,
the end by either side, lapse after 10 business days, withdrawal of a consent, the 30-day
question, and the coordinators' counts."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.db import db
from hub.followups import tick
from hub.followups.deadlines import add_business_days
from hub.outbox.mail import OutgoingMail
from hub.peers.matching import withhold_small_counts
from hub.peers.profiles import MatchStatus, PeerMatch
from tests.helpers import Network, Partner
from tests.hub_cli import run_hub
from tests.integration.test_check_mails import french_day
from tests.integration.test_reports import min_cell
from tests.portal import Person, make_organization, make_user, text_of

LINK = re.compile(r"http://[^/\s]+(/jumelage/[A-Za-z0-9_-]{43})")
PEER = {"given_name": "Karim", "family_name": "Haddad", "preferred_language": "fr",
        "region": "01"}

__all__ = ["min_cell"]  # the fixture, shared with the report tests


def profile(participant_id: str, **fields: Any) -> dict[str, Any]:
    return {"participant_id": participant_id, "region": "01", "municipality": "Rimouski",
            "languages": ["fr", "ar"], "pathways": ["employment", "settlement"],
            "offers": ["talk_settlement", "visit_places"], "contact_channels": ["email"],
            "settled_since": "2023-05-01", **fields}


def mails(app: Flask, key: str) -> list[OutgoingMail]:
    with app.app_context(), db.job_session() as session:
        return list(session.scalars(select(OutgoingMail).where(OutgoingMail.dedupe_key == key)))


def feed(partner: Partner, match_id: str, until: str) -> list[dict[str, Any]]:
    """The organization's feed items about one match, once `until` is among them: on
    PostgreSQL the feed shows an event once every older transaction of the server finished,
    and the test server is shared, so it is polled for a while."""
    deadline = time.monotonic() + 30
    while True:
        items = [e for e in partner.get("/api/v1/events?limit=500").get_json()["items"]
                 if e["type"].startswith("peer_match.")
                 and e["data"]["peer_match"]["id"] == match_id]
        if until in [e["type"] for e in items] or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


class World:
    def __init__(self, network: Network, *, peer_consent_to: list[Partner] | None = None):
        self.peer_org = network.partner(kind="regional_partner", region="01")
        self.newcomer_org = network.partner()
        self.stranger = network.partner()
        self.peer = self.peer_org.register_participant(**PEER)
        self.peer_consent = self.peer_org.grant_consent(
            self.peer["id"], *(peer_consent_to if peer_consent_to is not None
                               else [self.newcomer_org]), purpose="peer_matching")
        enrolled = self.peer_org.post("/api/v1/peers", profile(self.peer["id"]))
        assert enrolled.status_code == 201, enrolled.get_data(as_text=True)
        self.profile = enrolled.get_json()
        self.newcomer = self.newcomer_org.register_participant(given_name="Amina")
        self.newcomer_consent = self.newcomer_org.grant_consent(
            self.newcomer["id"], purpose="peer_matching")

    def propose(self) -> dict[str, Any]:
        answer = self.newcomer_org.post("/api/v1/peer-matches", {
            "peer_id": self.profile["id"], "participant_id": self.newcomer["id"],
            "note": "Amina arrive à Rimouski le 12 janvier avec sa famille."})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        return answer.get_json()

    def peer_link(self, app: Flask, match_id: str) -> str:
        [mail] = mails(app, f"peer-proposal:{match_id}")
        assert mail.to_address == self.peer["email"]
        found = LINK.search(mail.body_text)
        assert found, mail.body_text
        return found.group(1)


def found_ids(partner: Partner, region: str = "01") -> set[str]:
    """Ids of the peers `partner` finds in a region.  The database is shared by the whole run,
    and another test's peer may have consented network-wide: assertions are about this test's
    peer, never about an empty list."""
    return {p["id"] for p in partner.get(f"/api/v1/peers?region={region}").get_json()["items"]}


def secrets_of(world: World) -> list[str]:
    return [world.peer["given_name"], world.peer["email"], world.peer["phone"],
            world.peer["family_name"]]


def test_a_peer_found_proposed_accepted_by_link_then_ended(app: Flask, network: Network) -> None:
    world = World(network)
    found = world.newcomer_org.get("/api/v1/peers?region=01&language=ar&pathway=settlement")
    assert found.status_code == 200
    [item] = [p for p in found.get_json()["items"] if p["id"] == world.profile["id"]]
    assert item["settled_since_year"] == 2023 and item["municipality"] == "Rimouski"
    assert not any(s in found.get_data(as_text=True) for s in secrets_of(world))
    assert "participant_id" not in item and "contact_channels" not in item
    # The peer's consent does not cover the stranger: nothing found, nothing to propose.
    assert world.profile["id"] not in found_ids(world.stranger)
    assert world.stranger.get(f"/api/v1/peers/{world.profile['id']}").status_code == 404

    match = world.propose()
    assert match["status"] == "proposed" and match["peer"] is None
    path = world.peer_link(app, match["id"])
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Amina" in text and "Bas-Saint-Laurent" in text and "12 janvier" in text
    assert "Karim" not in text  # the page is for Karim; it shows the newcomer
    for_peer_org = world.peer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert for_peer_org["newcomer"]["given_name"] == "Amina" and for_peer_org["peer"] is None

    assert client.post(path, data={"action": "accept"}).status_code == 200
    accepted = world.newcomer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert accepted["status"] == "accepted"
    assert accepted["peer"] == {"given_name": "Karim", "contact": {"email": world.peer["email"]}}
    assert world.peer["phone"] not in json.dumps(accepted)  # a channel the peer did not choose
    assert world.stranger.get(f"/api/v1/peer-matches/{match['id']}").status_code == 404
    assert client.post(path, data={"action": "decline"}).status_code == 400  # answered once

    assert client.post(path, data={"action": "end"}).status_code == 200
    for partner in (world.newcomer_org, world.peer_org):
        events = feed(partner, match["id"], until="peer_match.ended")
        assert [e["type"] for e in events] == [
            "peer_match.proposed", "peer_match.accepted", "peer_match.ended"]
        assert events[-1]["data"]["peer_match"]["end_reason"] == "peer_ended"
        assert not any(s in json.dumps(events) for s in secrets_of(world))
    ended = world.newcomer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert ended["status"] == "ended" and ended["peer"] is None
    assert client.get(path).status_code == 410


def test_consents_are_needed_and_a_withdrawal_ends_open_matches(
        app: Flask, network: Network) -> None:
    world = World(network)
    loner = world.peer_org.register_participant()
    refused = world.peer_org.post("/api/v1/peers", profile(loner["id"]))
    assert refused.status_code == 409 and refused.get_json()["purpose"] == "peer_matching"
    twice = world.peer_org.post("/api/v1/peers", profile(world.peer["id"]))
    assert twice.status_code == 409 and twice.get_json()["peer_id"] == world.profile["id"]
    no_phone = world.peer_org.register_participant(phone=None)
    world.peer_org.grant_consent(no_phone["id"], purpose="peer_matching")
    bad = world.peer_org.post("/api/v1/peers", profile(no_phone["id"],
                                                       contact_channels=["phone"]))
    assert bad.status_code == 422 and "contact_channels" in bad.get_json()["errors"]

    other = world.newcomer_org.register_participant()
    unconsented = world.newcomer_org.post("/api/v1/peer-matches", {
        "peer_id": world.profile["id"], "participant_id": other["id"]})
    assert unconsented.status_code == 409
    assert unconsented.get_json()["type"].endswith("consent_required")

    match = world.propose()
    assert world.peer_org.post(f"/api/v1/peer-matches/{match['id']}/accept").status_code == 200
    assert world.newcomer_org.post(
        f"/api/v1/peer-matches/{match['id']}/accept").status_code == 403
    withdrawn = world.peer_org.post(f"/api/v1/consents/{world.peer_consent['id']}/withdraw")
    assert withdrawn.status_code == 200
    ended = world.newcomer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert (ended["status"], ended["end_reason"], ended["peer"]) == (
        "ended", "consent_withdrawn", None)
    assert world.profile["id"] not in found_ids(world.newcomer_org)


def test_proposals_lapse_and_accepted_ones_ask_the_newcomer_after_30_days(
        app: Flask, network: Network, min_cell: Any) -> None:
    world = World(network)
    lapsing = world.propose()
    with app.app_context(), db.job_session() as session:
        stored = session.get(PeerMatch, uuid.UUID(lapsing["id"]))
        assert stored is not None
        expires_at = stored.expires_at
    assert expires_at == add_business_days(stored.proposed_at, 10)
    assert expires_at - stored.proposed_at >= timedelta(days=12)  # two weekends at least
    [proposal] = mails(app, f"peer-proposal:{lapsing['id']}")  # the peer's French mail
    last_day = expires_at.astimezone(ZoneInfo("America/Toronto")).date()
    assert f"Sans réponse d’ici le {french_day(last_day)}," in proposal.body_text
    tick.run_once(app.extensions["hub_db"][1], expires_at + timedelta(minutes=1))
    lapsed = world.newcomer_org.get(f"/api/v1/peer-matches/{lapsing['id']}").get_json()
    assert lapsed["status"] == "expired"
    assert [e["type"] for e in feed(world.peer_org, lapsing["id"], until="peer_match.expired")
            ][-1] == "peer_match.expired"

    match = world.propose()
    assert world.peer_org.post(f"/api/v1/peer-matches/{match['id']}/accept").status_code == 200
    with app.app_context(), db.job_session() as session:
        stored = session.get(PeerMatch, uuid.UUID(match["id"]))
        assert stored is not None and stored.checkin_due_at is not None
        due = stored.checkin_due_at
    tick.run_once(app.extensions["hub_db"][1], due + timedelta(minutes=1))
    tick.run_once(app.extensions["hub_db"][1], due + timedelta(minutes=2))
    [mail] = mails(app, f"peer-talked:{match['id']}")
    assert mail.to_address == world.newcomer["email"] and "Karim" in mail.subject
    path = LINK.search(mail.body_text)
    assert path is not None
    client = app.test_client()
    assert "Karim" in client.get(path.group(1)).get_data(as_text=True)
    assert client.post(path.group(1), data={"action": "talked"}).status_code == 200
    assert client.post(path.group(1), data={"action": "not_yet"}).status_code == 410
    answered = world.newcomer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert answered["checkin_answer"] == "talked"

    coordinator = network.partner(kind="coordination")
    min_cell(1)  # every count shown, to check them
    counts = coordinator.get("/api/v1/peers/counts").get_json()["items"]
    bsl = next(row for row in counts if row["region"] == "01")
    assert bsl["available_peers"] >= 1 and bsl["matches"]["accepted"] >= 1
    assert "Karim" not in json.dumps(counts)
    assert world.newcomer_org.get("/api/v1/peers/counts").status_code == 403


def test_the_peer_withdraws_and_their_organization_pauses_them(
        app: Flask, network: Network) -> None:
    world = World(network)
    match = world.propose()
    paused = world.peer_org.call("PATCH", f"/api/v1/peers/{world.profile['id']}",
                                 json={"status": "paused", "municipality": "Matane"})
    assert paused.status_code == 200 and paused.get_json()["municipality"] == "Matane"
    assert world.profile["id"] not in found_ids(world.newcomer_org)
    gone = world.peer_org.post(f"/api/v1/peers/{world.profile['id']}/withdraw")
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn"
    ended = world.newcomer_org.get(f"/api/v1/peer-matches/{match['id']}").get_json()
    assert (ended["status"], ended["end_reason"]) == ("ended", "peer_withdrew")


def test_hub_client_create_grants_the_peer_scopes(tmp_path: Path) -> None:
    """A partner system's client may be given `peers:read` and `peers:write` by name, and has
    them by default; its token then reads the peers' routes."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    assert run_hub(env, "db", "upgrade").returncode == 0
    made = run_hub(env, "org", "create", "--name", "Accueil Rimouski", "--kind",
                   "regional_partner", "--region", "01")
    assert made.returncode == 0, made.stderr
    organization = json.loads(made.stdout)["id"]
    named = run_hub(env, "client", "create", "--org", organization, "--scopes",
                    "peers:read peers:write")
    assert named.returncode == 0, named.stderr
    assert set(json.loads(named.stdout)["scope"].split()) == {"peers:read", "peers:write"}
    default = run_hub(env, "client", "create", "--org", organization)
    assert {"peers:read", "peers:write"} <= set(json.loads(default.stdout)["scope"].split())


def test_peer_counts_withhold_small_numbers_like_every_coordinator_report(
        app: Flask, network: Network, min_cell: Any) -> None:
    World(network)  # one available peer in Bas-Saint-Laurent at least
    coordinator = network.partner(kind="coordination")
    min_cell(1_000_000)  # every count of the shared database is small
    body = coordinator.get("/api/v1/peers/counts").get_json()
    assert body["suppression"]["min_cell"] == 1_000_000
    bsl = next(row for row in body["items"] if row["region"] == "01")
    assert bsl["available_peers"] is None
    assert "01/available_peers" in body["suppression"]["suppressed"]
    assert {row["available_peers"] for row in body["items"]} | {
        count for row in body["items"] for count in row["matches"].values()} <= {None, 0}
    # The charts page applies the same rule, written as the other charts write it.
    watcher = Person.logged_in(app, make_user(app, make_organization(app, kind="coordination"),
                                              "coordinator"))
    peers = text_of(watcher.get("/network/charts")).split("Jumelage", 1)[1]
    assert "Bas-Saint-Laurent <1000000" in peers


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.dictionaries(
    st.sampled_from([s.value for s in MatchStatus]), st.integers(0, 30))), max_size=5),
       st.integers(1, 10))
def test_no_count_under_the_threshold_is_ever_shown(
        rows: list[tuple[int, dict[str, int]]], threshold: int) -> None:
    regions = [{"region": f"{n:02d}", "available_peers": peers, "matches": matches}
               for n, (peers, matches) in enumerate(rows, start=1)]
    out = withhold_small_counts(regions, threshold)
    withheld = set(out["suppression"]["suppressed"])
    for before, after in zip(regions, out["items"], strict=True):
        pairs = [(f"{before['region']}/available_peers", before["available_peers"],
                  after["available_peers"])] + [
            (f"{before['region']}/matches/{status}", count, after["matches"][status])
            for status, count in before["matches"].items()]
        for path, count, shown in pairs:
            small = 0 < count < threshold
            assert shown == (None if small else count)
            assert (path in withheld) == small
