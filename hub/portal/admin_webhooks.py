"""Webhook endpoints of the organization: list with status, create (the secret shown once),
edit the address, events and description, pause and resume, rotate the secret (the new one
shown once), delete; per endpoint the delivery log, a page at a time, with a "redeliver"
button, and "send again everything that failed since" a moment, confirmed after saying how
many deliveries that is.  The API's use cases do the work (`hub.outbox.subscriptions`, the
engine's `webhooks.endpoints`), so the same URLs and event types are refused, with messages
in the admin's language."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select
from werkzeug import Response

from hub.api.common import aware_datetime, bounded_int
from hub.db import db, utcnow
from hub.directory.organizations import Organization
from hub.errors import Invalid
from hub.events.types import EventType
from hub.outbox import subscriptions
from hub.outbox.subscriptions import DeliveryInProgress
from hub.portal import paging
from hub.portal.admin import ADMIN_ROLES, audit, managed_organization
from hub.portal.common import login_required, page, portal_blueprint
from hub.portal.i18n import TIME_ZONE
from webhooks import endpoints
from webhooks.models import Delivery, Endpoint, EndpointStatus

blp = portal_blueprint("admin_webhooks", __name__)

ENDPOINTS_SHOWN = 100
DELIVERIES_SHOWN = 100
ALL_EVENTS = "*"


ENDPOINT_STATUS = {
    "active": _l("Active"),
    "paused": _l("Paused"),
    "disabled": _l("Turned off by the hub (the address kept failing)"),
}
DELIVERY_STATE = {"pending": _l("Waiting"), "delivered": _l("Delivered"),
                  "dead": _l("Failed")}


@blp.app_template_global()
def endpoint_status(status: str) -> str:
    return str(ENDPOINT_STATUS.get(status, status))


@blp.app_template_global()
def delivery_state(state: str) -> str:
    return str(DELIVERY_STATE.get(state, state))


def _allow_loopback() -> bool:
    # As the API: http:// to loopback only outside production, to try things on one machine.
    return not current_app.config["HUB_SETTINGS"].is_production


def refusal(error: Invalid) -> str:
    """Why the endpoint was refused, in the admin's language."""
    messages = []
    if "url" in error.errors:
        messages.append(_("The hub cannot send to this address: use an https:// address of "
                          "a server reachable on the internet."))
    if "event_types" in error.errors:
        messages.append(_("Choose at least one kind of event."))
    return " ".join(messages) or _("Some fields are invalid.")


def _page(organization: Organization, status: int = 200, error: str | None = None,
          values: Mapping[str, object] | None = None) -> Response:
    found = db.session.scalars(select(Endpoint).where(Endpoint.owner_id == organization.id)
                               .order_by(Endpoint.created_at).limit(ENDPOINTS_SHOWN))
    return page("portal/admin/webhooks.html", status, organization=organization,
                endpoints=list(found), event_types=[ALL_EVENTS] + [t.value for t in EventType],
                values=values or {"event_types": [ALL_EVENTS]}, error=error)


def _own(organization: Organization, endpoint_id: uuid.UUID) -> Endpoint:
    return subscriptions.own_endpoint(db.session, organization.id, endpoint_id)


def _back(organization: Organization, endpoint: Endpoint | None = None) -> Response:
    if endpoint is None:
        return redirect(url_for("admin_webhooks.endpoint_list", organization_id=organization.id))
    return redirect(url_for("admin_webhooks.endpoint_detail", organization_id=organization.id,
                            endpoint_id=endpoint.id))


@blp.get("/admin/<uuid:organization_id>/webhooks")
@login_required(ADMIN_ROLES)
def endpoint_list(organization_id: uuid.UUID) -> Response:
    return _page(managed_organization(organization_id))


