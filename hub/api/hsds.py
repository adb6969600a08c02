"""The directory as Open Referral HSDS 3.0 JSON over the API (`GET /api/v1/directory/hsds`),
page by page, for another directory or a partner's system to copy it; the same objects as
`hub directory export-hsds` (built by `hub.adapters.hsds`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hub.adapters.hsds import HSDS_VERSION, organization_to_hsds
from hub.adapters.oauth import require_scope
from hub.api.common import (
    MAX_LIMIT,
    Blueprint,
    PageArgs,
    aware_datetime,
    decode_cursor,
    page_of,
)
from hub.api.problems import Problem
from hub.db import db, iso_utc
from hub.directory.hsds import export_page

blp = Blueprint("hsds", __name__, url_prefix="/api/v1/directory",
                description="The directory as Open Referral HSDS 3.0 JSON.")

DEFAULT_PAGE = 100


MOMENT_EXPECTED = ("An ISO 8601 date and time with its offset, such as 2026-11-20T08:00:00Z "
                   "or 2026-11-20T08:00:00-05:00 (in a URL, write + as %2B).")


class Moment(fields.DateTime):
    """An ISO 8601 date and time that says its offset: a moment without one is ambiguous
    (whose 08:00?), so it is refused rather than guessed."""

    default_error_messages = {"invalid": MOMENT_EXPECTED, "format": MOMENT_EXPECTED}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is None:
            raise ValidationError(f"{value!r} has no offset. {MOMENT_EXPECTED}")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of the range of dates the hub handles.") from None


class HsdsPageArgs(PageArgs):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE, validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Organizations per page, 1 to {MAX_LIMIT} "
                                 f"(default {DEFAULT_PAGE})."})
    updated_since = Moment(load_default=None, metadata={
        "description": "Only the organizations whose entry (services, locations and contacts "
        "included, or its validation) changed at or after this moment: ISO 8601 with its "
        "offset, e.g. `2026-11-20T08:00:00Z`. The cursor keeps it: the next pages need only "
        "`cursor`. To follow changes, pass the time your previous walk started, less a "
        "minute for changes that were being saved meanwhile.",
        "example": "2026-11-20T08:00:00-05:00"})


class HsdsPage(Schema):
    hsds_version = fields.String(metadata={"description": "The HSDS version of `items`."})
    items = fields.List(fields.Dict(), metadata={"description": (
        "HSDS 3.0 `organization` objects, each with its `services`, `locations` (with "
        "`addresses`) and `contacts` (with `phones`). What HSDS has no field for (kind, "
        "Québec region code, capacity, pathways, preferred channel, last validation) is in "
        "`x_maillage`.")})
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Pass it as `cursor` for the next page; null on the last page."})


@blp.route("/hsds")
class DirectoryHsds(MethodView):
    @require_scope("directory:read")
    @blp.arguments(HsdsPageArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, HsdsPage)
    def get(self, limit: int, cursor: str | None,
            updated_since: datetime | None) -> dict[str, Any]:
        """The whole directory as Open Referral HSDS 3.0 organizations, page by page.

        Pages follow the organizations' ids, so following `next_cursor` to the end gives
        every organization once. The items of every page, put in one list, form a document
        that `hub directory import-hsds` reads. With `updated_since`, only the entries that
        changed since then, in the same order."""
        after = None
        if cursor:
            after, since = decode_cursor(cursor, uuid.UUID, _moment_or_none)
            if updated_since is not None and updated_since != since:
                raise Problem(400, "Cursor of another listing",
                              "This cursor continues a listing with another `updated_since`. "
                              "Pass the cursor alone, or start again without it.",
                              errors={"updated_since": ["Differs from the cursor's."]})
            updated_since = since
        found = export_page(db.session, after_id=after, limit=limit + 1,
                            updated_since=updated_since)
        # The cursor keeps `updated_since`, so that the next pages need only the cursor.
        since_part = iso_utc(updated_since) if updated_since else ""
        page, next_cursor = page_of(found, limit, lambda o: (o.id, since_part))
        return {"hsds_version": HSDS_VERSION,
                "items": [organization_to_hsds(o) for o in page],
                "next_cursor": next_cursor}


def _moment_or_none(value: str) -> datetime | None:
    return aware_datetime(value.replace("Z", "+00:00")) if value else None
