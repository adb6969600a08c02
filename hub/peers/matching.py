"""Peer matching (docs/design.md §11), with the peer in control: their organization enrols them,
a newcomer's counsellor finds them pseudonymously and proposes, the peer answers by a
single-use link (or their organization for them), either side ends it, and any withdrawal ends
open matches at once.

Every change appends a `peer_match.*` event (codes and ids only) to both organizations.  What
a reader is shown of a peer or a newcomer is decided by `hub.consent.visibility`; mails go
through the mail outbox, in the recipient's language.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.db import iso_utc, utcnow
from hub.directory.organizations import QUEBEC_REGIONS
from hub.errors import DomainError, Invalid, NotAllowed, NotFound
from hub.events.store import record
from hub.events.types import EventType
from hub.followups import checkins
from hub.followups.deadlines import DEFAULT_TIME_ZONE, add_business_days
from hub.followups.staff_mails import (
    DEFAULT_LANGUAGE,
    DEFAULT_PUBLIC_URL,
    mail_date,
    mail_texts,
    one_line,
)
from hub.outbox.mail import queue_mail
from hub.peers.profiles import (
    OPEN_MATCHES,
    PURPOSE,
    Channel,
    LinkPurpose,
    MatchStatus,
    PeerLink,
    PeerMatch,
    PeerProfile,
    PeerStatus,
    has_consent,
    hash_token,
    new_token,
    profile_of,
    still_allowed,
)
from hub.referrals.legs import Referral
from hub.referrals.participants import Participant

ANSWER_WITHIN_BUSINESS_DAYS = 10
ASK_IF_TALKED_AFTER = timedelta(days=30)


class PeerAlreadyEnrolled(DomainError):
    http_status = 409
    title = "Already enrolled"
    slug = "peer-already-enrolled"

    def __init__(self, peer_id: uuid.UUID) -> None:
        super().__init__(f"This participant is enrolled as peer {peer_id} already; change it "
                         f"with PATCH /api/v1/peers/{peer_id}.")
        self.peer_id = peer_id

    def members(self) -> dict[str, Any]:
        return {"peer_id": str(self.peer_id)}


class MatchClosed(DomainError):
    http_status = 409
    title = "Match closed"
    slug = "peer-match-closed"

    def __init__(self, match: PeerMatch, wanted: str) -> None:
        super().__init__(f"Peer match {match.id} is '{match.status}': it can no longer be "
                         f"{wanted}.")
        self.match_status = match.status

    def members(self) -> dict[str, Any]:
        return {"match_status": self.match_status}


class AlreadyProposed(DomainError):
    http_status = 409
    title = "Already proposed"
    slug = "peer-match-exists"

    def __init__(self, match_id: uuid.UUID) -> None:
        super().__init__(f"Peer match {match_id} between these two people is still open.")
        self.match_id = match_id

    def members(self) -> dict[str, Any]:
        return {"peer_match_id": str(self.match_id)}


# --- consent --------------------------------------------------------------------------------

def _require_consent(session: Session, participant: Participant, organization_id: uuid.UUID
                     ) -> None:
    consents.lock_participant(session, participant.id)
    if not has_consent(session, participant.id):
        raise consents.ConsentRequired(participant.id, organization_id, PURPOSE)


# --- profiles -------------------------------------------------------------------------------

PROFILE_FIELDS = ("region", "municipality", "languages", "pathways", "offers",
                  "contact_channels", "settled_since")


def _check_profile(participant: Participant, fields: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if "region" in fields and fields["region"] not in QUEBEC_REGIONS:
        errors["region"] = [f"A Québec region code: {', '.join(QUEBEC_REGIONS)}."]
    for channel in fields.get("contact_channels", ()):
        if channel == Channel.EMAIL and not participant.email:
            errors.setdefault("contact_channels", []).append(
                "The participant has no email: add it to their record first.")
        if channel == Channel.PHONE and not participant.phone:
            errors.setdefault("contact_channels", []).append(
                "The participant has no phone number: add it to their record first.")
    if "settled_since" in fields and fields["settled_since"] > date.today():
        errors["settled_since"] = ["A date in the past."]
    if errors:
        raise Invalid(errors)


def enrol(session: Session, caller: Caller, *, participant_id: uuid.UUID,
          **fields: Any) -> PeerProfile:
    """Enrol one of the caller's participants as a peer; needs their active `peer_matching`
    consent.  A peer who withdrew may be enrolled again."""
    participant = consents.own_participant(session, caller, participant_id)
    _require_consent(session, participant, caller.organization_id)
    _check_profile(participant, fields)
    now = utcnow()
    profile = profile_of(session, participant.id)
    if profile is not None and profile.status != PeerStatus.WITHDRAWN:
        raise PeerAlreadyEnrolled(profile.id)
    if profile is None:
        profile = PeerProfile(id=uuid.uuid4(), participant=participant,
                              organization_id=caller.organization_id, created_at=now)
        session.add(profile)
    for name in PROFILE_FIELDS:
        setattr(profile, name, fields[name])
    profile.status = PeerStatus.AVAILABLE.value
    profile.updated_at = now
    session.flush()
    return profile


def own_profile(session: Session, caller: Caller, peer_id: uuid.UUID) -> PeerProfile:
    profile = session.get(PeerProfile, peer_id)
    if profile is None or profile.organization_id != caller.organization_id:
        raise NotFound("peer", peer_id)
    return profile


def change(session: Session, caller: Caller, peer_id: uuid.UUID, **fields: Any) -> PeerProfile:
    """The peer's organization changes what they offer, or pauses them (`status`)."""
    profile = own_profile(session, caller, peer_id)
    if profile.status == PeerStatus.WITHDRAWN:
        raise Invalid({"status": ["This peer withdrew: enrol them again with POST /api/v1/peers."]})
    _check_profile(profile.participant, fields)
    for name, value in fields.items():
        setattr(profile, name, value)
    profile.updated_at = utcnow()
    session.flush()
    return profile


