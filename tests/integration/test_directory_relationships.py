"""Relationship notes and reports of outdated entries over the API (issue 20, design §13): a
note is private to the writer's organization, any of its systems or users edits it, every
version is kept; any partner may report an entry as out of date, the organization gets
`organization.outdated_reported` and lists the open reports until it validates its entry."""

from __future__ import annotations

import secrets
import uuid

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.accounts import clients
from hub.db import db
from hub.directory.organizations import Organization
from tests.helpers import Network, Partner

PROBLEM = "application/problem+json"


def second_client(network: Network, partner: Partner) -> Partner:
    """Another partner system of the same organization."""
    with network.app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(partner.organization_id))
        assert organization is not None
        client, secret = clients.create_client(session, organization=organization)
        return Partner(network.app, partner.organization_id, partner.name, client.client_id,
                       secret)


def test_a_note_is_private_to_its_organization_and_keeps_its_history(network: Network
                                                                     ) -> None:
    counsellors = network.partner()
    partner = network.partner(kind="public_institution", region="01")
    other = network.partner()
    path = f"/api/v1/organizations/{partner.organization_id}/relationship"

    empty = counsellors.get(path)
    assert empty.status_code == 200
    assert empty.get_json() == {"organization_id": partner.organization_id,
                                "collaboration": None, "notes": None, "updated_by": None,
                                "updated_at": None}

    first = counsellors.call("PUT", path, json={"collaboration": "Accompagnement à l'arrivée",
                                                "notes": "Appeler le CLSC avant l'arrivée"})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["updated_by"] == f"client:{counsellors.client_id}"
    # Another system of the same organization edits the same note.
    colleague = second_client(network, counsellors)
    assert colleague.get(path).get_json()["collaboration"] == "Accompagnement à l'arrivée"
    second = colleague.call("PUT", path, json={"collaboration": "Séjours exploratoires",
                                               "notes": None})
    assert second.get_json()["collaboration"] == "Séjours exploratoires"
    assert second.get_json()["notes"] is None
    assert second.get_json()["updated_by"] == f"client:{colleague.client_id}"
    # Writing the same text again adds no version.
    assert counsellors.call("PUT", path, json={"collaboration": "Séjours exploratoires",
                                               "notes": ""}).status_code == 200

    history = counsellors.get(path + "/history?limit=1")
    assert [v["collaboration"] for v in history.get_json()["items"]] == [
        "Séjours exploratoires"]
    rest = counsellors.get(path + f"/history?limit=5&cursor={history.get_json()['next_cursor']}")
    assert [v["collaboration"] for v in rest.get_json()["items"]] == [
        "Accompagnement à l'arrivée"]
    assert rest.get_json()["next_cursor"] is None

    # Another organization sees its own (empty) note, never this one.
    assert other.get(path).get_json()["collaboration"] is None
    assert other.get(path + "/history").get_json()["items"] == []
    # Nor does the partner the note is about.
    about_them = f"/api/v1/organizations/{counsellors.organization_id}/relationship"
    assert partner.get(about_them).get_json()["collaboration"] is None


def test_notes_are_refused_with_what_to_fix(network: Network) -> None:
    counsellors = network.partner()
    partner = network.partner()
    path = f"/api/v1/organizations/{partner.organization_id}/relationship"
    missing = counsellors.call("PUT", path, json={"notes": "x"})
    assert missing.status_code == 422 and missing.content_type == PROBLEM
    assert "collaboration" in missing.get_json()["errors"]
    too_long = counsellors.call("PUT", path, json={"collaboration": "x" * 501, "notes": None})
    assert too_long.status_code == 422 and too_long.content_type == PROBLEM
    unknown = counsellors.get(f"/api/v1/organizations/{uuid.uuid4()}/relationship")
    assert unknown.status_code == 404 and unknown.content_type == PROBLEM
    read_only = network.partner(scopes=["directory:read"])
    refused = read_only.call("PUT", path, json={"collaboration": "x", "notes": None})
    assert refused.status_code == 403 and refused.content_type == PROBLEM


