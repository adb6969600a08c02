"""Behind the production proxy (issue 22): the hub sees each client's address, so one address's
failed logins lock out that address only; and `/metrics` is not open to whoever reaches the web
service."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from hub import create_app
from hub.accounts import users
from hub.db import db, utcnow
from hub.ops import _may_read_metrics
from tests.portal import PASSWORD, make_organization, make_user, text_of

PROXY = "10.0.0.2"  # the address the web service sees: the proxy's


@pytest.fixture
def proxied(app: Flask) -> Iterator[Flask]:
    """The same hub, told that one proxy stands in front of it (HUB_TRUSTED_PROXIES=1)."""
    settings = replace(app.config["HUB_SETTINGS"], trusted_proxies=1)
    behind = create_app(settings)
    behind.config["TESTING"] = True
    yield behind
    behind.extensions["hub_db"][0].dispose()


def login(app: Flask, email: str, password: str, forwarded_for: str) -> TestResponse:
    """A login through the proxy, which appends the client's address to X-Forwarded-For."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    headers = {"X-Forwarded-For": forwarded_for}
    page = client.get("/login", headers=headers).get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token}, headers=headers)


def test_one_addresss_failures_lock_out_that_address_only(proxied: Flask, app: Flask) -> None:
    email = make_user(app, make_organization(app), "counsellor")
    attacker = "203.0.113.7"
    for attempt in range(users.MAX_ATTEMPTS_PER_ADDRESS):
        # Other emails each time: the per-account lockout is not what is tested here.
        assert login(proxied, f"nobody-{attempt}@example.org", "wrong password!",
                     attacker).status_code == 401
    refused = login(proxied, email, PASSWORD, attacker)
    assert refused.status_code == 429
    assert "Trop de tentatives" in text_of(refused)
    # Sending a forged X-Forwarded-For does not help: the proxy appends the real address,
    # and only the last one (the one the proxy wrote) is believed.
    assert login(proxied, email, PASSWORD, f"198.51.100.9, {attacker}").status_code == 429
    # Everyone else, behind the same proxy, logs in.
    assert login(proxied, email, PASSWORD, "203.0.113.8").status_code == 302


def test_a_colleague_who_knows_the_email_locks_only_their_own_address(
        proxied: Flask, app: Flask) -> None:
    email = make_user(app, make_organization(app), "counsellor")
    attacker, owner = "203.0.113.21", "198.51.100.21"
    for _ in range(users.MAX_FAILURES):
        assert login(proxied, email, "wrong password!", attacker).status_code == 401
    locked = login(proxied, email, PASSWORD, attacker)  # even the right password, from there
    assert locked.status_code == 429 and "Trop de tentatives" in text_of(locked)
    assert login(proxied, email, PASSWORD, owner).status_code == 302  # the owner signs in
    # ...and the owner's sign-in does not lift the attacker's lock.
    assert login(proxied, email, PASSWORD, attacker).status_code == 429


def test_a_distributed_guess_past_the_ceiling_is_slowed_not_locked(
        proxied: Flask, app: Flask) -> None:
    email = make_user(app, make_organization(app), "counsellor")
    now = utcnow()
    with app.app_context(), db.job_session() as session:  # the guess so far: one per address
        session.add_all(users.LoginFailure(email=email, address=f"192.0.2.{n}",
                                           at=now - timedelta(minutes=5))
                        for n in range(users.EMAIL_CEILING - 1))
    assert login(proxied, email, "wrong password!", "203.0.113.30").status_code == 401
    # The ceiling is reached: the next attempt, from anywhere, waits for the pace...
    slowed = login(proxied, email, PASSWORD, "198.51.100.30")
    assert slowed.status_code == 429 and "une tentative toutes les 30 secondes" in text_of(slowed)
    with app.app_context(), db.job_session() as session:
        for failure in session.scalars(select(users.LoginFailure).where(
                users.LoginFailure.email == email)):
            failure.at -= users.EMAIL_PACE
    # ...then one attempt goes through: not a lock, the owner signs in.
    assert login(proxied, email, PASSWORD, "198.51.100.30").status_code == 302
    assert login(proxied, email, "wrong password!", "203.0.113.31").status_code == 401
    assert login(proxied, email, "wrong password!", "203.0.113.32").status_code == 429


def logged_address(client: FlaskClient, forwarded_for: str) -> str | None:
    """The address the access log records for one request."""
    seen: list[str | None] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = getattr(record, "fields", {})
            if fields.get("path") == "/healthz":
                seen.append(fields.get("address"))

    access = logging.getLogger("hub.access")
    handler, level = Capture(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client.get("/healthz", headers={"X-Forwarded-For": forwarded_for})
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert len(seen) == 1
    return seen[0]


def test_the_log_names_the_client_behind_the_proxy(proxied: Flask) -> None:
    client = proxied.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    assert logged_address(client, "203.0.113.44") == "203.0.113.44"


def test_without_trusted_proxies_forwarded_headers_are_ignored(app: Flask) -> None:
    """HUB_TRUSTED_PROXIES=0 (the default): a client cannot pick its address by a header."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.50"
    assert logged_address(client, "198.51.100.9") == "192.0.2.50"


# --- /metrics ---------------------------------------------------------------------------------

def metrics_app(app: Flask, **settings: object) -> Flask:
    built = create_app(replace(app.config["HUB_SETTINGS"], **settings))
    built.config["TESTING"] = True
    return built


def test_metrics_need_the_token_or_an_allowed_network(app: Flask) -> None:
    guarded = metrics_app(app, metrics_token="s3cret-metrics-token")
    client = guarded.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 403 and "HUB_METRICS_TOKEN" in refused.get_data(as_text=True)
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert allowed.status_code == 200 and "hub_http_requests" in allowed.get_data(as_text=True)
    guarded.extensions["hub_db"][0].dispose()

    by_network = metrics_app(app, metrics_networks="10.0.0.0/8")
    inside, outside = by_network.test_client(), by_network.test_client()
    inside.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    outside.environ_base["REMOTE_ADDR"] = "192.0.2.1"
    assert inside.get("/metrics").status_code == 200
    assert outside.get("/metrics").status_code == 403
    by_network.extensions["hub_db"][0].dispose()


def test_metrics_are_closed_in_production_unless_configured(app: Flask) -> None:
    production = replace(app.config["HUB_SETTINGS"], env="production")
    with app.test_request_context("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.1"}):
        assert _may_read_metrics(production) is False
        assert _may_read_metrics(replace(production, metrics_networks="192.0.2.0/24")) is True
    # Development and tests: open while nothing is configured.
    with app.test_request_context("/metrics"):
        assert _may_read_metrics(app.config["HUB_SETTINGS"]) is True