@blp.post("/admin/<uuid:organization_id>/webhooks")
@login_required(ADMIN_ROLES)
def create(organization_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    url = request.form.get("url", "").strip()[:2000]
    description = request.form.get("description", "").strip()[:500] or None
    event_types = request.form.getlist("event_types")[:50]
    values = {"url": url, "description": description, "event_types": event_types}
    try:
        if not event_types:
            raise Invalid({"event_types": ["Choose at least one."]})
        endpoint, secret = subscriptions.register_endpoint(
            db.session, organization_id=organization.id, url=url,
            event_types=event_types, description=description,
            registered_by=g.user.caller.actor, may_answer=False,
            allow_loopback_http=_allow_loopback(), now=utcnow())
    except Invalid as invalid:
        db.session.rollback()
        return _page(managed_organization(organization_id), 422, refusal(invalid), values)
    audit("webhook_endpoint.created", organization, endpoint.id)
    return page("portal/admin/webhook_secret.html", 201, organization=organization,
                endpoint=endpoint, secret=secret, created=True)


def _detail(organization: Organization, endpoint: Endpoint, status: int = 200,
            error: str | None = None, values: Mapping[str, object] | None = None) -> Response:
    """The endpoint, its edit form (as saved, or as typed when refused) and its delivery log,
    newest first, `DELIVERIES_SHOWN` a page with links to older and newer ones."""
    # Along the engine's index (endpoint_id, created_at); the id breaks ties.
    deliveries = paging.window(
        select(Delivery).where(Delivery.endpoint_id == endpoint.id),
        (Delivery.created_at, Delivery.id), (aware_datetime, bounded_int),
        lambda delivery: (delivery.created_at, delivery.id), descending=True,
        size=DELIVERIES_SHOWN, view=("admin_webhooks.endpoint_detail", {
            "organization_id": organization.id, "endpoint_id": endpoint.id}))
    values = values or {"url": endpoint.url, "description": endpoint.description,
                        "event_types": endpoint.event_types}
    offered = [ALL_EVENTS] + [t.value for t in EventType]
    # Patterns registered through the API ("referral.*") are offered too, so that saving the
    # form keeps them.
    offered[1:1] = [p for p in endpoint.event_types if p not in offered]
    return page("portal/admin/webhook.html", status, organization=organization,
                endpoint=endpoint, deliveries=deliveries.rows, pages=deliveries,
                event_types=offered, error=error, values=values,
                since=request.args.get("since", ""))


@blp.get("/admin/<uuid:organization_id>/webhooks/<uuid:endpoint_id>")
@login_required(ADMIN_ROLES)
def endpoint_detail(organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    return _detail(organization, _own(organization, endpoint_id))


@blp.post("/admin/<uuid:organization_id>/webhooks/<uuid:endpoint_id>/edit")
@login_required(ADMIN_ROLES)
def edit(organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> Response:
    """Change the address (checked as the API checks it: https, no private address), the
    events sent and the description (emptied: none)."""
    organization = managed_organization(organization_id)
    endpoint = _own(organization, endpoint_id)
    values = {"url": request.form.get("url", "").strip()[:2000],
              "description": request.form.get("description", "").strip()[:500],
              "event_types": request.form.getlist("event_types")[:50]}
    try:
        if not values["event_types"]:
            raise Invalid({"event_types": ["Choose at least one."]})
        subscriptions.change_endpoint(
            db.session, endpoint, url=values["url"], event_types=values["event_types"],
            description=values["description"], allow_loopback_http=_allow_loopback(),
            now=utcnow())
    except Invalid as invalid:
        db.session.rollback()
        organization = managed_organization(organization_id)
        return _detail(organization, _own(organization, endpoint_id), 422, refusal(invalid),
                       values)
    audit("webhook_endpoint.changed", organization, endpoint.id)
    flash(_("Endpoint saved."), "success")
    return _back(organization, endpoint)


def _since() -> datetime | None:
    """The moment typed in the "failed since" field: a date and time in the portal's time
    zone (what `datetime-local` sends), or with its own offset; None if it is not one."""
    raw = (request.values.get("since") or "").strip()[:40]
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    # No delivery predates the hub; far years cannot even be shown in Québec time.
    if not 2000 <= moment.year < 2200:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(TIME_ZONE))
    return moment.astimezone(UTC)


@blp.route("/admin/<uuid:organization_id>/webhooks/<uuid:endpoint_id>/recover",
           methods=["GET", "POST"])
@login_required(ADMIN_ROLES)
def recover(organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> Response:
    """Send again everything that failed since a moment: first a page saying how many
    deliveries that is (GET), then, confirmed, the API's use case (POST)."""
    organization = managed_organization(organization_id)
    endpoint = _own(organization, endpoint_id)
    since = _since()
    if since is None:
        return _detail(organization, endpoint, 422, _(
            "Enter the date and time from which failed deliveries are sent again, "
            "for example 2026-11-20 08:00."))
    if request.method == "GET":
        return page("portal/admin/webhook_recover.html", organization=organization,
                    endpoint=endpoint, since=since,
                    count=subscriptions.failed_since(db.session, endpoint, since))
    count = subscriptions.recover_failed(db.session, endpoint, since=since,
                                                 now=utcnow())
    audit("webhook_endpoint.recovered", organization, endpoint.id)
    flash(ngettext("%(num)d failed delivery will be sent again.",
                   "%(num)d failed deliveries will be sent again, in order.", count)
          if count else _("No delivery failed since then: nothing to send again."),
          "success" if count else "info")
    return _back(organization, endpoint)


@blp.post("/admin/<uuid:organization_id>/webhooks/<uuid:endpoint_id>/<any(pause, resume):action>")
@login_required(ADMIN_ROLES)
def switch(organization_id: uuid.UUID, endpoint_id: uuid.UUID, action: str) -> Response:
    organization = managed_organization(organization_id)
    endpoint = _own(organization, endpoint_id)
    status = EndpointStatus.PAUSED if action == "pause" else EndpointStatus.ACTIVE
    subscriptions.change_endpoint(db.session, endpoint, status=status.value,
                                          allow_loopback_http=_allow_loopback(), now=utcnow())
    audit(f"webhook_endpoint.{action}d", organization, endpoint.id)
    flash(_("Deliveries paused: they wait until you resume.") if action == "pause"
          else _("Deliveries resumed."), "success")
    return _back(organization, endpoint)


@blp.post("/admin/<uuid:organization_id>/webhooks/<uuid:endpoint_id>/rotate")
@login_required(ADMIN_ROLES)
def rotate(organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> Response:
    """A new secret, shown this once; the previous one keeps signing for 24 hours."""
    organization = managed_organization(organization_id)
    endpoint = _own(organization, endpoint_id)
    secret = endpoints.rotate_secret(db.session, endpoint, now=utcnow())
    audit("webhook_endpoint.secret_rotated", organization, endpoint.id)
    return page("portal/admin/webhook_secret.html", organization=organization,
                endpoint=endpoint, secret=secret, created=False)


@blp.post("/admin/<uuid:organization_id>/webhooks/<uuid:endpoint_id>/delete")
@login_required(ADMIN_ROLES)
def delete(organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    endpoint = _own(organization, endpoint_id)
    url = endpoint.url
    endpoints.delete_endpoint(db.session, endpoint)
    audit("webhook_endpoint.deleted", organization, endpoint_id)
    flash(_("Endpoint %(url)s deleted, with its delivery log.", url=url), "success")
    return _back(organization)


@blp.post("/admin/<uuid:organization_id>/deliveries/<int:delivery_id>/redeliver")
@login_required(ADMIN_ROLES)
def redeliver(organization_id: uuid.UUID, delivery_id: int) -> Response:
    organization = managed_organization(organization_id)
    delivery = subscriptions.own_delivery(db.session, organization.id, delivery_id)
    endpoint = _own(organization, delivery.endpoint_id)
    try:
        subscriptions.redeliver(db.session, delivery, now=utcnow())
    except DeliveryInProgress:
        flash(_("This delivery is still being attempted: nothing to send again yet."), "info")
        return _back(organization, endpoint)
    audit("webhook_delivery.redelivered", organization, delivery.id)
    flash(_("Delivery %(id)s will be sent again in a moment.", id=delivery.id), "success")
    return _back(organization, endpoint)
