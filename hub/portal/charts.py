"""The coordinator's charts for a period: how long each receiving organization takes to
acknowledge a referral (median, 90th percentile, count), the outcomes of each pathway, and
retention (who is still in the destination region at the 180-day follow-up).

Figures come from `hub.referrals.reports` (the funder reports' rules: legs count in the period they
were sent; outcomes only with the participant's `outcome_reporting` consent).  Charts are
plain SVG drawn here, server-side (the CSP allows no script), each beside a table of the same
figures for screen readers, and each downloadable as CSV.  No participant appears."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Response, current_app, request
from flask_babel import format_decimal
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from hub.accounts.users import MONITORING_ROLES
from hub.api.common import csv_download
from hub.api.reports import ReportArgs
from hub.db import db, utcnow
from hub.directory.organizations import QUEBEC_REGIONS, Organization
from hub.peers import matching
from hub.portal.common import login_required, page, portal_blueprint
from hub.portal.labels import label
from hub.referrals import reports

blp = portal_blueprint("charts", __name__)

DEFAULT_DAYS = 90
BAR_HEIGHT = 22
LABEL_WIDTH = 300
BAR_WIDTH = 420  # the longest bar
VALUE_WIDTH = 250  # the figures written after a bar


def _period() -> tuple[date, date, str | None]:
    """The chosen days (inclusive), by default the last 90; an error message if invalid."""
    today = utcnow().date()
    chosen = {"from": request.args.get("from") or str(today - timedelta(days=DEFAULT_DAYS)),
              "to": request.args.get("to") or str(today)}
    try:
        loaded = ReportArgs().load(chosen)
    except ValidationError:
        return today - timedelta(days=DEFAULT_DAYS), today, _(
            "Give the period as two dates, the first not after the second, at most five "
            "years apart.")
    return loaded["start"], loaded["end"], None


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return (datetime.combine(first, time(), UTC),
            datetime.combine(last + timedelta(days=1), time(), UTC))


def bars(rows: list[dict[str, Any]], value: str, behind: str | None = None
         ) -> dict[str, Any]:
    """Geometry of a horizontal bar chart: one bar per row, `value` scaled to BAR_WIDTH (and
    a lighter bar `behind` it, e.g. the 90th percentile behind the median)."""
    top = max([row[value] or 0 for row in rows] + [row[behind] or 0 for row in rows
                                                   if behind] + [0])
    scale = BAR_WIDTH / top if top else 0
    drawn = [{"y": index * BAR_HEIGHT, "label": row["label"], "text": row["text"],
              "width": round((row[value] or 0) * scale, 1),
              "behind": round((row[behind] or 0) * scale, 1) if behind else 0}
             for index, row in enumerate(rows)]
    return {"bars": drawn, "height": max(len(rows), 1) * BAR_HEIGHT,
            "label_width": LABEL_WIDTH, "width": LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH}


def _acknowledgement(first: date, last: date) -> list[dict[str, Any]]:
    rows = reports.acknowledgement_by_receiver(db.session, *_bounds(first, last))
    organizations = {o.id: o for o in db.session.scalars(select(Organization).where(
        Organization.id.in_([row["organization_id"] for row in rows])))} if rows else {}
    for row in rows:
        organization = organizations.get(row["organization_id"])
        row["name"] = organization.name if organization else str(row["organization_id"])
        row["region"] = organization.region if organization else ""
        row["region_name"] = QUEBEC_REGIONS.get(row["region"], row["region"])
        row["label"] = row["name"]
        row["text"] = _("median %(median)s h, 90th percentile %(p90)s h",
                        median=_hours(row["median_hours"]), p90=_hours(row["p90_hours"]))
    return rows


def _outcomes(first: date, last: date) -> dict[str, Any]:
    min_cell = current_app.config["HUB_SETTINGS"].report_min_cell
    found = reports.outcomes_by_pathway(db.session, *_bounds(first, last), utcnow(),
                                        min_cell=min_cell)
    rows = [{"pathway": pathway, "outcome": outcome, "legs": count,
             "label": f"{label('pathway', pathway)} — {label('outcome', outcome)}",
             "text": _count(count, min_cell)}
            for pathway, outcomes in found["by_pathway"].items()
            for outcome, count in outcomes.items()]
    return {**found, "rows": rows}


def _retention(first: date, last: date) -> dict[str, Any]:
    """The network's retention (`reports.retention_report`), each row with its labels and
    counts as shown ("<5" where withheld)."""
    min_cell = current_app.config["HUB_SETTINGS"].report_min_cell
    found = reports.retention_report(db.session, *_bounds(first, last), utcnow(),
                                     min_cell=min_cell)
    for row in found["rows"]:
        row["region_name"] = QUEBEC_REGIONS.get(row["region"], row["region"])
        row["label"] = f"{row['region_name']} — {label('pathway', row['pathway'])}"
        row["shown"] = {name: _count(row[name], min_cell) for name in reports.RETENTION_COUNTS}
        row["text"] = _("%(still)s still there of %(recorded)s reached at 180 days",
                        still=row["shown"]["in_destination_region"],
                        recorded=row["shown"]["followups_recorded"])
    return found


def _count(value: int | None, min_cell: int) -> str:
    """A count as shown, "<5" where it is withheld (`reports.outcomes_by_pathway`)."""
    return f"<{min_cell}" if value is None else str(value)


def _hours(value: float | None) -> str:
    """Hours with one decimal, written as the user's language writes numbers (0,5 in French)."""
    return "—" if value is None else format_decimal(value, format="0.0")


