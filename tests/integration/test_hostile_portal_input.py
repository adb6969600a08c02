"""Hostile input on the portal, the mail link pages, request headers and the CLI's file
imports: each is a client's mistake and gets a 4xx page or the form again, never a 500, and the
CLI a non-zero exit with a message, never a traceback (issue 22).

Every portal route is walked (the API's are in test_hostile_input.py) by a hub administrator,
a counsellor and an anonymous visitor, with the families the outside probe used on the API:
lone surrogates (%ED%A0%80), bytes that are not UTF-8, NUL and control characters, over-long
values, huge integers, malformed dates, non-numeric page numbers."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from hub.mailbox import links
from tests.helpers import Network
from tests.hub_cli import run_hub
from tests.integration.test_capacity import SERVICES, set_entry
from tests.portal import PASSWORD, Person, make_organization, make_user, text_of

# Values as sent on the wire (percent-encoded), so that bytes no encoder makes can be sent.
# (NUL has its own test: refused before any view, it would hide every other value.)
HOSTILE = ["%ED%A0%80", "%FF%FE", "a%01b%7F", "%0D%0A%07%1B", "9" * 5000, "x" * 20000,
           "2026-13-45", "abc", "-99999999999999999999", "1e999", "NaN", ""]
# Names the portal's forms and query strings read, and a few more.
FIELDS = ["page", "q", "cursor", "since", "until", "from", "to", "status", "next", "region",
          "kind", "lang", "limit", "sort", "date", "month", "year", "organization", "period",
          "email", "password", "name", "note", "reason", "first_name", "last_name",
          "birth_date", "phone", "purpose", "expires_on", "answer", "comment", "language",
          "role", "url", "due", "scheduled_on", "outcome", "message", "capacity", "code",
          "services", "contact", "website", "new_password", "current_password", "token"]
SKIPPED = ("/api", "/oauth", "/webhooks", "/static", "/metrics", "/.well-known",
           "/logout")  # logging out would leave the rest of the walk to an anonymous visitor


def _fill(rule: Rule, value: str, ids: dict[str, str]) -> str:
    """The rule's path with every argument filled: ids with the walker's own (its
    organization, a participant and a referral it works on, so that their pages open), other
    ids with a fresh UUID, words with `value`."""
    path = rule.rule
    for part in path.split("<")[1:]:
        argument = part.split(">")[0]
        converter = argument.split(":")[0] if ":" in argument else "default"
        fresh = ids.get(argument.split(":")[-1]) or str(uuid.uuid4())
        filled = fresh if converter.startswith("uuid") else (
            argument.split("(")[1].split(",")[0] if converter.startswith("any") else value)
        path = path.replace(f"<{argument}>", filled, 1)
    return path


def _routes(app: Flask, person: Walker, value: str = "x" * 20) -> list[tuple[str, set[str]]]:
    # Not erasing the participant: the walk goes on with their pages.
    return [(_fill(rule, value, person.ids), set(rule.methods or ()))
            for rule in app.url_map.iter_rules()
            if not rule.rule.startswith(SKIPPED) and not rule.rule.endswith("/erase")]


def _encoded(shift: int, token: str = "") -> str:
    """Every field once, each with a hostile value (rotated by `shift`)."""
    pairs = [f"{name}={HOSTILE[(i + shift) % len(HOSTILE)]}" for i, name in enumerate(FIELDS)]
    return "&".join(pairs + ([f"csrf_token={token}"] if token else []))


# The walks post many failed logins: from an address of their own, so that the per-address
# lockout they trip does not lock out the tests that run after them (from 127.0.0.1).
ADDRESS = {"REMOTE_ADDR": "198.51.100.22"}


def _client(app: Flask) -> Any:
    client = app.test_client()
    client.environ_base.update(ADDRESS)
    return client


def _logged_in(app: Flask, email: str) -> Any:
    person = Person(app, _client(app))
    response = person.post("/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 302, text_of(response)
    return person.client


@dataclass
class Walker(Person):
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def people(app: Flask) -> list[Walker]:
    """A hub administrator, a counsellor who sent a referral, the receiving partner's staff,
    and an anonymous visitor."""
    coordination = make_organization(app, kind="coordination")
    network = Network(app)
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    leg = sender.refer(receiver)
    work = {"participant_id": leg["participant_id"], "referral_id": leg["id"]}

    def walker(organization_id: str, role: str) -> Walker:
        email = make_user(app, SimpleNamespace(id=uuid.UUID(organization_id)), role)  # type: ignore[arg-type]
        return Walker(app, _logged_in(app, email), {**work, "organization_id": organization_id})

    return [walker(str(coordination.id), "hub_admin"),
            walker(sender.organization_id, "counsellor"),
            walker(receiver.organization_id, "partner_staff"),
            Walker(app, _client(app), {})]


def _no_5xx(person: Person, method: str, path: str, body: str = "") -> str | None:
    if method == "GET":
        response = person.client.get(f"{path}?{body}")
    else:
        response = person.client.post(path, data=body.encode(),
                                      content_type="application/x-www-form-urlencoded")
    if response.status_code >= 500:
        return f"{method} {path} -> {response.status_code}"
    return None


def test_no_portal_page_fails_on_a_hostile_query_string(app: Flask, people: list[Walker]
                                                        ) -> None:
    failures = [failure for person in people for path, methods in _routes(app, person)
                if "GET" in methods for shift in range(3)
                if (failure := _no_5xx(person, "GET", path, _encoded(shift)))]
    assert not failures


def test_no_portal_form_fails_on_hostile_values(app: Flask, people: list[Walker]) -> None:
    failures = []
    for person in people:
        token = person.token()
        for path, methods in _routes(app, person):
            if "POST" in methods:
                failures += [failure for shift in range(3)
                             if (failure := _no_5xx(person, "POST", path,
                                                    _encoded(shift, token)))]
    assert not failures


@pytest.mark.parametrize("path", ["/login", "/directory", "/participants/new", "/a/xyz",
                                  "/jumelage/xyz", "/suivi/xyz"])
def test_a_nul_character_is_refused_with_what_to_fix(app: Flask, people: list[Walker],
                                                     path: str) -> None:
    """PostgreSQL stores no text holding NUL: refused before any view, on both backends."""
    counsellor = people[1]
    for response in (counsellor.client.get(f"{path}?q=a%00b"),
                     counsellor.client.post(path, data=f"csrf_token={counsellor.token()}"
                                            "&email=a%00b".encode(),
                                            content_type="application/x-www-form-urlencoded")):
        assert response.status_code == 400
        assert "NUL" in text_of(response)


def test_peer_enrolment_without_languages_shows_the_form_again(people: list[Walker]) -> None:
    """Found by the walk: an enrolment form with no language typed was a 500."""
    counsellor = people[1]
    response = counsellor.client.post(
        f"/participants/{counsellor.ids['participant_id']}/peer",
        data={"csrf_token": counsellor.token(), "languages": "  "})
    assert response.status_code == 422, response.status_code
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("token", ["%ED%A0%80", "%FF%FE", "a%00b", "%0D%0A", "x" * 5000,
                                   "9" * 5000, "..%2F..%2Fetc"])
def test_a_hostile_token_in_a_mail_link_is_a_404(app: Flask, token: str) -> None:
    """The links mailed to partners and participants: `/a/<token>`, `/jumelage/<token>`,
    `/suivi/<token>`, whatever the token holds."""
    client = _client(app)
    for prefix in ("/a/", "/jumelage/", "/suivi/"):
        assert client.get(prefix + token).status_code in (400, 404), prefix
        assert client.post(prefix + token, data=b"answer=%ED%A0%80",
                           content_type="application/x-www-form-urlencoded"
                           ).status_code in (400, 404), prefix


@pytest.mark.parametrize("headers", [
    {"Accept-Language": "\udcff\udcfe"},  # bytes that are not UTF-8, as WSGI hands them over
    {"Accept-Language": "fr;q=abc, en;q=9" + "9" * 5000 + ", *;q=-1"},
    {"Accept-Language": "x" * 10000},
    {"Cookie": "session=\udcff\udcfe; hub_lang=\udcff"},
    {"Cookie": "session=" + "A" * 8000},
    {"Cookie": "session=.eJx.bad.signature; hub_session=%ED%A0%80"},
    {"Authorization": "Bearer \udcff\udcfe"},
    {"Authorization": "Basic !!!"},
    {"Authorization": "x" * 10000},
])
def test_hostile_headers_on_portal_pages(app: Flask, people: list[Walker],
                                         headers: dict[str, str]) -> None:
    for person in people:
        for path in ("/", "/login", "/directory", "/refer", "/inbox", "/a/xyz"):
            response = person.client.get(path, headers=headers)
            assert response.status_code < 500, (path, response.status_code)
    login = Person(app, _client(app))
    response = login.client.post("/login", data={"email": "x@example.org", "password": "x",
                                                 "csrf_token": login.token()}, headers=headers)
    assert response.status_code < 500


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=300))
def test_any_text_typed_into_the_login_and_search_forms(app: Flask, people: list[Walker],
                                                        text: str) -> None:
    """Any text, the unencodable included, in the fields a stranger and a counsellor reach
    first: the page answers, never a 500."""
    raw = "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass"))
    anonymous, counsellor = people[3], people[1]
    for person, path in ((anonymous, "/login"), (counsellor, "/directory")):
        body = f"email={raw}&password={raw}&q={raw}&csrf_token={person.token()}"
        assert _no_5xx(person, "POST", path, body) is None
        assert _no_5xx(person, "GET", path, f"q={raw}&page={raw}") is None


# --- the CLI's file imports -----------------------------------------------------------------

FILES: dict[str, bytes | None] = {
    "latin1.csv": "Organisme,Région\nCafé,06\n".encode("latin-1"),
    "nul.csv": "Organisme,Région\nA\x00B,06\n".encode(),
    "surrogate.csv": b"Organisme,R\xc3\xa9gion\n\xed\xa0\x80,06\n",
    "long.csv": ("Organisme,Région,Dernière validation\n" + "x" * 100000
                 + ",06,2026-13-45\n").encode(),
    "huge-numbers.csv": ("Organisme,Région,Dernière validation\nA," + "9" * 5000
                         + ",99999999999999999999\n").encode(),
    "control.csv": "Organisme,Région\nA\r\x07\x1bB,06\n".encode(),
    "empty.csv": b"",
    "text.xlsx": b"this is not a workbook",
    "truncated.xlsx": b"PK\x03\x04" + b"\x00" * 30,
    "other-zip.xlsx": None,
    "not-utf8.json": b"\xff\xfe{",
    "deep.json": b"[" * 100000 + b"]" * 100000,
    "surrogate.json": b'{"organizations":[{"name":"\\ud800"}]}',
    "huge-integer.json": b'{"organizations":[' + b"9" * 5000 + b"]}",
    "list.json": b"[1, 2]",
}


@pytest.mark.parametrize("name", FILES)
def test_a_hostile_file_given_to_an_import(tmp_path: Path, name: str) -> None:
    """A directory import reads the file or says what is wrong with it: exit 0 with a report,
    or exit 2 with an error; never a traceback."""
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}"}
    assert run_hub(env, "db", "upgrade").returncode == 0
    path = tmp_path / name
    if FILES[name] is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "a zip, not a workbook")
    else:
        path.write_bytes(FILES[name] or b"")
    command = "import-hsds" if name.endswith(".json") else "import"
    done = run_hub(env, "directory", command, str(path))
    # The test runner records the final sys.exit(0) as a traceback ending "SystemExit: 0".
    traceback = "Traceback" in done.stderr and not done.stderr.rstrip().endswith("SystemExit: 0")
    assert not traceback, done.stderr
    if done.returncode:
        assert done.returncode == 2 and "Error:" in done.stderr, done.stderr
    else:
        assert "Dry run" in done.stdout or "dry run" in done.stdout.lower(), done.stdout


def _file_bytes(name: str) -> bytes:
    data = FILES[name]
    if data is not None:
        return data
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("readme.txt", "a zip, not a workbook")
    return archive.getvalue()


@pytest.mark.parametrize("name", [name for name in FILES if not name.endswith(".json")])
def test_a_hostile_grid_uploaded_on_the_portal(app: Flask, people: list[Walker],
                                               name: str) -> None:
    """The same files uploaded as the partner grid: the dry run's report, or the form again
    saying the file cannot be read."""
    admin = people[0]
    response = admin.client.post(f"/admin/{admin.ids['organization_id']}/grid", data={
        "csrf_token": admin.token(), "grid": (io.BytesIO(_file_bytes(name)), name)},
        content_type="multipart/form-data")
    assert response.status_code in (200, 422), response.status_code
    if response.status_code == 422:
        assert "grid" in text_of(response).lower() or "grille" in text_of(response).lower()


@pytest.mark.parametrize("filename", ["\udcff\udcfe.csv", "a\x00b.csv", "x" * 5000 + ".csv",
                                      "../../etc/passwd.csv", ".csv", "grille.pdf"])
def test_a_hostile_file_name_on_the_grid_upload(app: Flask, people: list[Walker],
                                                filename: str) -> None:
    admin = people[0]
    body = (b"--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            + admin.token().encode() + b"\r\n--B\r\nContent-Disposition: form-data; "
            b"name=\"grid\"; filename=\"" + filename.encode("utf-8", "surrogateescape")
            + b"\"\r\nContent-Type: text/csv\r\n\r\n" + FILES["latin1.csv"] + b"\r\n--B--\r\n")
    response = admin.client.post(f"/admin/{admin.ids['organization_id']}/grid", data=body,
                                 content_type="multipart/form-data; boundary=B")
    assert response.mimetype == "text/html"
    if filename.startswith("\udcff"):
        # A name that is not UTF-8 makes the whole form unreadable: a 400 page that says so.
        assert response.status_code == 400
        assert "UTF-8" in text_of(response)
    else:
        assert response.status_code in (200, 422), response.status_code


def test_the_answer_link_of_a_real_mail_takes_hostile_values(app: Flask) -> None:
    """`/a/<token>` opened with a token the hub made, as the receiving partner's contact
    would: its form and query string get the walk's values; no 500."""
    network = Network(app)
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    entry = set_entry(receiver, services=[SERVICES[0]], contacts=[
        {"name": "Accueil", "email": f"a.{uuid.uuid4().hex[:6]}@example.org",
         "notify_referrals": True}])
    leg = sender.refer(receiver)
    token = links.make_token(app.config["HUB_SETTINGS"].secret_key, uuid.UUID(leg["id"]),
                             uuid.UUID(entry["contacts"][0]["id"]))
    visitor = Walker(app, _client(app), {})
    assert visitor.client.get(f"/a/{token}").status_code == 200
    failures = [failure for shift in range(3) for path in (f"/a/{token}",
                                                          f"/a/{token}/capacity")
                for method in ("GET", "POST")
                if (failure := _no_5xx(visitor, method, path, _encoded(shift)
                                       + f"&action={HOSTILE[shift]}&version={HOSTILE[-3]}"))]
    assert not failures