def withdraw_peer(session: Session, caller: Caller | None, profile: PeerProfile, *,
                  actor: str) -> PeerProfile:
    """The peer stops: withdrawn, and every open match of theirs ends at once."""
    now = utcnow()
    profile.status = PeerStatus.WITHDRAWN.value
    profile.updated_at = now
    session.flush()
    for match in open_matches_of_peer(session, profile.id):
        _end(session, match, "peer_withdrew", actor, caller, now)
    return profile


def open_matches_of_peer(session: Session, peer_id: uuid.UUID) -> list[PeerMatch]:
    return list(session.scalars(select(PeerMatch).where(
        PeerMatch.peer_id == peer_id, PeerMatch.status.in_(OPEN_MATCHES))))


def find_peers(session: Session, caller: Caller, *, region: str | None = None,
               language: str | None = None, pathway: str | None = None,
               limit: int = 50, after: uuid.UUID | None = None) -> list[PeerProfile]:
    """Available peers whose `peer_matching` consent covers the caller's organization, by
    region (keyset on id).  Languages and pathways are filtered here: lists in JSON."""
    query = select(PeerProfile).where(
        PeerProfile.status == PeerStatus.AVAILABLE.value,
        consents.covering(PeerProfile.participant_id, caller.organization_id, PURPOSE,
                          utcnow()))
    if region:
        query = query.where(PeerProfile.region == region)
    if after is not None:
        query = query.where(PeerProfile.id > after)
    found: list[PeerProfile] = []
    for profile in session.scalars(query.order_by(PeerProfile.id)):
        if language and language.lower() not in [lang.lower() for lang in profile.languages]:
            continue
        if pathway and pathway not in profile.pathways:
            continue
        found.append(profile)
        if len(found) == limit:
            break
    return found


def visible_peer(session: Session, caller: Caller, peer_id: uuid.UUID) -> PeerProfile:
    """A peer the caller may see: its own organization's, or an available one whose consent
    covers the caller; else NotFound."""
    profile = session.get(PeerProfile, peer_id)
    if profile is not None and profile.organization_id == caller.organization_id:
        return profile
    if (profile is None or profile.status != PeerStatus.AVAILABLE
            or not consents.covers(session, profile.participant, caller.organization_id,
                                   PURPOSE, utcnow())):
        raise NotFound("peer", peer_id)
    return profile


