"""Logging in and out, the language switch, and the forgotten password (a single-use link
mailed through the hub's outbox, `hub.outbox.mail`)."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_pgettext as _lp
from werkzeug import Response

from hub.accounts import users
from hub.accounts.users import FrenchForm, LoginRefused, Role
from hub.db import db
from hub.outbox import mail
from hub.portal.common import log_in, log_out, login_required, page, portal_blueprint, safe_next
from hub.portal.i18n import LANGUAGES

blp = portal_blueprint("auth", __name__)

LOGIN_MESSAGES = {
    "invalid": lambda: _("Wrong email or password."),
    "locked": lambda: _("Too many failed attempts for this account. Wait 15 minutes, or reset "
                        "your password."),
    "rate_limited": lambda: _("Too many failed attempts from your network. Wait 15 minutes."),
    "slowed": lambda: _("Many failed attempts for this account come from elsewhere, so it "
                        "takes one attempt every 30 seconds for now. Wait a moment and try "
                        "again, or reset your password."),
}


def home_of(role: str) -> str:
    """Where a user lands: the page of their daily work."""
    if role in (Role.COORDINATOR, Role.HUB_ADMIN):
        return url_for("network.stalled")
    if role == Role.PARTNER_STAFF:
        return url_for("receiving.inbox")
    return url_for("sending.outbound")


@blp.get("/")
@login_required()
def home() -> Response:
    return redirect(home_of(g.user.role))


@blp.route("/account", methods=["GET", "POST"])
@login_required()
def account() -> Response:
    """The user's own page: how French pages address them (`users.french_form`)."""
    if request.method == "POST":
        form = request.form.get("french_form", "")
        try:
            users.set_french_form(db.session, g.user, form)
        except users.UserRefused:
            return page("portal/account.html", 422, forms=list(FrenchForm), chosen=form,
                        error=_("Choose one of the three forms offered."))
        flash(_("Saved: the portal now addresses you this way."), "success")
        return redirect(url_for("auth.account"))
    return page("portal/account.html", forms=list(FrenchForm), chosen=g.user.french_form)


@blp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    target = request.args.get("next")
    if request.method == "GET":
        if g.user is not None:
            return redirect(safe_next(target, home_of(g.user.role)))
        return page("portal/login.html", next=target or "")
    email = request.form.get("email", "")
    try:
        user = users.authenticate(db.session, email, request.form.get("password", ""),
                                  address=request.remote_addr or "unknown")
    except LoginRefused as refused:
        # The failure is recorded: commit it although the answer is an error.
        db.session.commit()
        return page("portal/login.html", 401 if refused.reason == "invalid" else 429,
                    error=LOGIN_MESSAGES[refused.reason](), email=email, next=target or "")
    log_in(user)
    return redirect(safe_next(target, home_of(user.role)))


LOGGED_OUT = {
    "feminine": _lp("feminine", "You are logged out."),
    "masculine": _lp("masculine", "You are logged out."),
    "neutral": _lp("neutral", "You are logged out."),
}


@blp.post("/logout")
def logout() -> Response:
    # Said agreeing with the user leaving (`users.french_form`); English has one sentence.
    form = getattr(g.get("user"), "french_form", "neutral")
    log_out()
    flash(str(LOGGED_OUT.get(form, LOGGED_OUT["neutral"])), "info")
    return redirect(url_for("auth.login"))


@blp.get("/lang/<code>")
def switch_language(code: str) -> Response:
    """Switch language and come back to the same page (of this site only)."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next"), url_for("auth.login")))


@blp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Response:
    if request.method == "GET":
        return page("portal/forgot.html")
    found = users.start_password_reset(db.session, request.form.get("email", ""))
    if found is not None:
        user, token = found
        _mail_reset_link(user, token)
    # The same answer whether the address is known or not: nobody learns who has an account.
    return page("portal/message.html", title=_("Check your mail"),
                message=_("If an account uses this address, a link to choose a new password "
                          "was sent to it. The link works once, for one hour."))


def _mail_reset_link(user: users.User, token: str) -> None:
    base = current_app.config["HUB_SETTINGS"].public_url.rstrip("/")
    link = base + url_for("auth.reset_password", token=token)
    with force_locale(user.language):
        mail.queue_mail(
            db.session, to=user.email, language=user.language,
            subject=_("Maillage: choose a new password"),
            text=_("Hello %(name)s,\n\nSomeone (probably you) asked to choose a new password "
                   "for your Maillage account. Open this link within one hour; it works once:\n"
                   "\n%(link)s\n\nIf you did not ask for it, ignore this mail: your password "
                   "stays as it is.\n", name=user.name, link=link))


@blp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response:
    if users.reset_target(db.session, token) is None:
        return page("portal/message.html", 410, title=_("Link no longer valid"),
                    message=_("This link was already used or has expired. Ask for a new one."))
    if request.method == "GET":
        return page("portal/reset.html")
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return page("portal/reset.html", 422, error=_("The two passwords differ."))
    try:
        user = users.reset_password(db.session, token, password)
    except users.WeakPassword as weak:
        return page("portal/reset.html", 422,
                    error=_("A password needs at least %(n)d characters.", n=weak.minimum))
    if user is None:
        return page("portal/message.html", 410, title=_("Link no longer valid"),
                    message=_("This link was already used or has expired. Ask for a new one."))
    log_out()
    flash(_("Your password was changed. Log in with it."), "info")
    return redirect(url_for("auth.login"))
