"""Portal accounts: login, lockout and rate limit held in the database, sessions, CSRF, the
language switch, password reset by mailed single-use link, security headers, `hub user
create`."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from hub.accounts import users
from hub.db import db, utcnow
from hub.outbox.mail import OutgoingMail
from tests.hub_cli import run_hub
from tests.portal import PASSWORD, Person, make_organization, make_user, text_of


@pytest.fixture
def counsellor(app: Flask) -> str:
    return make_user(app, make_organization(app), "counsellor")


def test_login_lands_on_the_work_of_the_role_and_logout_ends_the_session(
        app: Flask, counsellor: str) -> None:
    person = Person.anonymous(app)
    response = person.post("/login", {"email": counsellor.upper(), "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/outbound"
    assert person.get("/outbound").status_code == 200
    cookie = person.client.get_cookie("maillage_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"

    assert person.post("/logout").status_code == 302
    assert person.get("/outbound").headers["Location"].startswith("/login")


def test_pages_need_a_login_and_the_right_role(app: Flask, counsellor: str) -> None:
    anonymous = Person.anonymous(app)
    response = anonymous.get("/inbox")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/inbox"

    coordinator = make_user(app, make_organization(app, kind="coordination"), "coordinator")
    watcher = Person.logged_in(app, coordinator)
    assert watcher.get("/participants").status_code == 403
    assert Person.logged_in(app, counsellor).get("/network/stalled").status_code == 403


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
        app: Flask, counsellor: str) -> None:
    wrong = Person.anonymous(app).post("/login", {"email": counsellor, "password": "nope" * 4})
    unknown = Person.anonymous(app).post("/login", {"email": "nobody@example.org",
                                                    "password": "nope" * 4})
    assert wrong.status_code == unknown.status_code == 401
    assert "Courriel ou mot de passe incorrect." in text_of(wrong)
    assert "Courriel ou mot de passe incorrect." in text_of(unknown)


def test_lockout_after_repeated_failures_holds_across_processes(
        app: Flask, database_url: str, counsellor: str) -> None:
    for _ in range(users.MAX_FAILURES):
        assert Person.anonymous(app).post(
            "/login", {"email": counsellor, "password": "wrong password!"}).status_code == 401
    # Another web process (a second app on the same database) sees the same lockout,
    # even with the right password.
    from hub import create_app
    from hub.config import Settings

    other = create_app(Settings(env="test", database_url=database_url,
                                secret_key=app.config["SECRET_KEY"]))
    locked = Person.anonymous(other).post("/login", {"email": counsellor, "password": PASSWORD})
    assert locked.status_code == 429
    assert "Trop de tentatives" in text_of(locked)
    other.extensions["hub_db"][0].dispose()

    # Once the window has passed, the right password works again.
    with app.app_context(), db.job_session() as session:
        for failure in session.scalars(select(users.LoginFailure).where(
                users.LoginFailure.email == counsellor)):
            failure.at -= users.FAILURE_WINDOW + timedelta(seconds=1)
    assert Person.anonymous(app).post(
        "/login", {"email": counsellor, "password": PASSWORD}).status_code == 302


def test_no_open_redirect_after_login(app: Flask, counsellor: str) -> None:
    for target in ("https://evil.example", "//evil.example/x", "/\\evil.example", "javascript:x"):
        response = Person.anonymous(app).post(f"/login?next={target}",
                                              {"email": counsellor, "password": PASSWORD})
        assert response.headers["Location"] == "/outbound", target
    response = Person.anonymous(app).post("/login?next=/participants",
                                          {"email": counsellor, "password": PASSWORD})
    assert response.headers["Location"] == "/participants"


def test_every_form_needs_its_csrf_token(app: Flask, counsellor: str) -> None:
    client = app.test_client()
    response = client.post("/login", data={"email": counsellor, "password": PASSWORD})
    assert response.status_code == 400
    assert "formulaire a expiré" in text_of(response)
    person = Person.logged_in(app, counsellor)
    forged = person.client.post("/participants/new", data={
        "given_name": "A", "family_name": "B", "preferred_language": "fr"})
    assert forged.status_code == 400


def sessions_of(app: Flask, email: str) -> list[users.PortalSession]:
    with app.app_context(), db.job_session() as session:
        return list(session.scalars(select(users.PortalSession).join(users.User).where(
            users.User.email == email)))


def test_a_copied_cookie_is_dead_after_logout(app: Flask, counsellor: str) -> None:
    """The session ends on the hub's side: the cookie as it was before logout, replayed by
    another client (a stolen copy), opens nothing."""
    person = Person.logged_in(app, counsellor)
    copy = person.client.get_cookie("maillage_session").value
    other_browser = Person.logged_in(app, counsellor)
    assert len(sessions_of(app, counsellor)) == 2
    assert person.post("/logout").status_code == 302

    thief = app.test_client()
    thief.set_cookie("maillage_session", copy)
    response = thief.get("/outbound")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    # Only the session logged out ended: the same person's other browser is still in.
    assert other_browser.get("/outbound").status_code == 200
    assert len(sessions_of(app, counsellor)) == 1


def test_disabling_an_account_ends_its_sessions(app: Flask, counsellor: str) -> None:
    person = Person.logged_in(app, counsellor)
    admin_email = make_user(app, make_organization(app), "org_admin")
    with app.app_context(), db.job_session() as session:
        user = session.scalar(select(users.User).where(users.User.email == counsellor))
        admin = session.scalar(select(users.User).where(users.User.email == admin_email))
        users.set_disabled(session, user, True, by=admin)
    assert sessions_of(app, counsellor) == []
    assert person.get("/outbound").status_code == 302


def test_an_idle_session_expires(app: Flask, counsellor: str) -> None:
    person = Person.logged_in(app, counsellor)
    with app.app_context(), db.job_session() as session:
        idle = timedelta(minutes=app.config["HUB_SETTINGS"].session_minutes + 1)
        for row in session.scalars(select(users.PortalSession).join(users.User).where(
                users.User.email == counsellor)):
            row.seen_at = utcnow() - idle
    response = person.get("/outbound")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Votre session a expiré" in text_of(person.get(response.headers["Location"]))


def test_security_headers_on_portal_pages(app: Flask) -> None:
    response = app.test_client().get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script" not in response.get_data(as_text=True)
    # HSTS only in production (served over https there).
    assert "Strict-Transport-Security" not in response.headers


def test_language_switch_keeps_the_page_and_refuses_other_sites(app: Flask) -> None:
    client = app.test_client()
    assert "Mot de passe" in text_of(client.get("/login"))
    response = client.get("/lang/en?next=/login")
    assert response.headers["Location"] == "/login"
    page = client.get("/login")
    assert "Password" in text_of(page) and 'lang="en"' in page.get_data(as_text=True)
    assert client.get("/lang/fr?next=https://evil.example").headers["Location"] == "/login"
    # The browser's language when nothing was chosen.
    english = app.test_client().get("/login", headers={"Accept-Language": "en-CA,en;q=0.8"})
    assert "Forgot your password?" in text_of(english)


def test_password_reset_by_mailed_single_use_link(app: Flask, counsellor: str) -> None:
    anonymous = Person.anonymous(app)
    unknown = anonymous.post("/password/forgot", {"email": "nobody@example.org"})
    known = anonymous.post("/password/forgot", {"email": counsellor})
    assert text_of(unknown) == text_of(known)  # nobody learns who has an account

    with app.app_context(), db.job_session() as session:
        # Addresses are encrypted at rest: find the mail among the latest ones.
        latest = session.scalars(select(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(50))
        body = next(m.body_text for m in latest if m.to_address == counsellor)
    link = re.search(r"http://\S+/password/reset/(\S+)", body)
    assert link is not None and "mot de passe" in body
    path = f"/password/reset/{link.group(1)}"
    assert anonymous.get(path).status_code == 200
    new_password = "a brand new passphrase"
    short = anonymous.post(path, {"password": "short", "confirm": "short"})
    assert short.status_code == 422
    assert anonymous.post(path, {"password": new_password, "confirm": new_password}
                          ).status_code == 302
    assert anonymous.get(path).status_code == 410  # single use
    assert Person.anonymous(app).post("/login", {"email": counsellor, "password": PASSWORD}
                                      ).status_code == 401
    Person.logged_in(app, counsellor, new_password)


def test_a_password_reset_ends_other_sessions(app: Flask, counsellor: str) -> None:
    person = Person.logged_in(app, counsellor)
    with app.app_context(), db.job_session() as session:
        _, token = users.start_password_reset(session, counsellor)
    with app.app_context(), db.job_session() as session:
        users.reset_password(session, token, "another long passphrase")
    assert sessions_of(app, counsellor) == []
    assert person.get("/outbound").status_code == 302


def test_roles_must_fit_the_organization(app: Flask) -> None:
    with pytest.raises(ValueError, match="coordination"):
        make_user(app, make_organization(app), "coordinator")
    with pytest.raises(ValueError, match="member organizations"):
        make_user(app, make_organization(app, kind="coordination"), "counsellor")


def test_hub_user_create_then_log_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.sqlite3'}"
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "WARNING"}
    assert run_hub(env, "db", "upgrade").returncode == 0
    org = run_hub(env, "org", "create", "--name", "Accueil", "--kind", "regional_partner",
                  "--region", "05")
    assert org.returncode == 0, org.stderr
    org_id = re.search(r'"id": "([0-9a-f-]+)"', org.stdout).group(1)
    created = run_hub(env, "user", "create", "--org", org_id, "--email", "Julie@Example.org",
                      "--role", "partner_staff", "--form", "feminine", "--password-stdin",
                      input="a long enough secret\n")
    assert created.returncode == 0, created.stderr
    assert '"email": "julie@example.org"' in created.stdout
    assert '"french_form": "feminine"' in created.stdout
    assert "secret" not in created.stdout
    weak = run_hub(env, "user", "create", "--org", org_id, "--email", "x@example.org",
                   "--role", "partner_staff", "--password-stdin", input="short\n")
    assert weak.returncode == 2 and "12 characters" in weak.stderr

    from hub import create_app
    from hub.config import Settings

    app = create_app(Settings(env="test", database_url=url))
    response = Person.anonymous(app).post("/login", {"email": "julie@example.org",
                                                     "password": "a long enough secret"})
    assert response.headers["Location"] == "/inbox"
    app.extensions["hub_db"][0].dispose()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.integers(0, 3), min_size=1, max_size=25))
def test_whatever_others_try_the_owner_signs_in_from_their_own_address(
        app: Flask, counsellor: str, addresses: list[int]) -> None:
    """Address 0 is the owner's, with the right password; 1 to 3 are guessers elsewhere.  An
    address is locked after its own 5 failures only, and the owner is never refused."""
    with app.app_context(), db.job_session() as session:  # each example starts afresh
        session.execute(delete(users.LoginFailure).where(
            users.LoginFailure.email == counsellor))
    start = utcnow()
    failures = dict.fromkeys(range(1, 4), 0)
    for step, index in enumerate(addresses):
        now = start + timedelta(seconds=step)
        with app.app_context(), db.job_session() as session:
            try:
                users.authenticate(session, counsellor,
                                   PASSWORD if index == 0 else "wrong password!",
                                   address=f"203.0.113.{index}", now=now)
                outcome = "signed in"
            except users.LoginRefused as refused:
                outcome = refused.reason
        if index == 0:
            assert outcome == "signed in"
        else:
            assert outcome == ("locked" if failures[index] >= users.MAX_FAILURES
                               else "invalid")
            failures[index] += 1
