"""Property (docs/design.md §11): over random sequences of enrolments, proposals, answers
(by the peer's organization and by the peer's own link), ends, consent grants and withdrawals,
no reader other than the peer's own organization ever receives the peer's name or contact
unless a match with that reader's participant is `accepted` and both `peer_matching` consents
are active at that moment — in API answers and feed items (webhook bodies are the feed's
envelopes, rendered by the same code) and in mails; and a reader so entitled does get them.

A model of the consents (the oracle) runs beside the hub; the match statuses are read from
the hub, the rule is checked against the model.  Real API, real database, both backends.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.db import db
from hub.outbox.mail import OutgoingMail
from tests.helpers import Network, Partner

READERS = ("B", "C")  # the newcomers' organizations; "A" enrolled the peer
LINK = re.compile(r"(/jumelage/[A-Za-z0-9_-]{43})")

Step = tuple[str, str]
STEPS = st.lists(st.tuples(
    st.sampled_from(["grant_peer", "withdraw_peer_consent", "grant_newcomer",
                     "withdraw_newcomer", "enrol", "withdraw_peer", "propose", "accept",
                     "accept_by_link", "decline", "end", "end_by_peer_org"]),
    st.sampled_from(["B", "C", "network"])), min_size=1, max_size=12)


@dataclass
class Model:
    """What the consents say, kept apart from the hub."""

    peer_consents: dict[str, str | None] = field(default_factory=dict)  # id -> org or None
    newcomer_consents: dict[str, list[str]] = field(
        default_factory=lambda: {reader: [] for reader in READERS})

    def peer_covers(self, reader: str) -> bool:
        return any(org is None or org == reader for org in self.peer_consents.values())


@dataclass
class World:
    orgs: dict[str, Partner]
    peer: dict[str, Any]
    newcomers: dict[str, dict[str, Any]]
    model: Model = field(default_factory=Model)
    profile_id: str | None = None
    matches: dict[str, str] = field(default_factory=dict)  # match id -> reader

    @property
    def secrets(self) -> list[str]:
        return [self.peer["given_name"], self.peer["email"], self.peer["phone"]]


def _world(network: Network) -> World:
    orgs = {"A": network.partner(kind="regional_partner", region="01"),
            "B": network.partner(), "C": network.partner(region="05")}
    marker = secrets.token_hex(4)
    peer = orgs["A"].register_participant(given_name=f"Zéphyrine{marker}",
                                          email=f"zephyrine.{marker}@example.org")
    newcomers = {reader: orgs[reader].register_participant(given_name="Amina")
                 for reader in READERS}
    return World(orgs, peer, newcomers)


def _apply(app: Flask, world: World, action: str, target: str) -> None:
    a = world.orgs["A"]
    reader = target if target in READERS else "B"
    if action == "grant_peer":
        granted = a.grant_consent(world.peer["id"], *(
            [world.orgs[target]] if target in READERS else []), purpose="peer_matching")
        world.model.peer_consents[granted["id"]] = target if target in READERS else None
    elif action == "withdraw_peer_consent" and world.model.peer_consents:
        consent_id = sorted(world.model.peer_consents)[0]
        assert a.post(f"/api/v1/consents/{consent_id}/withdraw").status_code == 200
        del world.model.peer_consents[consent_id]
    elif action == "grant_newcomer":
        org = world.orgs[reader]
        granted = org.grant_consent(world.newcomers[reader]["id"], purpose="peer_matching")
        world.model.newcomer_consents[reader].append(granted["id"])
    elif action == "withdraw_newcomer" and world.model.newcomer_consents[reader]:
        consent_id = world.model.newcomer_consents[reader].pop(0)
        answer = world.orgs[reader].post(f"/api/v1/consents/{consent_id}/withdraw")
        assert answer.status_code == 200
    elif action == "enrol":
        answer = a.post("/api/v1/peers", {
            "participant_id": world.peer["id"], "region": "01", "municipality": "Rimouski",
            "languages": ["fr"], "pathways": ["settlement"], "offers": ["talk_settlement"],
            "contact_channels": ["email", "phone"], "settled_since": "2021-06-01"})
        assert answer.status_code in (201, 409), answer.get_data(as_text=True)
        if answer.status_code == 201:
            world.profile_id = answer.get_json()["id"]
    elif action == "withdraw_peer" and world.profile_id:
        assert a.post(f"/api/v1/peers/{world.profile_id}/withdraw").status_code == 200
    elif action == "propose" and world.profile_id:
        answer = world.orgs[reader].post("/api/v1/peer-matches", {
            "peer_id": world.profile_id, "participant_id": world.newcomers[reader]["id"]})
        assert answer.status_code in (201, 404, 409, 422), answer.get_data(as_text=True)
        if answer.status_code == 201:
            world.matches[answer.get_json()["id"]] = reader
    elif action in ("accept", "decline", "end_by_peer_org") and world.matches:
        match_id = _match_of(world, reader)
        verb = "end" if action == "end_by_peer_org" else action
        answer = a.post(f"/api/v1/peer-matches/{match_id}/{verb}")
        assert answer.status_code in (200, 403, 409), answer.get_data(as_text=True)
    elif action == "end" and world.matches:
        match_id = _match_of(world, reader)
        owner = world.orgs[world.matches[match_id]]
        assert owner.post(f"/api/v1/peer-matches/{match_id}/end").status_code in (200, 409)
    elif action == "accept_by_link" and world.matches:
        match_id = _match_of(world, reader)
        with app.app_context(), db.job_session() as session:
            mail = session.scalar(select(OutgoingMail).where(
                OutgoingMail.dedupe_key == f"peer-proposal:{match_id}"))
            body = mail.body_text if mail is not None else ""
        found = LINK.search(body)
        if found:
            page = app.test_client().post(found.group(1), data={"action": "accept"})
            assert page.status_code in (200, 400, 409, 410), page.status_code


def _match_of(world: World, reader: str) -> str:
    """The latest match of `reader`, else the latest of all."""
    mine = [m for m, r in world.matches.items() if r == reader]
    return (mine or list(world.matches))[-1]


def _status(world: World, match_id: str) -> str:
    owner = world.orgs[world.matches[match_id]]
    return owner.get(f"/api/v1/peer-matches/{match_id}").get_json()["status"]


def _check(app: Flask, world: World, statuses_before: dict[str, str]) -> None:
    enrolled = world.profile_id is not None and world.orgs["A"].get(
        f"/api/v1/peers/{world.profile_id}").get_json()["status"] != "withdrawn"
    statuses = {m: _status(world, m) for m in world.matches}
    for reader in READERS:
        org = world.orgs[reader]
        newcomer_consented = bool(world.model.newcomer_consents[reader])
        entitled = [m for m, r in world.matches.items() if r == reader
                    and statuses[m] == "accepted" and newcomer_consented
                    and world.model.peer_covers(reader) and enrolled]
        seen = [org.get("/api/v1/peer-matches").get_data(as_text=True),
                org.get("/api/v1/peers").get_data(as_text=True),
                json.dumps(org.get("/api/v1/events?limit=500").get_json()["items"])]
        seen += [org.get(f"/api/v1/peer-matches/{m}").get_data(as_text=True)
                 for m in world.matches]
        leaked = [s for s in world.secrets if any(s in text for text in seen)]
        assert not leaked or entitled, (reader, leaked, statuses, world.model)
        for match_id in entitled:  # and the entitled reader does get the peer
            view = org.get(f"/api/v1/peer-matches/{match_id}").get_json()
            assert view["peer"]["given_name"] == world.peer["given_name"], view
    with app.app_context(), db.job_session() as session:
        addresses = {mail.to_address for mail in session.scalars(select(OutgoingMail).where(
            OutgoingMail.dedupe_key.in_([f"peer-proposal:{m}" for m in world.matches]
                                        + [f"peer-talked:{m}" for m in world.matches])))
                     if any(s in mail.body_text or s in mail.subject for s in world.secrets)}
    assert addresses <= {world.peer["email"]}, addresses
    # A match once closed never opens again.
    for match_id, before in statuses_before.items():
        if before in ("declined", "expired", "ended"):
            assert statuses[match_id] == before


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(steps=STEPS)
def test_no_peer_data_reaches_a_reader_without_an_accepted_allowed_match(
        app: Flask, network: Network, steps: list[Step]) -> None:
    world = _world(network)
    # Start from a state where a match can happen, so the sequences reach the rule.
    for action, target in (("grant_peer", "B"), ("grant_newcomer", "B"), ("enrol", "B"),
                           ("propose", "B")):
        _apply(app, world, action, target)
    statuses: dict[str, str] = {}
    for action, target in steps:
        _apply(app, world, action, target)
        _check(app, world, statuses)
        statuses = {m: _status(world, m) for m in world.matches}
