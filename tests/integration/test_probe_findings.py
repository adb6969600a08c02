"""The smaller findings of the outside probe (issue 22): an inbound webhook's 401 tells an
unsigned caller nothing; a hub administrator cannot demote its own body; names are one line;
API answers are not stored by caches; the API documentation has a CSP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from hub.accounts import clients
from hub.db import db
from hub.directory.organizations import create_organization
from tests.helpers import PARTICIPANT, Network
from tests.receiver import Receiver, running_receiver
from webhooks import signing


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


def test_an_unsigned_caller_learns_nothing_of_an_organizations_endpoints(
        app: Flask, network: Network, receiver: Receiver) -> None:
    with_endpoint, without_endpoint = network.partner(), network.partner()
    registered = with_endpoint.post("/api/v1/webhook-endpoints", {
        "url": receiver.url_for("/in"), "event_types": ["*"]})
    assert registered.status_code == 201, registered.get_data(as_text=True)
    body = json.dumps({"action": "acknowledge", "referral_id": str(uuid.uuid4())}).encode()
    guessed = signing.signature_headers([signing.new_secret()], "msg_probe",
                                        datetime.now(UTC), body)

    def answer(organization_id: str) -> TestResponse:
        return app.test_client().post(f"/webhooks/inbound/{organization_id}", data=body,
                                      headers={**guessed, "Content-Type": "application/json"})

    answers = [answer(with_endpoint.organization_id), answer(without_endpoint.organization_id),
               answer(str(uuid.uuid4()))]
    assert {a.status_code for a in answers} == {401}
    details = {a.get_json()["detail"] for a in answers}
    assert len(details) == 1, details  # the same words whatever the organization
    assert "secret(s)" not in details.pop()
    # A request's own fault is still said as it is: it tells nothing of the organization.
    stale = signing.signature_headers([signing.new_secret()], "msg_old",
                                      datetime(2020, 1, 1, tzinfo=UTC), body)
    old = app.test_client().post(f"/webhooks/inbound/{with_endpoint.organization_id}",
                                 data=body, headers=stale)
    assert old.status_code == 401 and "too old" in old.get_json()["detail"]


def test_a_hub_administrator_cannot_demote_its_own_body(app: Flask, network: Network) -> None:
    admin = network.partner(kind="coordination", scopes=list(clients.SCOPES))
    other = network.partner(kind="coordination")
    demoted = admin.call("PATCH", f"/api/v1/organizations/{admin.organization_id}",
                         json={"kind": "community"})
    assert demoted.status_code == 403, demoted.get_data(as_text=True)
    assert "its own" in demoted.get_json()["detail"]
    assert admin.get(f"/api/v1/organizations/{admin.organization_id}").get_json()[
        "kind"] == "coordination"
    # Another body's kind is still the administrator's to change.
    changed = admin.call("PATCH", f"/api/v1/organizations/{other.organization_id}",
                         json={"kind": "regional_partner"})
    assert changed.status_code == 200, changed.get_data(as_text=True)


@pytest.mark.parametrize("name", ["Centre\r\nBcc: x@example.org", "Nom\n", "Tab\there",
                                  "Nul\x00", "C1\x85"])
def test_names_are_one_line(app: Flask, network: Network, name: str) -> None:
    partner = network.partner()
    refused = partner.call("PATCH", f"/api/v1/organizations/{partner.organization_id}",
                           json={"name": name})
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "name" in refused.get_json()["errors"]
    service = partner.call("PATCH", f"/api/v1/organizations/{partner.organization_id}",
                           json={"services": [{"name": name, "pathways": ["employment"]}]})
    assert service.status_code == 422, service.get_data(as_text=True)
    person = partner.post("/api/v1/participants", {**PARTICIPANT, "given_name": name})
    assert person.status_code == 422 and "given_name" in person.get_json()["errors"]
    if name.strip() != name:
        return  # create_organization strips the ends: nothing left to refuse there
    with app.app_context(), db.job_session() as session, pytest.raises(ValueError,
                                                                       match="one line"):
        create_organization(session, name=name, kind="community", region="06")


def test_api_answers_are_not_stored_and_the_docs_have_a_csp(app: Flask,
                                                            network: Network) -> None:
    partner = network.partner()
    participant = partner.register_participant()
    read = partner.get(f"/api/v1/participants/{participant['id']}")
    assert read.status_code == 200 and read.headers["Cache-Control"] == "no-store"
    problem = partner.get(f"/api/v1/participants/{uuid.uuid4()}")
    assert problem.status_code == 404 and problem.headers["Cache-Control"] == "no-store"
    docs = app.test_client().get("/api/docs")
    csp = docs.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
