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


def test_racing_acknowledgements_one_wins_the_others_get_409(base_url: str,
                                                             network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    token = receiver.token
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def acknowledge() -> None:
        with requests.Session() as http:
            barrier.wait()
            response = http.post(f"{base_url}/api/v1/referrals/{leg['id']}/acknowledge",
                                 headers={"Authorization": f"Bearer {token}"}, json={},
                                 timeout=30)
            statuses.append(response.status_code)

    threads = [threading.Thread(target=acknowledge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [409] * 7
    history = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == ["referral.sent", "referral.acknowledged"]


def test_racing_requests_with_one_idempotency_key_make_one_leg(base_url: str,
                                                              network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()
    body = {"participant_id": participant["id"], "to_organization_id": receiver.organization_id,
            "pathway": "training"}
    barrier = threading.Barrier(6)
    answers: list[tuple[int, str]] = []

    def create() -> None:
        barrier.wait()
        response = requests.post(f"{base_url}/api/v1/referrals", json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {sender.token}",
                                          "Idempotency-Key": "double-click-1"})
        answers.append((response.status_code, response.json().get("id")))

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {status for status, _ in answers} == {201}
    assert len({leg_id for _, leg_id in answers}) == 1
    outbound = sender.get("/api/v1/referrals?direction=outbound").get_json()["items"]
    assert len(outbound) == 1


def test_a_retry_racing_its_first_attempt_gets_the_first_answer(base_url: str,
                                                                network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    barrier = threading.Barrier(6)
    answers: list[tuple[int, int | None]] = []

    def accept_with_one_key() -> None:
        barrier.wait()
        response = requests.post(f"{base_url}/api/v1/referrals/{leg['id']}/acknowledge",
                                 json={}, timeout=30,
                                 headers={"Authorization": f"Bearer {receiver.token}",
                                          "Idempotency-Key": "ack-once"})
        answers.append((response.status_code, response.json().get("version")))

    threads = [threading.Thread(target=accept_with_one_key) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [(200, 2)] * 6
    history = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == ["referral.sent", "referral.acknowledged"]
