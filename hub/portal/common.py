"""What every portal page shares: who is logged in, which roles may open a page, CSRF,
security headers, the session's expiry, and domain errors as plain messages in the user's
language.

The portal calls the same use cases as the API (`hub.referrals.handoffs`, `hub.consent.consents`,
...) with a user caller (`hub.accounts.callers.user_caller`), so the rules are the API's and the
events name the person who acted.  Writes are committed by the app's one commit per request
(`hub.api.app._commit`): only when the answer is not an error, so a refused form changes nothing.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from hub.accounts import users
from hub.accounts.callers import Caller
from hub.accounts.users import User, WeakPassword
from hub.consent import consents
from hub.db import db
from hub.errors import (
    ConcurrentChange,
    DomainError,
    Invalid,
    NotAllowed,
    NotFound,
    VersionMismatch,
)
from hub.followups import records
from hub.opportunities.offers import OpportunityClosed, OpportunityFull
from hub.portal import labels
from hub.referrals import lifecycle
from hub.referrals.households import AlreadyInHousehold
from hub.referrals.participants import ParticipantErased, PossibleDuplicate

log = logging.getLogger(__name__)

csrf = CSRFProtect()

# Styles from the hub's own files only, no script at all (none is needed), nothing framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold personal data: not kept by the browser
}
HSTS = "max-age=31536000; includeSubDomains"


def portal_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint of portal pages: CSRF on every form, security headers on every answer."""
    blueprint = Blueprint(name, import_name)
    blueprint.before_request(_before)
    blueprint.after_request(_secure)
    blueprint.register_error_handler(Exception, _failure)
    return blueprint


def _before() -> Response | None:
    _load_user()
    csrf.protect()
    return None


def _idle() -> timedelta:
    return timedelta(minutes=current_app.config["HUB_SETTINGS"].session_minutes)


def _load_user() -> None:
    """The logged-in user, if the session the cookie names is still open on the hub's side:
    not ended by a logout, a password change or a disabled account, not idle for too long."""
    g.user = None
    token = session.get("sid")
    if not token:
        if session.get("user_id"):  # a cookie of the days before server-side sessions
            _forget_user()
            g.session_expired = True
        return
    user = users.session_user(db.session, token, idle=_idle())
    if user is None:
        _forget_user()
        g.session_expired = True
        return
    g.user = user


def log_in(user: User) -> None:
    language = session.get("lang")
    session.clear()  # a new session for the new identity (no fixation)
    session.permanent = True
    session["sid"] = users.start_session(db.session, user, idle=_idle())
    if language:
        session["lang"] = language


def _forget_user() -> None:
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def log_out() -> None:
    """End this session on the hub's side (a copy of the cookie opens nothing afterwards)
    and forget it in this browser."""
    token = session.get("sid")
    if token:
        users.end_session(db.session, token)
    _forget_user()


def current_user() -> User:
    return g.user


def caller() -> Caller:
    return g.user.caller


