"""The participant check-in page (`/suivi/<token>`): the question of
`hub.followups.checkins`, answered without an account.

The token in the address is the only secret, single-use and expiring, so the form needs no
session or CSRF token: a forged POST would have to know it.  GET only shows the question
(mail scanners fetch links); POST records the answer once.  No JavaScript, no outside
resource; every page is HTML in the participant's language (`?lang=fr|en` switches), errors
included, its texts from the portal's catalogues, and carries headers that keep the token out
of referrers, frames and caches.
Writes go through the request's session and are committed by the app's one commit per
request (`hub.api.app._commit`, which runs for every path and rolls back on errors).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from hub.db import db, utcnow
from hub.directory.organizations import LANGUAGES
from hub.errors import ConcurrentChange
from hub.followups import checkins
from hub.followups.checkins import Answer, ParticipantCheckin, State
from hub.followups.staff_mails import DEFAULT_LANGUAGE

log = logging.getLogger(__name__)

blp = Blueprint("checkin", __name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the address
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

# Why a link no longer asks anything; a withdrawn follow-up consent reads like an expiry.
GONE_MESSAGE = {State.ANSWERED: "answered", State.EXPIRED: "expired", State.WITHDRAWN: "expired"}
# The switch to the other language names it in that language.
SWITCH = {"fr": "English", "en": "Français"}


def _titles() -> dict[str, str]:
    """The pages' titles, in the locale in force."""
    return {"answered": _("Answer already recorded"), "expired": _("Link expired"),
            "unknown": _("Link not found"), "error": _("Something went wrong"),
            "thanks": _("Thank you")}


def _messages(receiver: str) -> dict[str, str]:
    """What a page without a question says, in the locale in force."""
    return {
        "answered": _("Your answer to this question is already recorded. Thank you."),
        "expired": _("This link has expired. If you still need help, contact the "
                     "organization that referred you."),
        "unknown": _("This link does not exist. Check that it is complete: copy it exactly as "
                     "it appears in the email."),
        "error": _("Your answer could not be recorded. Please try again in a moment."),
        "thanks": _("Your answer has been recorded."),
        "thanks_signalled": _("Your answer has been recorded. We told %(receiver)s and the "
                              "organization that referred you that nobody has contacted you "
                              "yet.", receiver=receiver),
    }


def _answers() -> dict[str, str]:
    """The answers' buttons, in the locale in force."""
    return {Answer.CONTACTED.value: _("Yes"), Answer.NOT_CONTACTED.value: _("No"),
            Answer.NO_LONGER_NEEDED.value: _("I no longer need it")}


def _language(stored: str | None = None) -> str:
    """`?lang=` first, then the language the mail was in, then the browser's, else French."""
    asked = checkins.language_of(request.args.get("lang"))
    if asked:
        return asked
    if stored is not None:
        return checkins.language_of(stored) or DEFAULT_LANGUAGE
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT_LANGUAGE)


def _page(template: str, status: int, language: str, **values: Any) -> Response:
    """A page in `language`; `values` are given the page's texts, in that language, to fill."""
    other = "en" if language == "fr" else "fr"
    with force_locale(language):
        texts = {"switch": SWITCH[language], "languages": _("Language"),
                 "choose": _("Choose one of the three answers."),
                 **_answers()}
        html = render_template(f"checkin/{template}.html", lang=language, other=other,
                               t=texts, **values)
    return Response(html, status=status, mimetype="text/html")


def _message(key: str, status: int, language: str, receiver: str = "",
             title: str | None = None) -> Response:
    with force_locale(language):
        title_text = _titles()[title or key]
        message = _messages(receiver)[key]
    return _page("message", status, language, title=title_text, message=message)


def _question(checkin: ParticipantCheckin, language: str, status: int = 200,
              error: bool = False) -> Response:
    receiver = checkins.receiver_name(db.session, checkin)
    with force_locale(language):
        title = _("Following up on your request")
        question = _("Has %(receiver)s contacted you?", receiver=receiver)
        who_learns = _("Your answer will be passed on to the organization that referred you "
                       "to %(receiver)s and to %(receiver)s.", receiver=receiver)
    return _page("question", status, language, title=title, question=question,
                 who_learns=who_learns, answers=[answer.value for answer in Answer],
                 error=error)


@blp.get("/suivi/<token>")
def question(token: str) -> Response:
    """The question, with the receiving organization's name; answers nothing."""
    checkin = checkins.find(db.session, token)
    if checkin is None:
        return _message("unknown", 404, _language())
    language = _language(checkin.language)
    state = checkins.state_of(db.session, checkin, utcnow())
    if state is not State.OPEN:
        return _message(GONE_MESSAGE[state], 410, language)
    return _question(checkin, language)


@blp.post("/suivi/<token>")
def answer(token: str) -> Response:
    """Record the answer, once: a second submission (a double click) finds it recorded."""
    session = db.session
    checkin = checkins.find(session, token)
    if checkin is None:
        return _message("unknown", 404, _language())
    language = _language(checkin.language)
    now = utcnow()
    try:
        chosen = Answer(request.form.get("answer", ""))
    except ValueError:
        state = checkins.state_of(session, checkin, now)
        if state is not State.OPEN:
            return _message(GONE_MESSAGE[state], 410, language)
        return _question(checkin, language, 400, error=True)
    recorded = checkins.record_answer(session, checkin, chosen, now)
    if recorded.state is not State.OPEN:
        return _message(GONE_MESSAGE[recorded.state], 410, language)
    receiver = checkins.receiver_name(session, checkin)
    return _message("thanks_signalled" if recorded.signalled else "thanks", 200, language,
                    receiver, title="thanks")


@blp.get("/suivi/style.css")
def stylesheet() -> Response:
    return Response(render_template("checkin/style.css"), mimetype="text/css")


@blp.errorhandler(Exception)
def _failure(error: Exception) -> Response:
    """An HTML page in the participant's language, never a trace nor the API's JSON."""
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        status = error.code
    elif isinstance(error, ConcurrentChange):
        status = 409
    else:
        log.exception("check-in page failed on %s %s", request.method, request.path)
        status = 500
    return _message("error", status, _language())


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
