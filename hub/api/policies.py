"""Deadline policies (docs/design.md §6), for hub administrators: the business days receiving
organizations have to acknowledge, decide and start, per organization and pathway."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from hub.adapters.oauth import current_caller, require_scope
from hub.api.common import Blueprint, Input, PageArgs, Timestamp, cursor_after, page_of
from hub.db import db
from hub.errors import NotAllowed
from hub.followups import policies
from hub.followups.policies import ADMIN_SCOPE, DeadlinePolicy

blp = Blueprint(
    "deadline_policies", __name__, url_prefix="/api/v1/deadline-policies",
    description="Deadline policies: business days to acknowledge, decide and start a referral, "
    "by receiving organization and pathway (hub administrators, scope hub:admin).",
)

_ORGANIZATION = ("The receiving organization the rule is for; absent or null: any "
                 "organization.")
_PATHWAY = "The pathway the rule is for; absent or null: any pathway."


def _admin() -> str:
    """The administrator's actor.  hub:admin is only given to coordination bodies' clients;
    checked again here, whatever the token says."""
    caller = current_caller()
    if not caller.is_coordinator:
        raise NotAllowed("Deadline policies are kept by the hub's administrators.")
    return caller.actor


class PolicyIn(Input):
    organization_id = fields.UUID(load_default=None, allow_none=True,
                                  metadata={"description": _ORGANIZATION})
    pathway = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(policies.PATHWAYS),
                            metadata={"description": _PATHWAY})
    check = fields.String(required=True, validate=validate.OneOf(policies.CHECKS),
                          metadata={"description": "acknowledge (after sent), decide (after "
                                    "acknowledged) or start (after accepted)."})
    priority = fields.String(required=True, validate=validate.OneOf(policies.PRIORITIES))
    business_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(0, policies.MAX_BUSINESS_DAYS),
        metadata={"description": "Business days (weekends and Québec public holidays "
                  "excluded), counted in the receiving organization's time zone."})


class PolicyOut(Schema):
    id = fields.UUID()
    organization_id = fields.UUID(allow_none=True, metadata={"description": _ORGANIZATION})
    pathway = fields.String(allow_none=True, metadata={"description": _PATHWAY})
    check = fields.String(metadata={"enum": list(policies.CHECKS)})
    priority = fields.String(metadata={"enum": list(policies.PRIORITIES)})
    business_days = fields.Integer()
    source = fields.String(metadata={
        "enum": list(policies.SOURCES[:-1]),
        "description": "How specific the rule is: organization_pathway beats organization, "
        "which beats pathway, which beats hub (any organization, any pathway)."})
    updated_at = Timestamp()
    updated_by = fields.String()


class PolicyPage(Schema):
    items = fields.List(fields.Nested(PolicyOut))
    next_cursor = fields.String(allow_none=True)


class PolicyFilters(PageArgs):
    organization_id = fields.UUID(metadata={"description": "Only this organization's rules."})


class EffectiveArgs(Input):
    organization_id = fields.UUID(load_default=None, metadata={"description": _ORGANIZATION})
    pathway = fields.String(load_default=None, validate=validate.OneOf(policies.PATHWAYS),
                            metadata={"description": _PATHWAY})


class AllowanceOut(Schema):
    business_days = fields.Integer()
    source = fields.String(metadata={"enum": list(policies.SOURCES)})


class EffectiveOut(Schema):
    organization_id = fields.UUID(allow_none=True)
    pathway = fields.String(allow_none=True)
    time_zone = fields.String()
    checks = fields.Dict(
        keys=fields.String(), values=fields.Dict(keys=fields.String(),
                                                 values=fields.Nested(AllowanceOut)),
        metadata={"description": "check → priority → business days in force and the rule "
                  "they come from (default: the hub's defaults of docs/design.md §6)."})


@blp.route("")
class Policies(MethodView):
    @require_scope(ADMIN_SCOPE)
    @blp.arguments(PolicyFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, PolicyPage)
    def get(self, limit: int, cursor: str | None, organization_id: uuid.UUID | None = None
            ) -> dict[str, Any]:
        """List the rules (by id), optionally only one organization's."""
        _admin()
        after = cursor_after(cursor, uuid.UUID)
        found = policies.list_policies(db.session, organization_id, after_id=after,
                                       limit=limit + 1)
        page, next_cursor = page_of(found, limit, lambda p: (p.id,))
        return {"items": page, "next_cursor": next_cursor}

    @require_scope(ADMIN_SCOPE)
    @blp.arguments(PolicyIn, unknown=RAISE)
    @blp.response(200, PolicyOut)
    def put(self, body: dict[str, Any]) -> DeadlinePolicy:
        """Set the rule for a scope (organization or any, pathway or any), replacing the one
        there was. Legs sent, acknowledged or accepted from now on follow it; deadlines
        already set stay. Idempotent: the scope is the rule's identity."""
        return policies.set_policy(db.session, actor=_admin(), **body)


@blp.route("/effective")
class Effective(MethodView):
    @require_scope(ADMIN_SCOPE)
    @blp.arguments(EffectiveArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, EffectiveOut)
    def get(self, organization_id: uuid.UUID | None, pathway: str | None) -> dict[str, Any]:
        """The business days in force for a leg to this organization on this pathway, for
        every check and priority, and which rule each comes from."""
        _admin()
        found = policies.effective(db.session, organization_id=organization_id,
                                   pathway=pathway)
        time_zone = (policies.time_zone_of(db.session, organization_id)
                     if organization_id else policies.DEFAULT_TIME_ZONE)
        return {"organization_id": organization_id, "pathway": pathway, "time_zone": time_zone,
                "checks": {check: {priority: asdict(allowance)
                                   for priority, allowance in by_priority.items()}
                           for check, by_priority in found.items()}}


@blp.route("/<uuid:policy_id>")
class PolicyById(MethodView):
    @require_scope(ADMIN_SCOPE)
    @blp.response(200, PolicyOut)
    def get(self, policy_id: uuid.UUID) -> DeadlinePolicy:
        """One rule."""
        _admin()
        return policies.get_policy(db.session, policy_id)

    @require_scope(ADMIN_SCOPE)
    @blp.response(204)
    def delete(self, policy_id: uuid.UUID) -> None:
        """Remove the rule: the next most specific one (or the hub's default) applies to legs
        from now on."""
        _admin()
        policies.remove_policy_by_id(db.session, policy_id)
