"""Inbound webhooks (docs/design.md §7): a partner's system answers a leg by a signed request.

`POST /webhooks/inbound/{organization_id}`, signed with the Standard Webhooks headers and the
secret of any active endpoint of that organization.  The answer is exactly the API's for the
same transition (same use case, same rules, same events, same problems); a repeated
`webhook-id` replays the first successful answer; a timestamp more than 5 minutes off is 401.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from flask import Response, g, request
from flask.views import MethodView
from marshmallow import ValidationError, fields, validate
from sqlalchemy import select

from hub.accounts.callers import Caller
from hub.api.common import Blueprint, Input, retrying
from hub.api.idempotency import idempotent
from hub.api.problems import Problem
from hub.api.referrals import ReferralOut, leg_response
from hub.db import db, utcnow
from hub.directory.organizations import Organization
from hub.outbox.webhook_fanout import EndpointRegistration
from hub.referrals import handoffs, legs, lifecycle
from webhooks import endpoints, signing
from webhooks.models import Endpoint, EndpointStatus

blp = Blueprint(
    "inbound", __name__, url_prefix="/webhooks",
    description="Answers from partners' systems, signed like outbound webhooks.",
)

INBOUND_ACTIONS = ("acknowledge", "accept", "decline", "start", "complete", "forward")


class InboundAnswer(Input):
    action = fields.String(required=True, validate=validate.OneOf(INBOUND_ACTIONS))
    referral_id = fields.UUID(required=True)
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4000))
    reason = fields.String(allow_none=True, load_default=None,
                           validate=validate.OneOf([r.value for r in lifecycle.DeclineReason]))
    outcome = fields.String(allow_none=True, load_default=None,
                            validate=validate.OneOf([o.value for o in lifecycle.Outcome]))
    to_organization_id = fields.UUID(allow_none=True, load_default=None)


NOT_SIGNED_BY_THE_ORGANIZATION = (
    "No signature matches a secret of this organization's webhook endpoints that may answer "
    "legs. Sign the exact body with the secret of an active endpoint registered with POST "
    "/api/v1/webhook-endpoints by a client holding referrals:respond.")
_NOBODYS_SECRET = signing.new_secret()


def _signed_by(organization_id: uuid.UUID) -> Caller:
    """The organization whose endpoint secret signed this request; else 401."""
    organization = db.session.get(Organization, organization_id)
    now = utcnow()
    secrets = [] if organization is None else [
        secret
        for endpoint in db.session.scalars(select(Endpoint).join(
            EndpointRegistration, EndpointRegistration.endpoint_id == Endpoint.id).where(
            Endpoint.owner_id == organization_id,
            Endpoint.status == EndpointStatus.ACTIVE.value,
            EndpointRegistration.may_answer))
        for secret in endpoints.active_secrets(endpoint, now)
    ]
    # An organization without an answering endpoint is checked against a secret nobody holds,
    # so its answer is the same, in the same time, as a wrong signature: an unsigned caller
    # learns nothing of an organization's endpoints (issue 22).
    try:
        signing.verify(secrets or [_NOBODYS_SECRET], request.headers,
                       request.get_data(cache=True), now=now)
    except signing.SignatureMismatch:
        raise Problem(401, "Signature not accepted", NOT_SIGNED_BY_THE_ORGANIZATION,
                      slug="signature-rejected") from None
    except signing.SignatureRejected as rejected:
        # Missing headers, a stale timestamp...: about the request alone, said as it is.
        raise Problem(401, "Signature not accepted", rejected.reason,
                      slug="signature-rejected") from None
    if organization is None or not secrets:  # unreachable: verified against no real secret
        raise Problem(401, "Signature not accepted", NOT_SIGNED_BY_THE_ORGANIZATION,
                      slug="signature-rejected")
    return Caller(organization.id, "webhook:inbound", organization.is_coordinator)


def _inbound_client_id() -> str:
    assert request.view_args is not None  # set once the URL matched: this runs in its view
    return f"inbound:{request.view_args['organization_id'].hex}"


def _webhook_id() -> str | None:
    return request.headers.get("webhook-id")


def _verified(view: Any) -> Any:
    """Check the signature before anything else, even a replay."""
    @functools.wraps(view)
    def wrapper(*args: Any, organization_id: uuid.UUID, **kwargs: Any) -> Any:
        g.inbound_caller = _signed_by(organization_id)
        return view(*args, caller=g.inbound_caller, **kwargs)

    return wrapper


def _leg_again(stored: dict[str, Any], status: int) -> Response:
    caller: Caller = g.inbound_caller
    leg = legs.visible_referral(db.session, caller, uuid.UUID(stored["id"]))
    return leg_response(leg, status, caller=caller, with_chain=status == 201)


def _signature_header(name: str, description: str, pattern: str) -> dict[str, Any]:
    return {"in": "header", "name": name, "required": True, "description": description,
            "schema": {"type": "string", "pattern": pattern}}


@blp.route("/inbound/<uuid:organization_id>")
class InboundWebhook(MethodView):
    @_verified
    @idempotent(_inbound_client_id, _webhook_id, rerender=_leg_again)
    @blp.response(200, ReferralOut)
    @blp.alt_response(201, schema=ReferralOut, description="`forward`: the new leg.")
    @blp.doc(
        requestBody={"required": True, "content": {"application/json": {"schema": InboundAnswer}}},
        parameters=[
            _signature_header("webhook-id", "A unique id of this message; a repeated id "
                              "replays the first successful answer.", "^[\\x21-\\x7e]{1,255}$"),
            _signature_header("webhook-timestamp", "Unix time of the signature, in seconds; "
                              "more than 5 minutes off is refused (401).", "^[0-9]{1,12}$"),
            _signature_header("webhook-signature", "`v1,<base64 HMAC-SHA256>` of "
                              "`{webhook-id}.{webhook-timestamp}.{body}` with the secret of an "
                              "active endpoint of the organization (Standard Webhooks); "
                              "several, space-separated, during a rotation.", "^v1,"),
        ],
        responses={"401": "UNAUTHORIZED"},
    )
    def post(self, caller: Caller) -> Response:
        """Answer a leg: `{"action": "accept", "referral_id": "...", "note": "..."}`.

        `action`: acknowledge, accept, decline (with `reason`), start, complete (with
        `outcome`) or forward (with `to_organization_id`; answers 201 with the new leg).
        Signed with the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
        `webhook-signature`) and the secret of an active endpoint of the organization.
        """
        try:
            body = InboundAnswer().load(request.get_json(force=True, silent=True) or {})
        except ValidationError as invalid:
            raise Problem(422, "Invalid request", "Some fields are invalid; see `errors`.",
                          # A Schema's load reports by field name: a dict, always.
                          slug="validation", errors=invalid.messages_dict) from None
        action = lifecycle.Action(body["action"])
        leg = retrying(lambda: handoffs.transition(
            db.session, caller, body["referral_id"], action, note=body["note"],
            reason=body["reason"], outcome=body["outcome"],
            to_organization_id=body["to_organization_id"],
        ))
        status = 201 if action is lifecycle.Action.FORWARD else 200
        return leg_response(leg, status, caller=caller, with_chain=status == 201)
