"""Webhooks through the hub (docs/design.md §7): endpoints registered by API, events delivered over
real HTTP to a real local receiver, bodies redacted per recipient when sent, and partners'
systems answering by signed inbound webhooks exactly as through the API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from hub.db import db
from hub.outbox import webhook_fanout
from tests.helpers import Network, Partner
from tests.receiver import Receiver, Reply, running_receiver
from webhooks import signing
from webhooks.dispatcher import Dispatcher
from webhooks.models import Delivery, DeliveryState
from webhooks.sender import guarded_client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


def deliver_all(app: Flask, rounds: int = 20) -> None:
    """Fan the outbox out and send whatever is due now, until nothing is left to do."""
    sessions = app.extensions["hub_db"][1]
    key = app.config["HUB_SETTINGS"].secret_key.encode()
    with guarded_client(allow_loopback=True, timeout=5) as client, Dispatcher(
        sessions, render=webhook_fanout.renderer(key), client=client,
        clock=lambda: datetime.now(UTC), worker_id=f"test-{uuid.uuid4().hex[:6]}",
        on_disabled=webhook_fanout.on_endpoint_disabled(app.config["HUB_SETTINGS"].public_url),
    ) as dispatcher:
        for _ in range(rounds):
            with sessions() as session, session.begin():
                moved = webhook_fanout.fan_out(session)
            if not moved and not dispatcher.run_once():
                return


def subscribe(partner: Partner, receiver: Receiver, path: str = "/hook",
              event_types: list[str] | None = None) -> dict:
    response = partner.post("/api/v1/webhook-endpoints", {
        "url": receiver.url_for(path), "event_types": event_types or ["*"],
        "description": "Système du partenaire"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def received(receiver: Receiver, path: str = "/hook") -> list[dict]:
    return [json.loads(r.body) for r in receiver.requests if r.path == path]


def test_events_reach_the_endpoint_signed_in_feed_order_and_redacted_for_it(
        app: Flask, network: Network, receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner(kind="regional_partner")
    endpoint = subscribe(partner, receiver)
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "active"
    assert "secret" not in partner.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").get_json()

    leg = sender.refer(partner)
    partner.act(leg["id"], "acknowledge")
    partner.act(leg["id"], "accept", {"note": "Rendez-vous le 2 décembre"})
    deliver_all(app)

    requests = [r for r in receiver.requests if r.path == "/hook"]
    verifier = Webhook(endpoint["secret"])  # the reference library, unchanged
    for request in requests:
        verifier.verify(request.body, request.headers)
    bodies = received(receiver)
    assert [b["type"] for b in bodies] == [
        "referral.sent", "referral.acknowledged", "referral.accepted"]
    assert [r.headers["webhook-id"] for r in requests] == [b["id"] for b in bodies]
    assert bodies[0]["data"]["referral"]["participant"]["given_name"] == "Amina"
    assert bodies[2]["data"]["note"] == "Rendez-vous le 2 décembre"
    feed = [e for e in partner.get("/api/v1/events?limit=500").get_json()["items"]
            if e["subject"] == f"referrals/{leg['id']}"]
    assert [e["id"] for e in feed] == [b["id"] for b in bodies]  # same events, same order

    participant = leg["participant"]["id"]
    log = sender.get(f"/api/v1/participants/{participant}/access-log").get_json()["items"]
    assert any(row["via"] == "webhook delivery"
               and row["actor"] == f"webhook:{endpoint['id']}" for row in log)

    deliveries = partner.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries"
                             ).get_json()["items"]
    assert {d["status"] for d in deliveries} == {"delivered"}
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'webhook_deliveries_total{outcome="delivered"}' in metrics
    assert "webhook_attempt_seconds_bucket" in metrics
    assert all(d["last_status_code"] == 204 and d["last_duration_ms"] > 0 for d in deliveries)


def test_a_body_built_after_a_withdrawal_carries_no_personal_data(
        app: Flask, network: Network, receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    subscribe(partner, receiver)
    leg = sender.refer(partner)
    consent_id = sender.get(f"/api/v1/participants/{leg['participant']['id']}/consents"
                            ).get_json()["items"][0]["id"]
    assert sender.post(f"/api/v1/consents/{consent_id}/withdraw").status_code == 200
    deliver_all(app)  # the referral.sent event was recorded before, sent after

    bodies = {b["type"]: b for b in received(receiver)}
    # In order per subject (the leg); the consent's event is another subject, sent alongside.
    assert [b["type"] for b in received(receiver) if b["subject"].startswith("referrals/")] == [
        "referral.sent", "referral.cancelled"]
    assert set(bodies) == {"referral.sent", "consent.withdrawn", "referral.cancelled"}
    assert "Amina" not in json.dumps(bodies) and "soudure" not in json.dumps(bodies)
    assert bodies["referral.sent"]["data"]["referral"]["participant"]["redacted"] is True
    assert bodies["consent.withdrawn"]["data"]["erase_personal_data"] is True


def test_a_coordinators_endpoint_gets_every_event_with_a_pseudonym(
        app: Flask, network: Network, receiver: Receiver) -> None:
    coordinator = network.partner(kind="coordination")
    subscribe(coordinator, receiver, "/coord", ["referral.sent"])
    leg = network.partner().refer(network.partner())
    deliver_all(app)
    mine = [b for b in received(receiver, "/coord")
            if b["subject"] == f"referrals/{leg['id']}"]
    assert len(mine) == 1
    assert mine[0]["data"]["referral"]["participant"]["reference"].startswith("P-")
    assert "Amina" not in json.dumps(mine)


# --- managing endpoints ---------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({"url": "http://10.0.0.7/hook", "event_types": ["*"]}, "url"),
    ({"url": "https://169.254.169.254/latest", "event_types": ["*"]}, "url"),
    ({"url": "ftp://partner.example.org/", "event_types": ["*"]}, "url"),
    ({"url": "http://127.0.0.1:9/hook", "event_types": ["invoice.*"]}, "event_types"),
    ({"url": "http://127.0.0.1:9/hook", "event_types": []}, "event_types"),
])
def test_unsafe_urls_and_unknown_event_types_are_422(network: Network, body: dict,
                                                     field: str) -> None:
    response = network.partner().post("/api/v1/webhook-endpoints", body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]


def test_pause_rotate_redeliver_and_recover(app: Flask, network: Network,
                                           receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    endpoint = subscribe(partner, receiver, "/p", ["referral.sent", "referral.cancelled"])
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}"

    assert partner.call("PATCH", path, json={"status": "paused"}).get_json()["status"] == "paused"
    first = sender.refer(partner)
    deliver_all(app)
    assert received(receiver, "/p") == []  # waiting, not lost
    assert partner.call("PATCH", path, json={"status": "active"}).status_code == 200
    deliver_all(app)
    assert [b["subject"] for b in received(receiver, "/p")] == [f"referrals/{first['id']}"]

    rotated = partner.post(f"{path}/rotate-secret").get_json()
    assert rotated["secret"] != endpoint["secret"]
    sender.act(first["id"], "cancel", {"reason": "other"})
    deliver_all(app)
    last = receiver.requests[-1]
    Webhook(rotated["secret"]).verify(last.body, last.headers)
    Webhook(endpoint["secret"]).verify(last.body, last.headers)  # both sign for 24 h

    deliveries = partner.get(f"{path}/deliveries").get_json()["items"]
    again = partner.post(f"/api/v1/deliveries/{deliveries[-1]['id']}/redeliver")
    assert again.status_code == 200 and again.get_json()["status"] == "pending"
    deliver_all(app)
    assert receiver.ids("/p").count(deliveries[-1]["event_id"]) == 2

    # A receiver that rejects (400) dead-letters at once; recovery sends again, in order.
    since = datetime.now(UTC) - timedelta(seconds=1)
    receiver.standing["/p"] = Reply(400)
    second = sender.refer(partner)
    deliver_all(app)
    dead = partner.get(f"{path}/deliveries?status=dead").get_json()["items"]
    assert [d["subject"] for d in dead] == [f"referrals/{second['id']}"]
    receiver.standing.pop("/p")
    recovered = partner.post(f"{path}/recover", {"since": since.isoformat()})
    assert recovered.get_json() == {"recovered": 1}
    deliver_all(app)
    assert partner.get(f"{path}/deliveries?status=dead").get_json()["items"] == []

    assert partner.call("DELETE", path).status_code == 204
    assert partner.get(path).status_code == 404


def test_a_410_disables_the_endpoint_and_tells_its_organization(
        app: Flask, network: Network, receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    endpoint = subscribe(partner, receiver, "/gone", ["referral.*"])
    receiver.standing["/gone"] = Reply(410)
    sender.refer(partner)
    deliver_all(app)
    state = partner.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").get_json()
    assert state["status"] == "disabled" and "410" in state["disabled_reason"]
    told = [e for e in partner.get("/api/v1/events?limit=500").get_json()["items"]
            if e["type"] == "webhook_endpoint.disabled"]
    assert told[0]["data"]["webhook_endpoint"]["id"] == endpoint["id"]


# --- inbound answers ------------------------------------------------------------------------

def signed(partner_secret: str, body: dict, *, message_id: str | None = None,
           at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = signing.signature_headers([partner_secret], message_id or f"msg_{uuid.uuid4().hex}",
                                        at or datetime.now(UTC), raw)
    return raw, {**headers, "Content-Type": "application/json"}


def inbound(app: Flask, organization_id: str, raw: bytes, headers: dict[str, str]):
    return app.test_client().post(f"/webhooks/inbound/{organization_id}", data=raw,
                                  headers=headers)


def test_a_partner_system_answers_by_signed_webhook_exactly_as_through_the_api(
        app: Flask, network: Network, receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    secret = subscribe(partner, receiver)["secret"]
    leg = sender.refer(partner)

    raw, headers = signed(secret, {"action": "acknowledge", "referral_id": leg["id"]})
    answer = inbound(app, partner.organization_id, raw, headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["status"] == "acknowledged"
    assert answer.headers["ETag"] == '"2"'

    replay = inbound(app, partner.organization_id, raw, headers)  # same webhook-id
    assert replay.status_code == 200 and replay.get_json() == answer.get_json()
    raw, headers = signed(secret, {"action": "accept", "referral_id": leg["id"],
                                   "note": "Rendez-vous le 2 décembre"})
    assert inbound(app, partner.organization_id, raw, headers).get_json()["status"] == "accepted"
    history = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == [
        "referral.sent", "referral.acknowledged", "referral.accepted"]
    assert history[1]["data"]["referral"]["status"] == "acknowledged"


def test_inbound_refusals_are_the_apis_problems(app: Flask, network: Network,
                                                receiver: Receiver) -> None:
    sender, partner, other = network.partner(), network.partner(), network.partner()
    secret = subscribe(partner, receiver)["secret"]
    sender_secret = subscribe(sender, receiver, "/s")["secret"]
    leg = sender.refer(partner)

    def answer(body: dict, key: str = secret, org: Partner = partner, **kwargs):
        raw, headers = signed(key, body, **kwargs)
        response = inbound(app, org.organization_id, raw, headers)
        assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
        return response

    stale = answer({"action": "acknowledge", "referral_id": leg["id"]},
                   at=datetime.now(UTC) - timedelta(minutes=6))
    assert stale.status_code == 401 and "timestamp" in stale.get_json()["detail"].lower()
    assert answer({"action": "acknowledge", "referral_id": leg["id"]},
                  key=sender_secret).status_code == 401  # another organization's secret
    assert answer({"action": "acknowledge", "referral_id": leg["id"]},
                  org=other).status_code == 401  # no endpoint, no secret
    assert answer({"action": "decline", "referral_id": leg["id"]}).status_code == 422
    assert answer({"action": "cancel", "referral_id": leg["id"]}).status_code == 422
    assert answer({"action": "acknowledge", "referral_id": leg["id"]}, key=sender_secret,
                  org=sender).status_code == 403  # the sender may not acknowledge
    assert answer({"action": "start", "referral_id": leg["id"]}).status_code == 409
    unseen = answer({"action": "acknowledge", "referral_id": str(uuid.uuid4())})
    assert unseen.status_code == 404

    # Forwarding to an organization no consent covers: refused like through the API.
    raw, headers = signed(secret, {"action": "acknowledge", "referral_id": leg["id"]})
    assert inbound(app, partner.organization_id, raw, headers).status_code == 200
    refused = answer({"action": "forward", "referral_id": leg["id"],
                      "to_organization_id": other.organization_id})
    assert refused.status_code == 409
    assert refused.get_json()["type"].endswith("/consent_required")
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "acknowledged"


def test_deliveries_are_recorded_once_per_event_and_endpoint(
        app: Flask, network: Network, receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    endpoint = subscribe(partner, receiver)
    sender.refer(partner)
    deliver_all(app)
    deliver_all(app)
    with app.app_context(), db.job_session() as session:
        rows = session.scalars(select(Delivery).where(
            Delivery.endpoint_id == uuid.UUID(endpoint["id"]))).all()
        assert len(rows) == len({r.message_id for r in rows}) == 1
        assert rows[0].state == DeliveryState.DELIVERED
    assert len(receiver.ids("/hook")) == 1


def test_webhook_scopes_give_no_way_around_the_apis(app: Flask, network: Network,
                                                    receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    leg = sender.refer(partner)
    manager = network.partner()  # another client of the partner's organization
    from hub.accounts import clients
    from hub.directory.organizations import Organization

    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(partner.organization_id))
        client, secret = clients.create_client(session, organization=organization,
                                                scopes=["webhooks:manage", "events:read"])
    manager = Partner(app, partner.organization_id, "Gestion", client.client_id, secret)
    without_events = network.partner(scopes=["webhooks:manage"])
    assert without_events.post("/api/v1/webhook-endpoints", {
        "url": receiver.url_for("/x"), "event_types": ["*"]}).status_code == 403

    endpoint = manager.post("/api/v1/webhook-endpoints", {
        "url": receiver.url_for("/m"), "event_types": ["referral.*"]}).get_json()
    raw, headers = signed(endpoint["secret"], {"action": "acknowledge", "referral_id": leg["id"]})
    refused = inbound(app, partner.organization_id, raw, headers)
    assert refused.status_code == 401  # this client could not answer legs through the API
    assert "referrals:respond" in refused.get_json()["detail"]


def test_rotating_twice_with_one_key_gives_one_new_secret(network: Network,
                                                         receiver: Receiver) -> None:
    partner = network.partner()
    endpoint = subscribe(partner, receiver)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    first, retry = partner.post(path, headers=key), partner.post(path, headers=key)
    assert first.get_json()["secret"] == retry.get_json()["secret"] != endpoint["secret"]


def test_numbers_out_of_range_are_400_or_404_not_500(network: Network,
                                                     receiver: Receiver) -> None:
    from hub.api.common import encode_cursor

    partner = network.partner()
    endpoint = subscribe(partner, receiver)
    huge = encode_cursor(10**20)
    deliveries = partner.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries"
                             f"?cursor={huge}")
    assert deliveries.status_code == 400
    assert partner.post("/api/v1/deliveries/100000000000000000000/redeliver").status_code == 404
    participant = partner.register_participant()["id"]
    log = partner.get(f"/api/v1/participants/{participant}/access-log?cursor={huge}")
    assert log.status_code == 400