def test_any_partner_reports_an_outdated_entry_and_validation_closes_it(network: Network
                                                                        ) -> None:
    entry = network.partner(kind="regional_partner", region="01")
    reporter = network.partner()
    bystander = network.partner()
    path = f"/api/v1/organizations/{entry.organization_id}"

    reported = reporter.post(path + "/report-outdated",
                             {"note": "La personne-ressource a quitté en janvier"},
                             headers={"Idempotency-Key": "rapport-1"})
    assert reported.status_code == 201, reported.get_json()
    report = reported.get_json()
    assert (report["organization_id"], report["reported_by_organization_id"],
            report["resolved_at"]) == (entry.organization_id, reporter.organization_id, None)
    replay = reporter.post(path + "/report-outdated",
                           {"note": "La personne-ressource a quitté en janvier"},
                           headers={"Idempotency-Key": "rapport-1"})
    assert replay.get_json()["id"] == report["id"]

    # The organization is told, without the note in the event log; nobody else is.
    events = [e for e in entry.get("/api/v1/events?limit=500").get_json()["items"]
              if e["type"] == "organization.outdated_reported"]
    assert len(events) == 1, entry.get("/api/v1/events?limit=500").get_json()
    data = events[0]["data"]
    assert data["report"]["id"] == report["id"]
    assert data["report"]["reported_by_organization"]["id"] == reporter.organization_id
    assert "note" not in data["report"]
    assert not [e for e in bystander.get("/api/v1/events?limit=500").get_json()["items"]
                if e["type"] == "organization.outdated_reported"]

    listed = entry.get(path + "/outdated-reports")
    assert [(r["id"], r["note"]) for r in listed.get_json()["items"]] == [
        (report["id"], "La personne-ressource a quitté en janvier")]
    # Another organization may not read the list (it does not learn it exists: 403 on an
    # entry it does not keep, as for editing).
    assert reporter.get(path + "/outdated-reports").status_code == 403

    assert entry.post(path + "/validate").status_code == 200
    assert entry.get(path + "/outdated-reports").get_json()["items"] == []


def test_reports_are_refused_with_what_to_fix(network: Network) -> None:
    entry = network.partner()
    own = entry.post(f"/api/v1/organizations/{entry.organization_id}/report-outdated", {})
    assert own.status_code == 422 and own.content_type == PROBLEM
    assert "your own organization" in own.get_json()["errors"]["organization_id"][0]
    other = network.partner()
    long_note = other.post(f"/api/v1/organizations/{entry.organization_id}/report-outdated",
                           {"note": "x" * 2001})
    assert long_note.status_code == 422 and "note" in long_note.get_json()["errors"]
    unknown = other.post(f"/api/v1/organizations/{uuid.uuid4()}/report-outdated", {})
    assert unknown.status_code == 404 and unknown.content_type == PROBLEM


# Writers and partners are indexes into three organizations made once per backend (app).
_MEMBERS: dict[Flask, list[Partner]] = {}
_WRITES = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2),
                             st.sampled_from(["Stages", "Financement", "Séjours", None]),
                             st.booleans()), min_size=1, max_size=8)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_WRITES)
def test_each_organization_reads_only_its_own_last_note(app: Flask, network: Network,
                                                        writes: list[tuple[int, int, str | None,
                                                                           bool]]) -> None:
    """Whatever the organizations write about each other, in any order, each reads back its
    own last words about a partner, and never another organization's."""
    if app not in _MEMBERS:
        _MEMBERS[app] = [network.partner() for _ in range(3)]
    members = _MEMBERS[app]
    last: dict[tuple[int, int], dict[str, str | None]] = {}
    for writer, partner, collaboration, with_notes in writes:
        # A token per write: a note read back can only be the one written.
        body = {"collaboration": collaboration,
                "notes": secrets.token_hex(4) if with_notes else None}
        answer = members[writer].call(
            "PUT", f"/api/v1/organizations/{members[partner].organization_id}/relationship",
            json=body)
        assert answer.status_code == 200
        last[(writer, partner)] = body
    written_tokens = {body["notes"] for body in last.values() if body["notes"]}
    for writer in range(3):
        for partner in range(3):
            read = members[writer].get(
                f"/api/v1/organizations/{members[partner].organization_id}/relationship"
            ).get_json()
            if (writer, partner) in last:
                assert {k: read[k] for k in ("collaboration", "notes")} == last[(writer,
                                                                                  partner)]
            else:
                # Not written by this organization in this run: none of the others' words.
                assert read["notes"] not in written_tokens


def test_the_new_kinds_are_searched_and_refused_like_the_others(network: Network) -> None:
    word = secrets.token_hex(3)
    cisss = network.partner(kind="public_institution", region="01", name=f"CISSS {word}")
    other = network.partner(kind="other", region="01", name=f"Fromagerie {word}")
    reader = network.partner()

    def found(kind: str) -> set[str]:
        answer = reader.get(f"/api/v1/organizations?q={word}&kind={kind}")
        assert answer.status_code == 200
        return {o["id"] for o in answer.get_json()["items"]}

    assert found("public_institution") == {cisss.organization_id}
    assert found("other") == {other.organization_id}
    refused = reader.get("/api/v1/organizations?kind=astrologie")
    assert refused.status_code == 422 and refused.content_type == PROBLEM
    # An organization may not turn itself into another kind; the kinds are the same list.
    assert cisss.call("PATCH", f"/api/v1/organizations/{cisss.organization_id}",
                      json={"kind": "other"}).status_code == 403
