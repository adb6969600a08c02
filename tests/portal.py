"""Test helpers for the portal: users in fresh organizations, and a browser-like test client
that logs in and posts forms with their CSRF token."""

from __future__ import annotations

import html
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from hub.accounts import users
from hub.db import db
from hub.directory.organizations import Organization, create_organization

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
# Forms that create something carry a one-time token (hub.accounts.form_tokens), taken from the
# form as a browser would; a test that checks the token itself passes its own.
_CREATING_FORMS = re.compile(r"/(participants/new|consents/new|refer|redirect|opportunities/new)"
                             r"(\?.*)?$")


def text_of(response: TestResponse) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    page = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(page)).strip()


def make_organization(app: Flask, kind: str = "community", region: str = "06",
                      name: str = "") -> Organization:
    with app.app_context(), db.job_session() as session:
        return create_organization(session, name=name or f"Org {secrets.token_hex(4)}",
                                   kind=kind, region=region)


def make_user(app: Flask, organization: Organization, role: str, language: str = "fr",
              name: str = "", french_form: str = "neutral") -> str:
    """A user of `organization`; returns the email (password: PASSWORD)."""
    email = f"{role}-{secrets.token_hex(5)}@example.org"
    with app.app_context(), db.job_session() as session:
        org = session.get(Organization, organization.id)
        users.create_user(session, organization=org, email=email, role=role,
                          password=PASSWORD, name=name or role.title(), language=language,
                          french_form=french_form)
    return email


@dataclass
class Person:
    """A test client used like a browser by one person."""

    app: Flask
    client: Any

    @classmethod
    def anonymous(cls, app: Flask) -> Person:
        return cls(app, app.test_client())

    @classmethod
    def logged_in(cls, app: Flask, email: str, password: str = PASSWORD) -> Person:
        person = cls.anonymous(app)
        response = person.post("/login", {"email": email, "password": password})
        assert response.status_code == 302, text_of(response)
        return person

    def token(self) -> str:
        page = self.client.get("/login").get_data(as_text=True)
        found = _TOKEN.search(page)
        if found is None:  # logged in: /login redirects; any portal page has the logout form
            page = self.client.get("/", follow_redirects=True).get_data(as_text=True)
            found = _TOKEN.search(page)
        assert found is not None
        return found.group(1)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any
             ) -> TestResponse:
        form = dict(data or {})
        form.setdefault("csrf_token", self.token())
        if "form_token" not in form and _CREATING_FORMS.search(path):
            found = _FORM_TOKEN.search(self.client.get(path).get_data(as_text=True))
            if found is not None:
                form["form_token"] = found.group(1)
        return self.client.post(path, data=form, **kwargs)


def ids_in(response: TestResponse, prefix: str) -> list[uuid.UUID]:
    """Every id found in links starting with `prefix` (e.g. "/legs/"), in page order."""
    found = re.findall(re.escape(prefix) + r"([0-9a-f-]{36})", response.get_data(as_text=True))
    return [uuid.UUID(value) for value in dict.fromkeys(found)]
