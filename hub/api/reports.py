"""Reports, as JSON or CSV, counted only with `outcome_reporting` consent and with small counts
withheld (see `hub.referrals.reports`): funder reports (`GET /api/v1/reports/funder`: an
organization's referrals, acknowledgement times and outcomes for a period) and retention
(`GET /api/v1/reports/retention`: who is still in the destination region six months on);
and loop closure (`GET /api/v1/reports/loop-closure`, `hub.referrals.loop_closure`, no
consent read: no participant is counted), also read by the portal."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Response, current_app, jsonify
from flask.views import MethodView
from marshmallow import RAISE, ValidationError, fields, validate, validates_schema

from hub.adapters.oauth import current_caller, current_oauth_token, require_scope
from hub.api.common import Blueprint, Input, csv_download
from hub.api.openapi import CSV_CONTENT
from hub.db import db, utcnow
from hub.errors import NotAllowed
from hub.referrals import loop_closure, reports

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                description="Reports for funders, from consenting participants only.")


class PeriodArgs(Input):
    start = fields.Date(required=True, data_key="from",
                        metadata={"description": "First day of the period (inclusive)."})
    end = fields.Date(required=True, data_key="to",
                      metadata={"description": "Last day of the period (inclusive): not before "
                                "`from`, at most five years after it, before 9999-12-31."})
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))

    @validates_schema
    def _period(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "start" in data and "end" in data:
            if data["end"] < data["start"]:
                raise ValidationError("Must not be before `from`.", "to")
            if (data["end"] - data["start"]).days > 366 * 5:
                raise ValidationError("A period of at most five years.", "to")
        if "end" in data and data["end"] >= date(9999, 12, 31):
            raise ValidationError("Before 9999-12-31.", "to")


class ReportArgs(PeriodArgs):
    organization_id = fields.UUID(load_default=None, metadata={
        "description": "Coordinators (scope network:monitor): another organization's report. "
                       "Default: your own."})


def _values(columns: Sequence[str], rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[row.get(name) for name in columns] for row in rows]


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The days from `start` to `end` inclusive, as UTC moments [start, end)."""
    return (datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC))


@blp.route("/funder")
class FunderReport(MethodView):
    @require_scope("referrals:read")
    @blp.arguments(ReportArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200)
    @blp.doc(responses={"200": {"description": "The report: JSON (`format=json`) or CSV "
                                "(`format=csv`, UTF-8 with a byte order mark, one row per cell).",
                                "content": {
        "application/json": {"schema": {
            "type": "object",
            "required": ["organization_id", "period", "sent", "received", "suppression"],
            "properties": {"organization_id": {"type": "string", "format": "uuid"},
                           "period": {"type": "object"},
                           "participants_counted": {"type": "integer", "nullable": True},
                           "sent": {"type": "object"}, "received": {"type": "object"},
                           "acknowledgement": {"type": "object"},
                           "outcomes": {"type": "object"}, "suppression": {"type": "object"}},
        }},
        **CSV_CONTENT,
    }}})
    def get(self, start: Any, end: Any, format: str, organization_id: uuid.UUID | None
            ) -> Response:
        """Per organization and period: referrals sent and received by pathway, time to
        acknowledge (median, 90th percentile, in hours), share answered on time, outcomes by
        pathway; only legs of participants whose `outcome_reporting` consent covers the
        organization are counted.

        Small counts are withheld so no participant can be singled out: a count from 1 to
        `suppression.min_cell` - 1 is null in JSON and `<5` in CSV, a median, percentile or
        share from fewer legs is null (empty in CSV), and a second cell goes with a lone
        withheld one when the total is shown; `suppression.suppressed` names each
        (`received.by_pathway.training`)."""
        caller = current_caller()
        target = organization_id or caller.organization_id
        if target != caller.organization_id and not (
                caller.is_coordinator
                and "network:monitor" in current_oauth_token().get_scope().split()):
            raise NotAllowed("Only coordinators may read another organization's report.")
        report = reports.funder_report(
            db.session, target, *_bounds(start, end), now=utcnow(),
            min_cell=current_app.config["HUB_SETTINGS"].report_min_cell)
        if format == "json":
            return jsonify(report)
        return csv_download(f"rapport-{target}-{start}-{end}.csv", reports.CSV_COLUMNS,
                            _values(reports.CSV_COLUMNS, reports.report_rows(report)))


