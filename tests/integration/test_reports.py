"""Funder reports: per organization and period, counted only from participants whose
`outcome_reporting` consent covers the organization, as JSON and CSV, with small counts
withheld (HUB_REPORT_MIN_CELL)."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask

from tests.helpers import Network, Partner

REPORT = "/api/v1/reports/funder"


@pytest.fixture
def min_cell(app: Flask) -> Iterator[Any]:
    """Set HUB_REPORT_MIN_CELL for one test: `min_cell(1)`; the default is put back after."""
    settings = app.config["HUB_SETTINGS"]

    def set_to(value: int) -> None:
        app.config["HUB_SETTINGS"] = dataclasses.replace(settings, report_min_cell=value)

    yield set_to
    app.config["HUB_SETTINGS"] = settings


def csv_rows(partner: Partner, query: dict[str, str]) -> list[dict[str, str]]:
    exported = partner.get(REPORT, query_string={**query, "format": "csv"})
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))


def test_only_consenting_participants_are_counted(network: Network, min_cell: Any) -> None:
    min_cell(1)  # every figure shown, to check each one
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    today = date.today()
    period = {"from": (today - timedelta(days=1)).isoformat(),
              "to": (today + timedelta(days=1)).isoformat()}

    placed = sender.register_participant()["id"]  # counted by both organizations
    sender.grant_consent(placed, receiver, sender, purpose="outcome_reporting")
    first = sender.refer(receiver, placed, pathway="employment")
    for action, body in (("acknowledge", None), ("accept", None), ("start", None),
                         ("complete", {"outcome": "employed"})):
        assert receiver.act(first["id"], action, body).status_code == 200

    settled = sender.register_participant()["id"]  # network-wide consent
    sender.grant_consent(settled, purpose="outcome_reporting")
    second = sender.refer(receiver, settled, pathway="settlement")
    receiver.act(second["id"], "acknowledge")
    receiver.act(second["id"], "decline", {"reason": "out_of_region"})

    silent = sender.refer(receiver, pathway="employment")  # no outcome_reporting consent
    receiver.act(silent["id"], "acknowledge")
    withdrawn = sender.register_participant()["id"]
    consent = sender.grant_consent(withdrawn, receiver, purpose="outcome_reporting")
    sender.refer(receiver, withdrawn, pathway="training")
    sender.post(f"/api/v1/consents/{consent['id']}/withdraw", {})

    response = receiver.get(REPORT, query_string=period)
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["organization_id"] == receiver.organization_id
    assert report["participants_counted"] == 2
    assert report["legs_left_out_without_consent"] == 2
    assert report["received"] == {"total": 2, "by_pathway": {"employment": 1, "settlement": 1}}
    assert report["sent"] == {"total": 0, "by_pathway": {}}
    ack = report["acknowledgement"]
    assert ack["acknowledged"] == 2 and ack["due"] == 2 and ack["answered_on_time"] == 2
    assert ack["share_answered_on_time"] == 1.0
    assert 0 <= ack["median_hours"] <= ack["p90_hours"] < 1
    assert report["outcomes"]["received"] == {"employment": {"employed": 1}}

    mine = sender.get(REPORT, query_string=period).get_json()
    assert mine["sent"] == {"total": 2, "by_pathway": {"employment": 1, "settlement": 1}}
    assert mine["outcomes"]["sent"] == {"employment": {"employed": 1}}

    assert report["suppression"] == {"min_cell": 1, "suppressed": []}

    rows = csv_rows(receiver, period)
    assert {"section": "referrals", "direction": "received", "pathway": "all", "outcome": "",
            "value": "2", "suppressed": ""} in rows
    assert {"section": "outcomes", "direction": "received", "pathway": "employment",
            "outcome": "employed", "value": "1", "suppressed": ""} in rows

    past = receiver.get(REPORT, query_string={"from": "2020-01-01", "to": "2020-12-31"})
    assert past.get_json()["received"]["total"] == 0


def test_another_organizations_report_is_for_coordinators(network: Network) -> None:
    partner, other = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    query = {"from": "2026-01-01", "to": "2026-12-31", "organization_id": other.organization_id}
    refused = partner.get(REPORT, query_string=query)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    allowed = coordinator.get(REPORT, query_string=query)
    assert allowed.status_code == 200
    assert allowed.get_json()["organization_id"] == other.organization_id


def test_bad_periods_are_refused(network: Network) -> None:
    partner = network.partner()
    for query in ({"from": "2026-02-01", "to": "2026-01-01"}, {"to": "2026-01-01"},
                  {"from": "hier", "to": "2026-01-01"},
                  {"from": "2026-01-01", "to": "2026-02-01", "format": "pdf"},
                  {"from": "9999-12-30", "to": "9999-12-31"},
                  {"from": "2000-01-01", "to": "2026-01-01"}):
        response = partner.get(REPORT, query_string=query)
        assert response.status_code == 422, (query, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"


def test_small_counts_are_withheld_in_json_and_csv(network: Network, min_cell: Any) -> None:
    """The default threshold, 5: six employment referrals are shown; two settlement ones are
    withheld, and so is the next smallest cell (five in training), so that the total less the
    rest does not give the two back; one outcome of its kind is withheld too."""
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    today = date.today()
    period = {"from": (today - timedelta(days=1)).isoformat(),
              "to": (today + timedelta(days=1)).isoformat()}
    for pathway, legs in (("employment", 6), ("training", 5), ("settlement", 2)):
        for n in range(legs):
            participant = sender.register_participant()["id"]
            sender.grant_consent(participant, purpose="outcome_reporting")
            leg = sender.refer(receiver, participant, pathway=pathway)
            if pathway == "employment" and n < 5:
                outcome = "employed"
            elif pathway == "training" and n == 0:
                outcome = "in_training"
            else:
                continue
            for action, body in (("acknowledge", None), ("accept", None), ("start", None),
                                 ("complete", {"outcome": outcome})):
                assert receiver.act(leg["id"], action, body).status_code == 200

    report = receiver.get(REPORT, query_string=period).get_json()
    assert report["participants_counted"] == 13
    assert report["received"] == {"total": 13, "by_pathway": {
        "employment": 6, "settlement": None, "training": None}}
    assert report["outcomes"]["received"] == {"employment": {"employed": 5},
                                              "training": {"in_training": None}}
    ack = report["acknowledgement"]
    assert ack["acknowledged"] == 6 and ack["median_hours"] is not None
    assert report["suppression"] == {"min_cell": 5, "suppressed": [
        "received.by_pathway.settlement", "received.by_pathway.training",
        "outcomes.received.training.in_training"]}
    assert "2" not in {str(v) for v in report["received"]["by_pathway"].values()}

    rows = csv_rows(receiver, period)
    assert {"section": "referrals", "direction": "received", "pathway": "settlement",
            "outcome": "", "value": "<5", "suppressed": "yes"} in rows
    assert {"section": "referrals", "direction": "received", "pathway": "employment",
            "outcome": "", "value": "6", "suppressed": ""} in rows

    # A threshold of 10 also withholds the six, the total of thirteen stays.
    min_cell(10)
    stricter = receiver.get(REPORT, query_string=period).get_json()
    assert stricter["received"] == {"total": 13, "by_pathway": dict.fromkeys(
        ("employment", "settlement", "training"))}
    assert stricter["acknowledgement"]["median_hours"] is None
    assert "acknowledgement.median_hours" in stricter["suppression"]["suppressed"]
