"""Every error is RFC 9457 problem+json (docs/design.md §4): never an HTML page, never a traceback,
never a 500 for bad input.

Each test sends one kind of bad request and checks the status, the content type, the problem
members (`type`, `title`, `status`, `detail`, and `errors` naming the field for validation
failures) and that nothing of the server's insides leaks.  OAuth errors keep their RFC 6749
`error` member as well.  Idempotency-Key replays and refusals are here too.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from hub import create_app
from hub.config import Settings
from tests.helpers import PARTICIPANT, Network, Partner

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The response is a problem of `status`, with no HTML and no traceback; its body."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == PROBLEM_JSON, response.headers.get("Content-Type")
    body = response.get_json()
    assert isinstance(body, dict)
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in text
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    return body


def assert_validation(response: TestResponse, *fields: str) -> dict[str, Any]:
    """A 422 whose `errors` names each of `fields`."""
    body = assert_problem(response, 422)
    assert isinstance(body.get("errors"), dict), body
    for name in fields:
        assert name in body["errors"], body["errors"]
        assert body["errors"][name], body["errors"]
    return body


@pytest.fixture
def pair(network: Network) -> tuple[Partner, Partner]:
    return network.partner(), network.partner(kind="regional_partner", region="01")


def referral_body(sender: Partner, receiver: Partner, **fields: Any) -> dict[str, Any]:
    participant_id = sender.register_participant()["id"]
    sender.grant_consent(participant_id, receiver)
    body = {"participant_id": participant_id,
            "to_organization_id": receiver.organization_id, "pathway": "employment",
            "priority": "routine", "reason_for_referral": "Soudure", "needs": ["francisation"]}
    body.update(fields)
    return body


def cursor(*parts: str) -> str:
    """A cursor as the hub encodes them (base64url JSON list), with arbitrary contents."""
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- routing ---------------------------------------------------------------------------

# An id no leg has, the same in every process: test ids must not change from one collection
# to the next (pytest-xdist's workers each collect, and compare what they collected).
UNKNOWN_ID = "5d2c7f0e-8b1a-4c3d-9e6f-0a1b2c3d4e5f"

@pytest.mark.parametrize("path", [
    "/api/v1/nothing-here",
    "/api/v2/referrals",
    f"/api/v1/referrals/{UNKNOWN_ID}/teleport",
    "/oauth/authorize",
])
def test_unknown_route_is_404_problem(app: Flask, path: str) -> None:
    assert_problem(app.test_client().get(path), 404)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/v1/referrals", {"GET", "POST"}),
    ("PUT", "/api/v1/participants", {"POST"}),
    ("GET", f"/api/v1/referrals/{UNKNOWN_ID}/accept", {"POST"}),
    ("GET", "/oauth/token", {"POST"}),
])
def test_wrong_method_is_405_with_allow(app: Flask, method: str, path: str,
                                        allowed: set[str]) -> None:
    response = app.test_client().open(path, method=method)
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", [
    "/api/v1/referrals/not-a-uuid",
    "/api/v1/referrals/not-a-uuid/events",
    "/api/v1/referrals/1234/accept",
    "/api/v1/participants/amina",
    "/api/v1/organizations/0",
])
def test_invalid_uuid_in_path_is_404(pair: tuple[Partner, Partner], path: str) -> None:
    sender, _ = pair
    method = "POST" if path.endswith("/accept") else "GET"
    assert_problem(sender.call(method, path, json={} if method == "POST" else None), 404)


# --- bodies ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"participant_id": ', b"{'single': 'quotes'}", b"\xff\xfe{}"])
def test_malformed_json_is_400(pair: tuple[Partner, Partner], raw: bytes) -> None:
    sender, _ = pair
    response = sender.call("POST", "/api/v1/referrals", data=raw,
                           headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_malformed_json_on_a_transition_is_400(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    response = receiver.call("POST", f"/api/v1/referrals/{leg['id']}/acknowledge",
                             data=b'{"note": "oops}', headers={"Content-Type": "application/json"})
    assert_problem(response, 400)
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "sent"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml"])
def test_body_that_is_not_json_is_415(pair: tuple[Partner, Partner], content_type: str) -> None:
    sender, receiver = pair
    body = json.dumps(referral_body(sender, receiver))
    response = sender.call("POST", "/api/v1/referrals", data=body,
                           headers={"Content-Type": content_type})
    assert_problem(response, 415)


def test_body_over_the_default_limit_is_413(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver, reason_for_referral="x" * (1_100 * 1024))
    response = sender.post("/api/v1/referrals", body)
    problem = assert_problem(response, 413)
    assert "1048576" in problem["detail"]


@pytest.fixture
def small_body_app(database_url: str) -> Iterator[Flask]:
    """The hub on the same database, with a 2 KiB body limit."""
    application = create_app(Settings(env="test", database_url=database_url,
                                      secret_key="test-secret-key-" + "x" * 32,
                                      max_body_bytes=2048))
    application.config["TESTING"] = True
    yield application
    application.extensions["hub_db"][0].dispose()


def test_body_limit_is_configurable(small_body_app: Flask, pair: tuple[Partner, Partner]
                                    ) -> None:
    sender, _ = pair
    client = small_body_app.test_client()
    headers = {"Authorization": f"Bearer {sender.token}"}

    small = client.post("/api/v1/participants", json=PARTICIPANT, headers=headers)
    assert small.status_code == 201, small.get_data(as_text=True)
    large = client.post("/api/v1/participants", headers=headers,
                        json={**PARTICIPANT, "given_name": "A" * 3000})
    problem = assert_problem(large, 413)
    assert "2048" in problem["detail"]


def test_oversized_form_on_the_token_endpoint_is_413(app: Flask, pair: tuple[Partner, Partner]
                                                     ) -> None:
    sender, _ = pair
    response = app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials", "pad": "x" * 1_200_000},
        headers={"Authorization": sender.basic_auth},
    )
    assert_problem(response, 413)


def test_unknown_field_is_422_naming_it(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    response = sender.post("/api/v1/referrals",
                           referral_body(sender, receiver, favourite_colour="bleu"))
    assert_validation(response, "favourite_colour")
    assert sender.get("/api/v1/referrals").get_json()["items"] == []


def test_unknown_field_in_a_transition_is_422_naming_it(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    assert_validation(receiver.act(leg["id"], "acknowledge", {"notes": "typo"}), "notes")


@pytest.mark.parametrize("missing", ["participant_id", "to_organization_id", "pathway"])
def test_missing_required_field_is_422(pair: tuple[Partner, Partner], missing: str) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver)
    del body[missing]
    assert_validation(sender.post("/api/v1/referrals", body), missing)


@pytest.mark.parametrize(("field", "value"), [
    ("pathway", "cooking"), ("priority", "whenever"), ("stage", "ideation"),
    ("participant_id", "not-a-uuid"), ("needs", "francisation"),
])
def test_invalid_value_is_422(pair: tuple[Partner, Partner], field: str, value: Any) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver, **{field: value})
    assert_validation(sender.post("/api/v1/referrals", body), field)


@pytest.mark.parametrize("body", [None, [], "accept", 42])
def test_body_that_is_not_an_object_is_refused(pair: tuple[Partner, Partner], body: Any) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    response = receiver.call("POST", f"/api/v1/referrals/{leg['id']}/decline",
                             data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code in {400, 422}
    assert_problem(response, response.status_code)


def test_invalid_decline_reason_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    assert_validation(receiver.act(leg["id"], "decline", {"reason": "bored"}), "reason")


# --- query strings and cursors -----------------------------------------------------------

@pytest.mark.parametrize(("path", "query", "field"), [
    ("/api/v1/referrals", "limit=0", "limit"),
    ("/api/v1/referrals", "limit=501", "limit"),
    ("/api/v1/referrals", "limit=ten", "limit"),
    ("/api/v1/referrals", "colour=red", "colour"),
    ("/api/v1/referrals", "direction=sideways", "direction"),
    ("/api/v1/referrals", "updated_since=yesterday", "updated_since"),
    ("/api/v1/referrals", "status=lost", "status"),
    ("/api/v1/events", "limit=0", "limit"),
    ("/api/v1/events", "after=abc", "after"),
    ("/api/v1/events", "colour=red", "colour"),
    ("/api/v1/organizations", "limit=501", "limit"),
    ("/api/v1/organizations", "colour=red", "colour"),
])
def test_bad_query_parameter_is_422_naming_it(pair: tuple[Partner, Partner], path: str,
                                              query: str, field: str) -> None:
    sender, _ = pair
    body = assert_problem(sender.get(f"{path}?{query}"), 422)
    assert any(name.split(".")[-1] == field for name in body.get("errors", {})), body


@pytest.mark.parametrize("path", ["/api/v1/referrals", "/api/v1/organizations"])
@pytest.mark.parametrize("value", ["garbage", "!!!", cursor("a", "b", "c", "d")])
def test_garbage_cursor_is_400(pair: tuple[Partner, Partner], path: str, value: str) -> None:
    sender, _ = pair
    body = assert_problem(sender.get(path, query_string={"cursor": value}), 400)
    assert "cursor" in body.get("errors", {})


@pytest.mark.parametrize(("path", "value"), [
    ("/api/v1/referrals", cursor("yesterday", str(uuid.uuid4()))),
    ("/api/v1/referrals", cursor("2026-01-01T00:00:00+00:00", "not-an-id")),
    ("/api/v1/organizations", cursor("not-an-id")),
], ids=["referrals-bad-time", "referrals-bad-id", "organizations-bad-id"])
def test_cursor_with_wrong_contents_is_400(pair: tuple[Partner, Partner], path: str,
                                           value: str) -> None:
    """A cursor of the right shape whose contents were tampered with is bad input, not 500."""
    sender, _ = pair
    body = assert_problem(sender.get(path, query_string={"cursor": value}), 400)
    assert "cursor" in body.get("errors", {})


def test_peers_cursor_with_wrong_contents_is_400(pair: tuple[Partner, Partner]) -> None:
    """The peers list reads its cursor's id like every list does (it used to answer 500)."""
    sender, _ = pair
    response = sender.get("/api/v1/peers", query_string={"cursor": cursor("not-an-id")})
    body = assert_problem(response, 400)
    assert body["errors"] == {"cursor": ["Not a cursor of this list."]}