@blp.get("/network/charts")
@login_required(MONITORING_ROLES)
def charts() -> Response:
    first, last, error = _period()
    acknowledgement = _acknowledgement(first, last)
    outcomes = _outcomes(first, last)
    retention = _retention(first, last)
    min_cell = current_app.config["HUB_SETTINGS"].report_min_cell
    peers = [{"region_name": QUEBEC_REGIONS.get(row["region"], row["region"]),
              "available_peers": _count(row["available_peers"], min_cell),
              "matches": {status: _count(count, min_cell)
                          for status, count in row["matches"].items()}}
             for row in matching.counts_by_region(db.session, min_cell)["items"]]
    return page("portal/charts.html", 422 if error else 200, error=error, peers=peers,
                retention=retention, retention_chart=bars(retention["rows"],
                                                          "in_destination_region"),
                first=first, last=last, acknowledgement=acknowledgement,
                acknowledgement_chart=bars(acknowledgement, "median_hours", "p90_hours"),
                outcomes=outcomes, outcomes_chart=bars(outcomes["rows"], "legs"))


@blp.get("/network/charts/acknowledgement.csv")
@login_required(MONITORING_ROLES)
def acknowledgement_csv() -> Response:
    first, last, _error = _period()
    return _csv(_("time-to-acknowledge"), first, last,
                ["organization_id", "organization", "region", "acknowledged", "median_hours",
                 "p90_hours"],
                [[row["organization_id"], row["name"], row["region"],
                  row["acknowledged"], row["median_hours"], row["p90_hours"]]
                 for row in _acknowledgement(first, last)])


@blp.get("/network/charts/outcomes.csv")
@login_required(MONITORING_ROLES)
def outcomes_csv() -> Response:
    first, last, _error = _period()
    return _csv(_("outcomes-by-pathway"), first, last, ["pathway", "outcome", "legs"],
                [[row["pathway"], row["outcome"], row["text"]]
                 for row in _outcomes(first, last)["rows"]])


@blp.get("/network/charts/retention.csv")
@login_required(MONITORING_ROLES)
def retention_csv() -> Response:
    first, last, _error = _period()
    report = _retention(first, last)
    return _csv(_("retention"), first, last, list(reports.RETENTION_CSV_COLUMNS),
                [[row[name] for name in reports.RETENTION_CSV_COLUMNS]
                 for row in reports.retention_rows(report)])


def _csv(name: str, first: date, last: date, header: list[str],
         rows: list[list[Any]]) -> Response:
    return csv_download(f"{name}-{first}-{last}.csv", header, rows)
