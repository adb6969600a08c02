"""The person's copy: everything the hub collected from one participant, in JSON, for the
organization that registered them to hand over (docs/design.md §15; Law 25 gives the person a
right to it "in a structured, commonly used technological format").

The copy is assembled from sections, one per capability that holds the person's data, each
naming the tables it reads.  A capability that starts holding personal data adds its section
here (a function under `@section(...)`); `tests/integration/test_person_copy.py` fails while a
table with a `participant_id` is named by no section and not listed in `NOT_COLLECTED`, so the
copy cannot silently fall behind the schema.

Everything shown goes through `hub.consent.visibility` (legs as the organization sees them),
and the read is logged like any other (`hub.consent.access_log`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.consent import consents
from hub.consent.consents import ConsentNote
from hub.consent.visibility import Reader
from hub.db import iso_utc, utcnow
from hub.followups.checkins import ParticipantCheckin
from hub.followups.records import FollowUpRecord
from hub.peers.profiles import PeerMatch, PeerProfile
from hub.referrals import households
from hub.referrals.checklists import ChecklistItem
from hub.referrals.legs import Referral, ReferralNote
from hub.referrals.participants import Participant, ParticipantErased

FORMAT = "maillage.person-copy/1"


@dataclass
class Copy:
    """What the sections share while one copy is made."""

    session: Session
    caller: Caller
    participant: Participant
    reader: Reader

    @cached_property
    def legs(self) -> list[Referral]:
        """Every leg of the person, oldest first (a forwarded one too)."""
        return list(self.session.scalars(
            select(Referral).where(Referral.participant_id == self.participant.id)
            .order_by(Referral.created_at, Referral.id)))


@dataclass(frozen=True)
class Section:
    name: str
    tables: tuple[str, ...]  # where the section reads the person's data from
    read: Callable[[Copy], Any] = field(compare=False)


SECTIONS: list[Section] = []

# Tables that refer to a participant but hold nothing collected from them.
NOT_COLLECTED = {
    "personal_data_reads": "who read the data and when: the access log, exported on its own "
                           "(GET /api/v1/participants/{id}/access-log)",
    "participant_erasures": "the erasure register: when and why a person's data was erased "
                            "(there is no copy to make after it)",
    "participant_search_terms": "keyed hashes of the identity's name prefixes, email and phone, "
                                "for search: derived from the identity, which the copy holds",
}


def section(name: str, *tables: str) -> Callable[[Callable[[Copy], Any]], Callable[[Copy], Any]]:
    """Add a part to the copy, under `name`, read from `tables`."""
    def register(read: Callable[[Copy], Any]) -> Callable[[Copy], Any]:
        if any(existing.name == name for existing in SECTIONS):
            raise ValueError(f"the person's copy already has a section {name!r}")
        SECTIONS.append(Section(name, tables, read))
        return read
    return register


def person_copy(session: Session, caller: Caller, participant_id: uuid.UUID,
                key: bytes) -> dict[str, Any]:
    """The copy of the participant's data for their registering organization; another
    organization is told the person does not exist (NotFound), as everywhere."""
    participant = consents.own_participant(session, caller, participant_id)
    if participant.erased_at is not None:
        raise ParticipantErased(participant.id, participant.erased_at)
    copy = Copy(session, caller, participant, Reader(session, caller, key))
    document: dict[str, Any] = {"export": {
        "format": FORMAT, "participant_id": str(participant.id),
        "organization_id": str(participant.organization_id),
        "exported_at": iso_utc(utcnow()), "exported_by": caller.actor,
    }}
    for part in SECTIONS:
        document[part.name] = part.read(copy)
    return document


# --- the sections --------------------------------------------------------------------------


@section("identity", "participants")
def _identity(copy: Copy) -> dict[str, Any]:
    view = copy.reader.participant(copy.participant)  # logs the read
    view.pop("redacted", None)
    return view


@section("consents", "consents", "consent_organizations", "consent_endings", "consent_notes")
def _consents(copy: Copy) -> list[dict[str, Any]]:
    history = consents.history(copy.session, copy.participant.id)
    notes = {note.consent_id: note.body for note in copy.session.scalars(
        select(ConsentNote).where(ConsentNote.consent_id.in_([c.id for c in history])))}
    return [consents.snapshot(consent) | {"note": notes.get(consent.id)}
            for consent in history]


@section("referrals", "referrals", "referral_notes")
def _referrals(copy: Copy) -> list[dict[str, Any]]:
    """Each leg as the organization sees it, with the notes of the legs it took part in."""
    legs = copy.legs
    organization = copy.caller.organization_id
    party_to = [leg.id for leg in legs if leg.party_of(organization) is not None]
    notes: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for note in copy.session.scalars(select(ReferralNote).where(
            ReferralNote.referral_id.in_(party_to)).order_by(ReferralNote.created_at)):
        notes.setdefault(note.referral_id, []).append({
            "organization_id": str(note.organization_id), "note": note.body,
            "written_at": iso_utc(note.created_at)})
    views = []
    for leg in legs:
        view = copy.reader.referral(leg)
        view.pop("participant", None)  # the identity section has it once
        view["notes"] = notes.get(leg.id, [])
        views.append(view)
    return views


@section("checkins", "participant_checkins")
def _checkins(copy: Copy) -> list[dict[str, Any]]:
    """What the person answered when asked whether anyone contacted them."""
    legs = [leg.id for leg in copy.legs]
    asked = copy.session.scalars(select(ParticipantCheckin).where(
        ParticipantCheckin.referral_id.in_(legs)).order_by(ParticipantCheckin.created_at))
    return [{"referral_id": str(checkin.referral_id), "asked_at": iso_utc(checkin.created_at),
             "language": checkin.language, "answer": checkin.answer,
             "answered_at": iso_utc(checkin.answered_at)} for checkin in asked]


@section("followups", "followup_records")
def _followups(copy: Copy) -> list[dict[str, Any]]:
    """What the sending organization learned when it followed up; the note to that
    organization only, as everywhere."""
    legs = [leg.id for leg in copy.legs]
    records = copy.session.scalars(select(FollowUpRecord).where(
        FollowUpRecord.referral_id.in_(legs)).order_by(FollowUpRecord.recorded_at))
    return [{"referral_id": str(r.referral_id), "due": r.due, "reached": r.reached,
             "situation": r.situation, "in_destination_region": r.in_destination_region,
             "note": r.note if r.organization_id == copy.caller.organization_id else None,
             "recorded_at": iso_utc(r.recorded_at)} for r in records]


@section("checklists", "referral_checklist_items")
def _checklists(copy: Copy) -> list[dict[str, Any]]:
    """What was to be ready for the person's moves, item by item."""
    legs = [leg.id for leg in copy.legs]
    items = copy.session.scalars(select(ChecklistItem).where(
        ChecklistItem.referral_id.in_(legs)).order_by(ChecklistItem.referral_id,
                                                      ChecklistItem.code))
    return [{"referral_id": str(i.referral_id), "item": i.code, "owner": i.owner,
             "status": i.status, "note": i.note, "updated_at": iso_utc(i.updated_at)}
            for i in items]


