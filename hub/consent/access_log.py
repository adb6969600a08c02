"""The access log: every read of a participant's personal data, by whom, from where, when.

`note_read()` is called by `hub.consent.visibility` whenever it hands out personal data; the
reads of a unit of work are written together, by the statement that appends its next event on
PostgreSQL (`hub.events.store`), else by one INSERT just before it commits, whatever the
number of payloads; in its transaction, so a request that fails records nothing it did not
show.  The participant's organization exports the log (docs/design.md §5).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, event, insert, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from hub.accounts.callers import Caller
from hub.db import Base, table_of, utcnow

PENDING = "personal_data_reads"
WRITTEN = "personal_data_reads_written"
VIA = "read_via"


class PersonalDataRead(Base):
    __tablename__ = "personal_data_reads"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participants.id"))
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    actor: Mapped[str] = mapped_column(String(200))
    # How: "GET /api/v1/referrals/{referral_id}", "webhook <endpoint id>", "portal ..." ...
    via: Mapped[str] = mapped_column(String(300))
    read_at: Mapped[datetime]

    __table_args__ = (Index("ix_personal_data_reads_participant", "participant_id", "read_at"),)


# Core (a plain executemany), not the ORM's bulk insert.
_INSERT_READS = insert(table_of(PersonalDataRead))


def note_read(session: Session, caller: Caller, participant_id: uuid.UUID) -> None:
    """Remember that `caller` is being shown this participant's personal data."""
    read = (participant_id, caller.organization_id, caller.actor)
    if read not in session.info.get(WRITTEN, ()):
        session.info.setdefault(PENDING, set()).add(read)


def take_pending(session: Session) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """The reads noted and not yet written, for a statement about to write them (on
    PostgreSQL, the one that appends an event: see `hub.events.store`); sorted."""
    reads = session.info.pop(PENDING, None)
    if not reads:
        return []
    session.info.setdefault(WRITTEN, set()).update(reads)
    return sorted(reads, key=str)


def set_via(session: Session, via: str) -> None:
    """Name the channel of reads made outside a web request (a webhook delivery, a CLI)."""
    session.info[VIA] = via


def current_via(session: Session) -> str:
    from flask import has_request_context, request

    if has_request_context() and request.url_rule is not None:
        rule = request.url_rule.rule.replace("<uuid:", "{").replace("<", "{").replace(">", "}")
        return f"{request.method} {rule}"[:300]
    return str(session.info.get(VIA, "job"))[:300]


@event.listens_for(Session, "before_commit")
def _write_reads(session: Session) -> None:
    reads = take_pending(session)
    if not reads:
        return
    via, now = current_via(session), utcnow()
    rows = [{"participant_id": participant, "organization_id": organization, "actor": actor,
             "via": via, "read_at": now}
            for participant, organization, actor in reads]
    # Core, not the ORM: no primary keys to fetch back, no statement to build each time.
    session.execute(_INSERT_READS, rows[0] if len(rows) == 1 else rows)


@event.listens_for(Session, "after_rollback")
def _forget_reads(session: Session) -> None:
    session.info.pop(PENDING, None)
    session.info.pop(WRITTEN, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_written(session: Session, _transaction: SessionTransaction) -> None:
    # A savepoint rolled back may have taken written reads with it: noted again, they are
    # written again (a read logged twice rather than not at all).
    session.info.pop(WRITTEN, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_the_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(WRITTEN, None)


def reads_of(session: Session, participant_id: uuid.UUID, after: int | None = None,
             limit: int | None = None) -> list[PersonalDataRead]:
    query = select(PersonalDataRead).where(PersonalDataRead.participant_id == participant_id)
    if after is not None:
        query = query.where(PersonalDataRead.id > after)
    query = query.order_by(PersonalDataRead.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
