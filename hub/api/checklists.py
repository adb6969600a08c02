"""The shared checklist of a leg (docs/design.md §12): read it, change one item."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from hub.adapters.oauth import current_caller, require_any_scope, require_scope
from hub.api.common import Blueprint, Input, Timestamp, pseudonym_key, retrying
from hub.consent.visibility import Reader
from hub.db import db
from hub.referrals import checklists, legs
from hub.referrals.lifecycle import Party

blp = Blueprint(
    "checklists", __name__, url_prefix="/api/v1/referrals",
    description="The shared checklist of a move: what must be ready before and at arrival.",
)

OWNERS = [Party.SENDER.value, Party.RECEIVER.value]
STATUSES = [s.value for s in checklists.ItemStatus]


class ItemIn(Input):
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    owner = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(OWNERS),
                          metadata={"description": "Who does it; unchanged when left out."})
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000),
                         metadata={"description": "Replaces the note; an empty string "
                                   "removes it; left out, the note stays."})


class ItemOut(Schema):
    code = fields.String(metadata={"enum": list(checklists.ITEM_CODES)})
    owner = fields.String(metadata={"enum": OWNERS})
    status = fields.String(metadata={"enum": STATUSES})
    note = fields.String(allow_none=True)
    updated_at = Timestamp()


class ChecklistOut(Schema):
    referral_id = fields.UUID()
    needed_by = fields.String(allow_none=True, metadata={"format": "date"})
    items = fields.List(fields.Nested(ItemOut))
    withheld = fields.List(fields.String(), metadata={
        "description": "`checklist.notes` when the notes are kept from an employer or "
        "insertion enterprise (docs/design.md §12)."})


def _answer(referral: legs.Referral) -> dict[str, Any]:
    reader = Reader(db.session, current_caller(), pseudonym_key())
    return reader.checklist(referral, checklists.items_of(db.session, referral))


@blp.route("/<uuid:referral_id>/checklist")
class Checklist(MethodView):
    @require_scope("referrals:read")
    @blp.response(200, ChecklistOut)
    def get(self, referral_id: uuid.UUID) -> dict[str, Any]:
        """The leg's checklist: each item's owner (`sender` or `receiver`) and status
        (`todo`, `done`, `not_needed`). Settlement and employment legs start with the
        default items."""
        return _answer(legs.visible_referral(db.session, current_caller(), referral_id))


@blp.route("/<uuid:referral_id>/checklist/<string:item>")
class ChecklistItemView(MethodView):
    @require_any_scope("referrals:write", "referrals:respond")
    @blp.arguments(ItemIn())
    @blp.response(200, ChecklistOut)
    @blp.doc(parameters=[{"in": "path", "name": "item", "required": True,
                          "description": "An item of the leg's checklist (which items a leg "
                          "has depends on its pathway).",
                          "schema": {"type": "string", "enum": list(checklists.ITEM_CODES)}}])
    def put(self, body: dict[str, Any], referral_id: uuid.UUID, item: str) -> dict[str, Any]:
        """Set one item of an open leg's checklist, as either party (the sender with
        `referrals:write`, the receiver with `referrals:respond`); records
        `referral.checklist_updated`. A closed leg's checklist stays as it was (409)."""
        caller = current_caller()
        note = body.get("note")

        def change() -> legs.Referral:
            referral = legs.visible_referral(db.session, caller, referral_id)
            checklists.update_item(db.session, caller, referral, item, status=body["status"],
                                   owner=body.get("owner"), note=note or None,
                                   clear_note=note == "")
            return referral

        return _answer(retrying(change))
