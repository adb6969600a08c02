"""Tenant isolation (docs/design.md §4): each organization sees only what is its own.

An organization sees the legs it sent or received, and the participants it registered or
holds an open leg for (with consent); everything else answers 404, exactly as if it did not
exist, and nothing changes.  The walk below takes every route of the API whose path names an
object, read from the OpenAPI document and the URL map, so a route added later must be added
to the table here or the coverage test fails.

Also here: who may act on a leg (403 for the other party and for coordinators), scopes and
tokens (401/403, revocation, introspection), and what coordinators see (legs, never people).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from hub.accounts import clients
from hub.accounts.clients import OAuthClient
from hub.db import db
from hub.outbox import webhook_fanout
from tests.helpers import PARTICIPANT, Network, Partner

PROBLEM_JSON = "application/problem+json"
PERSONAL_VALUES = [PARTICIPANT["given_name"], PARTICIPANT["family_name"], PARTICIPANT["email"],
                   PARTICIPANT["phone"]]
PERSONAL_FIELDS = ["given_name", "family_name", "email", "phone", "birth_year"]


@dataclass
class World:
    """A sender, its receiver, an unrelated organization and one acknowledged leg."""

    sender: Partner
    receiver: Partner
    outsider: Partner
    bystander: Partner  # a fourth organization, target of the outsider's forward attempt
    participant_id: str
    leg: dict[str, Any]
    consent_id: str
    endpoint_id: str
    delivery_id: str
    peer_id: str  # the receiver's peer, whom the sender may find
    match_id: str  # the sender's participant put in touch with that peer
    household_id: str = ""
    opportunity_id: str = ""  # the receiver's, public to the network; only it acts on it


@pytest.fixture
def world(network: Network) -> World:
    return _world(network)


@pytest.fixture(scope="module")
def walked_world(app: Flask) -> World:
    """One world per backend for the walk of every object route: each step checks that the
    outsider's call changed nothing, so the steps can share it (and not build 40 of them)."""
    return _world(Network(app))


def _world(network: Network) -> World:
    sender = network.partner()
    receiver = network.partner(kind="regional_partner", region="01")
    outsider = network.partner(kind="regional_partner", region="05")
    bystander = network.partner(kind="entrepreneurship_agency", region="05")
    participant_id = sender.register_participant()["id"]
    consent = sender.grant_consent(participant_id, receiver, bystander)
    endpoint = sender.post("/api/v1/webhook-endpoints", {
        "url": "http://127.0.0.1:9/maillage", "event_types": ["referral.*"]}).get_json()
    leg = sender.refer(receiver, participant_id, consent=False)
    response = receiver.act(leg["id"], "acknowledge", {"note": "Dossier reçu"})
    assert response.status_code == 200, response.get_data(as_text=True)
    moved = 1
    while moved:  # the outbox may hold other tests' events first
        with sender.app.app_context(), db.job_session() as session:
            moved = webhook_fanout.fan_out(session)
    deliveries = sender.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries")
    delivery_id = str(deliveries.get_json()["items"][0]["id"])
    spouse = sender.register_participant()["id"]
    household = sender.post("/api/v1/households", {"participant_ids": [participant_id, spouse]})
    assert household.status_code == 201, household.get_data(as_text=True)
    peer = receiver.register_participant(given_name="Karim")
    receiver.grant_consent(peer["id"], sender, purpose="peer_matching")
    enrolled = receiver.post("/api/v1/peers", {
        "participant_id": peer["id"], "region": "01", "municipality": "Rimouski",
        "languages": ["fr"], "pathways": ["settlement"], "offers": ["talk_settlement"],
        "contact_channels": ["email"], "settled_since": "2022-09-01"})
    assert enrolled.status_code == 201, enrolled.get_data(as_text=True)
    sender.grant_consent(participant_id, purpose="peer_matching")
    match = sender.post("/api/v1/peer-matches", {"peer_id": enrolled.get_json()["id"],
                                                 "participant_id": participant_id})
    assert match.status_code == 201, match.get_data(as_text=True)
    opportunity = receiver.post("/api/v1/opportunities", {
        "title": "Soudeur ou soudeuse", "kind": "job", "region": "01", "municipality": "Rimouski",
        "pathways": ["employment"], "description": "Poste de jour", "languages": ["fr"],
        "closes_on": "2099-12-31", "places": 1})
    assert opportunity.status_code == 201, opportunity.get_data(as_text=True)
    return World(sender, receiver, outsider, bystander, participant_id, response.get_json(),
                 consent["id"], endpoint["id"], delivery_id, enrolled.get_json()["id"],
                 match.get_json()["id"], household.get_json()["id"],
                 opportunity.get_json()["id"])


