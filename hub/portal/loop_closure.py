"""Loop closure in the portal (`/loop-closure`): how the user's organization closes the loop
on the legs of a period, as sender and as receiver; for coordinators, the whole network and
its unmet demand too.  The figures are the API's (`GET /api/v1/reports/loop-closure`), from
`hub.referrals.loop_closure`; tables only, no participant; and the same as a CSV file
(`/loop-closure.csv`, as the API's `format=csv`)."""

from __future__ import annotations

from flask import Response
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.accounts.users import MONITORING_ROLES
from hub.api.common import csv_download
from hub.api.reports import loop_closure_report
from hub.directory.organizations import QUEBEC_REGIONS
from hub.portal.charts import _period
from hub.portal.common import caller, current_user, login_required, page, portal_blueprint
from hub.referrals.loop_closure import CSV_COLUMNS, csv_rows

blp = portal_blueprint("loop_closure", __name__)

# The rows of each table, in order: the report's key and what the page calls it.
FIGURES = (
    ("legs", _l("Referrals")),
    ("closed", _l("Closed")),
    ("closed_with_outcome", _l("Completed with an outcome")),
    ("share_closed_with_outcome", _l("Share completed with an outcome")),
    ("median_hours_to_acknowledge", _l("Median time to acknowledge")),
    ("median_hours_to_decide", _l("Median time to accept or decline")),
    ("answered_on_time", _l("Answered by the deadline")),
    ("share_answered_on_time", _l("Share answered by the deadline")),
)


@blp.get("/loop-closure")
@login_required()
def loop_closure() -> Response:
    first, last, error = _period()
    may_monitor = current_user().role in MONITORING_ROLES
    report = loop_closure_report(caller(), first, last, None, may_monitor)
    columns = [("as_sender", _("As sender")), ("as_receiver", _("As receiver"))]
    if "network" in report:
        columns.append(("network", _("Whole network")))
    return page("portal/loop_closure.html", 422 if error else 200, error=error, first=first,
                last=last, report=report, figures=FIGURES, columns=columns,
                regions=QUEBEC_REGIONS)


@blp.get("/loop-closure.csv")
@login_required()
def loop_closure_csv() -> Response:
    first, last, _error = _period()
    may_monitor = current_user().role in MONITORING_ROLES
    report = loop_closure_report(caller(), first, last, None, may_monitor)
    return csv_download(_("loop-closure") + f"-{first}-{last}.csv", CSV_COLUMNS,
                        csv_rows(report))
