"""Webhook endpoints of an organization (docs/design.md §7): subscribe, rotate the secret, pause,
delete, read the delivery log, redeliver one delivery or recover everything that failed."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, url_for
from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from hub.adapters.oauth import (
    current_caller,
    current_client_id,
    current_oauth_token,
    require_scope,
)
from hub.api.common import (
    Blueprint,
    Input,
    PageArgs,
    Timestamp,
    bounded_int,
    cursor_after,
    page_of,
)
from hub.api.idempotency import idempotent
from hub.api.problems import Problem
from hub.db import db, utcnow
from hub.outbox import subscriptions
from hub.outbox.subscriptions import DeliveryInProgress
from webhooks import endpoints
from webhooks.models import Delivery, DeliveryState, Endpoint, EndpointStatus

blp = Blueprint(
    "webhook_endpoints", __name__, url_prefix="/api/v1",
    description="Webhook endpoints: where the hub pushes your organization's events.",
)

EVENT_TYPE_PATTERN = r"^[a-z_.*]{1,64}$"


def _event_types_field(required: bool) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Regexp(
            EVENT_TYPE_PATTERN, error="An event type such as referral.accepted, or a pattern "
            "with * such as referral.* (or * for all).")),
        required=required, validate=validate.Length(1, 50),
        metadata={"example": ["referral.*", "consent.withdrawn"]},
    )


class EndpointIn(Input):
    url = fields.String(required=True, validate=validate.Length(1, 2000),
                        metadata={"example": "https://partner.example.org/maillage/webhooks",
                                  "description": "Where the hub sends events: an https URL "
                                  "whose host resolves to public addresses only (checked "
                                  "when registered and at every delivery: 422 otherwise)."})
    event_types = _event_types_field(required=True)
    description = fields.String(allow_none=True, load_default=None,
                                validate=validate.Length(max=500))


class EndpointPatch(Input):
    url = fields.String(validate=validate.Length(1, 2000))
    event_types = _event_types_field(required=False)
    description = fields.String(allow_none=True, validate=validate.Length(max=500))
    status = fields.String(validate=validate.OneOf(["active", "paused"]),
                           metadata={"description": "`paused`: deliveries wait; `active`: "
                                     "resume (also re-enables a disabled endpoint)."})


class EndpointOut(Schema):
    id = fields.UUID()
    url = fields.String()
    event_types = fields.List(fields.String())
    description = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(EndpointStatus)})
    disabled_reason = fields.String(allow_none=True)
    secret = fields.String(metadata={"description": "Only when created or rotated."})
    created_at = Timestamp()
    updated_at = Timestamp()


class EndpointPage(Schema):
    items = fields.List(fields.Nested(EndpointOut))
    next_cursor = fields.String(allow_none=True)


class DeliveryOut(Schema):
    id = fields.Integer()
    endpoint_id = fields.UUID()
    event_id = fields.String(attribute="message_id",
                             metadata={"description": "The event's id: its webhook-id."})
    event_type = fields.String()
    subject = fields.String(attribute="ordering_key")
    status = fields.String(attribute="state", metadata={"enum": list(DeliveryState)})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_duration_ms = fields.Float(allow_none=True)
    next_attempt_at = Timestamp(allow_none=True)
    created_at = Timestamp()
    delivered_at = Timestamp(allow_none=True)
    dead_at = Timestamp(allow_none=True)


class DeliveryPage(Schema):
    items = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.String(allow_none=True)


class DeliveryFilters(PageArgs):
    status = fields.String(validate=validate.OneOf(list(DeliveryState)))


class RecoverIn(Input):
    since = Timestamp(required=True, metadata={"description": "Every delivery dead-lettered "
                                               "since this moment is sent again, in order."})


class RecoverOut(Schema):
    recovered = fields.Integer()


def _allow_loopback() -> bool:
    # http:// to loopback is for trying things out on one machine (development and tests).
    return not current_app.config["HUB_SETTINGS"].is_production


def _own_endpoint(endpoint_id: uuid.UUID) -> Endpoint:
    return subscriptions.own_endpoint(db.session, current_caller().organization_id,
                                              endpoint_id)


def _view(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    view = {c: getattr(endpoint, c) for c in ("id", "url", "event_types", "description",
                                                "status", "disabled_reason", "created_at",
                                                "updated_at")}
    if secret is not None:
        view["secret"] = secret
    return view


@blp.route("/webhook-endpoints")
class WebhookEndpoints(MethodView):
    # What an endpoint receives is the event feed: it takes events:read as well.
    @require_scope("webhooks:manage", "events:read")
    @idempotent(current_client_id)
    @blp.arguments(EndpointIn)
    @blp.response(201, EndpointOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Register an endpoint; the answer carries its signing secret, shown this once.

        Needs `events:read` too. Its secret signs inbound answers
        (`/webhooks/inbound/{organization_id}`) only if this client holds `referrals:respond`.
        """
        token = current_oauth_token()
        endpoint, secret = subscriptions.register_endpoint(
            db.session, organization_id=current_caller().organization_id, url=body["url"],
            event_types=body["event_types"], description=body["description"],
            registered_by=token.client.client_id,
            may_answer="referrals:respond" in token.get_scope().split(),
            allow_loopback_http=_allow_loopback(), now=utcnow())
        location = url_for("webhook_endpoints.WebhookEndpointById", endpoint_id=endpoint.id)
        return _view(endpoint, secret), 201, {"Location": location}

    @require_scope("webhooks:manage")
    @blp.arguments(PageArgs, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, EndpointPage)
    def get(self, limit: int, cursor: str | None) -> dict[str, Any]:
        """Your organization's endpoints."""
        query = select(Endpoint).where(Endpoint.owner_id == current_caller().organization_id)
        after = cursor_after(cursor, uuid.UUID)
        if after is not None:
            query = query.where(Endpoint.id > after)
        found = list(db.session.scalars(query.order_by(Endpoint.id).limit(limit + 1)))
        page, next_cursor = page_of(found, limit, lambda e: (e.id,))
        return {"items": [_view(e) for e in page], "next_cursor": next_cursor}


