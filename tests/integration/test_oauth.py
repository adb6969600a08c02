"""The OAuth 2.0 server: tokens are hashed, expire, and carry only the scopes asked for."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from hub.accounts import clients
from hub.db import db, utcnow
from tests.helpers import Network


def test_secrets_and_tokens_are_stored_only_as_digests(app: Flask, network: Network) -> None:
    partner = network.partner()
    token = partner.token
    with app.app_context():
        client = db.session.scalar(select(clients.OAuthClient)
                                   .where(clients.OAuthClient.client_id == partner.client_id))
        assert client is not None
        assert partner.client_secret not in client.secret_digest
        assert client.secret_digest == clients.digest(partner.client_secret)
        stored = db.session.scalar(select(clients.OAuthToken)
                                   .where(clients.OAuthToken.client_pk == client.id))
        assert stored is not None and stored.token_digest == clients.digest(token)


def test_an_expired_token_is_refused(app: Flask, network: Network) -> None:
    partner = network.partner()
    token = partner.token
    assert partner.get("/api/v1/referrals").status_code == 200
    with app.app_context():
        stored = clients.find_token(db.session, token)
        assert stored is not None
        stored.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    response = partner.get("/api/v1/referrals")
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_a_token_carries_only_the_scopes_asked_for(network: Network) -> None:
    partner = network.partner()
    narrow = partner.fetch_token(scope="referrals:read").get_json()
    assert narrow["scope"] == "referrals:read"
    refused = partner.post("/api/v1/participants", {"given_name": "A", "family_name": "B",
                                                    "preferred_language": "fr"},
                           token=narrow["access_token"])
    assert refused.status_code == 403
    assert "participants:write" in refused.get_json()["detail"]


def test_asking_for_a_scope_the_client_lacks_is_invalid_scope(network: Network) -> None:
    partner = network.partner(scopes=["referrals:read"])
    response = partner.fetch_token(scope="referrals:read referrals:write")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_a_revoked_client_gets_no_token_and_its_tokens_stop_working(app: Flask,
                                                                     network: Network) -> None:
    partner = network.partner()
    token = partner.token
    with app.app_context():
        client = db.session.scalar(select(clients.OAuthClient)
                                   .where(clients.OAuthClient.client_id == partner.client_id))
        clients.revoke_client(db.session, client)
        db.session.commit()
    assert partner.get("/api/v1/referrals", token=token).status_code == 401
    assert partner.fetch_token().status_code == 401
