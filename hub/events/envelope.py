"""CloudEvents 1.0 envelopes (JSON structured mode), rendered for one reader.

The stored event holds the leg's state as codes and references; the envelope joins in what
this reader may see of the participant *now* (`hub.consent.visibility.Reader`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.consent.visibility import Reader
from hub.db import iso_utc
from hub.events.store import Event
from hub.referrals.legs import Referral, ReferralNote


def envelope(event: Event, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": iso_utc(event.time, "milliseconds"),
        "datacontenttype": "application/json",
        "sequence": event.sequence,
        "data": data,
    }


def render_events(session: Session, reader: Reader, events: list[Event]) -> list[dict[str, Any]]:
    """Envelopes for `events`, as `reader` may see them, loading legs and notes in batches."""
    referral_ids = {
        uuid.UUID(e.subject.removeprefix("referrals/"))
        for e in events
        if e.subject.startswith("referrals/")
    }
    referrals = {
        r.id: r for r in session.scalars(select(Referral).where(Referral.id.in_(referral_ids)))
    } if referral_ids else {}
    note_ids = {uuid.UUID(e.data["note_id"]) for e in events if e.data.get("note_id")}
    notes = {
        n.id: n for n in session.scalars(select(ReferralNote).where(ReferralNote.id.in_(note_ids)))
    } if note_ids else {}

    rendered = []
    for event in events:
        data: dict[str, Any] = {}
        if "referral" in event.data:
            referral = referrals[uuid.UUID(event.data["referral"]["id"])]
            # Codes and references recorded beside the leg (a check, its due date...).
            data.update({k: v for k, v in event.data.items() if k not in ("referral", "note_id")})
            data["referral"] = reader.referral(referral, state=event.data["referral"])
            note_id = event.data.get("note_id")
            note = notes.get(uuid.UUID(note_id)) if note_id else None
            # Notes may name the person: only for a party that may read personal data now.
            if (note is not None and referral.party_of(reader.caller.organization_id)
                    and reader.entitled(referral.participant, referral)
                    and reader.sees_notes(referral.participant, note.organization_id)):
                data["note"] = note.body
        elif "consent" in event.data:
            data = reader.consent_event(event.data)
        elif "participant" in event.data:
            data = reader.participant_event(event.data)
        else:
            data = dict(event.data)
        rendered.append(envelope(event, data))
    return rendered
