"""A partner system over real HTTP: a standard OAuth client library, and racing answers."""

from __future__ import annotations

import threading

import pytest
import requests
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from tests.helpers import PARTICIPANT, Network


def test_a_standard_oauth_client_library_works_unchanged(
    base_url: str, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    # oauthlib insists on https; the test server is plain http on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    sender, receiver = network.partner(), network.partner()
    systems = {}
    for partner in (sender, receiver):
        session = OAuth2Session(client=BackendApplicationClient(client_id=partner.client_id))
        token = session.fetch_token(f"{base_url}/oauth/token", client_id=partner.client_id,
                                    client_secret=partner.client_secret)
        assert token["token_type"].lower() == "bearer"
        assert 3500 < token["expires_in"] <= 3600
        systems[partner.organization_id] = session

    sending, receiving = systems[sender.organization_id], systems[receiver.organization_id]
    participant = sending.post(f"{base_url}/api/v1/participants", json=PARTICIPANT).json()
    consent = sending.post(f"{base_url}/api/v1/participants/{participant['id']}/consents", json={
        "purpose": "referral_sharing", "organization_ids": [receiver.organization_id],
        "evidence": "electronic",
    })
    assert consent.status_code == 201, consent.text
    leg = sending.post(f"{base_url}/api/v1/referrals", json={
        "participant_id": participant["id"], "to_organization_id": receiver.organization_id,
        "pathway": "employment", "priority": "urgent",
    })
    assert leg.status_code == 201, leg.text
    answer = receiving.post(f"{base_url}/api/v1/referrals/{leg.json()['id']}/acknowledge")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "acknowledged"


def test_client_secret_post_is_accepted(base_url: str, network: Network) -> None:
    partner = network.partner()
    response = requests.post(f"{base_url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": partner.client_id,
        "client_secret": partner.client_secret, "scope": "referrals:read",
    }, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "referrals:read"


def race(count: int, url: str, token: str, body: dict, idempotency_key: str | None = None
         ) -> list[requests.Response]:
    """`count` POSTs of `body` to `url`, released together from a barrier; their answers."""
    barrier = threading.Barrier(count)
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    answers: list[requests.Response] = []

    def post() -> None:
        with requests.Session() as http:
            barrier.wait()
            answers.append(http.post(url, json=body, headers=headers, timeout=30))

    threads = [threading.Thread(target=post) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_racing_acknowledgements_one_wins_the_others_get_409(base_url: str,
                                                             network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    answers = race(8, f"{base_url}/api/v1/referrals/{leg['id']}/acknowledge", receiver.token, {})

    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    history = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == ["referral.sent", "referral.acknowledged"]


def test_racing_requests_with_one_idempotency_key_make_one_leg(base_url: str,
                                                              network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()
    sender.grant_consent(participant["id"], receiver)
    body = {"participant_id": participant["id"], "to_organization_id": receiver.organization_id,
            "pathway": "training"}
    answers = race(6, f"{base_url}/api/v1/referrals", sender.token, body, "double-click-1")

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    outbound = sender.get("/api/v1/referrals?direction=outbound").get_json()["items"]
    assert len(outbound) == 1


def test_a_retry_racing_its_first_attempt_gets_the_first_answer(base_url: str,
                                                                network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    answers = race(6, f"{base_url}/api/v1/referrals/{leg['id']}/acknowledge", receiver.token, {},
                   "ack-once")

    assert [(a.status_code, a.json().get("version")) for a in answers] == [(200, 2)] * 6
    history = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == ["referral.sent", "referral.acknowledged"]
