"""The page of a new-leg mail's link (`/a/<token>`): a receiving partner with only a mailbox
sees the leg and answers it, without an account (`hub.mailbox`).

GET shows the leg and changes nothing (mail scanners and link previews open links); each
button POSTs one step, carried out by `hub.mailbox.answers.act` (the API's transition, actor
`contact:<id>`).  The token in the address is the secret; there is no session, so instead of
a session's CSRF token a POST must come from this page: a browser's `Origin` (and
`Sec-Fetch-Site`) naming another site is refused, and the form carries the leg's version, so a
page read before someone else answered is shown again as it now is, with the portal's plain
message.  Every request counts towards the link's and the address's rate limit.

No JavaScript, no outside resource, large targets on a phone; the page is in the receiving
organization's language unless `?lang=` switches it.  Writes go through the request's session
and are committed by the app's one commit per request (`hub.api.app._commit`), only for a
success.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug import Response as BaseResponse
from werkzeug.exceptions import HTTPException

from hub.api.common import pseudonym_key
from hub.db import db, utcnow
from hub.directory.organizations import LANGUAGES, Organization, WaitlistBand
from hub.errors import DomainError
from hub.mailbox import answers, links
from hub.mailbox.links import Holder, LinkRefused
from hub.portal import labels
from hub.portal.checkin import SECURITY_HEADERS, SWITCH
from hub.portal.common import message_of, status_of
from hub.referrals import lifecycle

log = logging.getLogger(__name__)

blp = Blueprint("answer", __name__)

# What `?done=` may name: a step, or the capacity said after a decline.
DONE = {*(action.value for action in answers.LINK_ACTIONS), "capacity"}


def _secret() -> str:
    return str(current_app.config["HUB_SETTINGS"].secret_key)


def _language(holder: Holder | None = None) -> str:
    """`?lang=` first, then the receiving organization's, then the browser's, else French."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return str(asked)
    if holder is not None:
        organization = db.session.get(Organization, holder.leg.to_organization_id)
        if organization is not None and organization.language in LANGUAGES:
            return organization.language
    return request.accept_languages.best_match(LANGUAGES, default="fr")


def _render(template: str, status: int, language: str, **values: Any) -> Response:
    with force_locale(language):
        html = render_template(f"answer/{template}.html", lang=language,
                               other="en" if language == "fr" else "fr",
                               t={"switch": SWITCH[language], "languages": _("Language")},
                               label=labels.label, **values)
    return Response(html, status=status, mimetype="text/html")


def _message(status: int, language: str, title: str, message: str) -> Response:
    return _render("message", status, language, title=title, message=message)


def _refused(error: DomainError, language: str) -> Response:
    with force_locale(language):
        if isinstance(error, LinkRefused):
            title = _("Link not valid")
            message = _("This link is not valid or no longer works. Check that it is "
                        "complete, or open the referral in the portal.")
        elif isinstance(error, links.TooManyRequests):
            title = _("Too many requests")
            message = _("Too many requests with this link. Wait a few minutes, then try "
                        "again.")
        else:
            title, message = _("Not possible"), message_of(error)
    return _message(status_of(error), language, title, message)


def _holder(token: str) -> Holder:
    session = db.session
    links.check_rate(session, token, request.remote_addr, utcnow())
    return links.open_link(session, _secret(), token)


def _leg_page(holder: Holder, language: str, *, status: int = 200, error: str | None = None,
              done: str | None = None, capacity_values: dict[str, str] | None = None
              ) -> Response:
    shown = answers.view(db.session, holder, pseudonym_key())
    leg = holder.leg
    return _render("leg", status, language, view=shown, leg=shown.leg, error=error, done=done,
                   ask_capacity=answers.asks_for_capacity(leg), capacity_values=capacity_values,
                   waitlist_bands=list(WaitlistBand), today=utcnow().date().isoformat(),
                   deadlines={"acknowledge_by": leg.acknowledge_by, "decide_by": leg.decide_by,
                              "start_by": leg.start_by},
                   closed=lifecycle.is_terminal(lifecycle.Status(leg.status)),
                   decline_reasons=list(lifecycle.DeclineReason),
                   outcomes=list(lifecycle.Outcome))