@blp.route("/retention")
class RetentionReport(MethodView):
    @require_scope("referrals:read")
    @blp.arguments(PeriodArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200)
    @blp.doc(responses={"200": {"description": "JSON, or CSV with `format=csv`.", "content": {
        "application/json": {"schema": {"type": "object"}}, **CSV_CONTENT}}})
    def get(self, start: Any, end: Any, format: str) -> Response:
        """Retention of the legs completed in the period (your organization's, or the whole
        network's for coordinators), per destination region and pathway: legs `completed`,
        180-day `followups_recorded`, `reached`, and `in_destination_region` (still living
        there). Only participants whose `outcome_reporting` consent covers the sending
        organization are counted.

        Small counts are withheld as in the funder reports: null in JSON and `<5` in CSV,
        also a part (reached, still in the region) whose complement is small; each named in
        `suppression.suppressed` (`01/employment/reached`)."""
        caller = current_caller()
        report = reports.retention_report(
            db.session, *_bounds(start, end), now=utcnow(),
            organization_id=None if caller.is_coordinator else caller.organization_id,
            min_cell=current_app.config["HUB_SETTINGS"].report_min_cell)
        if format == "json":
            return jsonify(report)
        return csv_download(f"retention-{start}-{end}.csv", reports.RETENTION_CSV_COLUMNS,
                            _values(reports.RETENTION_CSV_COLUMNS, reports.retention_rows(report)))


def loop_closure_report(caller: Any, start: date, end: date,
                        organization_id: uuid.UUID | None, may_monitor: bool
                        ) -> dict[str, Any]:
    """The report the API and the portal show: the organization's own figures, and for
    coordinators the network's and its unmet demand."""
    target = organization_id or caller.organization_id
    if target != caller.organization_id and not (caller.is_coordinator and may_monitor):
        raise NotAllowed("Only coordinators may read another organization's figures.")
    first, after = _bounds(start, end)
    now = utcnow()
    report: dict[str, Any] = {
        "organization_id": str(target), "from": start.isoformat(), "to": end.isoformat(),
        **loop_closure.organization_report(db.session, target, first, after, now)}
    if caller.is_coordinator and may_monitor:
        report.update(loop_closure.network_report(db.session, first, after, now))
    return report


@blp.route("/loop-closure")
class LoopClosureReport(MethodView):
    @require_scope("referrals:read")
    @blp.arguments(ReportArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200)
    @blp.doc(responses={"200": {"description": "JSON, or CSV with `format=csv`.", "content": {
        "application/json": {"schema": {"type": "object"}}, **CSV_CONTENT}}})
    def get(self, start: Any, end: Any, organization_id: uuid.UUID | None,
            format: str) -> Response:
        """How an organization closes the loop on the legs sent in a period (`from`, `to`,
        days, both inclusive), as sender (`as_sender`) and as receiver (`as_receiver`):
        `legs`, `closed`, `closed_with_outcome` (completed with an outcome code) and its
        share, median hours to acknowledge and to decide (accept or decline), and the share
        answered by the acknowledgement deadline (`share_answered_on_time`, of the legs
        answered or past that deadline).  Shares and medians are null when nothing counts.

        Coordinators (scope `network:monitor`) also get `network` (the same figures for every
        leg) and `unmet_demand`: declines for lack of room per receiving organization's region
        and pathway, most first; and may ask for another organization's figures.

        With `format=csv`, one table: a row per set of legs (`section`: as_sender,
        as_receiver, network), then a row per region and pathway of the unmet demand
        (`section` unmet_demand, with `declines_for_capacity`)."""
        caller = current_caller()
        may_monitor = "network:monitor" in current_oauth_token().get_scope().split()
        report = loop_closure_report(caller, start, end, organization_id, may_monitor)
        if format == "json":
            return jsonify(report)
        return csv_download(f"loop-closure-{report['organization_id']}-{start}-{end}.csv",
                            loop_closure.CSV_COLUMNS, loop_closure.csv_rows(report))