# --- the table of routes that name an object ----------------------------------------------

# How to fill each path parameter with an object of the sender/receiver pair.
PARAMETERS: dict[str, Callable[[World], str]] = {
    "referral_id": lambda w: w.leg["id"],
    "participant_id": lambda w: w.participant_id,
    "organization_id": lambda w: w.sender.organization_id,
    "consent_id": lambda w: w.consent_id,
    "endpoint_id": lambda w: w.endpoint_id,
    "delivery_id": lambda w: w.delivery_id,
    "policy_id": lambda w: str(uuid.uuid4()),
    "peer_id": lambda w: w.peer_id,
    "match_id": lambda w: w.match_id,
    "incident_id": lambda w: str(uuid.uuid4()),
    "item": lambda w: "housing",
    "household_id": lambda w: w.household_id,
    "opportunity_id": lambda w: w.opportunity_id,
}

Body = Callable[[World], dict[str, Any] | None]

# Routes on objects of one organization: another organization must get 404.  The body is the
# one the rightful party would send, so that only visibility can refuse it.
TENANT_OPERATIONS: dict[tuple[str, str], Body] = {
    ("GET", "/api/v1/participants/{participant_id}"): lambda w: None,
    ("PATCH", "/api/v1/participants/{participant_id}"): lambda w: {"given_name": "Autre"},
    ("GET", "/api/v1/referrals/{referral_id}"): lambda w: None,
    ("GET", "/api/v1/referrals/{referral_id}/events"): lambda w: None,
    ("GET", "/api/v1/referrals/{referral_id}/fhir"): lambda w: None,
    ("GET", "/api/v1/referrals/{referral_id}/checklist"): lambda w: None,
    ("GET", "/api/v1/households/{household_id}"): lambda w: None,
    ("PUT", "/api/v1/households/{household_id}/members/{participant_id}"): lambda w: None,
    ("DELETE", "/api/v1/households/{household_id}/members/{participant_id}"): lambda w: None,
    ("POST", "/api/v1/households/{household_id}/referrals"):
        lambda w: {"to_organization_id": w.bystander.organization_id, "pathway": "employment"},
    ("PUT", "/api/v1/referrals/{referral_id}/checklist/{item}"): lambda w: {"status": "done"},
    ("POST", "/api/v1/referrals/{referral_id}/acknowledge"): lambda w: {"note": "Vu"},
    ("POST", "/api/v1/referrals/{referral_id}/accept"): lambda w: {"note": "On s'en occupe"},
    ("POST", "/api/v1/referrals/{referral_id}/decline"): lambda w: {"reason": "no_capacity"},
    ("POST", "/api/v1/referrals/{referral_id}/start"): lambda w: {"note": "Premier contact"},
    ("POST", "/api/v1/referrals/{referral_id}/complete"): lambda w: {"outcome": "employed"},
    ("POST", "/api/v1/referrals/{referral_id}/forward"):
        lambda w: {"to_organization_id": w.bystander.organization_id},
    ("POST", "/api/v1/referrals/{referral_id}/cancel"): lambda w: {"reason": "other"},
    ("GET", "/api/v1/referrals/{referral_id}/followups"): lambda w: None,
    ("POST", "/api/v1/referrals/{referral_id}/followups"):
        lambda w: {"reached": True, "situation": "employed", "in_destination_region": True},
    ("GET", "/api/v1/participants/{participant_id}/consents"): lambda w: None,
    ("POST", "/api/v1/participants/{participant_id}/consents"):
        lambda w: {"purpose": "referral_sharing", "network_wide": True, "evidence": "verbal"},
    ("GET", "/api/v1/participants/{participant_id}/access-log"): lambda w: None,
    ("GET", "/api/v1/participants/{participant_id}/export"): lambda w: None,
    ("POST", "/api/v1/participants/{participant_id}/erase"): lambda w: None,
    ("GET", "/api/v1/consents/{consent_id}"): lambda w: None,
    ("POST", "/api/v1/consents/{consent_id}/withdraw"): lambda w: None,
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}"): lambda w: None,
    ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): lambda w: {"status": "paused"},
    ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"): lambda w: None,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): lambda w: None,
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries"): lambda w: None,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/recover"):
        lambda w: {"since": "2026-01-01T00:00:00Z"},
    ("POST", "/api/v1/deliveries/{delivery_id}/redeliver"): lambda w: None,
    ("GET", "/api/v1/peers/{peer_id}"): lambda w: None,
    ("PATCH", "/api/v1/peers/{peer_id}"): lambda w: {"status": "paused"},
    ("POST", "/api/v1/peers/{peer_id}/withdraw"): lambda w: None,
    ("GET", "/api/v1/peer-matches/{match_id}"): lambda w: None,
    ("POST", "/api/v1/peer-matches/{match_id}/accept"): lambda w: None,
    ("POST", "/api/v1/peer-matches/{match_id}/decline"): lambda w: None,
    ("POST", "/api/v1/peer-matches/{match_id}/end"): lambda w: None,
    # An opportunity is read by all (below), but only its publisher sees its candidates or
    # withdraws it.
    ("GET", "/api/v1/opportunities/{opportunity_id}/candidates"): lambda w: None,
    ("POST", "/api/v1/opportunities/{opportunity_id}/withdraw"): lambda w: None,
}

