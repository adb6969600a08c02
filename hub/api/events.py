"""The event feed: the polling alternative to webhooks."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from hub.adapters.oauth import current_caller, require_scope
from hub.api.common import MAX_LIMIT, Blueprint, Input, pseudonym_key
from hub.api.referrals import EventOut
from hub.consent.visibility import Reader
from hub.db import db
from hub.events.envelope import render_events
from hub.events.feed import FeedCursor, read_feed

blp = Blueprint(
    "events", __name__, url_prefix="/api/v1/events",
    description="Your organization's feed of events, oldest first.",
)


class FeedArgs(Input):
    after = fields.String(
        load_default="0",
        validate=validate.Regexp(r"^\d{1,18}(\.\d{1,18})?$",
                                 error="Use the next_cursor of the previous read, "
                                 "or 0 to start from the beginning."),
        metadata={"description": "Cursor: the `next_cursor` of your previous read (0 or absent: "
                  "from the beginning)."},
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_LIMIT))


class FeedPage(Schema):
    items = fields.List(fields.Nested(EventOut))
    next_cursor = fields.String(
        metadata={"description": "Pass as `after` to read on. Never null: when there is "
                  "nothing new it is your cursor again, so you can poll with it."}
    )


@blp.route("")
class Feed(MethodView):
    @require_scope("events:read")
    @blp.arguments(FeedArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, FeedPage)
    def get(self, after: str, limit: int) -> dict[str, Any]:
        """Events your organization may see, after a cursor, oldest first.

        Resume from any cursor you were given: nothing is skipped and nothing repeated.
        """
        caller = current_caller()
        events = read_feed(db.session, caller, after=FeedCursor.parse(after), limit=limit)
        reader = Reader(db.session, caller, pseudonym_key())
        return {
            "items": render_events(db.session, reader, events),
            "next_cursor": str(FeedCursor.of(events[-1])) if events else after,
        }
