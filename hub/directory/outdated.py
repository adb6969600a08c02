"""Reports that a directory entry is out of date: any partner may say so, with a note; the
entry's administrators see the open reports until they validate the entry again
(docs/design.md §13).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, utcnow

NOTE_LIMIT = 2000


class OutdatedReport(Base):
    """One partner's word that `organization_id`'s entry is out of date."""

    __tablename__ = "outdated_reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    reported_by_organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id"))
    # "user:<id>" or "client:<id>".
    reported_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the entry is validated again after the report.
    resolved_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_outdated_reports_open", "organization_id", "resolved_at"),)