# Routes authenticated by a signature instead of a token: an organization's endpoint secret
# answers for that organization only (tests/e2e/test_webhooks.py tries another's).
SIGNED_OPERATIONS: set[tuple[str, str]] = {
    ("POST", "/webhooks/inbound/{organization_id}"),
}

# Routes for hub administrators only (scope hub:admin, coordination bodies): every partner
# gets 403, whatever the object (tests/integration/test_deadline_policies.py tries more).
ADMIN_OPERATIONS: set[tuple[str, str]] = {
    ("GET", "/api/v1/deadline-policies/{policy_id}"),
    ("DELETE", "/api/v1/deadline-policies/{policy_id}"),
}

# An organization's register of confidentiality incidents: only clients granted
# privacy:manage reach it, and one organization's entries answer 404 to every other
# (test_the_register_is_the_organizations_own_and_needs_the_scope, in
# tests/integration/test_privacy_incidents.py).
REGISTER_OPERATIONS: set[tuple[str, str]] = {
    ("GET", "/api/v1/privacy-incidents/{incident_id}"),
    ("PATCH", "/api/v1/privacy-incidents/{incident_id}"),
}

# Routes on objects every member of the network shares: the directory, the opportunities.
SHARED_OPERATIONS: set[tuple[str, str]] = {
    ("GET", "/api/v1/organizations/{organization_id}"),
    ("GET", "/api/v1/opportunities/{opportunity_id}"),
}

# Shared entries that only their own organization (or a hub administrator) changes: another
# partner sees the entry, so it gets 403 (not 404), and the entry stays as it was.
OWNED_ENTRY_OPERATIONS: dict[tuple[str, str], Body] = {
    ("PATCH", "/api/v1/organizations/{organization_id}"): lambda w: {"capacity": "full"},
    ("POST", "/api/v1/organizations/{organization_id}/validate"): lambda w: None,
    ("GET", "/api/v1/organizations/{organization_id}/outdated-reports"): lambda w: None,
}

# Routes on a shared entry that read or write the caller's own words about it (its
# relationship note, its report that the entry is out of date): any organization may call
# them, and each only ever reaches its own.
CALLERS_OWN_OPERATIONS: set[tuple[str, str]] = {
    ("GET", "/api/v1/organizations/{organization_id}/relationship"),
    ("PUT", "/api/v1/organizations/{organization_id}/relationship"),
    ("GET", "/api/v1/organizations/{organization_id}/relationship/history"),
    ("POST", "/api/v1/organizations/{organization_id}/report-outdated"),
}


def _api_operations_with_path_parameters(app: Flask) -> set[tuple[str, str]]:
    """Every (method, path template) under /api/v1 that has a path parameter, from both the
    OpenAPI document and the URL map (a route left out of the document is still found)."""
    found: set[tuple[str, str]] = set()
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        if "{" in path:
            found.update((method.upper(), path) for method in item
                         if method in {"get", "post", "put", "patch", "delete"})
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.arguments:
            template = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            found.update((method, template) for method in rule.methods or ()
                         if method not in {"HEAD", "OPTIONS"})
    return found


