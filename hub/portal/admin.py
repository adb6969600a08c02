"""What the organization-admin pages share: who may open them (an `org_admin` for their own
organization, a `hub_admin` for any), the organization a page acts for, and the audit log of
their changes.

Each screen lives in its own module beside this one: `admin_directory`, `admin_users`,
`admin_clients`, `admin_webhooks`.  Their URLs all start with `/admin/<organization id>/`;
another organization's id is answered 404 for an `org_admin`, as for the API.
"""

from __future__ import annotations

import logging
import uuid

from flask import g, redirect, request, url_for
from sqlalchemy import select
from werkzeug import Response

from hub.accounts.users import Role
from hub.db import db
from hub.directory.organizations import Organization
from hub.errors import NotFound
from hub.portal.common import login_required, page, portal_blueprint

ADMIN_ROLES = frozenset({Role.ORG_ADMIN, Role.HUB_ADMIN})
# Changes to accounts, credentials and endpoints have no event in the feed (partners do not
# subscribe to them): each is a line of this log, with who did it.
audit_log = logging.getLogger("hub.audit")
ORGANIZATIONS_SHOWN = 300

blp = portal_blueprint("admin", __name__)


def is_hub_admin() -> bool:
    return g.user.role == Role.HUB_ADMIN and g.user.organization.is_coordinator


def managed_organization(organization_id: uuid.UUID) -> Organization:
    """The organization this page acts for: the user's own, or any for a hub admin."""
    if organization_id != g.user.organization_id and not is_hub_admin():
        raise NotFound("organization", organization_id)
    organization = db.session.get(Organization, organization_id)
    if organization is None:
        raise NotFound("organization", organization_id)
    return organization


def audit(action: str, organization: Organization, target: object) -> None:
    """Record an administrative change: what, on which object, for which organization, by
    whom (`user:<id>`, as events name their actor).  Written when the use case has succeeded,
    just before the request's commit."""
    audit_log.info("%s %s", action, target, extra={"fields": {
        "action": action, "target": str(target), "organization_id": str(organization.id),
        "actor": g.user.caller.actor}})


@blp.get("/admin")
@login_required(ADMIN_ROLES)
def home() -> Response:
    """An org admin goes to their entry; a hub admin chooses the organization first."""
    if not is_hub_admin():
        return redirect(url_for("admin_directory.entry", organization_id=g.user.organization_id))
    query = request.args.get("q", "").strip()[:200]
    chosen = select(Organization).order_by(Organization.name).limit(ORGANIZATIONS_SHOWN)
    if query:
        chosen = chosen.where(Organization.name.icontains(query, autoescape=True))
    return page("portal/admin/organizations.html", organizations=list(db.session.scalars(chosen)),
                q=query)
