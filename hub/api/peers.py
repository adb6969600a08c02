"""Peer matching (docs/design.md §11): peers enrolled by their own organization, found
pseudonymously by a newcomer's counsellor, and the matches between them (`hub.peers`)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, jsonify
from flask.views import MethodView
from marshmallow import RAISE, Schema, fields, validate

from hub.accounts.callers import Caller
from hub.adapters.oauth import current_caller, current_client_id, require_scope
from hub.api.common import (
    Blueprint,
    Input,
    PageArgs,
    Timestamp,
    cursor_after,
    page_of,
    pseudonym_key,
    retrying,
)
from hub.api.idempotency import idempotent
from hub.consent.visibility import Reader
from hub.db import db
from hub.directory.organizations import QUEBEC_REGIONS
from hub.errors import NotAllowed
from hub.peers import matching
from hub.peers.profiles import Channel, Offer, PeerMatch, PeerProfile, PeerStatus
from hub.referrals.lifecycle import Pathway

blp = Blueprint("peers", __name__, url_prefix="/api/v1",
                description="Peer matching: people who settled before, put in touch with "
                            "newcomers on their own terms.")


BCP47 = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


def _non_empty_subset(choices: list[str]) -> Any:
    return fields.List(fields.String(validate=validate.OneOf(choices)), required=True,
                       validate=validate.Length(min=1, max=len(choices)))


class PeerIn(Input):
    participant_id = fields.UUID(required=True, metadata={
        "description": "Your participant, with an active `peer_matching` consent."})
    region = fields.String(required=True, validate=validate.OneOf(list(QUEBEC_REGIONS)))
    municipality = fields.String(required=True, validate=validate.Length(1, 120))
    languages = fields.List(fields.String(validate=validate.Regexp(BCP47)), required=True,
                            validate=validate.Length(1, 10), metadata={
                                "description": "BCP 47 tags: fr, en, es, ar..."})
    pathways = fields.List(fields.String(validate=validate.OneOf([p.value for p in Pathway])),
                           required=True, validate=validate.Length(1, 6))
    offers = _non_empty_subset([o.value for o in Offer])
    contact_channels = _non_empty_subset([c.value for c in Channel])
    settled_since = fields.Date(required=True)


class PeerPatch(PeerIn):
    status = fields.String(validate=validate.OneOf([PeerStatus.AVAILABLE.value,
                                                    PeerStatus.PAUSED.value]))

    class Meta:
        exclude = ("participant_id",)


class PeerOut(Schema):
    id = fields.UUID()
    region = fields.String()
    municipality = fields.String()
    languages = fields.List(fields.String())
    pathways = fields.List(fields.String())
    offers = fields.List(fields.String())
    settled_since_year = fields.Integer()
    active_matches = fields.Integer()
    participant_id = fields.UUID(metadata={"description": "Your own peers only."})
    status = fields.String(metadata={"description": "Your own peers only."})
    contact_channels = fields.List(fields.String(), metadata={
        "description": "Your own peers only."})
    settled_since = fields.String(metadata={"description": "Your own peers only (a date)."})


class PeerPage(Schema):
    items = fields.List(fields.Nested(PeerOut))
    next_cursor = fields.String(allow_none=True)


class PeerFilters(PageArgs):
    region = fields.String(validate=validate.OneOf(list(QUEBEC_REGIONS)))
    language = fields.String(validate=validate.Length(2, 35))
    pathway = fields.String(validate=validate.OneOf([p.value for p in Pathway]))


class MatchIn(Input):
    peer_id = fields.UUID(required=True)
    participant_id = fields.UUID(required=True, metadata={
        "description": "The newcomer: your participant, with an active `peer_matching` "
                       "consent."})
    referral_id = fields.UUID(load_default=None, allow_none=True)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000),
                         metadata={"description": "A word for the peer (shown on their link)."})


class PeerContact(Schema):
    given_name = fields.String()
    contact = fields.Dict(metadata={"description": "Only the channels the peer chose."})


class Newcomer(Schema):
    given_name = fields.String()
    preferred_language = fields.String()


class MatchOut(Schema):
    id = fields.UUID()
    peer_id = fields.UUID()
    status = fields.String(metadata={"enum": ["proposed", "accepted", "declined", "expired",
                                              "ended"]})
    organization_id = fields.UUID()
    peer_organization_id = fields.UUID()
    referral_id = fields.UUID(allow_none=True)
    participant_id = fields.UUID(metadata={"description": "The newcomer's organization only."})
    note = fields.String(allow_none=True)
    proposed_at = Timestamp()
    expires_at = Timestamp()
    answered_at = Timestamp(allow_none=True)
    ended_at = Timestamp(allow_none=True)
    end_reason = fields.String(allow_none=True)
    checkin_answer = fields.String(allow_none=True)
    peer = fields.Nested(PeerContact, allow_none=True, metadata={
        "description": "The newcomer's organization, once accepted: the peer's given name and "
                       "chosen channels."})
    newcomer = fields.Nested(Newcomer, allow_none=True, metadata={
        "description": "The peer's organization, while the proposal is open."})


class MatchList(Schema):
    items = fields.List(fields.Nested(MatchOut))


class RegionCount(Schema):
    region = fields.String()
    available_peers = fields.Integer(allow_none=True, metadata={
        "description": "null when withheld: from 1 to suppression.min_cell - 1"})
    matches = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))


class RegionCounts(Schema):
    items = fields.List(fields.Nested(RegionCount))
    suppression = fields.Dict(metadata={
        "description": "min_cell (HUB_REPORT_MIN_CELL) and the counts withheld, named "
                       "`<region>/available_peers` or `<region>/matches/<status>`"})


def _reader(caller: Caller | None = None) -> Reader:
    return Reader(db.session, caller or current_caller(), pseudonym_key())


def _peer_view(profile: PeerProfile) -> dict[str, Any]:
    counts = matching.active_matches(db.session, [profile.id])
    return _reader().peer_profile(profile, counts.get(profile.id, 0))


def _match_view(match: PeerMatch) -> dict[str, Any]:
    return _reader().peer_match(match, matching.codes(match))


def _json(view: dict[str, Any], status: int) -> Response:
    response = jsonify(view)
    response.status_code = status
    return response


def _peer_again(stored: dict[str, Any], status: int) -> Response:
    """A replayed enrolment, shown as the peer is now."""
    return _json(_peer_view(matching.own_profile(db.session, current_caller(),
                                                 uuid.UUID(stored["id"]))), status)


def _match_again(stored: dict[str, Any], status: int) -> Response:
    """A replayed proposal, shown as the match is now (to whom it may be shown now)."""
    return _json(_match_view(matching.visible_match(db.session, current_caller(),
                                                    uuid.UUID(stored["id"]))), status)


@blp.route("/peers")
class Peers(MethodView):
    @require_scope("peers:write")
    @idempotent(current_client_id, rerender=_peer_again)
    @blp.arguments(PeerIn())
    @blp.response(201, PeerOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Enrol one of your participants as a peer (their active `peer_matching` consent is
        needed, else 409 `consent_required`). Contact channels must be ones the participant's
        record holds."""
        profile = matching.enrol(db.session, current_caller(), **body)
        return _peer_view(profile)

    @require_scope("peers:read")
    @blp.arguments(PeerFilters, location="query", unknown=RAISE, as_kwargs=True)
    @blp.response(200, PeerPage)
    def get(self, limit: int, cursor: str | None, **filters: Any) -> dict[str, Any]:
        """Available peers whose `peer_matching` consent covers your organization, as
        pseudonymous profiles: never a name, a contact or their organization."""
        caller = current_caller()
        after = cursor_after(cursor, uuid.UUID)
        found = matching.find_peers(db.session, caller, limit=limit + 1, after=after, **filters)
        page, next_cursor = page_of(found, limit, lambda p: (p.id,))
        counts = matching.active_matches(db.session, [p.id for p in page])
        reader = _reader(caller)
        return {"items": [reader.peer_profile(p, counts.get(p.id, 0)) for p in page],
                "next_cursor": next_cursor}


