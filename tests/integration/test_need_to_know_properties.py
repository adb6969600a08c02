"""Property: whatever the kind of the receiving organization, the consent's scope and whether
it shares the details, and how far the leg went, an employer or insertion enterprise never
reads the reason for the referral, the needs or what the person is beyond how to reach them —
in API answers, its event feed, the leg's history, webhook bodies and the FHIR export — unless
the consent says `share_details: true`; it always reads names and contact channels; and every
answer about the leg lists what was withheld. Any other receiver reads it all (docs/design.md
§12).

Real parts only: the API with tokens from the hub's own token endpoint, the webhook fan-out
and the dispatcher's renderer, on both backends.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.consent.visibility import WITHHELD_FROM_NEED_TO_KNOW
from hub.db import db
from hub.directory.organizations import OrganizationKind
from hub.events.store import Event
from hub.outbox import webhook_fanout
from tests.helpers import Network, Partner
from webhooks.models import Delivery

KINDS = [k.value for k in OrganizationKind if k is not OrganizationKind.COORDINATION]
NEED_TO_KNOW = {"employer", "insertion_enterprise"}  # the design's words, not the code's


@dataclass
class Receiver:
    partner: Partner
    endpoint_id: uuid.UUID


@pytest.fixture
def world(network: Network) -> tuple[Partner, dict[str, Receiver]]:
    """One sender and one receiver of each kind, each receiver with a webhook endpoint."""
    sender = network.partner()
    receivers = {}
    for kind in KINDS:
        partner = network.partner(kind=kind, region="05")
        endpoint = partner.post("/api/v1/webhook-endpoints", {
            "url": "http://127.0.0.1:9/maillage", "event_types": ["referral.*"]})
        assert endpoint.status_code == 201, endpoint.get_data(as_text=True)
        receivers[kind] = Receiver(partner, uuid.UUID(endpoint.get_json()["id"]))
    return sender, receivers


def webhook_bodies(receiver: Receiver, leg_id: str) -> list[dict[str, Any]]:
    """The bodies the dispatcher would send the receiver's endpoint for the leg's events."""
    app = receiver.partner.app
    with app.app_context():
        moved = 1
        while moved:  # the outbox may hold other tests' events first
            with db.job_session() as session:
                moved = webhook_fanout.fan_out(session)
        with db.job_session() as session:
            deliveries = list(session.scalars(
                select(Delivery).join(Event, Event.id == Delivery.message_id)
                .where(Delivery.endpoint_id == receiver.endpoint_id,
                       Event.subject == f"referrals/{leg_id}")))
            key = app.config["HUB_SETTINGS"].secret_key.encode()
            bodies = webhook_fanout.renderer(key)(session, deliveries)
    assert deliveries and all(body is not None for body in bodies.values())
    return [json.loads(body) for body in bodies.values() if body is not None]


def answers(receiver: Receiver, leg_id: str, participant_id: str,
            steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the receiver is handed about the leg and the person, by every channel."""
    partner = receiver.partner

    def ok(path: str) -> Any:
        response = partner.get(path)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        return response.get_json() if response.is_json else json.loads(response.get_data())

    listed = [item for item in ok("/api/v1/referrals?direction=inbound&limit=500")["items"]
              if item["id"] == leg_id]
    feed = [event for event in ok("/api/v1/events?limit=500")["items"]
            if event["subject"] == f"referrals/{leg_id}"]
    return {
        "leg": ok(f"/api/v1/referrals/{leg_id}"),
        "listed": listed,
        "history": ok(f"/api/v1/referrals/{leg_id}/events")["items"],
        "feed": feed,
        "webhooks": webhook_bodies(receiver, leg_id),
        "fhir": ok(f"/api/v1/referrals/{leg_id}/fhir"),
        "person": ok(f"/api/v1/participants/{participant_id}"),
        "steps": steps,
    }


def leg_views(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rendering of the leg among the answers (each must say what it withheld)."""
    views = [found["leg"], *found["listed"], *found["steps"]]
    for event in [*found["history"], *found["feed"], *found["webhooks"]]:
        views.append(event["data"]["referral"])
    return views


@pytest.mark.timeout(600)
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), share_details=st.booleans(), network_wide=st.booleans(),
       steps=st.integers(0, 2), birth_year=st.integers(1940, 2006))
@example(kind="employer", share_details=False, network_wide=False, steps=2, birth_year=1988)
@example(kind="insertion_enterprise", share_details=False, network_wide=True, steps=1,
         birth_year=1975)
@example(kind="employer", share_details=True, network_wide=False, steps=2, birth_year=1990)
def test_an_employer_never_reads_more_than_it_needs(
        world: tuple[Partner, dict[str, Receiver]], kind: str, share_details: bool,
        network_wide: bool, steps: int, birth_year: int) -> None:
    sender, receivers = world
    receiver = receivers[kind]
    marker = uuid.uuid4().hex
    participant = sender.register_participant(given_name=f"Nom{marker[:8]}",
                                              birth_year=birth_year)
    sender.grant_consent(participant["id"], *(() if network_wide else (receiver.partner,)),
                         share_details=share_details)
    leg = sender.refer(receiver.partner, participant["id"], consent=False,
                       reason_for_referral=f"Raison {marker}", needs=[f"besoin-{marker}"])
    taken = []
    for action in ("acknowledge", "accept")[:steps]:
        response = receiver.partner.act(leg["id"], action, {"note": f"Note {action}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        taken.append(response.get_json())

    found = answers(receiver, leg["id"], participant["id"], taken)
    text = json.dumps(found, ensure_ascii=False)
    hidden = kind in NEED_TO_KNOW and not share_details

    # The free text of the leg: in no channel when withheld, in every one otherwise.
    assert (f"Raison {marker}" in text) is not hidden
    assert (f"besoin-{marker}" in text) is not hidden
    for view in leg_views(found):
        assert view["withheld"] == (list(WITHHELD_FROM_NEED_TO_KNOW) if hidden else [])
        assert view["participant"]["given_name"] == f"Nom{marker[:8]}"
        assert view["participant"]["email"] == participant["email"]
        assert (view["participant"]["birth_year"] is None) is hidden
        assert (view["reason_for_referral"] is None) is hidden
    person = found["person"]
    assert person["email"] == participant["email"] and person["phone"] == participant["phone"]
    assert (person["birth_year"] is None) is hidden
    assert ("withheld" in person) is hidden
    patient = next(entry["resource"] for entry in found["fhir"]["entry"]
                   if entry["resource"]["resourceType"] == "Patient")
    assert ("birthDate" in patient) is not hidden
    assert patient["telecom"]  # how to reach the person: always
    # Its own notes it always reads back.
    for action in ("acknowledge", "accept")[:steps]:
        assert f"Note {action}" in text

    # The sender, the participant's organization, reads everything whatever the receiver.
    mine = sender.get(f"/api/v1/referrals/{leg['id']}").get_json()
    assert mine["reason_for_referral"] == f"Raison {marker}" and mine["withheld"] == []
