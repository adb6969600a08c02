"""The register of confidentiality incidents an organization keeps (docs/design.md §15).

Québec's private-sector privacy law asks every organization to record each confidentiality
incident — access, use or disclosure not authorised by law, loss of personal information — with
the fields the Commission d'accès à l'information (CAI) lists, and to keep that register for at
least five years.  The register belongs to the organization: only its own admins (a portal page,
or a system holding `privacy:manage`) read and change it.  Entries are corrected, never removed:
the database itself refuses to delete an entry younger than five years, or to move its
`recorded_at` (see the migration `d21a00000001`).

The free-text fields may name people, so they are encrypted at rest like any personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.crypto import EncryptedText
from hub.db import Base, iso_utc, utcnow
from hub.errors import Invalid, NotFound

# How long the register keeps an entry at the least, in years: the database refuses an earlier
# deletion (the CAI's minimum).
KEPT_YEARS = 5

# The CAI's fields, in the order of its register model; the API, the portal and the CSV share it.
FIELDS = ("information_involved", "circumstances", "occurred_at", "discovered_at",
          "people_affected", "risk_assessment", "serious_injury_risk", "cai_notified_at",
          "people_notified_at", "measures_taken")
REQUIRED = ("information_involved", "circumstances", "discovered_at", "serious_injury_risk")
MOMENTS = ("occurred_at", "discovered_at", "cai_notified_at", "people_notified_at")


class PrivacyIncident(Base):
    """One entry of an organization's register of confidentiality incidents."""

    __tablename__ = "privacy_incidents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    # What personal information the incident concerns (or, if unknown, why it is not known).
    information_involved: Mapped[str] = mapped_column(EncryptedText)
    circumstances: Mapped[str] = mapped_column(EncryptedText)
    # When it happened (null while unknown) and when the organization learned of it.
    occurred_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime]
    people_affected: Mapped[int | None] = mapped_column(Integer)
    # The assessment of the risk of serious injury to the people concerned, and its outcome.
    risk_assessment: Mapped[str | None] = mapped_column(EncryptedText)
    serious_injury_risk: Mapped[bool] = mapped_column(Boolean)
    cai_notified_at: Mapped[datetime | None]
    people_notified_at: Mapped[datetime | None]
    measures_taken: Mapped[str | None] = mapped_column(EncryptedText)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_privacy_incidents_organization", "organization_id", "discovered_at"),
    )


def _check(values: dict[str, Any], now: datetime) -> None:
    """The dates must tell a possible story; said per field, so a form can point at it."""
    errors: dict[str, list[str]] = {}
    for name in MOMENTS:
        moment = values.get(name)
        if moment is not None and moment > now + timedelta(minutes=5):
            errors.setdefault(name, []).append("Must not be in the future.")
    occurred, discovered = values.get("occurred_at"), values.get("discovered_at")
    if occurred is not None and discovered is not None and occurred > discovered:
        errors.setdefault("occurred_at", []).append(
            "An incident is discovered after it occurs: check occurred_at and discovered_at.")
    for name in ("cai_notified_at", "people_notified_at"):
        notified = values.get(name)
        if notified is not None and discovered is not None and notified < discovered:
            errors.setdefault(name, []).append(
                "Notices follow the discovery: give a moment after discovered_at.")
    affected = values.get("people_affected")
    if affected is not None and affected < 0:
        errors.setdefault("people_affected", []).append("Must be 0 or more.")
    for name in REQUIRED:
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.setdefault(name, []).append("Required: the CAI's register asks for it.")
    if errors:
        raise Invalid(errors)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Free text trimmed, empty text as null (an optional field left blank in a form)."""
    return {name: (value.strip() or None) if isinstance(value, str) else value
            for name, value in values.items()}


def record_incident(session: Session, organization_id: uuid.UUID, actor: str, *,
                    now: datetime | None = None, **values: Any) -> PrivacyIncident:
    """Add an entry to the organization's register; `actor` (as events name one) recorded it."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown incident fields: {sorted(unknown)}")
    now = now or utcnow()
    values = _clean(values)
    _check(values, now)
    incident = PrivacyIncident(
        id=uuid.uuid4(), organization_id=organization_id, recorded_at=now,
        recorded_by=actor, updated_at=now, updated_by=actor,
        **{name: values.get(name) for name in FIELDS})
    session.add(incident)
    session.flush()
    return incident


def correct_incident(session: Session, actor: str, incident: PrivacyIncident, *,
                     now: datetime | None = None, **changes: Any) -> PrivacyIncident:
    """Change some fields of an entry (a notice sent, measures taken, a count now known)."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown incident fields: {sorted(unknown)}")
    now = now or utcnow()
    changes = _clean(changes)
    merged = {name: getattr(incident, name) for name in FIELDS} | changes
    _check(merged, now)
    for name, value in changes.items():
        setattr(incident, name, value)
    incident.updated_at, incident.updated_by = now, actor
    session.flush()
    return incident


def own_incident(session: Session, organization_id: uuid.UUID, incident_id: uuid.UUID
                 ) -> PrivacyIncident:
    """An entry of the organization's own register; another's is not found (404)."""
    incident = session.get(PrivacyIncident, incident_id)
    if incident is None or incident.organization_id != organization_id:
        raise NotFound("privacy incident", incident_id)
    return incident


def register_of(session: Session, organization_id: uuid.UUID,
                after: tuple[datetime, uuid.UUID] | None = None,
                limit: int | None = None) -> list[PrivacyIncident]:
    """The organization's register, the latest discovered first."""
    query = select(PrivacyIncident).where(PrivacyIncident.organization_id == organization_id)
    if after is not None:
        discovered_at, last_id = after
        query = query.where(
            (PrivacyIncident.discovered_at < discovered_at)
            | ((PrivacyIncident.discovered_at == discovered_at)
               & (PrivacyIncident.id < last_id)))
    query = query.order_by(PrivacyIncident.discovered_at.desc(), PrivacyIncident.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def as_dict(incident: PrivacyIncident) -> dict[str, Any]:
    """The entry as the API returns it and the CSV writes it."""
    view: dict[str, Any] = {"id": str(incident.id),
                            "organization_id": str(incident.organization_id)}
    for name in FIELDS:
        value = getattr(incident, name)
        view[name] = iso_utc(value) if name in MOMENTS else value
    view.update(recorded_at=iso_utc(incident.recorded_at), recorded_by=incident.recorded_by,
                updated_at=iso_utc(incident.updated_at), updated_by=incident.updated_by,
                kept_until=iso_utc(kept_until(incident.recorded_at)))
    return view


def kept_until(recorded_at: datetime) -> datetime:
    """The first moment the entry may be deleted: five calendar years after it was recorded
    (as the database counts them; an entry of February 29 waits for March 1)."""
    try:
        return recorded_at.replace(year=recorded_at.year + KEPT_YEARS)
    except ValueError:
        return recorded_at.replace(year=recorded_at.year + KEPT_YEARS, month=3, day=1)