@section("peer", "peer_profiles", "peer_matches")
def _peer(copy: Copy) -> dict[str, Any]:
    """The person as a peer (what they offered), and the matches that concern them: as the
    newcomer put in touch, or as the peer (without who the newcomer was)."""
    person = copy.participant.id
    profiles = list(copy.session.scalars(select(PeerProfile).where(
        PeerProfile.participant_id == person)))
    as_newcomer = copy.session.scalars(select(PeerMatch).where(
        PeerMatch.participant_id == person).order_by(PeerMatch.proposed_at))
    as_peer = copy.session.scalars(select(PeerMatch).where(
        PeerMatch.peer_id.in_([p.id for p in profiles])).order_by(PeerMatch.proposed_at))

    def match(m: PeerMatch, *, newcomer: bool) -> dict[str, Any]:
        return {"id": str(m.id), "as": "newcomer" if newcomer else "peer", "status": m.status,
                "proposed_at": iso_utc(m.proposed_at), "answered_at": iso_utc(m.answered_at),
                "ended_at": iso_utc(m.ended_at), "end_reason": m.end_reason,
                "talked": m.checkin_answer,
                "note": m.note if newcomer and m.organization_id == copy.caller.organization_id
                else None}

    return {
        "profiles": [{"id": str(p.id), "region": p.region, "municipality": p.municipality,
                      "languages": p.languages, "pathways": p.pathways, "offers": p.offers,
                      "contact_channels": p.contact_channels,
                      "settled_since": p.settled_since.isoformat(), "status": p.status}
                     for p in profiles],
        "matches": [match(m, newcomer=True) for m in as_newcomer]
        + [match(m, newcomer=False) for m in as_peer],
    }


@section("household", "household_members")
def _household(copy: Copy) -> dict[str, Any] | None:
    """The household the person moves with: how many they are, never who the others are."""
    household = households.household_of(copy.session, copy.participant.id)
    if household is None:
        return None
    return {"id": str(household), "people": len(households.members_of(copy.session, household))}


def tables_covered() -> set[str]:
    return {table for part in SECTIONS for table in part.tables}