@blp.route("/peers/<uuid:peer_id>")
class PeerById(MethodView):
    @require_scope("peers:read")
    @blp.response(200, PeerOut)
    def get(self, peer_id: uuid.UUID) -> Any:
        """One peer: your own in full, another as a pseudonymous profile."""
        return _peer_view(matching.visible_peer(db.session, current_caller(), peer_id))

    @require_scope("peers:write")
    @blp.arguments(PeerPatch(partial=True))
    @blp.response(200, PeerOut)
    def patch(self, body: dict[str, Any], peer_id: uuid.UUID) -> Any:
        """Your peer's organization changes what they offer, or pauses them
        (`status`: `available`, `paused`)."""
        return _peer_view(matching.change(db.session, current_caller(), peer_id, **body))


@blp.route("/peers/<uuid:peer_id>/withdraw")
class PeerWithdrawal(MethodView):
    @require_scope("peers:write")
    @blp.response(200, PeerOut)
    def post(self, peer_id: uuid.UUID) -> Any:
        """The peer stops: `withdrawn`, and every open match of theirs ends at once."""
        caller = current_caller()
        profile = matching.own_profile(db.session, caller, peer_id)
        return _peer_view(matching.withdraw_peer(db.session, caller, profile,
                                                 actor=caller.actor))


