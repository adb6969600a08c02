"""OAuth clients of the organization's own systems: list, create with chosen scopes (the
secret appears once, on the page that answers the creation, and is never stored), revoke.
The command line's use cases (`hub.accounts.clients.create_client`, `revoke_client`) do the work."""

from __future__ import annotations

import uuid

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug import Response

from hub.accounts.clients import (
    COORDINATOR_ONLY_SCOPES,
    DEFAULT_PARTNER_SCOPES,
    SCOPES,
    OAuthClient,
    create_client,
    revoke_client,
)
from hub.db import db
from hub.directory.organizations import Organization
from hub.errors import NotFound
from hub.portal.admin import ADMIN_ROLES, audit, managed_organization
from hub.portal.common import login_required, page, portal_blueprint

blp = portal_blueprint("admin_clients", __name__)

CLIENTS_SHOWN = 200
# What each scope lets a system do, in the admin's words (`hub.accounts.clients.SCOPES` for
# developers).
SCOPE_LABELS = {
    "directory:read": _l("read the directory of organizations"),
    "directory:write": _l("change this organization's directory entry"),
    "participants:read": _l("read the participants this organization may see"),
    "participants:write": _l("register participants"),
    "consents:read": _l("read participants' consents"),
    "consents:write": _l("record and withdraw consents"),
    "referrals:read": _l("read this organization's referrals and their history"),
    "referrals:write": _l("create, send and cancel referrals"),
    "referrals:respond": _l("answer inbound referrals"),
    "events:read": _l("read this organization's event feed"),
    "webhooks:manage": _l("manage webhook endpoints and deliveries"),
    "privacy:manage": _l("keep this organization's register of confidentiality incidents"),
    "network:monitor": _l("watch handoffs across the network (coordination bodies)"),
    "hub:admin": _l("administer the hub: deadline policies, any directory entry"),
}


@blp.app_template_global()
def scope_label(scope: str) -> str:
    return str(SCOPE_LABELS.get(scope, scope))


def scopes_for(organization: Organization) -> list[str]:
    """The scopes this organization's clients may hold (`create_client` refuses the
    coordinators' scopes to anyone else)."""
    return [s for s in SCOPES if organization.is_coordinator or s not in COORDINATOR_ONLY_SCOPES]


def _own_client(organization: Organization, client_pk: uuid.UUID) -> OAuthClient:
    client = db.session.get(OAuthClient, client_pk)
    if client is None or client.organization_id != organization.id:
        raise NotFound("client", client_pk)
    return client


def _page(organization: Organization, status: int = 200, error: str | None = None,
          chosen: list[str] | None = None) -> Response:
    clients = db.session.scalars(
        select(OAuthClient).where(OAuthClient.organization_id == organization.id)
        .order_by(OAuthClient.revoked_at.is_not(None), OAuthClient.created_at.desc())
        .limit(CLIENTS_SHOWN))
    return page("portal/admin/clients.html", status, organization=organization,
                clients=list(clients), scopes=scopes_for(organization),
                chosen=set(chosen if chosen is not None else DEFAULT_PARTNER_SCOPES),
                error=error)


@blp.get("/admin/<uuid:organization_id>/clients")
@login_required(ADMIN_ROLES)
def client_list(organization_id: uuid.UUID) -> Response:
    return _page(managed_organization(organization_id))


@blp.post("/admin/<uuid:organization_id>/clients")
@login_required(ADMIN_ROLES)
def create(organization_id: uuid.UUID) -> Response:
    """The answer shows the secret, this once; reloading the list never shows it again."""
    organization = managed_organization(organization_id)
    chosen = request.form.getlist("scopes")
    if not chosen:  # none named would give the defaults: an admin chooses explicitly
        return _page(organization, 422, _("Choose at least one of the permissions offered."),
                     chosen)
    name = request.form.get("name", "").strip()[:200]
    try:
        client, secret = create_client(db.session, organization=organization,
                                       scopes=chosen, name=name)
    except ValueError:
        db.session.rollback()
        return _page(managed_organization(organization_id), 422,
                     _("Choose at least one of the permissions offered."), chosen)
    audit("client.created", organization, client.client_id)
    return page("portal/admin/client_created.html", 201, organization=organization,
                client=client, secret=secret)


@blp.post("/admin/<uuid:organization_id>/clients/<uuid:client_pk>/revoke")
@login_required(ADMIN_ROLES)
def revoke(organization_id: uuid.UUID, client_pk: uuid.UUID) -> Response:
    organization = managed_organization(organization_id)
    client = _own_client(organization, client_pk)
    if client.revoked_at is None:
        revoke_client(db.session, client)
        audit("client.revoked", organization, client.client_id)
    flash(_("Access revoked for %(name)s: its tokens no longer work.", name=client.name),
          "success")
    return redirect(url_for("admin_clients.client_list", organization_id=organization.id))
