"""The participant check-in page (`/suivi/<token>`): the question of `hub.followups.checkins`, answered
without an account.

The token in the address is the only secret, single-use and expiring, so the form needs no
session or CSRF token: a forged POST would have to know it.  GET only shows the question
(mail scanners fetch links); POST records the answer once.  No JavaScript, no outside
resource; every page is HTML in the participant's language (`?lang=fr|en` switches), errors
included, and carries headers that keep the token out of referrers, frames and caches.
Writes go through the request's session and are committed by the app's one commit per
request (`hub.api._commit`, which runs for every path and rolls back on errors).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import HTTPException

from hub.db import db, utcnow
from hub.errors import ConcurrentChange
from hub.followups import checkins
from hub.followups.checkins import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    TEXTS,
    Answer,
    ParticipantCheckin,
    State,
)

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


def _language(stored: str | None = None) -> str:
    """`?lang=` first, then the language the mail was in, then the browser's, else French."""
    asked = checkins.language_of(request.args.get("lang"))
    if asked:
        return asked
    if stored is not None:
        return checkins.language_of(stored) or DEFAULT_LANGUAGE
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT_LANGUAGE)


def _page(template: str, status: int, language: str, **values: Any) -> Response:
    other = "en" if language == "fr" else "fr"
    html = render_template(f"checkin/{template}.html", lang=language, other=other,
                           t=TEXTS[language], **values)
    return Response(html, status=status, mimetype="text/html")


def _message(key: str, status: int, language: str, receiver: str = "",
             title: str | None = None) -> Response:
    texts = TEXTS[language]
    return _page("message", status, language, title=texts[title or f"{key}_title"],
                 message=texts[key].format(receiver=receiver))


def _question(checkin: ParticipantCheckin, language: str, status: int = 200,
              error: bool = False) -> Response:
    texts = TEXTS[language]
    receiver = checkins.receiver_name(db.session, checkin)
    return _page("question", status, language, title=texts["title"],
                 question=texts["question"].format(receiver=receiver),
                 who_learns=texts["who_learns"].format(receiver=receiver),
                 answers=[answer.value for answer in Answer], error=error)


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
                    receiver, title="thanks_title")


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
