"""The organization's portal users, kept by its admin: who they are, invitations by mail (a
single-use link to choose a password, `hub.accounts.users.invite_user`), roles, how French
pages address each person (`users.french_form`), and turning an account off and on.  The
rules are `hub.accounts.users`' (a role fit for the organization, no change to one's own role
or access); a disabled person cannot log in and their open sessions end."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import current_app, flash, g, redirect, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug import Response

from hub.accounts import users
from hub.accounts.users import COORDINATION_ROLES, FrenchForm, Role, User, UserRefused
from hub.db import db
from hub.directory.organizations import Organization
from hub.errors import NotFound
from hub.outbox import mail
from hub.portal import paging
from hub.portal.admin import ADMIN_ROLES, audit, managed_organization
from hub.portal.common import login_required, page, portal_blueprint
from hub.portal.i18n import LANGUAGES
from hub.portal.labels import label, role_of

blp = portal_blueprint("admin_users", __name__)

USERS_SHOWN = 500


def refusal(error: UserRefused) -> str:
    """Why a user change was refused, in the admin's language."""
    return {
        "email": lambda: _("Enter a valid email address."),
        "email_taken": lambda: _("Someone already has an account with this email address."),
        "role": lambda: _("Choose one of the roles offered."),
        "french_form": lambda: _("Choose one of the three forms offered."),
        "role_unfit": lambda: _("This role does not fit this organization: coordination "
                                "roles belong to coordination bodies only."),
        "self": lambda: _("You cannot change your own role or turn off your own account; "
                          "ask another administrator."),
    }[error.reason]()


def roles_for(organization: Organization) -> list[str]:
    """The roles this organization's users may hold (`hub.accounts.users.check_role_fits`)."""
    return [role.value for role in Role
            if (role in COORDINATION_ROLES) == organization.is_coordinator]


def _member(organization: Organization, user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.organization_id != organization.id:
        raise NotFound("user", user_id)
    return user


def _page(organization: Organization, status: int = 200, error: str | None = None,
          values: dict[str, str] | None = None) -> Response:
    """The users by name, `USERS_SHOWN` a page (keyset on name and id, `hub.portal.paging`)."""
    people = paging.window(select(User).where(User.organization_id == organization.id),
                           (User.name, User.id), (str, uuid.UUID),
                           lambda person: (person.name, person.id),
                           descending=False, size=USERS_SHOWN,
                           view=("admin_users.user_list", {"organization_id": organization.id}))
    return page("portal/admin/users.html", status, organization=organization,
                people=people.rows, pages=people, roles=roles_for(organization),
                languages=LANGUAGES, french_forms=list(FrenchForm), values=values or {},
                error=error)


@blp.get("/admin/<uuid:organization_id>/users")
@login_required(ADMIN_ROLES)
def user_list(organization_id: uuid.UUID) -> Response:
    return _page(managed_organization(organization_id))


@blp.post("/admin/<uuid:organization_id>/users")
@login_required(ADMIN_ROLES)
def invite(organization_id: uuid.UUID) -> Response:
    """Create the account and mail its owner a link to choose their password."""
    organization = managed_organization(organization_id)
    values = {name: request.form.get(name, "").strip()
              for name in ("email", "name", "role", "language", "french_form")}
    language = values["language"] if values["language"] in LANGUAGES else "fr"
    try:
        person, token = users.invite_user(db.session, organization=organization,
                                          email=values["email"], role=values["role"],
                                          name=values["name"], language=language,
                                          french_form=values["french_form"] or "neutral")
    except UserRefused as refused:
        db.session.rollback()
        return _page(managed_organization(organization_id), 422, refusal(refused), values)
    _mail_invitation(person, token)
    audit("user.invited", organization, person.id)
    flash(_("Invitation sent to %(email)s.", email=person.email), "success")
    return redirect(url_for("admin_users.user_list", organization_id=organization.id))


def _mail_invitation(person: User, token: str) -> None:
    """Queued in the request's transaction: sent by the worker once it commits."""
    base = current_app.config["HUB_SETTINGS"].public_url.rstrip("/")
    link = base + url_for("auth.reset_password", token=token)
    with force_locale(person.language):
        mail.queue_mail(
            db.session, to=person.email, language=person.language,
            subject=_("Maillage: your account is ready"),
            text=_("Hello %(name)s,\n\n%(admin)s opened a Maillage account for you at "
                   "%(organization)s. Choose your password with this link within 7 days; it "
                   "works once:\n\n%(link)s\n\nThen log in with your email address, %(email)s.\n",
                   name=person.name, admin=g.user.name,
                   organization=person.organization.name, link=link, email=person.email))


def _change_member(organization_id: uuid.UUID, user_id: uuid.UUID,
                   change: Callable[[User], None], audited: Callable[[User], str],
                   done: Callable[[User], str]) -> Response:
    """One change to a member's account by the admin: refused by `hub.accounts.users`, the
    list again with why (422); else recorded in the audit log, said, and back to the list."""
    organization = managed_organization(organization_id)
    person = _member(organization, user_id)
    try:
        change(person)
    except UserRefused as refused:
        db.session.rollback()
        return _page(managed_organization(organization_id), 422, refusal(refused))
    audit(audited(person), organization, person.id)
    flash(done(person), "success")
    return redirect(url_for("admin_users.user_list", organization_id=organization.id))


@blp.post("/admin/<uuid:organization_id>/users/<uuid:user_id>/role")
@login_required(ADMIN_ROLES)
def change_role(organization_id: uuid.UUID, user_id: uuid.UUID) -> Response:
    return _change_member(
        organization_id, user_id,
        lambda person: users.change_role(db.session, person, request.form.get("role", ""),
                                         by=g.user),
        lambda person: f"user.role_{person.role}",
        lambda person: _("%(name)s is now: %(role)s.", name=person.name,
                         role=role_of(person.role, person.french_form)))


@blp.post("/admin/<uuid:organization_id>/users/<uuid:user_id>/french-form")
@login_required(ADMIN_ROLES)
def change_french_form(organization_id: uuid.UUID, user_id: uuid.UUID) -> Response:
    return _change_member(
        organization_id, user_id,
        lambda person: users.set_french_form(db.session, person,
                                             request.form.get("french_form", "")),
        lambda person: "user.french_form",
        lambda person: _("French pages now address %(name)s this way: %(form)s.",
                         name=person.name, form=label("french_form", person.french_form)))


@blp.post("/admin/<uuid:organization_id>/users/<uuid:user_id>/<any(disable, enable):action>")
@login_required(ADMIN_ROLES)
def switch_access(organization_id: uuid.UUID, user_id: uuid.UUID, action: str) -> Response:
    return _change_member(
        organization_id, user_id,
        lambda person: users.set_disabled(db.session, person, action == "disable", by=g.user),
        lambda person: f"user.{action}d",
        lambda person: _("%(name)s can no longer log in.", name=person.name)
        if action == "disable" else _("%(name)s can log in again.", name=person.name))