@pytest.mark.parametrize("digits", [18, 19, 40])
def test_feed_cursor_beyond_any_position_is_not_a_server_error(
    pair: tuple[Partner, Partner], digits: int
) -> None:
    """An `after` past every event is an empty page or a 4xx; past 2^63-1 it must not reach
    the database (it did: 500 on SQLite)."""
    sender, _ = pair
    response = sender.get("/api/v1/events", query_string={"after": "9" * digits})
    if response.status_code == 200:
        assert response.get_json()["items"] == []
    else:
        assert response.status_code in {400, 422}
        assert_problem(response, response.status_code)


# --- lifecycle refusals ------------------------------------------------------------------

def test_illegal_transition_is_409_with_allowed_actions(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    body = assert_problem(receiver.act(leg["id"], "complete", {"outcome": "employed"}), 409)
    assert {"acknowledge", "decline"} <= set(body["allowed"])
    assert "complete" not in body["allowed"]
    assert body["current_status"] == "sent"


def test_transition_on_a_closed_leg_is_409_with_nothing_allowed(
    pair: tuple[Partner, Partner]
) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    assert receiver.act(leg["id"], "decline", {"reason": "duplicate"}).status_code == 200
    body = assert_problem(receiver.act(leg["id"], "acknowledge"), 409)
    assert body["allowed"] == []


def test_decline_without_reason_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    assert_validation(receiver.act(leg["id"], "decline", {"note": "Pas pour nous"}), "reason")
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "sent"


def test_complete_without_outcome_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    for action in ("acknowledge", "accept"):
        assert receiver.act(leg["id"], action).status_code == 200
    assert_validation(receiver.act(leg["id"], "complete", {"note": "Fini"}), "outcome")
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "accepted"


def test_stale_if_match_is_412(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    assert receiver.act(leg["id"], "acknowledge").status_code == 200  # now version 2

    response = receiver.act(leg["id"], "accept", headers={"If-Match": f'"{leg["version"]}"'})

    body = assert_problem(response, 412)
    assert body["current_version"] == 2
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "acknowledged"


def test_matching_if_match_succeeds(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    read = receiver.get(f"/api/v1/referrals/{leg['id']}")
    response = receiver.act(leg["id"], "acknowledge", headers={"If-Match": read.headers["ETag"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["ETag"] == '"2"'


def test_malformed_if_match_is_400(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    leg = sender.refer(receiver)
    assert_problem(receiver.act(leg["id"], "acknowledge", headers={"If-Match": "version one"}),
                   400)


# --- referral rules ----------------------------------------------------------------------

def test_referral_to_unknown_organization_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver, to_organization_id=str(uuid.uuid4()))
    assert_validation(sender.post("/api/v1/referrals", body), "to_organization_id")


def test_referral_to_own_organization_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver, to_organization_id=sender.organization_id)
    assert_validation(sender.post("/api/v1/referrals", body), "to_organization_id")


def test_referral_to_a_coordination_body_is_422(network: Network,
                                                pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    coordinator = network.partner(kind="coordination")
    body = referral_body(sender, receiver, to_organization_id=coordinator.organization_id)
    assert_validation(sender.post("/api/v1/referrals", body), "to_organization_id")


@pytest.mark.parametrize("pathway", ["entrepreneurship", "cooperative_entrepreneurship"])
def test_entrepreneurship_referral_without_stage_is_422(pair: tuple[Partner, Partner],
                                                        pathway: str) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver, pathway=pathway)
    assert_validation(sender.post("/api/v1/referrals", body), "stage")


def test_stage_on_another_pathway_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver, pathway="employment", stage="exploration")
    assert_validation(sender.post("/api/v1/referrals", body), "stage")


# --- OAuth token endpoint ----------------------------------------------------------------

def token_with_basic_auth(app: Flask, client_id: str, secret: str) -> TestResponse:
    raw = f"{client_id}:{secret}".encode()
    return app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
    )


def test_token_with_wrong_secret_is_401_invalid_client(app: Flask,
                                                       pair: tuple[Partner, Partner]) -> None:
    sender, _ = pair
    response = token_with_basic_auth(app, sender.client_id, secrets.token_urlsafe(32))
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_client"


def test_token_for_unknown_client_in_basic_auth_is_401_invalid_client(app: Flask) -> None:
    """RFC 6749 §5.2: a client that tried the Authorization header MUST get 401."""
    response = token_with_basic_auth(app, f"nobody-{secrets.token_hex(4)}",
                                     secrets.token_urlsafe(32))
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_client"


def test_token_for_unknown_client_in_the_form_is_refused_invalid_client(app: Flask) -> None:
    """RFC 6749 §5.2: without the Authorization header, 400 or 401 are both allowed."""
    response = app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": f"nobody-{secrets.token_hex(4)}",
        "client_secret": secrets.token_urlsafe(32)})
    assert response.status_code in {400, 401}
    body = assert_problem(response, response.status_code)
    assert body["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "made_up"])
def test_token_with_unsupported_grant_type_is_400(app: Flask, pair: tuple[Partner, Partner],
                                                  grant_type: str) -> None:
    sender, _ = pair
    response = app.test_client().post("/oauth/token", data={"grant_type": grant_type},
                                      headers={"Authorization": sender.basic_auth})
    body = assert_problem(response, 400)
    assert body["error"] == "unsupported_grant_type"


# --- Idempotency-Key ---------------------------------------------------------------------

def _legs_for(sender: Partner, participant_id: str) -> list[dict[str, Any]]:
    response = sender.get("/api/v1/referrals", query_string={"direction": "outbound",
                                                             "limit": "500"})
    assert response.status_code == 200
    return [leg for leg in response.get_json()["items"]
            if leg["participant"]["id"] == participant_id]


def test_same_idempotency_key_and_body_replays_the_first_response(
    pair: tuple[Partner, Partner]
) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver)
    key = {"Idempotency-Key": f"create-{secrets.token_hex(8)}"}

    first = sender.post("/api/v1/referrals", body, headers=key)
    second = sender.post("/api/v1/referrals", body, headers=key)

    assert first.status_code == 201, first.get_data(as_text=True)
    assert second.status_code == first.status_code
    assert second.get_json() == first.get_json()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert len(_legs_for(sender, body["participant_id"])) == 1


def test_same_idempotency_key_with_another_body_is_422(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver)
    key = {"Idempotency-Key": f"create-{secrets.token_hex(8)}"}
    assert sender.post("/api/v1/referrals", body, headers=key).status_code == 201

    response = sender.post("/api/v1/referrals", {**body, "priority": "urgent"}, headers=key)

    assert_problem(response, 422)
    legs = _legs_for(sender, body["participant_id"])
    assert [leg["priority"] for leg in legs] == ["routine"]


def test_invalid_idempotency_key_is_400(pair: tuple[Partner, Partner]) -> None:
    sender, receiver = pair
    body = referral_body(sender, receiver)
    response = sender.post("/api/v1/referrals", body, headers={"Idempotency-Key": "k" * 256})
    assert_problem(response, 400)
    assert _legs_for(sender, body["participant_id"]) == []


@pytest.mark.parametrize("number", ["9" * 40, "-1"])
def test_note_history_cursor_beyond_any_id_is_400(pair: tuple[Partner, Partner],
                                                  number: str) -> None:
    """The relationship note history reads its cursor's id like the other lists: one past
    what a database id can be never reaches the database."""
    sender, receiver = pair
    response = sender.get(
        f"/api/v1/organizations/{receiver.organization_id}/relationship/history",
        query_string={"cursor": cursor(number)})
    body = assert_problem(response, 400)
    assert body["errors"] == {"cursor": ["Not a cursor of this list."]}