def active_matches(session: Session, peer_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not peer_ids:
        return {}
    return dict(session.execute(
        select(PeerMatch.peer_id, func.count()).where(
            PeerMatch.peer_id.in_(peer_ids), PeerMatch.status == MatchStatus.ACCEPTED.value)
        .group_by(PeerMatch.peer_id)).all())


# --- matches --------------------------------------------------------------------------------

def codes(match: PeerMatch) -> dict[str, Any]:
    """The match as events carry it: codes and ids, nobody's name."""
    return {"id": str(match.id), "peer_id": str(match.peer_id), "status": match.status,
            "organization_id": str(match.organization_id),
            "peer_organization_id": str(match.peer_organization_id),
            "referral_id": str(match.referral_id) if match.referral_id else None,
            "proposed_at": iso_utc(match.proposed_at), "expires_at": iso_utc(match.expires_at),
            "answered_at": iso_utc(match.answered_at), "ended_at": iso_utc(match.ended_at),
            "end_reason": match.end_reason, "checkin_answer": match.checkin_answer}


def _event(session: Session, match: PeerMatch, type: EventType, actor: str,
           source_organization_id: uuid.UUID | None) -> None:
    session.flush()  # the new version: the event's sequence
    record(session, type, subject=match.subject, sequence=match.version,
           source_organization_id=source_organization_id, actor=actor,
           data={"peer_match": codes(match)},
           audience={match.organization_id, match.peer_organization_id})


def _link(session: Session, match: PeerMatch, purpose: LinkPurpose, language: str,
          public_url: str) -> str:
    token = new_token()
    session.add(PeerLink(token_hash=hash_token(token), match_id=match.id, purpose=purpose.value,
                         language=language, created_at=utcnow()))
    return f"{public_url.rstrip('/')}/jumelage/{token}"


def language_of(tag: str | None) -> str:
    """The language of a mail to a person who chose `tag` ("fr-CA" -> "fr"; French else)."""
    return checkins.language_of(tag) or DEFAULT_LANGUAGE


def propose(session: Session, caller: Caller, *, peer_id: uuid.UUID,
            participant_id: uuid.UUID, referral_id: uuid.UUID | None = None,
            note: str | None = None, public_url: str = DEFAULT_PUBLIC_URL) -> PeerMatch:
    """The newcomer's counsellor proposes a peer: `proposed`, the peer asked by mail (when
    they have an email) with a single-use link, both organizations told."""
    if caller.is_coordinator:
        raise NotAllowed("Coordination bodies watch the network; they propose no peers.")
    newcomer = consents.own_participant(session, caller, participant_id)
    profile = visible_peer(session, caller, peer_id)
    if profile.participant_id == newcomer.id:
        raise Invalid({"peer_id": ["A person is not their own peer."]})
    if profile.status != PeerStatus.AVAILABLE:
        raise Invalid({"peer_id": ["This peer is not available now."]})
    _require_consent(session, newcomer, caller.organization_id)
    if referral_id is not None:
        leg = session.get(Referral, referral_id)
        if leg is None or leg.participant_id != newcomer.id or leg.party_of(
                caller.organization_id) is None:
            raise Invalid({"referral_id": ["A leg of this newcomer that your organization "
                                           "sent or received."]})
    existing = session.scalar(select(PeerMatch.id).where(
        PeerMatch.peer_id == profile.id, PeerMatch.participant_id == newcomer.id,
        PeerMatch.status.in_(OPEN_MATCHES)))
    if existing is not None:
        raise AlreadyProposed(existing)
    now = utcnow()
    match = PeerMatch(id=uuid.uuid4(), peer=profile, participant=newcomer,
                      organization_id=caller.organization_id,
                      peer_organization_id=profile.organization_id, referral_id=referral_id,
                      note=note.strip() if note and note.strip() else None,
                      status=MatchStatus.PROPOSED.value, proposed_by=caller.actor,
                      proposed_at=now,
                      expires_at=add_business_days(now, ANSWER_WITHIN_BUSINESS_DAYS))
    session.add(match)
    _event(session, match, EventType.PEER_MATCH_PROPOSED, caller.actor, caller.organization_id)
    peer = profile.participant
    if peer.email:
        language = language_of(peer.preferred_language)
        link = _link(session, match, LinkPurpose.ANSWER, language, public_url)
        texts = mail_texts(language)
        values = {"name": one_line(newcomer.given_name), "link": link,
                  "region": QUEBEC_REGIONS.get(profile.region, profile.region),
                  "expires": mail_date(match.expires_at.astimezone(
                      ZoneInfo(DEFAULT_TIME_ZONE)).date(), language)}
        queue_mail(session, to=peer.email, language=language,
                   subject=texts.gettext("A newcomer would like to talk with you") % values,
                   text=texts.gettext(
                       "Hello,\n\n"
                       "%(name)s is about to settle in %(region)s, where you settled before. "
                       "Their counsellor asks whether you would agree to talk with them.\n\n"
                       "See who they are and answer Yes or No, no password needed:\n\n"
                       "%(link)s\n\n"
                       "If you say yes, only your given name and the ways of contacting you "
                       "that you chose are passed on. You may end it at any time from the "
                       "same link.\n\n"
                       "Without an answer by %(expires)s, the proposal lapses.\n\n"
                       "— Maillage\n") % values,
                   dedupe_key=f"peer-proposal:{match.id}")
    return match


def visible_match(session: Session, caller: Caller, match_id: uuid.UUID) -> PeerMatch:
    """A match of the caller's organization (either side); else NotFound."""
    match = session.get(PeerMatch, match_id)
    if match is None or caller.organization_id not in (match.organization_id,
                                                       match.peer_organization_id):
        raise NotFound("peer match", match_id)
    return match


def matches_of(session: Session, caller: Caller, limit: int = 200) -> list[PeerMatch]:
    return list(session.scalars(select(PeerMatch).where(
        (PeerMatch.organization_id == caller.organization_id)
        | (PeerMatch.peer_organization_id == caller.organization_id))
        .order_by(PeerMatch.proposed_at.desc(), PeerMatch.id).limit(limit)))


def answer(session: Session, match: PeerMatch, *, accept: bool, actor: str,
           caller: Caller | None = None) -> PeerMatch:
    """The peer (by their link: `caller` None) or their organization answers a proposal."""
    if caller is not None and caller.organization_id != match.peer_organization_id:
        raise NotAllowed("Only the peer, or the organization that enrolled them, answers a "
                         "proposal.")
    if match.status != MatchStatus.PROPOSED:
        raise MatchClosed(match, "accepted" if accept else "declined")
    now = utcnow()
    if accept and not still_allowed(session, match, now):
        _end(session, match, "consent_withdrawn", "hub:consent", None, now)
        raise MatchClosed(match, "accepted")
    match.status = (MatchStatus.ACCEPTED if accept else MatchStatus.DECLINED).value
    match.answered_at, match.answered_by = now, actor
    if accept:
        match.checkin_due_at = now + ASK_IF_TALKED_AFTER
    else:
        match.ended_at = now
    _event(session, match, EventType.PEER_MATCH_ACCEPTED if accept
           else EventType.PEER_MATCH_DECLINED, actor,
           caller.organization_id if caller else match.peer_organization_id)
    return match


def end(session: Session, match: PeerMatch, *, actor: str, caller: Caller | None = None,
        reason: str = "ended") -> PeerMatch:
    """Either organization, or the peer by their link, ends an open match."""
    if match.status not in OPEN_MATCHES:
        raise MatchClosed(match, "ended")
    _end(session, match, reason, actor, caller, utcnow())
    return match


def _end(session: Session, match: PeerMatch, reason: str, actor: str, caller: Caller | None,
         now: datetime) -> None:
    match.status = MatchStatus.ENDED.value
    match.ended_at, match.end_reason, match.checkin_due_at = now, reason, None
    _event(session, match, EventType.PEER_MATCH_ENDED, actor,
           caller.organization_id if caller else None)


def end_for_consent(session: Session, participant_id: uuid.UUID, now: datetime) -> int:
    """After a `peer_matching` consent of the person ended: every open match of theirs (as
    newcomer or as peer) that may no longer go on ends at once (`hub.consent.withdrawal`)."""
    profile = profile_of(session, participant_id)
    touched = select(PeerMatch).where(PeerMatch.status.in_(OPEN_MATCHES)).where(
        (PeerMatch.participant_id == participant_id)
        | (PeerMatch.peer_id == (profile.id if profile else None)))
    ended = 0
    for match in session.scalars(touched).all():
        if not still_allowed(session, match, now):
            _end(session, match, "consent_withdrawn", "hub:consent", None, now)
            ended += 1
    return ended


# --- scheduled: lapse, and the 30-day question ----------------------------------------------

def _lapsing(now: datetime) -> list[Any]:
    return [PeerMatch.status == MatchStatus.PROPOSED.value, PeerMatch.expires_at <= now]


def expiry_pending(now: datetime) -> Any:
    return exists().where(*_lapsing(now))


def expire_due(session: Session, now: datetime, limit: int = 500) -> int:
    """Proposals unanswered after 10 business days lapse (`expired`)."""
    query = select(PeerMatch).where(*_lapsing(now)).order_by(PeerMatch.expires_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=PeerMatch)
    matches = session.scalars(query).all()
    for match in matches:
        match.status, match.ended_at = MatchStatus.EXPIRED.value, now
        _event(session, match, EventType.PEER_MATCH_EXPIRED, "scheduler", None)
    return len(matches)


def talk_checks_pending(now: datetime) -> Any:
    return exists().where(PeerMatch.checkin_due_at <= now)


def talk_checks_due(session: Session, now: datetime, limit: int = 500, *,
                    public_url: str = DEFAULT_PUBLIC_URL) -> int:
    """30 days after acceptance, the newcomer is asked by mail whether they talked with the
    peer (a single-use link); asked once: the due time is cleared."""
    query = (select(PeerMatch).where(PeerMatch.checkin_due_at <= now)
             .order_by(PeerMatch.checkin_due_at).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=PeerMatch)
    asked = 0
    for match in session.scalars(query).all():
        match.checkin_due_at = None
        newcomer = match.participant
        if (match.status != MatchStatus.ACCEPTED or not newcomer.email
                or not still_allowed(session, match, now)):
            continue
        language = language_of(newcomer.preferred_language)
        texts = mail_texts(language)
        values = {"peer": one_line(match.peer.participant.given_name),
                  "link": _link(session, match, LinkPurpose.TALKED, language, public_url)}
        queue_mail(session, to=newcomer.email, language=language,
                   subject=texts.gettext("Have you been able to talk with %(peer)s?") % values,
                   text=texts.gettext(
                       "Hello,\n\n"
                       "A month ago %(peer)s agreed to talk with you about settling in. "
                       "Have you been able to talk with %(peer)s? Answer in one click, no "
                       "password needed:\n\n"
                       "%(link)s\n\n"
                       "— Maillage\n") % values,
                   dedupe_key=f"peer-talked:{match.id}")
        asked += 1
    session.flush()
    return asked


def record_talked(session: Session, match: PeerMatch, talked: bool) -> PeerMatch:
    match.checkin_answer = "talked" if talked else "not_yet"
    match.checkin_answered_at = utcnow()
    session.flush()
    return match


def counts_by_region(session: Session, min_cell: int) -> dict[str, Any]:
    """Coordinators: per region, available peers and matches by status; never people.  As in
    every coordinator report (`hub.referrals.reports`, HUB_REPORT_MIN_CELL), a count from 1
    to `min_cell` - 1 is withheld: null, and named in `suppression.suppressed` as
    `<region>/available_peers` or `<region>/matches/<status>` ("1 peer in Côte-Nord" points
    at one person).  No total is given beside them, so none comes back by subtraction."""
    peers = dict(session.execute(select(PeerProfile.region, func.count()).where(
        PeerProfile.status == PeerStatus.AVAILABLE.value).group_by(PeerProfile.region)).all())
    matches: dict[str, dict[str, int]] = {}
    for region, status, count in session.execute(
            select(PeerProfile.region, PeerMatch.status, func.count())
            .join(PeerProfile, PeerProfile.id == PeerMatch.peer_id)
            .group_by(PeerProfile.region, PeerMatch.status)):
        matches.setdefault(region, {})[status] = count
    return withhold_small_counts(
        [{"region": region, "available_peers": peers.get(region, 0),
          "matches": {status.value: matches.get(region, {}).get(status.value, 0)
                      for status in MatchStatus}}
         for region in sorted(set(peers) | set(matches))], min_cell)


def withhold_small_counts(rows: list[dict[str, Any]], min_cell: int) -> dict[str, Any]:
    """`counts_by_region`'s rows with each count from 1 to `min_cell` - 1 replaced by None,
    and the list of what was withheld."""
    withheld: list[str] = []

    def shown(count: int, path: str) -> int | None:
        if 0 < count < min_cell:
            withheld.append(path)
            return None
        return count

    items = [{"region": row["region"],
              "available_peers": shown(row["available_peers"],
                                       f"{row['region']}/available_peers"),
              "matches": {status: shown(count, f"{row['region']}/matches/{status}")
                          for status, count in row["matches"].items()}}
             for row in rows]
    return {"items": items, "suppression": {"min_cell": min_cell, "suppressed": withheld}}
