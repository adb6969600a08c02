"""Relationship notes: what one organization knows about its collaboration with another (the
type of collaboration it needs with that partner, its own notes), private to that organization
and kept when its staff leave (docs/design.md §13).

Each change appends a version; the latest version of a pair is the note, the earlier ones its
history.  Nothing here decides who may read: a note is only ever read for the caller's own
organization (`organization_id`), which the API and the portal take from the caller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, table_of, utcnow

# Longest collaboration text and notes kept (a grid cell, a few paragraphs).
COLLABORATION_LIMIT = 500
NOTES_LIMIT = 5000


class RelationshipNote(Base):
    """One version of what `organization_id` wrote about its collaboration with `partner_id`."""

    __tablename__ = "relationship_notes"

    # Increasing: the highest id of a pair is its current note, even when two versions were
    # written within the same clock tick.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    collaboration: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    # "user:<id>", "client:<id>" or "import:<file name>".
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_relationship_notes_pair", "organization_id", "partner_id", "id"),)


@dataclass(frozen=True)
class NoteText:
    """What a note says, without who wrote it when."""

    collaboration: str | None
    notes: str | None


def current_note(session: Session, organization_id: uuid.UUID, partner_id: uuid.UUID
                 ) -> RelationshipNote | None:
    """What `organization_id` last wrote about `partner_id`, or None."""
    return session.scalars(
        select(RelationshipNote)
        .where(RelationshipNote.organization_id == organization_id,
               RelationshipNote.partner_id == partner_id)
        .order_by(RelationshipNote.id.desc()).limit(1)).first()


def current_notes(session: Session, organization_id: uuid.UUID
                  ) -> dict[uuid.UUID, RelationshipNote]:
    """Every partner's current note of `organization_id` (for an import: one query)."""
    notes: dict[uuid.UUID, RelationshipNote] = {}
    for note in session.scalars(select(RelationshipNote)
                                .where(RelationshipNote.organization_id == organization_id)
                                .order_by(RelationshipNote.id)):
        notes[note.partner_id] = note
    return notes


def note_history(session: Session, organization_id: uuid.UUID, partner_id: uuid.UUID, *,
                 before_id: int | None = None, limit: int | None = None
                 ) -> list[RelationshipNote]:
    """The versions, newest first (those older than `before_id`, at most `limit`)."""
    query = (select(RelationshipNote)
             .where(RelationshipNote.organization_id == organization_id,
                    RelationshipNote.partner_id == partner_id)
             .order_by(RelationshipNote.id.desc()).limit(limit))
    if before_id is not None:
        query = query.where(RelationshipNote.id < before_id)
    return list(session.scalars(query))


def _clean(text: str | None, limit: int) -> str | None:
    text = (text or "").strip()
    return text[:limit] or None


def merged_text(current: RelationshipNote | None, collaboration: str | None,
                notes: str | None) -> NoteText:
    """The note once a grid row's cells are taken in: a cell replaces what it names, an empty
    cell keeps what the organization had written."""
    return NoteText(
        _clean(collaboration, COLLABORATION_LIMIT) or (current.collaboration if current else None),
        _clean(notes, NOTES_LIMIT) or (current.notes if current else None))


def _cleaned(text: NoteText) -> NoteText:
    return NoteText(_clean(text.collaboration, COLLABORATION_LIMIT),
                    _clean(text.notes, NOTES_LIMIT))


def _text_of(note: RelationshipNote | None) -> NoteText:
    """A stored note's text; no note is an empty one."""
    return NoteText(note.collaboration, note.notes) if note else NoteText(None, None)


def write_notes(session: Session, organization_id: uuid.UUID,
                texts: dict[uuid.UUID, NoteText], *, updated_by: str, now: datetime) -> int:
    """Keep each partner's note of `texts` (a grid's), a new version only where it changes, in
    one statement: an import may write thousands.  Returns how many versions were added."""
    current = current_notes(session, organization_id)
    rows = []
    for partner_id, text in texts.items():
        wanted = _cleaned(text)
        if _text_of(current.get(partner_id)) == wanted:
            continue
        rows.append({"organization_id": organization_id, "partner_id": partner_id,
                     "collaboration": wanted.collaboration, "notes": wanted.notes,
                     "updated_by": updated_by[:200], "updated_at": now})
    if rows:
        session.execute(insert(table_of(RelationshipNote)), rows)
    return len(rows)


def write_note(session: Session, organization_id: uuid.UUID, partner_id: uuid.UUID,
               text: NoteText, *, updated_by: str, now: datetime | None = None
               ) -> RelationshipNote | None:
    """Keep `text` as the pair's note; a new version only when it differs from the current one
    (returned unchanged then).  None when there is neither a note nor anything to write."""
    current = current_note(session, organization_id, partner_id)
    wanted = _cleaned(text)
    if _text_of(current) == wanted:
        return current  # None when there is neither a note nor anything to write
    note = RelationshipNote(organization_id=organization_id, partner_id=partner_id,
                            collaboration=wanted.collaboration, notes=wanted.notes,
                            updated_by=updated_by[:200], updated_at=now or utcnow())
    session.add(note)
    return note
