"""Input an outside probe sent to make the hub fail: each gets a 4xx problem+json that says
what was wrong, never a 500 (issue 22).

Families: Basic authorization that is not UTF-8 (or not Basic at all) on the OAuth endpoints;
JSON nested deeper than a parser's recursion; text holding code points no encoder accepts (lone
surrogates); integer literals longer than Python converts.  Each probe is sent to several
routes, the signed inbound webhook included, since the guards are the app's, not a view's.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import flask_smorest
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from hub.api import bodies
from tests.helpers import PARTICIPANT, Network, Partner
from tests.receiver import Receiver, running_receiver
from webhooks import signing

OAUTH_ENDPOINTS = ["/oauth/token", "/oauth/introspect", "/oauth/revoke"]
DEEP = 5000  # brackets: far past the stdlib parser's recursion limit, yet only 10 kB


def assert_problem(response: TestResponse, status: int, *words: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status
    for word in words:
        assert word.lower() in problem["detail"].lower(), problem
    return problem


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


# --- OAuth client authentication ------------------------------------------------------------

@pytest.mark.parametrize("path", OAUTH_ENDPOINTS)
@pytest.mark.parametrize("authorization", [
    basic(b"\xff\xfe:\xc3\x28"),  # not UTF-8
    basic(b"client-without-colon"),
    "Basic !!!not-base64!!!",
    "Basic",
])
def test_a_malformed_basic_header_is_an_oauth_401(app: Flask, path: str,
                                                  authorization: str) -> None:
    response = app.test_client().post(path, data={"grant_type": "client_credentials",
                                                  "token": "x"},
                                      headers={"Authorization": authorization})
    problem = assert_problem(response, 401, "client_id")
    assert problem["error"] == "invalid_client"


def test_one_client_authentication_method_per_request(app: Flask, network: Network) -> None:
    """RFC 6749 §2.3.1: a wrong Basic secret with valid form credentials is refused, not
    rescued by the form."""
    partner = network.partner()
    response = app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": partner.client_id,
        "client_secret": partner.client_secret,
    }, headers={"Authorization": basic(f"{partner.client_id}:wrong".encode())})
    problem = assert_problem(response, 400, "one")
    assert problem["error"] == "invalid_request"
    assert "access_token" not in problem
    # Either way alone still works.
    assert partner.fetch_token().status_code == 200
    form = app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": partner.client_id,
        "client_secret": partner.client_secret})
    assert form.status_code == 200, form.get_data(as_text=True)


# --- JSON bodies ----------------------------------------------------------------------------

def json_routes(partner: Partner) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/v1/participants"),
        ("POST", "/api/v1/referrals"),
        ("POST", "/api/v1/webhook-endpoints"),
        ("PATCH", f"/api/v1/organizations/{partner.organization_id}"),
        ("POST", f"/api/v1/participants/{uuid.uuid4()}/consents"),
    ]


def send_raw(partner: Partner, method: str, path: str, raw: bytes) -> TestResponse:
    return partner.call(method, path, data=raw, headers={"Content-Type": "application/json"})


def test_deeply_nested_json_is_a_400_on_every_route(network: Network) -> None:
    partner = network.partner()
    for method, path in json_routes(partner):
        for raw in (b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP + b"1" + b"}" * DEEP,
                    b'{"given_name": ' + b"[" * 200 + b"]" * 200 + b"}"):
            assert_problem(send_raw(partner, method, path, raw), 400, "nested")


def test_an_over_long_integer_is_a_400(network: Network) -> None:
    partner = network.partner()
    raw = json.dumps({**PARTICIPANT, "birth_year": 0}).replace('"birth_year": 0',
                                                               '"birth_year": ' + "1" * 5000)
    for method, path in json_routes(partner):
        assert_problem(send_raw(partner, method, path, raw.encode()), 400, "digits")


def test_lone_surrogates_in_text_are_a_400(network: Network, receiver: Receiver) -> None:
    partner, peer = network.partner(), network.partner()
    own = partner.register_participant()
    leg = peer.refer(partner)

    def surrogate(body: dict, name: str) -> bytes:
        # json.dumps writes "\ud800" as the six characters a client would send.
        return json.dumps({**body, name: "\ud800 x"}).encode()

    probes = [
        ("POST", "/api/v1/participants", surrogate(PARTICIPANT, "given_name")),
        ("POST", f"/api/v1/participants/{own['id']}/consents", surrogate(
            {"purpose": "referral_sharing", "network_wide": True}, "evidence")),
        ("POST", f"/api/v1/referrals/{leg['id']}/acknowledge", surrogate({}, "note")),
        ("PATCH", f"/api/v1/organizations/{partner.organization_id}",
         surrogate({}, "description")),
        ("POST", "/api/v1/webhook-endpoints", surrogate(
            {"url": receiver.url_for("/s"), "event_types": ["*"]}, "description")),
        # Escaped as a key, too.
        ("POST", "/api/v1/participants", b'{"\\udfff": 1}'),
    ]
    for method, path, raw in probes:
        assert_problem(send_raw(partner, method, path, raw), 400, "unicode")
    # Nothing was changed by the refused note.
    assert partner.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "sent"


def test_a_valid_pair_of_surrogates_is_text_like_any_other(network: Network) -> None:
    partner = network.partner()
    raw = json.dumps({**PARTICIPANT, "given_name": "Amina \U0001f600",
                      "email": f"{uuid.uuid4().hex}@example.org"}).encode()
    response = send_raw(partner, "POST", "/api/v1/participants", raw)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["given_name"] == "Amina \U0001f600"


def test_signed_inbound_webhooks_refuse_the_same_bodies(
        app: Flask, network: Network, receiver: Receiver) -> None:
    sender, partner = network.partner(), network.partner()
    registered = partner.post("/api/v1/webhook-endpoints", {
        "url": receiver.url_for("/in"), "event_types": ["*"]})
    assert registered.status_code == 201, registered.get_data(as_text=True)
    secret = registered.get_json()["secret"]
    leg = sender.refer(partner)

    def inbound(raw: bytes, content_type: str = "application/json") -> TestResponse:
        headers = signing.signature_headers([secret], f"msg_{uuid.uuid4().hex}",
                                            datetime.now(UTC), raw)
        return app.test_client().post(f"/webhooks/inbound/{partner.organization_id}",
                                      data=raw, headers={**headers,
                                                         "Content-Type": content_type})

    assert_problem(inbound(b"[" * DEEP + b"]" * DEEP), 400, "nested")
    # The inbound route reads any content type as JSON: so are its bodies checked.
    assert_problem(inbound(b"[" * DEEP + b"]" * DEEP, "text/plain"), 400, "nested")
    assert_problem(inbound(json.dumps({"action": "acknowledge", "referral_id": leg["id"],
                                       "note": "\udc80"}).encode()), 400, "unicode")
    assert_problem(inbound(b'{"action": "acknowledge", "referral_id": "%s", "note": %s}'
                           % (leg["id"].encode(), b"9" * 5000)), 400, "digits")
    assert_problem(inbound(b"{not json"), 400, "json")
    ok = inbound(json.dumps({"action": "acknowledge", "referral_id": leg["id"]}).encode())
    assert ok.status_code == 200, ok.get_data(as_text=True)


def test_a_body_is_parsed_once_by_whoever_reads_it(
        app: Flask, network: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idempotency fingerprint and the view's schema read the same parsed document."""
    partner = network.partner()
    own = partner.register_participant()
    parsed: list[object] = []
    loads = json.loads

    def counting_loads(text: str | bytes, **kwargs: object) -> object:
        if b"written" in (text if isinstance(text, bytes) else text.encode()):
            parsed.append(text)
        return loads(text, **kwargs)

    monkeypatch.setattr(json, "loads", counting_loads)
    response = partner.post(f"/api/v1/participants/{own['id']}/consents",
                            {"purpose": "referral_sharing", "network_wide": True,
                             "evidence": "written"},
                            headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert len(parsed) == 1


def test_every_api_blueprint_reads_bodies_through_the_limits(app: Flask) -> None:
    api_blueprints = [blueprint for blueprint in app.blueprints.values()
                      if isinstance(blueprint, flask_smorest.Blueprint)]
    assert len(api_blueprints) > 10
    for blueprint in api_blueprints:
        assert isinstance(blueprint.ARGUMENTS_PARSER, bodies.BodyParser), blueprint.name
    assert isinstance(app.json, bodies.LimitedJSONProvider)
