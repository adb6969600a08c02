"""Loop closure for everyone (design §14): `GET /api/v1/reports/loop-closure` and the portal's
page, for each organization about itself as sender and receiver, and for coordinators about
the network, with the unmet demand (declines for lack of room per region and pathway)."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.db import db, utcnow
from hub.directory.organizations import Organization
from hub.referrals.loop_closure import figures
from hub.referrals.reports import median
from tests.helpers import Network
from tests.portal import Person, make_user, text_of

PATH = "/api/v1/reports/loop-closure"


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def period() -> dict[str, str]:
    today = utcnow().date()
    return {"from": str(today - timedelta(days=1)), "to": str(today)}


def test_each_organization_sees_its_own_loop_closure_and_coordinators_the_network(
        app: Flask, network: Network) -> None:
    sender = network.partner()
    receiver = network.partner(kind="regional_partner", region="09")
    legs = [sender.refer(receiver, pathway="settlement") for _ in range(4)]
    for leg in legs[:3]:
        assert receiver.act(leg["id"], "acknowledge").status_code == 200
    assert receiver.act(legs[0]["id"], "accept").status_code == 200
    assert receiver.act(legs[0]["id"], "start").status_code == 200
    assert receiver.act(legs[0]["id"], "complete",
                        {"outcome": "settled"}).status_code == 200
    assert receiver.act(legs[1]["id"], "decline",
                        {"reason": "no_capacity"}).status_code == 200

    mine = sender.get(PATH, query_string=period())
    assert mine.status_code == 200, mine.get_data(as_text=True)
    as_sender = mine.get_json()["as_sender"]
    assert (as_sender["legs"], as_sender["closed"], as_sender["closed_with_outcome"]) == (4, 2, 1)
    assert as_sender["share_closed_with_outcome"] == 0.25
    assert as_sender["median_hours_to_acknowledge"] == 0.0
    assert as_sender["answered"] == 3 and as_sender["answered_on_time"] == 3
    assert as_sender["share_answered_on_time"] == 1.0  # the 4th is not late yet
    assert mine.get_json()["as_receiver"]["legs"] == 0
    assert "network" not in mine.get_json()

    theirs = receiver.get(PATH, query_string=period()).get_json()
    assert theirs["as_receiver"]["legs"] == 4 and theirs["as_sender"]["legs"] == 0
    assert theirs["as_receiver"]["median_hours_to_decide"] == 0.0

    refused = sender.get(PATH, query_string={**period(),
                                             "organization_id": receiver.organization_id})
    assert refused.status_code == 403
    assert refused.content_type == "application/problem+json"
    backwards = sender.get(PATH, query_string={"from": "2026-12-01", "to": "2026-11-01"})
    assert backwards.status_code == 422 and "query.to" in backwards.get_json()["errors"]

    coordinator = network.partner(kind="coordination")
    watched = coordinator.get(PATH, query_string=period()).get_json()
    assert watched["network"]["legs"] >= 4
    assert [row["declines_for_capacity"] for row in watched["unmet_demand"]
            if (row["region"], row["pathway"]) == ("09", "settlement")] == [1]
    other = coordinator.get(PATH, query_string={**period(),
                                                "organization_id": receiver.organization_id})
    assert other.status_code == 200
    assert other.get_json()["as_receiver"]["legs"] == 4

    # The same figures as a spreadsheet: a row per set of legs, then the unmet demand.
    sheet = coordinator.get(PATH, query_string={**period(), "format": "csv"})
    assert sheet.status_code == 200 and sheet.mimetype == "text/csv"
    assert "attachment" in sheet.headers["Content-Disposition"]
    rows = csv_rows(sheet)
    assert [row["section"] for row in rows][:3] == ["as_sender", "as_receiver", "network"]
    assert rows[2]["legs"] == str(watched["network"]["legs"])
    assert {"section": "unmet_demand", "region": "09", "pathway": "settlement",
            "declines_for_capacity": "1"}.items() <= next(
        row for row in rows if row["region"] == "09").items()
    own = csv_rows(sender.get(PATH, query_string={**period(), "format": "csv"}))
    assert [(row["section"], row["legs"], row["closed_with_outcome"],
             row["share_closed_with_outcome"], row["median_hours_to_decide"]) for row in own] == [
        ("as_sender", "4", "1", "0.25", "0.0"), ("as_receiver", "0", "0", "", "")]


def test_the_portal_page_shows_the_figures_in_french(app: Flask, network: Network) -> None:
    sender = network.partner()
    receiver = network.partner()
    for _ in range(3):
        sender.refer(receiver)
    with app.app_context(), db.job_session() as session:
        organization = session.get(Organization, uuid.UUID(sender.organization_id))
        assert organization is not None
        email = make_user(app, organization, "counsellor")
    person = Person.logged_in(app, email)
    page = text_of(person.get("/loop-closure"))
    assert "Boucler la boucle" in page
    assert "Orientations 3 0" in page  # as sender, as receiver
    assert "Part complétée avec un résultat 0,0 %" in page, page
    assert "Demande insatisfaite" not in page  # coordinators only
    # The page's CSV link gives the same figures for the period shown.
    link = re.search(r'href="(/loop-closure\.csv\?[^"]+)"[^>]*>Télécharger en CSV',
                     person.get("/loop-closure").get_data(as_text=True))
    assert link is not None
    sheet = person.get(html.unescape(link.group(1)))
    assert sheet.status_code == 200 and sheet.mimetype == "text/csv"
    assert [(row["section"], row["legs"]) for row in csv_rows(sheet)] == [
        ("as_sender", "3"), ("as_receiver", "0")]
    bad = person.get("/loop-closure?from=2026-12-01&to=2026-01-01")
    assert bad.status_code == 422


legs_strategy = st.lists(st.builds(
    lambda status, acknowledged, decided, due_in, outcome: (status, acknowledged, decided,
                                                            due_in, outcome),
    st.sampled_from(["sent", "acknowledged", "accepted", "in_progress", "declined",
                     "completed", "cancelled", "expired", "forwarded"]),
    st.one_of(st.none(), st.integers(0, 500)),
    st.integers(0, 500), st.integers(-200, 200), st.booleans()), max_size=30)


@settings(max_examples=200, deadline=None)
@given(legs_strategy)
def test_loop_closure_figures_are_consistent_whatever_the_legs(rows: list[Any]) -> None:
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    now = start + timedelta(hours=400)
    legs = []
    for status, acknowledged, decided, due_in, outcome in rows:
        acknowledged_at = start + timedelta(hours=acknowledged) if acknowledged is not None \
            and status not in ("sent", "expired") else None
        closed = status in ("declined", "completed", "cancelled", "expired", "forwarded")
        legs.append(SimpleNamespace(
            status=status, outcome="settled" if status == "completed" and outcome else None,
            created_at=start, acknowledged_at=acknowledged_at,
            accepted_at=(acknowledged_at + timedelta(hours=decided)
                         if acknowledged_at and status in ("accepted", "in_progress",
                                                           "completed") else None),
            closed_at=start + timedelta(hours=501 + decided) if closed else None,
            acknowledge_by=start + timedelta(hours=200 + due_in)))
    found = figures(legs, now)
    assert found["legs"] == len(legs)
    assert 0 <= found["closed_with_outcome"] <= found["closed"] <= found["legs"]
    assert 0 <= found["answered_on_time"] <= found["answered"] <= found["legs"]
    for share in ("share_closed_with_outcome", "share_answered_on_time"):
        assert found[share] is None or 0 <= found[share] <= 1
    assert (found["share_closed_with_outcome"] is None) == (not legs)
    acknowledged = [(leg.acknowledged_at - leg.created_at).total_seconds() / 3600
                    for leg in legs if leg.acknowledged_at]
    assert found["median_hours_to_acknowledge"] == (median([round(h, 1) for h in acknowledged])
                                                    if acknowledged else None)
