"""The directory as Open Referral HSDS 3.0 JSON over the API (`GET /api/v1/directory/hsds`),
page by page, for another directory or a partner's system to copy it; the same objects as
`hub directory export-hsds` (built by `hub.adapters.hsds`)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from hub.adapters.hsds import HSDS_VERSION, organization_to_hsds
from hub.adapters.oauth import require_scope
from hub.api.common import MAX_LIMIT, PageArgs, decode_cursor, encode_cursor
from hub.db import db
from hub.directory_hsds import export_page

blp = Blueprint("hsds", __name__, url_prefix="/api/v1/directory",
                description="The directory as Open Referral HSDS 3.0 JSON.")

DEFAULT_PAGE = 100


class HsdsPageArgs(PageArgs):
    limit = fields.Integer(
        load_default=DEFAULT_PAGE, validate=validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Organizations per page, 1 to {MAX_LIMIT} "
                                 f"(default {DEFAULT_PAGE})."})


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
    def get(self, limit: int, cursor: str | None) -> dict[str, Any]:
        """The whole directory as Open Referral HSDS 3.0 organizations, page by page.

        Pages follow the organizations' ids, so following `next_cursor` to the end gives
        every organization once. The items of every page, put in one list, form a document
        that `hub directory import-hsds` reads."""
        after = None
        if cursor:
            (after,) = decode_cursor(cursor, uuid.UUID)
        found = export_page(db.session, after_id=after, limit=limit + 1)
        page = found[:limit]
        return {"hsds_version": HSDS_VERSION,
                "items": [organization_to_hsds(o) for o in page],
                "next_cursor": encode_cursor(page[-1].id) if len(found) > limit else None}
