"""One-time form tokens: a form that creates something creates it once.

A counsellor who clicks "Send" twice, or comes Back and sends again, must not make two
referrals. Each such form carries a token minted when the form is shown; the first POST that
claims it goes ahead, and in the same transaction records the page of what it created. Any
later POST with that token is sent to that page instead of creating again. Two clicks racing
each other meet on the token's row: on PostgreSQL the second UPDATE waits for the first
transaction and then finds the token used; SQLite's writers take turns. A refused form rolls
its transaction back, claim included, so the corrected form is sent with the same token.

Tokens are random (256 bits) and stored as SHA-256 digests, like reset tokens; each belongs to
one user; those older than `LIFETIME` are deleted when that user is given a new one.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.accounts.clients import digest
from hub.db import Base, utcnow
from hub.errors import DomainError

LIFETIME = timedelta(days=2)


class FormToken(Base):
    __tablename__ = "form_tokens"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # Where what the form created is shown (a portal path), once it was created.
    result_path: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (Index("ix_form_tokens_user", "user_id", "created_at"),)


class FormExpired(DomainError):
    """The form's token is unknown: older than its lifetime, another user's, or made up."""

    http_status = 409
    title = "Form expired"

    def __str__(self) -> str:
        return "This form expired. Check what it shows and send it again."


def mint(session: Session, user_id: uuid.UUID) -> str:
    now = utcnow()
    session.execute(delete(FormToken).where(FormToken.user_id == user_id,
                                            FormToken.created_at < now - LIFETIME))
    token = secrets.token_urlsafe(32)
    session.add(FormToken(token_digest=digest(token), user_id=user_id, created_at=now))
    session.flush()
    return token


def claim(session: Session, user_id: uuid.UUID, token: str) -> str | None:
    """Claim `token` for this POST: None when it goes ahead; else the path of what an earlier
    POST with the same token created. Raises FormExpired for an unknown token."""
    hashed = digest(token)
    claimed = session.execute(
        update(FormToken)
        .where(FormToken.token_digest == hashed, FormToken.user_id == user_id,
               FormToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False))
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        return None
    used = session.execute(select(FormToken.result_path).where(
        FormToken.token_digest == hashed, FormToken.user_id == user_id)).one_or_none()
    if used is None or used.result_path is None:
        raise FormExpired()
    return str(used.result_path)


def done(session: Session, user_id: uuid.UUID, token: str, result_path: str) -> None:
    """Record what the POST that claimed `token` created, for the ones that follow."""
    session.execute(update(FormToken)
                    .where(FormToken.token_digest == digest(token),
                           FormToken.user_id == user_id)
                    .values(result_path=result_path[:300])
                    .execution_options(synchronize_session=False))
