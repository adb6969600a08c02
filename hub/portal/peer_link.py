"""The pages a peer and a newcomer reach from a mail, without an account (`/jumelage/<token>`):
the peer sees who asks (the newcomer's given name, destination, pathway, languages and the
counsellor's word) and answers Yes or No once, then may end the contact from the same link;
30 days after a Yes, the newcomer says whether they talked (`hub.peers.matching`).

As on the check-in page (`hub.portal.checkin`), the token is the only secret: GET only shows,
POST acts, so a mail scanner fetching the link changes nothing; pages are in the person's
language (`?lang=fr|en`), with the check-in page's headers and style.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from hub.db import db, utcnow
from hub.directory.organizations import QUEBEC_REGIONS
from hub.errors import DomainError
from hub.peers import matching
from hub.peers.profiles import LinkPurpose, MatchStatus, PeerLink, PeerMatch, find_link
from hub.portal import labels
from hub.portal.checkin import SECURITY_HEADERS, SWITCH
from hub.referrals.legs import Referral

log = logging.getLogger(__name__)

blp = Blueprint("peer_link", __name__)


def _language(link: PeerLink | None) -> str:
    asked = (request.args.get("lang") or "").lower()
    if asked in SWITCH:
        return asked
    return link.language if link is not None and link.language in SWITCH else "fr"


def _page(language: str, status: int, title: str, **values: Any) -> Response:
    other = "en" if language == "fr" else "fr"
    with force_locale(language):
        texts = {"switch": SWITCH[language], "languages": _("Language")}
        html = render_template("checkin/peer.html", lang=language, other=other, t=texts,
                               title=title, **values)
    return Response(html, status=status, mimetype="text/html")


def _message(language: str, status: int, key: str) -> Response:
    with force_locale(language):
        title, message = {
            "unknown": (_("Link not found"), _(
                "This link does not exist. Check that it is complete: copy it exactly as it "
                "appears in the email.")),
            "closed": (_("This contact is closed"), _(
                "This proposal is no longer open: it was declined, lapsed or ended. Thank you "
                "for your help.")),
            "answered": (_("Answer already recorded"), _(
                "Your answer to this question is already recorded. Thank you.")),
            "error": (_("Something went wrong"), _(
                "Your answer could not be recorded. Please try again in a moment.")),
        }[key]
        return _page(language, status, title, message=message)


def _proposal(match: PeerMatch, language: str, status: int = 200,
              message: str | None = None) -> Response:
    """What the peer sees: who asks, where to, why, in which languages; the actions of now."""
    newcomer = match.participant
    with force_locale(language):
        region = QUEBEC_REGIONS.get(match.peer.region, match.peer.region)
        pathway = None
        if match.referral_id is not None:
            leg = db.session.get(Referral, match.referral_id)
            pathway = labels.label("pathway", leg.pathway) if leg is not None else None
        facts = [(_("Given name"), newcomer.given_name),
                 (_("Settling in"), region),
                 (_("Speaks"), newcomer.preferred_language)]
        if pathway:
            facts.append((_("Pathway"), pathway))
        if match.note:
            facts.append((_("Word from the counsellor"), match.note))
        if match.status == MatchStatus.PROPOSED:
            title = _("Would you talk with %(name)s?", name=newcomer.given_name)
            intro = _("A newcomer is about to settle where you settled before. If you say "
                      "yes, only your given name and the ways of contacting you that you "
                      "chose are passed on to their counsellor.")
            actions = [("accept", _("Yes, I agree")), ("decline", _("No, thank you"))]
        else:
            title = _("You agreed to talk with %(name)s", name=newcomer.given_name)
            intro = _("Thank you. You may end this contact at any time; both organizations "
                      "will be told, without any reason asked.")
            actions = [("end", _("End this contact"))]
    return _page(language, status, title, intro=intro, facts=facts, actions=actions,
                 message=message)


def _talk_question(match: PeerMatch, language: str, status: int = 200) -> Response:
    peer_name = match.peer.participant.given_name
    with force_locale(language):
        title = _("Have you been able to talk with %(peer)s?", peer=peer_name)
        actions = [("talked", _("Yes")), ("not_yet", _("Not yet"))]
    return _page(language, status, title, actions=actions)


def _opened(token: str) -> tuple[PeerLink, PeerMatch, str] | Response:
    """The token's link, its open match and the page's language; else the page telling why
    not: an unknown link, a match closed, or the newcomer's question answered already."""
    link = find_link(db.session, token)
    language = _language(link)
    if link is None:
        return _message(language, 404, "unknown")
    match = db.session.get(PeerMatch, link.match_id)
    if match is None or not match.is_open or not matching.still_allowed(db.session, match):
        return _message(language, 410, "closed")
    if link.purpose == LinkPurpose.TALKED and link.used_at is not None:
        return _message(language, 410, "answered")
    return link, match, language


@blp.get("/jumelage/<token>")
def show(token: str) -> Response:
    opened = _opened(token)
    if isinstance(opened, Response):
        return opened
    link, match, language = opened
    if link.purpose == LinkPurpose.TALKED:
        return _talk_question(match, language)
    return _proposal(match, language)


@blp.post("/jumelage/<token>")
def act(token: str) -> Response:
    """Yes or No once; then End while accepted; or the newcomer's answer, once."""
    session = db.session
    opened = _opened(token)
    if isinstance(opened, Response):
        return opened
    link, match, language = opened
    chosen = request.form.get("action", "")
    now = utcnow()
    if link.purpose == LinkPurpose.TALKED:
        if chosen not in ("talked", "not_yet"):
            return _talk_question(match, language, 400)
        matching.record_talked(session, match, chosen == "talked")
        link.used_at = now
        with force_locale(language):
            return _page(language, 200, _("Thank you"), message=_("Your answer has been "
                                                                  "recorded."))
    if chosen in ("accept", "decline") and link.used_at is None:
        matching.answer(session, match, accept=chosen == "accept", actor="peer")
        link.used_at = now
    elif chosen == "end" and match.status == MatchStatus.ACCEPTED:
        matching.end(session, match, actor="peer", reason="peer_ended")
        return _message(language, 200, "closed")
    else:
        return _proposal(match, language, 400)
    if match.status == MatchStatus.DECLINED:
        return _message(language, 200, "closed")
    with force_locale(language):
        done = _("Thank you: your given name and the contact you chose are passed on to the "
                 "counsellor, who will introduce you.")
    return _proposal(match, language, message=done)


@blp.errorhandler(Exception)
def _failure(error: Exception) -> Response:
    """An HTML page in the person's language, never a trace nor the API's JSON."""
    db.session.rollback()
    if isinstance(error, DomainError):
        return _message(_language(None), error.http_status, "closed")
    if isinstance(error, HTTPException) and error.code and error.code < 500:
        return _message(_language(None), error.code, "error")
    log.exception("peer link page failed on %s %s", request.method, request.path)
    return _message(_language(None), 500, "error")


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