def _fill(template: str, w: World, **override: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return override.get(name) or PARAMETERS[name](w)

    return re.sub(r"{([^{}]+)}", value, template)


def _normalized(response: TestResponse, *ids: str) -> str:
    """A problem body with the request id dropped and the named ids blanked (whole words only,
    and never in `status`: a delivery id such as 404 must not blank the status 404)."""
    body = dict(response.get_json())
    body.pop("request_id", None)
    status = body.pop("status", None)
    text = repr(sorted(body.items()))
    for ident in ids:
        text = re.sub(rf"\b{re.escape(ident)}\b", "<id>", text)
    return f"{status} {text}"


def _leg_state(w: World) -> tuple[dict[str, Any], list[str]]:
    """The leg and the ids of its events, as the sender sees them."""
    leg = w.sender.get(f"/api/v1/referrals/{w.leg['id']}")
    assert leg.status_code == 200
    events = w.sender.get(f"/api/v1/referrals/{w.leg['id']}/events")
    assert events.status_code == 200
    body = leg.get_json()
    state = {key: body[key] for key in ("status", "version", "updated_at", "forwarded_to",
                                        "decline_reason", "outcome", "cancel_reason")}
    return state, [event["id"] for event in events.get_json()["items"]]


def _assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def test_every_route_with_a_path_parameter_is_in_the_isolation_table(app: Flask) -> None:
    routes = _api_operations_with_path_parameters(app)
    table = (set(TENANT_OPERATIONS) | SHARED_OPERATIONS | SIGNED_OPERATIONS | ADMIN_OPERATIONS
             | set(OWNED_ENTRY_OPERATIONS) | CALLERS_OWN_OPERATIONS | REGISTER_OPERATIONS)
    assert routes, "no /api/v1 route with a path parameter found: the discovery is broken"
    uncovered = sorted(routes - table)
    assert not uncovered, (
        f"routes not walked by the isolation test; add them to TENANT_OPERATIONS or "
        f"SHARED_OPERATIONS (or CALLERS_OWN_OPERATIONS): {uncovered}"
    )
    stale = sorted(table - routes)
    assert not stale, f"the isolation table names routes the API no longer has: {stale}"
    parameters = {name for _, path in routes for name in re.findall(r"{([^{}]+)}", path)}
    assert parameters <= set(PARAMETERS), f"no way to fill {parameters - set(PARAMETERS)}"


@pytest.mark.parametrize(("method", "template"), sorted(TENANT_OPERATIONS))
def test_outsider_gets_404_on_every_object_route_and_changes_nothing(
    walked_world: World, method: str, template: str
) -> None:
    world = walked_world
    before = _leg_state(world)
    body = TENANT_OPERATIONS[(method, template)](world)

    response = world.outsider.call(method, _fill(template, world), json=body)

    problem = _assert_problem(response, 404)
    assert "Traceback" not in response.get_data(as_text=True)
    assert PARTICIPANT["given_name"] not in response.get_data(as_text=True)
    # Indistinguishable from an object that does not exist: existence does not leak.
    missing = str(uuid.uuid4())
    absent = world.outsider.call(
        method, _fill(template, world, referral_id=missing, participant_id=missing,
                      consent_id=missing, endpoint_id=missing, delivery_id="987654321",
                      opportunity_id=missing),
        json=body
    )
    assert absent.status_code == 404
    ours = _normalized(response, world.leg["id"], world.participant_id, world.consent_id,
                       world.endpoint_id, world.delivery_id, world.opportunity_id)
    assert ours == _normalized(absent, missing, "987654321"), (problem, absent.get_json())
    # Nothing changed: same leg, same history, and no leg went to the forward target.
    assert _leg_state(world) == before
    assert world.bystander.get("/api/v1/referrals").get_json()["items"] == []


def test_outsider_reads_shared_directory_entries(world: World) -> None:
    for method, template in sorted(SHARED_OPERATIONS):
        path = _fill(template, world)
        response = world.outsider.call(method, path)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert path.endswith(response.get_json()["id"])


def test_outsider_cannot_change_another_organizations_entry(world: World) -> None:
    path = f"/api/v1/organizations/{world.sender.organization_id}"
    before = world.outsider.get(path).get_json()
    for (method, template), body in sorted(OWNED_ENTRY_OPERATIONS.items()):
        response = world.outsider.call(method, _fill(template, world), json=body(world))
        _assert_problem(response, 403)
    assert world.outsider.get(path).get_json() == before


def test_a_relationship_note_and_a_report_reach_only_their_writers(world: World) -> None:
    path = f"/api/v1/organizations/{world.receiver.organization_id}"
    written = world.sender.call("PUT", path + "/relationship",
                                json={"collaboration": "Stages", "notes": "Confidentiel"})
    assert written.status_code == 200
    assert world.outsider.get(path + "/relationship").get_json()["collaboration"] is None
    assert world.outsider.get(path + "/relationship/history").get_json()["items"] == []
    assert world.outsider.call("PUT", path + "/relationship",
                               json={"collaboration": "Autre", "notes": None}).status_code == 200
    assert world.sender.get(path + "/relationship").get_json()["collaboration"] == "Stages"
    report = world.outsider.post(path + "/report-outdated", {"note": "Adresse changée"})
    assert report.status_code == 201
    # The report is the receiver's to read, not the sender's.
    assert report.get_json()["id"] in {r["id"] for r in world.receiver.get(
        path + "/outdated-reports").get_json()["items"]}
    _assert_problem(world.sender.get(path + "/outdated-reports"), 403)


def test_outsider_with_if_match_still_gets_404_not_412(world: World) -> None:
    for version in (world.leg["version"], world.leg["version"] + 7):
        response = world.outsider.act(world.leg["id"], "accept",
                                      headers={"If-Match": f'"{version}"'})
        _assert_problem(response, 404)
    assert _leg_state(world)[0]["status"] == "acknowledged"


def _all_pages(partner: Partner, path: str, cursor_param: str, **params: str
               ) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query = {"limit": "500", **params}
    for _ in range(1000):
        response = partner.get(path, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not page["items"] or cursor is None or cursor == query.get(cursor_param):
            return items
        query[cursor_param] = cursor
    raise AssertionError("pagination did not end")


def test_outsider_referral_list_does_not_contain_the_leg(world: World) -> None:
    leg_id = world.leg["id"]
    assert leg_id in {r["id"] for r in _all_pages(world.sender, "/api/v1/referrals", "cursor")}
    for filters in ({}, {"direction": "inbound"}, {"direction": "outbound"},
                    {"status": "acknowledged"}):
        listed = _all_pages(world.outsider, "/api/v1/referrals", "cursor", **filters)
        assert leg_id not in {r["id"] for r in listed}, filters


def test_outsider_event_feed_does_not_contain_the_leg_events(world: World) -> None:
    subject = f"referrals/{world.leg['id']}"
    sender_feed = _all_pages(world.sender, "/api/v1/events", "after")
    assert [e["type"] for e in sender_feed if e["subject"] == subject] == [
        "referral.sent", "referral.acknowledged"]

    outsider_feed = _all_pages(world.outsider, "/api/v1/events", "after")
    assert [e for e in outsider_feed if e["subject"] == subject] == []
    assert world.leg["id"] not in repr(outsider_feed)


def test_outsider_cannot_refer_another_organizations_participant(world: World) -> None:
    body = {"to_organization_id": world.bystander.organization_id, "pathway": "employment"}
    foreign = world.outsider.post("/api/v1/referrals",
                                  {**body, "participant_id": world.participant_id})
    missing_id = str(uuid.uuid4())
    missing = world.outsider.post("/api/v1/referrals", {**body, "participant_id": missing_id})

    _assert_problem(foreign, 422)
    assert "participant_id" in foreign.get_json()["errors"]
    assert _normalized(foreign, world.participant_id) == _normalized(missing, missing_id)
    assert world.bystander.get("/api/v1/referrals").get_json()["items"] == []


def test_outsider_cannot_forward_from_another_organizations_leg(world: World) -> None:
    own = world.outsider.register_participant()["id"]
    body = {"participant_id": own, "to_organization_id": world.bystander.organization_id,
            "pathway": "employment"}
    foreign = world.outsider.post("/api/v1/referrals", {**body, "forwarded_from": world.leg["id"]})
    missing_id = str(uuid.uuid4())
    missing = world.outsider.post("/api/v1/referrals", {**body, "forwarded_from": missing_id})

    _assert_problem(foreign, 422)
    assert "forwarded_from" in foreign.get_json()["errors"]
    assert _normalized(foreign, world.leg["id"]) == _normalized(missing, missing_id)
    assert world.bystander.get("/api/v1/referrals").get_json()["items"] == []


def test_idempotency_keys_belong_to_one_client(world: World) -> None:
    key = f"key-{secrets.token_hex(8)}"
    body = {"participant_id": world.participant_id,
            "to_organization_id": world.bystander.organization_id, "pathway": "training"}
    first = world.sender.post("/api/v1/referrals", body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.get_data(as_text=True)

    # Same key, same body, another organization: its own request, not the sender's answer.
    reused = world.outsider.post("/api/v1/referrals", body, headers={"Idempotency-Key": key})
    _assert_problem(reused, 422)
    assert "participant_id" in reused.get_json()["errors"]  # refused as its own request
    assert first.get_json()["id"] not in reused.get_data(as_text=True)


# --- the receiver's view of the participant ---------------------------------------------

def test_receiver_reads_the_participant_while_the_leg_is_open(world: World) -> None:
    response = world.receiver.get(f"/api/v1/participants/{world.participant_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["given_name"] == "Amina"
    leg = world.receiver.get(f"/api/v1/referrals/{world.leg['id']}").get_json()
    assert leg["participant"]["given_name"] == "Amina"
    assert leg["participant"]["redacted"] is False


CLOSINGS = {
    "declined": lambda w: w.receiver.act(w.leg["id"], "decline", {"reason": "no_capacity"}),
    "cancelled": lambda w: w.sender.act(w.leg["id"], "cancel", {"reason": "other"}),
}


@pytest.mark.parametrize("closing", sorted(CLOSINGS))
def test_receiver_loses_the_participant_once_the_leg_is_closed(world: World, closing: str
                                                               ) -> None:
    closed = CLOSINGS[closing](world)
    assert closed.status_code == 200, closed.get_data(as_text=True)
    assert closed.get_json()["status"] == closing

    _assert_problem(world.receiver.get(f"/api/v1/participants/{world.participant_id}"), 404)
    leg = world.receiver.get(f"/api/v1/referrals/{world.leg['id']}")
    assert leg.status_code == 200
    participant = leg.get_json()["participant"]
    assert participant["redacted"] is True
    assert not set(PERSONAL_FIELDS) & set(participant)
    history = world.receiver.get(f"/api/v1/referrals/{world.leg['id']}/events")
    assert history.status_code == 200
    for value in PERSONAL_VALUES:
        assert value not in leg.get_data(as_text=True)
        assert value not in history.get_data(as_text=True)


@pytest.mark.parametrize("closing", sorted(CLOSINGS))
def test_sender_always_reads_its_participant(world: World, closing: str) -> None:
    assert CLOSINGS[closing](world).status_code == 200

    response = world.sender.get(f"/api/v1/participants/{world.participant_id}")
    assert response.status_code == 200
    assert response.get_json()["given_name"] == "Amina"
    leg = world.sender.get(f"/api/v1/referrals/{world.leg['id']}").get_json()
    assert leg["participant"]["given_name"] == "Amina"
    assert leg["participant"]["redacted"] is False


def test_forward_hands_the_participant_to_the_next_receiver(world: World) -> None:
    _assert_problem(world.bystander.get(f"/api/v1/participants/{world.participant_id}"), 404)
    forwarded = world.receiver.act(world.leg["id"], "forward",
                                   {"to_organization_id": world.bystander.organization_id})
    assert forwarded.status_code == 201, forwarded.get_data(as_text=True)

    response = world.bystander.get(f"/api/v1/participants/{world.participant_id}")
    assert response.status_code == 200
    assert response.get_json()["given_name"] == "Amina"
    # The new leg is the bystander's; the first leg is still not.
    assert world.bystander.get(f"/api/v1/referrals/{forwarded.get_json()['id']}"
                               ).status_code == 200
    _assert_problem(world.bystander.get(f"/api/v1/referrals/{world.leg['id']}"), 404)


# --- who may act -----------------------------------------------------------------------

RECEIVER_ACTIONS = {
    "acknowledge": {}, "accept": {}, "decline": {"reason": "other"}, "start": {},
    "complete": {"outcome": "employed"}, "forward": None,
}


@pytest.mark.parametrize("action", sorted(RECEIVER_ACTIONS))
def test_sender_may_not_take_the_receivers_actions(world: World, action: str) -> None:
    before = _leg_state(world)
    body = RECEIVER_ACTIONS[action]
    if body is None:
        body = {"to_organization_id": world.bystander.organization_id}

    response = world.sender.act(world.leg["id"], action, body)

    problem = _assert_problem(response, 403)
    assert "only the receiving organization may" in problem["detail"].lower()
    assert _leg_state(world) == before


def test_receiver_may_not_cancel(world: World) -> None:
    before = _leg_state(world)
    response = world.receiver.act(world.leg["id"], "cancel", {"reason": "other"})
    problem = _assert_problem(response, 403)
    assert "only the sending organization may" in problem["detail"].lower()
    assert _leg_state(world) == before


# --- scopes and tokens -----------------------------------------------------------------

def test_token_lacking_the_scope_gets_403_problem(network: Network) -> None:
    limited = network.partner(scopes=["referrals:read"])
    assert limited.get("/api/v1/referrals").status_code == 200  # the scope it holds works

    for method, path, body in [
        ("POST", "/api/v1/participants", PARTICIPANT),
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/organizations", None),
    ]:
        response = limited.call(method, path, json=body)
        problem = _assert_problem(response, 403)
        assert "scope" in problem["detail"]


def test_client_cannot_obtain_a_scope_it_was_not_given(network: Network) -> None:
    limited = network.partner(scopes=["referrals:read"])
    response = limited.fetch_token(scope="referrals:write")
    if response.status_code == 200:  # narrowed, as RFC 6749 §3.3 allows
        token = response.get_json()["access_token"]
        assert "referrals:write" not in response.get_json().get("scope", "")
        other = network.partner()
        refused = limited.post("/api/v1/referrals", {
            "participant_id": str(uuid.uuid4()), "to_organization_id": other.organization_id,
            "pathway": "employment"}, token=token)
        _assert_problem(refused, 403)
    else:
        _assert_problem(response, 400)
        assert response.get_json()["error"] == "invalid_scope"


def _assert_unauthenticated(response: TestResponse) -> None:
    _assert_problem(response, 401)
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer")


def test_no_token_gets_401(app: Flask, world: World) -> None:
    _assert_unauthenticated(app.test_client().get(f"/api/v1/referrals/{world.leg['id']}"))
    _assert_unauthenticated(app.test_client().get("/api/v1/referrals"))


def test_garbage_token_gets_401(world: World) -> None:
    for garbage in ("garbage", secrets.token_urlsafe(32)):
        _assert_unauthenticated(world.sender.get("/api/v1/referrals", token=garbage))


def _expired_token(app: Flask, partner: Partner) -> str:
    value = secrets.token_urlsafe(32)
    with app.app_context(), db.job_session() as session:
        client = session.scalar(
            select(OAuthClient).where(OAuthClient.client_id == partner.client_id)
        )
        assert client is not None
        clients.issue_token(session, client, value, client.scope, timedelta(seconds=-60))
    return value


def test_expired_token_gets_401(app: Flask, world: World) -> None:
    token = _expired_token(app, world.sender)
    _assert_unauthenticated(world.sender.get("/api/v1/referrals", token=token))


def _token(partner: Partner) -> str:
    response = partner.fetch_token()
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def _revoke(app: Flask, by: Partner, token: str) -> TestResponse:
    return app.test_client().post("/oauth/revoke", data={"token": token},
                                  headers={"Authorization": by.basic_auth})


def _introspect(app: Flask, by: Partner, token: str) -> dict[str, Any]:
    response = app.test_client().post("/oauth/introspect", data={"token": token},
                                      headers={"Authorization": by.basic_auth})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_revoked_token_gets_401_and_other_tokens_keep_working(app: Flask, world: World) -> None:
    revoked, kept = _token(world.sender), _token(world.sender)
    assert world.sender.get("/api/v1/referrals", token=revoked).status_code == 200

    assert _revoke(app, world.sender, revoked).status_code == 200

    _assert_unauthenticated(world.sender.get("/api/v1/referrals", token=revoked))
    assert world.sender.get("/api/v1/referrals", token=kept).status_code == 200


def test_outsider_cannot_revoke_another_organizations_token(app: Flask, world: World) -> None:
    token = _token(world.sender)
    _revoke(app, world.outsider, token)
    assert world.sender.get("/api/v1/referrals", token=token).status_code == 200
    assert _introspect(app, world.sender, token)["active"] is True


def test_introspection_describes_a_live_token(app: Flask, network: Network) -> None:
    partner = network.partner(scopes=["referrals:read", "events:read"])
    token = _token(partner)
    answer = _introspect(app, partner, token)
    assert answer["active"] is True
    assert set(answer["scope"].split()) == {"referrals:read", "events:read"}
    assert answer["client_id"] == partner.client_id


def test_introspection_says_inactive_after_revocation(app: Flask, world: World) -> None:
    token = _token(world.sender)
    assert _introspect(app, world.sender, token)["active"] is True
    assert _revoke(app, world.sender, token).status_code == 200
    assert _introspect(app, world.sender, token) == {"active": False}


def test_outsider_introspecting_another_organizations_token_gets_inactive(
    app: Flask, world: World
) -> None:
    token = _token(world.sender)
    assert _introspect(app, world.outsider, token) == {"active": False}
    assert _introspect(app, world.sender, token)["active"] is True


def test_introspection_needs_client_authentication(app: Flask, world: World) -> None:
    response = app.test_client().post("/oauth/introspect", data={"token": _token(world.sender)})
    _assert_problem(response, 401)
    assert response.get_json()["error"] == "invalid_client"


# --- coordinators ----------------------------------------------------------------------

def test_coordinator_reads_the_leg_without_personal_data(network: Network, world: World) -> None:
    coordinator = network.partner(kind="coordination")
    response = coordinator.get(f"/api/v1/referrals/{world.leg['id']}")
    assert response.status_code == 200, response.get_data(as_text=True)
    leg = response.get_json()
    assert leg["status"] == "acknowledged"
    assert leg["participant"]["reference"]
    assert leg["participant"]["redacted"] is True
    assert not set(PERSONAL_FIELDS) & set(leg["participant"])
    for value in PERSONAL_VALUES + ["soudure"]:  # names, contacts, the free-text reason
        assert value not in response.get_data(as_text=True)


def test_coordinator_history_carries_no_personal_data(network: Network, world: World) -> None:
    note = world.receiver.act(world.leg["id"], "accept",
                              {"note": "Rendez-vous avec Amina Benali le 2 décembre"})
    assert note.status_code == 200
    coordinator = network.partner(kind="coordination")

    history = coordinator.get(f"/api/v1/referrals/{world.leg['id']}/events")
    assert history.status_code == 200
    assert [e["type"] for e in history.get_json()["items"]] == [
        "referral.sent", "referral.acknowledged", "referral.accepted"]
    feed = _all_pages(coordinator, "/api/v1/events", "after")
    assert any(e["subject"] == f"referrals/{world.leg['id']}" for e in feed)
    for text in (history.get_data(as_text=True), repr(feed)):
        for value in PERSONAL_VALUES + ["Rendez-vous", "Dossier reçu"]:
            assert value not in text


def test_coordinator_cannot_read_the_participant(network: Network, world: World) -> None:
    coordinator = network.partner(kind="coordination")
    _assert_problem(coordinator.get(f"/api/v1/participants/{world.participant_id}"), 404)


def test_coordinator_cannot_act_on_a_leg(network: Network, world: World) -> None:
    coordinator = network.partner(kind="coordination")
    before = _leg_state(world)
    for action, body in [("accept", {}), ("cancel", {})]:
        _assert_problem(coordinator.act(world.leg["id"], action, body), 403)
    assert _leg_state(world) == before


@pytest.mark.parametrize(("method", "template"), sorted(ADMIN_OPERATIONS))
def test_partners_get_403_on_every_admin_route(world: World, method: str,
                                               template: str) -> None:
    for partner in (world.sender, world.receiver, world.outsider):
        problem = _assert_problem(partner.call(method, _fill(template, world)), 403)
        assert "hub:admin" in problem["detail"]