@blp.route("/webhook-endpoints/<uuid:endpoint_id>")
class WebhookEndpointById(MethodView):
    @require_scope("webhooks:manage")
    @blp.response(200, EndpointOut)
    def get(self, endpoint_id: uuid.UUID) -> dict[str, Any]:
        """One endpoint (without its secret)."""
        return _view(_own_endpoint(endpoint_id))

    @require_scope("webhooks:manage")
    @blp.arguments(EndpointPatch)
    @blp.response(200, EndpointOut)
    def patch(self, body: dict[str, Any], endpoint_id: uuid.UUID) -> dict[str, Any]:
        """Change the URL, event types or description; pause or resume."""
        endpoint = _own_endpoint(endpoint_id)
        subscriptions.change_endpoint(db.session, endpoint,
                                              allow_loopback_http=_allow_loopback(),
                                              now=utcnow(), **body)
        return _view(endpoint)

    @require_scope("webhooks:manage")
    @blp.response(204)
    def delete(self, endpoint_id: uuid.UUID) -> None:
        """Delete the endpoint and its delivery log; nothing more is sent to it."""
        endpoints.delete_endpoint(db.session, _own_endpoint(endpoint_id))


@blp.route("/webhook-endpoints/<uuid:endpoint_id>/rotate-secret")
class RotateSecret(MethodView):
    @require_scope("webhooks:manage")
    @idempotent(current_client_id)  # a retried rotation must not retire the secret in use
    @blp.response(200, EndpointOut)
    def post(self, endpoint_id: uuid.UUID) -> dict[str, Any]:
        """A new secret, shown this once; the old one keeps signing too for 24 hours.

        Send an `Idempotency-Key`: if the answer is lost, the retry gets the same secret
        instead of a third one (which would retire the secret your receiver still checks).
        """
        endpoint = _own_endpoint(endpoint_id)
        secret = endpoints.rotate_secret(db.session, endpoint, now=utcnow())
        return _view(endpoint, secret)


@blp.route("/webhook-endpoints/<uuid:endpoint_id>/deliveries")
class EndpointDeliveries(MethodView):
    @require_scope("webhooks:manage")
    @blp.arguments(DeliveryFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, DeliveryPage)
    def get(self, endpoint_id: uuid.UUID, limit: int, cursor: str | None,
            status: str | None = None) -> dict[str, Any]:
        """The delivery log, newest first: status, last response code, timing, attempts."""
        endpoint = _own_endpoint(endpoint_id)
        query = select(Delivery).where(Delivery.endpoint_id == endpoint.id)
        if status:
            query = query.where(Delivery.state == status)
        before = cursor_after(cursor, bounded_int)
        if before is not None:
            query = query.where(Delivery.id < before)
        found = list(db.session.scalars(query.order_by(Delivery.id.desc()).limit(limit + 1)))
        page, next_cursor = page_of(found, limit, lambda d: (d.id,))
        return {"items": page, "next_cursor": next_cursor}


@blp.route("/webhook-endpoints/<uuid:endpoint_id>/recover")
class RecoverFailed(MethodView):
    @require_scope("webhooks:manage")
    @blp.arguments(RecoverIn)
    @blp.response(200, RecoverOut)
    def post(self, body: dict[str, Any], endpoint_id: uuid.UUID) -> dict[str, Any]:
        """Send again, in order, everything dead-lettered since a moment."""
        endpoint = _own_endpoint(endpoint_id)
        count = subscriptions.recover_failed(db.session, endpoint, since=body["since"],
                                                     now=utcnow())
        return {"recovered": count}


@blp.route("/deliveries/<int:delivery_id>/redeliver")
class Redeliver(MethodView):
    @require_scope("webhooks:manage")
    @blp.response(200, DeliveryOut)
    def post(self, delivery_id: int) -> Delivery:
        """Send one delivery again (delivered or dead-lettered), now."""
        delivery = subscriptions.own_delivery(
            db.session, current_caller().organization_id, delivery_id)
        try:
            return subscriptions.redeliver(db.session, delivery, now=utcnow())
        except DeliveryInProgress as pending:
            raise Problem(409, "Delivery in progress", "This delivery is still being attempted "
                          f"(next attempt {pending.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}); "
                          "nothing to redeliver.", slug="delivery-pending") from None
