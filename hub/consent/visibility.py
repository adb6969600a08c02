"""Who may see what: the one place where personal data is given or withheld, per reader.

Every representation of a participant or a leg that leaves the hub (API responses, the event
feed, webhook payloads, portal pages) is built here, from the state at the moment it is built.
Nothing personal is copied into events at send time, so nothing goes stale.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Uuid, bindparam, select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import access_log, consents
from hub.db import iso_utc
from hub.directory.organizations import Organization, OrganizationKind
from hub.errors import NotFound
from hub.peers.profiles import Channel, PeerMatch, PeerProfile, still_allowed
from hub.referrals import households
from hub.referrals.checklists import ChecklistItem
from hub.referrals.legs import OPEN_STATUSES, Referral, chain_of, receives_open_leg, snapshot
from hub.referrals.participants import Participant, ParticipantErased

# What an organization other than the participant's sees of a consent event.
SHARED_CONSENT_FIELDS = ("id", "participant_id", "purpose", "status", "granted_at",
                         "expires_at", "withdrawn_at", "expired_at")


# Receivers that need to know only whom to contact (docs/design.md §12): names and contact
# channels, unless the participant's referral_sharing consent says `share_details: true`.
NEED_TO_KNOW_KINDS = frozenset({OrganizationKind.EMPLOYER.value,
                                OrganizationKind.INSERTION_ENTERPRISE.value})
# What they are not told, as listed in their answers' `withheld`: the leg's free text (reason,
# needs, the other party's notes) and what the person is beyond how to reach them.
WITHHELD_PARTICIPANT_FIELDS = ("birth_year", "region")
WITHHELD_FROM_NEED_TO_KNOW = ("reason_for_referral", "needs", "notes", "checklist.notes",
                              *(f"participant.{name}" for name in WITHHELD_PARTICIPANT_FIELDS))


def pseudonym(participant_id: uuid.UUID, key: bytes) -> str:
    """A stable reference for coordinators: the same person, never who they are."""
    mac = hmac.new(key, participant_id.bytes, hashlib.sha256).hexdigest()
    return f"P-{mac[:16]}"


# Which of these participants have an open leg to this organization: a page's question, built
# once (building a statement costs about as much Python as running it).
_OPEN_LEG_HOLDERS = select(Referral.participant_id).where(
    Referral.participant_id.in_(bindparam("participant_ids", expanding=True)),
    Referral.to_organization_id == bindparam("organization_id", type_=Uuid()),
    Referral.status.in_(OPEN_STATUSES),
).distinct()


def may_read_personal_data(session: Session, caller: Caller, participant: Participant,
                           leg: Referral | None = None) -> bool:
    """`readable_participants` for one person: the rule is written there.

    `leg`, when the caller is looking at one, saves a query if it is that open leg; the answers
    read with a leg the caller changes (`handoffs.leg_to_change`) save the others.
    """
    return participant.id in readable_participants(session, caller, (participant,),
                                                   (leg,) if leg is not None else ())


def readable_participants(session: Session, caller: Caller, participants: Iterable[Participant],
                          legs: Iterable[Referral] = ()) -> set[uuid.UUID]:
    """The ids of `participants` whose personal data `caller` may read: the registering
    organization always; a receiving organization while it holds an open leg for the
    participant and consent covers it; coordinators never.

    For a whole page at once: a query for open legs and one for consents, not two per person,
    and none for what is known already: `legs` the caller is looking at (an open one it
    receives), the open legs and consent read with the leg it changes in this transaction.
    """
    # An erased person has no personal data left to read, for anyone (docs/design.md §15).
    chosen = {participant.id: participant for participant in participants
              if participant.erased_at is None}
    readable = {pid for pid, p in chosen.items() if p.organization_id == caller.organization_id}
    if caller.is_coordinator:
        return readable
    others = [pid for pid in chosen if pid not in readable]
    if not others:
        return readable
    holders = {leg.participant_id for leg in legs
               if leg.to_organization_id == caller.organization_id
               and leg.status in OPEN_STATUSES}
    unknown = []
    for pid in others:
        if pid in holders:
            continue
        known = receives_open_leg(session, caller.organization_id, pid)
        if known is None:
            unknown.append(pid)
        elif known:
            holders.add(pid)
    if unknown:
        holders.update(session.scalars(_OPEN_LEG_HOLDERS, {
            "participant_ids": unknown, "organization_id": caller.organization_id}))
    candidates = [chosen[pid] for pid in others if pid in holders]
    if candidates:
        readable |= consents.covered_among(session, candidates, caller.organization_id,
                                          "referral_sharing")
    return readable


def note_read_ahead(session: Session, caller: Caller, leg: Referral) -> None:
    """Log now the read of the participant's data that showing `leg` to `caller` will make,
    when it is already certain: the caller is the participant's organization, or receives this
    open leg and consent covers it (asked with the leg: see `handoffs.leg_to_change`).

    Called by the use cases that answer with the leg they changed, before they append the
    event, so that on PostgreSQL the read is written by that statement.  The rendering decides
    again and logs nothing twice; any other read is logged when it is rendered.
    """
    participant = leg.participant
    certain = participant.organization_id == caller.organization_id or (
        not caller.is_coordinator and leg.to_organization_id == caller.organization_id
        and leg.status in OPEN_STATUSES)
    if certain and may_read_personal_data(session, caller, participant, leg):
        access_log.note_read(session, caller, participant.id)


def visible_participant(session: Session, caller: Caller, participant_id: uuid.UUID,
                        *, lock: bool = False) -> Participant:
    """The participant if the caller may read their personal data; else NotFound.

    `lock` takes the participant's lock with the load (see `consent.locked_participant`).
    """
    participant = (consents.locked_participant(session, participant_id) if lock
                   else session.get(Participant, participant_id))
    if (participant is not None and participant.erased_at is not None
            and participant.organization_id == caller.organization_id):
        raise ParticipantErased(participant.id, participant.erased_at)
    if participant is None or not may_read_personal_data(session, caller, participant):
        raise NotFound("participant", participant_id)
    return participant


def referable_participant(session: Session, caller: Caller, participant_id: uuid.UUID
                          ) -> Participant | None:
    """The participant if the caller may send them a referral: its own, or one it received.

    Loaded with the participant's lock, which the consent check of the send needs anyway.
    """
    try:
        return visible_participant(session, caller, participant_id, lock=True)
    except NotFound:
        return None


def participant_view(participant: Participant, *, entitled: bool, coordinator: bool,
                     key: bytes) -> dict[str, Any]:
    if participant.erased_at is not None:
        who = ({"reference": pseudonym(participant.id, key)} if coordinator
               else {"id": str(participant.id)})
        return {**who, "redacted": True, "erased": True}
    if coordinator and not entitled:
        return {"reference": pseudonym(participant.id, key), "redacted": True}
    if not entitled:
        return {"id": str(participant.id), "redacted": True}
    return {
        "id": str(participant.id),
        "organization_id": str(participant.organization_id),
        "given_name": participant.given_name,
        "family_name": participant.family_name,
        "preferred_language": participant.preferred_language,
        "email": participant.email,
        "phone": participant.phone,
        "birth_year": participant.birth_year,
        "region": participant.region,
        "created_at": iso_utc(participant.created_at),
        "version": participant.version,
        "redacted": False,
    }


@dataclass
class Reader:
    """One reader (caller) rendering many legs: remembers entitlement per participant."""

    session: Session
    caller: Caller
    key: bytes
    _entitled: dict[uuid.UUID, bool] = field(default_factory=dict)
    _details_shared: dict[uuid.UUID, bool] = field(default_factory=dict)
    _needs_to_know_only: bool | None = None

    def withheld(self, participant: Participant) -> tuple[str, ...]:
        """What of the participant's referrals this reader is not told even when entitled to
        the person: an employer or insertion enterprise reads names and contact channels
        only, unless the participant's consent shares the details with it (§12)."""
        if participant.organization_id == self.caller.organization_id:
            return ()
        if self._needs_to_know_only is None:
            organization = self.session.get(Organization, self.caller.organization_id)
            self._needs_to_know_only = (organization is not None
                                        and organization.kind in NEED_TO_KNOW_KINDS)
        if not self._needs_to_know_only:
            return ()
        if participant.id not in self._details_shared:
            self._details_shared[participant.id] = consents.shares_details(
                self.session, participant, self.caller.organization_id)
        return () if self._details_shared[participant.id] else WITHHELD_FROM_NEED_TO_KNOW

    def sees_notes(self, participant: Participant, written_by: uuid.UUID) -> bool:
        """Whether a note written by `written_by` on a leg of the participant is shown: its
        own notes always, another organization's unless notes are withheld."""
        return (written_by == self.caller.organization_id
                or "notes" not in self.withheld(participant))

    def entitled(self, participant: Participant, leg: Referral | None = None) -> bool:
        """Whether this reader is shown the participant's personal data; a yes is logged."""
        if participant.id not in self._entitled:
            entitled = may_read_personal_data(self.session, self.caller, participant, leg)
            self._entitled[participant.id] = entitled
            if entitled:
                access_log.note_read(self.session, self.caller, participant.id)
        return self._entitled[participant.id]

    def entitle_page(self, legs: Iterable[Referral]) -> None:
        """Decide at once for the participants of a page of legs (see
        `readable_participants`); `entitled` then answers from memory."""
        legs = list(legs)
        participants = {leg.participant.id: leg.participant for leg in legs}
        undecided = [p for pid, p in participants.items() if pid not in self._entitled]
        if not undecided:
            return
        readable = readable_participants(self.session, self.caller, undecided, legs)
        for participant in undecided:
            self._entitled[participant.id] = participant.id in readable
            if participant.id in readable:
                access_log.note_read(self.session, self.caller, participant.id)

    def participant(self, participant: Participant) -> dict[str, Any]:
        entitled = self.entitled(participant)
        view = participant_view(participant, entitled=entitled,
                                coordinator=self.caller.is_coordinator, key=self.key)
        if entitled and self.withheld(participant):
            for name in WITHHELD_PARTICIPANT_FIELDS:
                view[name] = None
            view["withheld"] = list(WITHHELD_PARTICIPANT_FIELDS)
        return view

    def consent_event(self, data: dict[str, Any]) -> dict[str, Any]:
        """A consent event's data for this reader, decided now:
        - the participant's organization sees the whole consent;
        - another organization sees what concerns it (not whom else the person trusts), and
          is told to erase its copy when an ending leaves it uncovered;
        - coordinators get the participant's pseudonym instead of the id.
        """
        state = dict(data["consent"])
        participant_id = uuid.UUID(state["participant_id"])
        participant = self.session.get(Participant, participant_id)
        view: dict[str, Any] = {}
        if participant is not None and participant.organization_id == self.caller.organization_id:
            view["consent"] = state
        else:
            view["consent"] = {k: state[k] for k in SHARED_CONSENT_FIELDS if k in state}
        if self.caller.is_coordinator:
            view["consent"].pop("participant_id", None)
            view["consent"]["participant_reference"] = pseudonym(participant_id, self.key)
        if "erase_personal_data" in data:  # a withdrawal or an expiry
            view["erase_personal_data"] = participant is not None and not consents.covers(
                self.session, participant, self.caller.organization_id, "referral_sharing")
        return view

    def checklist(self, referral: Referral, items: Iterable[ChecklistItem]) -> dict[str, Any]:
        """The leg's checklist for this reader: codes, owners and statuses for every reader of
        the leg; the notes only for a party entitled to the person, not for an employer
        without the details (`withheld` says so)."""
        participant = referral.participant
        entitled = (referral.party_of(self.caller.organization_id) is not None
                    and self.entitled(participant, referral))
        withheld = self.withheld(participant) if entitled else ()
        notes = entitled and "checklist.notes" not in withheld
        return {
            "referral_id": str(referral.id),
            "needed_by": referral.needed_by.isoformat() if referral.needed_by else None,
            "items": [{"code": item.code, "owner": item.owner, "status": item.status,
                       "note": item.note if notes else None,
                       "updated_at": iso_utc(item.updated_at)} for item in items],
            "withheld": ["checklist.notes"] if "checklist.notes" in withheld else [],
        }
    def participant_event(self, data: dict[str, Any]) -> dict[str, Any]:
        """A participant event's data (ids and field names, never values) for this reader:
        coordinators get the pseudonym instead of the id."""
        state = dict(data["participant"])
        if self.caller.is_coordinator:
            state["reference"] = pseudonym(uuid.UUID(state.pop("id")), self.key)
        # Codes beside it (an erasure's moment, reason and request to erase the copy).
        return {**{k: v for k, v in data.items() if k != "participant"}, "participant": state}

    def referral(self, referral: Referral, *, state: dict[str, Any] | None = None,
                 with_chain: bool = False) -> dict[str, Any]:
        """The leg as this reader may see it; `state` is an event's snapshot to show instead
        of the current state (history shows each event's state, today's redaction)."""
        participant = referral.participant
        entitled = self.entitled(participant, referral)
        is_party = referral.party_of(self.caller.organization_id) is not None
        view = dict(state if state is not None else snapshot(referral))
        view["participant"] = self.participant(participant)
        if not is_party or (self.caller.is_coordinator and not entitled):
            view.pop("participant_id", None)
        withheld = self.withheld(participant) if entitled else ()
        shown = entitled and not withheld
        view["reason_for_referral"] = referral.reason_for_referral if shown else None
        view["needs"] = list(referral.needs or []) if shown else []
        view["withheld"] = list(withheld)
        if with_chain and referral.from_organization_id == self.caller.organization_id:
            # The other members' open legs this sender prepares with this one (§12).
            view["household_legs"] = [
                {"id": str(leg.id), "participant_id": str(leg.participant_id),
                 "to_organization_id": str(leg.to_organization_id), "status": leg.status,
                 "needed_by": leg.needed_by.isoformat() if leg.needed_by else None}
                for leg in households.others_open_legs(self.session, referral,
                                                       self.caller.organization_id)]
        if with_chain:
            view["chain"] = [
                {
                    "id": str(leg.id),
                    "from_organization_id": str(leg.from_organization_id),
                    "to_organization_id": str(leg.to_organization_id),
                    "status": leg.status,
                    "forwarded_from": str(leg.forwarded_from) if leg.forwarded_from else None,
                    "created_at": iso_utc(leg.created_at),
                    "updated_at": iso_utc(leg.updated_at),
                }
                for leg in chain_of(self.session, referral)
            ]
        return view

    def followup(self, record: Any, referral: Referral) -> dict[str, Any]:
        """A follow-up record (`hub.followups.records`) as this reader may see it: the codes
        to either party and coordinators; the note, which may name the person, only to the
        sending organization while it may read the participant's personal data (a read that
        is logged)."""
        view: dict[str, Any] = {
            "id": str(record.id), "referral_id": str(record.referral_id), "due": record.due,
            "reached": record.reached, "situation": record.situation,
            "in_destination_region": record.in_destination_region,
            "recorded_at": iso_utc(record.recorded_at), "recorded_by": record.recorded_by,
            "note": None}
        if (referral.from_organization_id == self.caller.organization_id
                and record.note is not None and self.entitled(referral.participant, referral)):
            view["note"] = record.note
        return view

    # --- peer matching (docs/design.md §11) -----------------------------------------------

    def peer_profile(self, profile: PeerProfile, active_matches: int = 0) -> dict[str, Any]:
        """A peer as a reader finds them: pseudonymous (where, what they offer, the year they
        settled), never a name, a contact or their organization; their own organization also
        sees its participant's id, the status and the channels chosen."""
        view: dict[str, Any] = {
            "id": str(profile.id), "region": profile.region,
            "municipality": profile.municipality, "languages": list(profile.languages),
            "pathways": list(profile.pathways), "offers": list(profile.offers),
            "settled_since_year": profile.settled_since.year,
            "active_matches": active_matches}
        if profile.organization_id == self.caller.organization_id:
            view.update(participant_id=str(profile.participant_id), status=profile.status,
                        contact_channels=list(profile.contact_channels),
                        settled_since=profile.settled_since.isoformat())
        return view

    def peer_match(self, match: PeerMatch, codes: dict[str, Any]) -> dict[str, Any]:
        """A match as one of its two organizations may see it now.

        - the newcomer's organization: the peer's given name and only the channels they
          chose, once the match is `accepted` and while both `peer_matching` consents allow
          it (`still_allowed`); nothing else about the peer, ever;
        - the peer's organization: what the peer is asked (the newcomer's given name and
          languages) while the match is open and allowed;
        - anyone else: nothing (the caller checked it is a party).
        Each personal read is logged."""
        view = dict(codes)
        view["peer"] = None
        view["newcomer"] = None
        allowed = match.is_open and still_allowed(self.session, match)
        if match.organization_id == self.caller.organization_id:
            view["participant_id"] = str(match.participant_id)
            view["note"] = match.note
            if match.status == "accepted" and allowed:
                peer = match.peer.participant
                contact = {Channel.EMAIL.value: peer.email, Channel.PHONE.value: peer.phone}
                view["peer"] = {"given_name": peer.given_name,
                                "contact": {channel: contact[channel]
                                            for channel in match.peer.contact_channels
                                            if contact.get(channel)}}
                access_log.note_read(self.session, self.caller, peer.id)
        if match.peer_organization_id == self.caller.organization_id and allowed:
            newcomer = match.participant
            view["newcomer"] = {"given_name": newcomer.given_name,
                                "preferred_language": newcomer.preferred_language}
            view["note"] = match.note
            access_log.note_read(self.session, self.caller, newcomer.id)
        return view
