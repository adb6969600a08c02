"""Test helpers: organizations with real OAuth clients, and a partner that calls the API.

Tokens come from the hub's own token endpoint, like a partner system's would.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from hub.accounts import clients
from hub.db import db
from hub.directory.organizations import create_organization

PARTICIPANT = {
    "given_name": "Amina",
    "family_name": "Benali",
    "preferred_language": "fr",
    "email": "amina.benali@example.org",
    "phone": "+1 514 555 0101",
    "birth_year": 1990,
    "region": "06",
}


# Distinct contacts for each participant a test registers, so none is taken for a duplicate.
_PHONE_NUMBERS = itertools.count(secrets.randbelow(5_000_000))


@dataclass
class Partner:
    """One organization of the network and its partner system (an OAuth client)."""

    app: Flask
    organization_id: str
    name: str
    client_id: str
    client_secret: str
    _token: str | None = field(default=None, repr=False)

    @property
    def basic_auth(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def fetch_token(self, scope: str | None = None) -> TestResponse:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        return self.app.test_client().post(
            "/oauth/token", data=form, headers={"Authorization": self.basic_auth}
        )

    @property
    def token(self) -> str:
        if self._token is None:
            response = self.fetch_token()
            assert response.status_code == 200, response.get_data(as_text=True)
            self._token = response.get_json()["access_token"]
        return self._token

    def call(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None
             = None, token: str | None = None, **kwargs: Any) -> TestResponse:
        all_headers = {"Authorization": f"Bearer {token or self.token}"}
        all_headers.update(headers or {})
        return self.app.test_client().open(path, method=method, json=json, headers=all_headers,
                                           **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, json=json, **kwargs)

    # --- shortcuts for the usual steps -------------------------------------------------

    def register_participant(self, **overrides: Any) -> dict[str, Any]:
        """A new participant (a different person each time, unless `overrides` say who)."""
        number = next(_PHONE_NUMBERS)
        body = {**PARTICIPANT, "email": f"amina.{number}@example.org",
                "phone": f"+1 514 {number // 10_000:03d} {number % 10_000:04d}", **overrides}
        response = self.post("/api/v1/participants", body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def grant_consent(self, participant_id: str, *to: Partner, purpose: str = "referral_sharing",
                      **fields: Any) -> dict[str, Any]:
        """Record the participant's consent for `to` (no one named: the whole network)."""
        body: dict[str, Any] = {"purpose": purpose, "evidence": "written"}
        if to:
            body["organization_ids"] = [p.organization_id for p in to]
        else:
            body["network_wide"] = True
        body.update(fields)
        response = self.post(f"/api/v1/participants/{participant_id}/consents", body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def refer(self, to: Partner, participant_id: str | None = None, *, consent: bool = True,
              **fields: Any) -> dict[str, Any]:
        """Send a referral to `to` (a new participant unless given), first recording the
        participant's consent for `to` unless `consent=False`."""
        participant_id = participant_id or self.register_participant()["id"]
        if consent:
            self.grant_consent(participant_id, to)
        body = {"participant_id": participant_id, "to_organization_id": to.organization_id,
                "pathway": "employment", "priority": "routine",
                "reason_for_referral": "Cherche un emploi en soudure", "needs": ["francisation"]}
        body.update(fields)
        response = self.post("/api/v1/referrals", body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def act(self, referral_id: str, action: str, body: dict[str, Any] | None = None,
            **kwargs: Any) -> TestResponse:
        return self.post(f"/api/v1/referrals/{referral_id}/{action}", body or {}, **kwargs)


class Network:
    """Creates organizations with clients in the app under test."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def partner(self, kind: str = "community", region: str = "06", name: str | None = None,
                scopes: list[str] | None = None) -> Partner:
        name = name or f"Organisme {secrets.token_hex(3)}"
        with self.app.app_context(), db.job_session() as session:
            organization = create_organization(session, name=name, kind=kind, region=region)
            if scopes is None and organization.is_coordinator:
                scopes = [s for s in clients.SCOPES if s != "hub:admin"]
            client, secret = clients.create_client(session, organization=organization,
                                                    scopes=scopes)
            return Partner(self.app, str(organization.id), name, client.client_id, secret)



def second_during_first(app: Flask, first: Callable[[Session], Any],
                        second: Callable[[Session], Any]) -> list[Exception]:
    """Two requests at once, in the order that shows a race: `first` runs in a transaction
    that stays open while `second` runs in its own, as far as it may (to its end, or until it
    waits for the first's lock); then the first commits and the second finishes.  Returns
    what the second raised."""
    raised: list[Exception] = []
    done = threading.Event()

    def run_second() -> None:
        try:
            with app.app_context(), db.job_session() as session:
                second(session)
        except Exception as error:  # noqa: BLE001 (returned for the test to assert on)
            raised.append(error)
        finally:
            done.set()

    with app.app_context(), db.job_session() as session:
        first(session)
        other = threading.Thread(target=run_second)
        other.start()
        while not done.is_set() and not _waiting_for_a_lock(app):
            done.wait(0.01)
    other.join(30)
    assert done.is_set(), "the second request never finished"
    return raised


def _waiting_for_a_lock(app: Flask) -> bool:
    """Whether a transaction waits for another's lock.  On SQLite, true: the first transaction
    to write holds the writers' turn until it commits, and any other writer waits for it."""
    with app.app_context(), db.job_session() as session:
        if session.get_bind().dialect.name != "postgresql":
            return True
        return bool(session.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))