def login_required(*roles: Iterable[str] | str
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a page: a logged-in user holding one of `roles` (any role if none named)."""
    allowed: set[str] = set()
    for role in roles:
        allowed |= {role} if isinstance(role, str) else set(role)

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if g.get("user") is None:
                if g.get("session_expired"):
                    flash(_("Your session has expired. Log in again."), "info")
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if allowed and g.user.role not in allowed:
                return page("portal/message.html", 403, title=_("Not available"),
                            message=_("Your role does not give access to this page."))
            return view(*args, **kwargs)

        return wrapper

    return decorator


def safe_next(target: str | None, default: str) -> str:
    """Where to go after login: a path of this site only (no scheme, host or `//`)."""
    if not target:
        return default
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return default
    return target


def page(template: str, status: int = 200, **values: Any) -> Response:
    return Response(render_template(template, **values), status=status, mimetype="text/html")


def form_uuid(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.form.get(name, ""))
    except ValueError:
        return None


def form_version() -> int | None:
    raw = request.form.get("version", "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


# --- errors as plain messages ------------------------------------------------------------

# What a form field at fault needs, in plain words with the API's limits (`hub.api` schemas).
FIELD_HINTS = {
    "given_name": lambda: _("Required, at most 200 characters."),
    "family_name": lambda: _("Required, at most 200 characters."),
    "preferred_language": lambda: _("Choose a language from the list."),
    "email": lambda: _("An email address such as name@example.org, at most 320 characters."),
    "phone": lambda: _("At most 40 characters."),
    "birth_year": lambda: _("A year between 1900 and this year, such as 1990."),
    "region": lambda: _("Choose a region from the list."),
    "pathway": lambda: _("Choose a pathway."),
    "priority": lambda: _("Choose a priority."),
    "reason_for_referral": lambda: _("At most 4,000 characters."),
    "needs": lambda: _("At most 50 needs, one per line, each at most 200 characters."),
    "participant_ids": lambda: _("Choose at least one other participant of your organization."),
    "needed_by": lambda: _("A date, today or later."),
    "note": lambda: _("At most 2,000 characters."),
    "evidence": lambda: _("Choose how the participant gave consent."),
    "purpose": lambda: _("Choose what the participant agrees to."),
    # The publish form of an opportunity (`hub.portal.opportunities`).
    "title": lambda: _("Required, at most 200 characters."),
    "kind": lambda: _("Choose what is offered."),
    "municipality": lambda: _("Required, at most 120 characters."),
    "pathways": lambda: _("Choose at least one pathway."),
    "description": lambda: _("Required, at most 4,000 characters."),
    "languages": lambda: _("At least one language code, such as fr or en, separated by "
                           "commas or spaces."),
    "starts_on": lambda: _("A date, today or later, or leave it empty."),
    "closes_on": lambda: _("A date, today or later: the last day candidates are referred."),
    "places": lambda: _("A number from 1 to 1,000."),
}


def field_hint(name: str) -> str:
    """What to fix in the field `name` of a refused form."""
    hint = FIELD_HINTS.get(name) or FIELD_MESSAGES.get(name)
    return hint() if hint else _("Check this field.")


FIELD_MESSAGES = {
    "reason": lambda: _("Choose a reason."),
    "outcome": lambda: _("Choose an outcome."),
    "stage": lambda: _("Entrepreneurship referrals need a stage; other pathways have none."),
    "to_organization_id": lambda: _(
        "Choose another organization of the directory: not your own, not a coordination body."),
    "organization_ids": lambda: _(
        "Name the organizations the participant agrees to, or choose the whole network."),
    "expires_at": lambda: _("The expiry date must be in the future."),
    "participant_id": lambda: _("Your organization may not refer this participant."),
    "forwarded_from": lambda: _("That leg is not one of this participant's."),
    "capacity": lambda: _("Choose full or waiting list."),
    "waitlist_band": lambda: _("Choose how long the wait is."),
    "until": lambda: _("Choose a date from today on, or leave it empty."),
    "due": lambda: _("This follow-up is not due yet: record the call as “Other call”."),
    "situation": lambda: _("Choose the person's situation."),
    "needed_by": lambda: _("The date the participant is needed there must be today or later."),
    "share_details": lambda: _("Only a consent to share the referral can share its details."),
    "opportunity_id": lambda: _(
        "A referral for an opportunity goes to the organization that published it."),
}


def message_of(error: Exception) -> str:
    """A domain refusal in words the user can act on, in their language."""
    if isinstance(error, lifecycle.TransitionRefused):
        allowed = ", ".join(labels.label("action", a) for a in error.allowed)
        return _("This referral is now “%(status)s”: that is no longer possible. %(allowed)s",
                 status=labels.label("status", error.status),
                 allowed=_("Possible now: %(actions)s.", actions=allowed) if allowed
                 else _("The referral is closed."))
    if isinstance(error, lifecycle.NotYourTurn):
        if error.party is lifecycle.Party.SENDER:
            return _("Only the sending organization may do this.")
        return _("Only the receiving organization may do this.")
    if isinstance(error, consents.ConsentRequired) and (
            error.purpose == consents.Purpose.FOLLOW_UP_CONTACT):
        return _("The participant has not agreed to be contacted for follow-up. Record that "
                 "consent (“Be contacted for follow-up”) on their page first.")
    if isinstance(error, consents.ConsentRequired):
        return _("The participant's consent does not cover this organization. Record their "
                 "consent to share the referral with it first.")
    if isinstance(error, records.FollowUpAlreadyRecorded):
        return _("This follow-up was recorded already. Record a new call as “Other call”.")
    if isinstance(error, records.LegNotCompleted):
        return _("Follow-ups are recorded once the referral is completed.")
    if isinstance(error, consents.ConsentNotActive):
        return _("This consent is no longer active.")
    if isinstance(error, VersionMismatch | ConcurrentChange):
        return _("Someone changed this referral at the same moment. Here it is as it is now; "
                 "try again if still needed.")
    if isinstance(error, NotFound):
        return _("Not found, or not visible to your organization.")
    if isinstance(error, NotAllowed):
        return _("Your organization may not do this.")
    if isinstance(error, Invalid):
        return " ".join(FIELD_MESSAGES[name]() if name in FIELD_MESSAGES
                        else _("Some fields are invalid.") for name in error.errors)
    if isinstance(error, OpportunityClosed):
        return _("This opportunity takes no more candidates: its closing date passed, its "
                 "places are filled or it was withdrawn. Send the referral without it, or "
                 "choose an open opportunity.")
    if isinstance(error, OpportunityFull):
        return _("All the places of this opportunity are taken by accepted candidates. "
                 "Decline this referral (no capacity): its sender can then refer the person "
                 "elsewhere. To take more candidates, publish a new opportunity.")
    if isinstance(error, AlreadyInHousehold):
        return _("A person is in one household at most: someone you chose is already in "
                 "one. Leave them out.")
    if isinstance(error, ParticipantErased):
        return _("This person's personal data was erased: nothing is left to show. The "
                 "erasure register of your organization says when and why.")
    if isinstance(error, PossibleDuplicate):
        return _("Your organization already registered a person with the same names and the "
                 "same email or phone (or, without either, the same birth year).")
    if isinstance(error, WeakPassword):
        return _("A password needs at least %(n)d characters.", n=error.minimum)
    return _("Something failed on the hub's side; nothing was changed. Try again later.")


def status_of(error: Exception) -> int:
    """The status of the error table (`hub.errors`), the API's own; 500 for anything else."""
    return error.http_status if isinstance(error, DomainError) else 500


# Paths answered by the API's own guards (problem+json), not by this one.
_API_PATHS = ("/api/", "/oauth/", "/webhooks/")


def refuse_unreadable_input() -> Response | None:
    """Before every portal page and mail link page: refuse NUL characters anywhere in the
    query string or the form (names and values) with a 400 page that says what to fix.

    It answers itself rather than raising: the mail link pages handle errors their own way,
    and the API's handler of 400s would answer problem+json."""
    if request.path.startswith(_API_PATHS) or not _holds_nul():
        return None
    g.setdefault("user", None)
    return _secure(page("portal/message.html", 400, title=_("Unreadable input"), message=_(
        "A field holds a NUL character (code 0), which is not text. Remove it (it often "
        "comes from pasting from another program), then send the form again.")))


def _holds_nul() -> bool:
    fields = [request.args]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        fields.append(request.form)
    return any("\x00" in name or "\x00" in value
               for multidict in fields for name, value in multidict.items(multi=True))


def _failure(error: Exception) -> Response:
    """An HTML page in the user's language, never a trace nor the API's JSON."""
    db.session.rollback()
    if isinstance(error, CSRFError) and request.content_length and not (
            request.form or request.files):
        # A body sent but no field read: werkzeug drops a form it cannot parse (a file name
        # that is not UTF-8, a cut upload), and the CSRF token with it; "expired" would mislead.
        return page("portal/message.html", 400, title=_("Unreadable input"), message=_(
            "The form could not be read: a file name or a field is not UTF-8 text. Rename the "
            "file with ordinary letters, reload the page and try again."))
    if isinstance(error, CSRFError):
        return page("portal/message.html", 400, title=_("Form expired"),
                    message=_("This form has expired. Go back, reload the page and try again."))
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        if error.code == 404:
            return page("portal/message.html", 404, title=_("Not found"),
                        message=_("Not found, or not visible to your organization."))
        if error.code == 413:  # an upload (a partner grid) over the hub's body limit
            limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
            return page("portal/message.html", 413, title=_("File too large"), message=_(
                "The file is larger than %(size)s MB: remove the sheets or columns the "
                "import does not need, or split the grid in two, then upload it again.",
                size=format_decimal(round(limit / 1_048_576, 1))))
        return page("portal/message.html", error.code, title=_("Request refused"),
                    message=_("The request could not be understood."))
    if isinstance(error, DomainError):
        return page("portal/message.html", status_of(error), title=_("Not possible"),
                    message=message_of(error))
    log.exception("portal page failed on %s %s", request.method, request.path)
    return page("portal/message.html", 500, title=_("Error"), message=message_of(error))


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if current_app.config["HUB_SETTINGS"].is_production:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app: Flask) -> None:
    """Sessions in signed cookies (secure in production), CSRF checked by the portal only:
    the API authenticates with bearer tokens and the check-in link with its token."""
    settings = app.config["HUB_SETTINGS"]
    app.config.update(
        SESSION_COOKIE_NAME="maillage_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the session's expiry bounds it
        WTF_CSRF_SSL_STRICT=settings.is_production,
    )
    csrf.init_app(app)
    app.jinja_env.filters["uuid"] = uuid.UUID
    app.jinja_env.globals["role_of"] = labels.role_of
    app.jinja_env.globals["label"] = labels.label  # macros are imported without context
    app.jinja_env.globals["field_hint"] = field_hint
    app.jinja_env.globals["language_name"] = labels.language_name
    app.jinja_env.globals["minute_format"] = labels.minute_format
    app.jinja_env.globals["language_choices"] = labels.language_choices

    @app.context_processor
    def _portal_values() -> dict[str, Any]:
        from flask_babel import get_locale

        return {"user": g.get("user"),
                "lang": str(get_locale() or "fr")}