@blp.route("/peers/counts")
class PeerCounts(MethodView):
    @require_scope("peers:read")
    @blp.response(200, RegionCounts)
    def get(self) -> dict[str, Any]:
        """Coordinators: per region, available peers and matches by status; never people.
        As in the other reports, a count from 1 to `suppression.min_cell` - 1 is null, and
        named in `suppression.suppressed`."""
        if not current_caller().is_coordinator:
            raise NotAllowed("Only coordination bodies read the network's peer counts.")
        return matching.counts_by_region(
            db.session, current_app.config["HUB_SETTINGS"].report_min_cell)


@blp.route("/peer-matches")
class PeerMatches(MethodView):
    @require_scope("peers:write")
    @idempotent(current_client_id, rerender=_match_again)
    @blp.arguments(MatchIn())
    @blp.response(201, MatchOut)
    def post(self, body: dict[str, Any]) -> Any:
        """Propose a peer to one of your newcomers. The peer is asked by mail in their
        language with a single-use link (or their organization answers); unanswered after 10
        business days, the proposal lapses (`expired`). Event `peer_match.proposed` to both
        organizations."""
        caller = current_caller()
        public_url = current_app.config["HUB_SETTINGS"].public_url
        match = retrying(lambda: matching.propose(db.session, caller, public_url=public_url,
                                                  **body))
        return _match_view(match)

    @require_scope("peers:read")
    @blp.response(200, MatchList)
    def get(self) -> dict[str, Any]:
        """Your organization's matches, on either side, newest first (the latest 200)."""
        caller = current_caller()
        reader = _reader(caller)
        return {"items": [reader.peer_match(m, matching.codes(m))
                          for m in matching.matches_of(db.session, caller)]}


@blp.route("/peer-matches/<uuid:match_id>")
class PeerMatchById(MethodView):
    @require_scope("peers:read")
    @blp.response(200, MatchOut)
    def get(self, match_id: uuid.UUID) -> Any:
        """One match; the peer's given name and chosen channels to the newcomer's organization
        once accepted, while both consents allow it."""
        return _match_view(matching.visible_match(db.session, current_caller(), match_id))


def _answer_view(accept: bool) -> Any:
    @require_scope("peers:write")
    @blp.response(200, MatchOut)
    def view(match_id: uuid.UUID) -> Any:
        caller = current_caller()
        match = matching.visible_match(db.session, caller, match_id)
        return _match_view(matching.answer(db.session, match, accept=accept,
                                           actor=caller.actor, caller=caller))

    view.__name__ = f"{'accept' if accept else 'decline'}_peer_match"
    view.__doc__ = (f"The peer's organization {'accepts' if accept else 'declines'} the "
                    f"proposal for them.")
    return view


blp.route("/peer-matches/<uuid:match_id>/accept", methods=["POST"],
          endpoint="accept")(_answer_view(True))
blp.route("/peer-matches/<uuid:match_id>/decline", methods=["POST"],
          endpoint="decline")(_answer_view(False))


@blp.route("/peer-matches/<uuid:match_id>/end")
class PeerMatchEnd(MethodView):
    @require_scope("peers:write")
    @blp.response(200, MatchOut)
    def post(self, match_id: uuid.UUID) -> Any:
        """Either organization ends an open match. Event `peer_match.ended` to both."""
        caller = current_caller()
        match = matching.visible_match(db.session, caller, match_id)
        return _match_view(matching.end(db.session, match, actor=caller.actor, caller=caller))