@blp.get("/a/<token>")
def show(token: str) -> Response:
    """The leg and the steps open now; changes nothing."""
    try:
        holder = _holder(token)
    except DomainError as error:
        return _refused(error, _language())
    language = _language(holder)
    done = request.args.get("done")
    return _leg_page(holder, language, done=done if done in DONE else None)


def _from_elsewhere() -> bool:
    """Whether the browser says this POST comes from another site (see the module's text).
    `Sec-Fetch-Site` first: the page's `Referrer-Policy: no-referrer` makes browsers send
    `Origin: null` with its own forms, so `Origin` only counts when it names a site."""
    fetched_from = request.headers.get("Sec-Fetch-Site")
    if fetched_from is not None:
        return fetched_from == "cross-site"
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return False
    return urlsplit(origin).netloc != request.host


def _posted(token: str) -> Holder | Response:
    """The link's holder of a POST from this page, or the page that refuses it."""
    if _from_elsewhere():
        language = _language()
        with force_locale(language):
            return _message(403, language, _("Not possible"),
                            _("This form must be sent from its own page. Open the link from "
                              "the mail again."))
    try:
        return _holder(token)
    except DomainError as error:
        return _refused(error, _language())


@blp.post("/a/<token>")
def answer(token: str) -> BaseResponse:
    """Take the step named by the button; a refusal shows the leg again with the reason."""
    holder = _posted(token)
    if isinstance(holder, Response):
        return holder
    language = _language(holder)
    form = request.form
    raw_version = form.get("version", "")
    version = int(raw_version) if raw_version.isdigit() and len(raw_version) <= 18 else None
    action = form.get("action", "")
    session = db.session
    try:
        answers.act(session, holder, action, expected_version=version,
                    reason=form.get("reason") or None, outcome=form.get("outcome") or None,
                    note=(form.get("note") or "").strip()[:2000] or None)
    except DomainError as error:
        session.rollback()
        holder = links.open_link(session, _secret(), token)  # as it is now
        with force_locale(language):
            message = message_of(error)
        return _leg_page(holder, language, status=status_of(error), error=message)
    # After a POST, a GET: reloading the page does not send the step again.
    return redirect(f"/a/{token}?lang={language}&done={action}", code=303)


@blp.post("/a/<token>/capacity")
def capacity(token: str) -> BaseResponse:
    """"We are full until…": the receiver's capacity, after a decline for lack of room."""
    holder = _posted(token)
    if isinstance(holder, Response):
        return holder
    language = _language(holder)
    form = request.form
    values = {name: form.get(name, "") for name in ("capacity", "until", "waitlist_band")}
    try:
        until = date.fromisoformat(values["until"]) if values["until"] else None
    except ValueError:
        with force_locale(language):
            message = _("Enter the date as on a calendar, for example 2027-03-31.")
        return _leg_page(holder, language, status=422, error=message, capacity_values=values)
    try:
        answers.declare_capacity(db.session, holder, capacity=values["capacity"], until=until,
                                 waitlist_band=values["waitlist_band"] or None)
    except DomainError as error:
        db.session.rollback()
        holder = links.open_link(db.session, _secret(), token)
        with force_locale(language):
            message = message_of(error)
        return _leg_page(holder, language, status=status_of(error), error=message,
                         capacity_values=values)
    return redirect(f"/a/{token}?lang={language}&done=capacity", code=303)


@blp.errorhandler(Exception)
def _failure(error: Exception) -> Response:
    """An HTML page in the reader's language, never a trace nor the API's JSON."""
    db.session.rollback()
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        status = error.code
    else:
        log.exception("answer page failed on %s %s", request.method, request.path)
        status = 500
    language = _language()
    with force_locale(language):
        return _message(status, language, _("Something went wrong"),
                        _("Your answer could not be recorded. Please try again in a moment."))


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
