"""Deadline policies (docs/design.md §6): how many business days a receiving organization has to
acknowledge, decide and start, as data that hub administrators change (API and CLI).

A rule names a check (acknowledge, decide, start), a priority (routine, urgent) and a number of
business days, for one receiving organization or any (NULL), and one pathway or any (NULL).
The rule in force for a leg is the most specific one:

    (organization, pathway) > (organization, any) > (any, pathway) > (any, any) > DEFAULT_POLICY

`business_days` is on the hot path (every send, acknowledge and accept): one prebuilt query,
two index searches reading at most four rows, without autoflush; about one database round trip.
No cache: with several web processes a cache would need invalidation, and a stale one would
set wrong deadlines.

"Any" is NULL, which unique constraints treat as distinct from every other NULL on both
SQLite and PostgreSQL (PostgreSQL 15's NULLS NOT DISTINCT has no SQLite equivalent).  So the
uniqueness of a rule's scope is kept by four unique indexes, three of them partial (both
backends have partial indexes): one per shape of scope.  NULL keeps its plain meaning and the
foreign key to organizations, which a sentinel value would lose.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Row,
    String,
    bindparam,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, iso_utc, utcnow
from hub.directory.organizations import Organization
from hub.errors import ConcurrentChange, Invalid, NotFound
from hub.followups import deadlines
from hub.followups.deadlines import (
    CHECKS,
    DEFAULT_POLICY,
    DEFAULT_TIME_ZONE,
    MAX_BUSINESS_DAYS,
    PATHWAYS,
    PRIORITIES,
)

ADMIN_SCOPE = "hub:admin"

# Where the days of a leg's deadline come from, most specific first.
SOURCES = ("organization_pathway", "organization", "pathway", "hub", "default")


class DeadlinePolicy(Base):
    """One rule: `business_days` for `check` at `priority`, for a scope of receivers."""

    __tablename__ = "deadline_policies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # NULL: any receiving organization.
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    # NULL: any pathway.
    pathway: Mapped[str | None] = mapped_column(String(40))
    check: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10))
    business_days: Mapped[int]
    updated_at: Mapped[datetime]
    # Who set the rule last: "client:<client_id>" (API) or "cli:<user>".
    updated_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(f"business_days >= 0 AND business_days <= {MAX_BUSINESS_DAYS}",
                        name="business_days_range"),
        # Unique for (organization, pathway) rules, and the index of the lookup.
        Index("ux_deadline_policies_org_pathway", "check", "priority", "organization_id",
              "pathway", unique=True),
        Index("ux_deadline_policies_org", "check", "priority", "organization_id", unique=True,
              postgresql_where=text("pathway IS NULL"), sqlite_where=text("pathway IS NULL")),
        Index("ux_deadline_policies_pathway", "check", "priority", "pathway", unique=True,
              postgresql_where=text("organization_id IS NULL"),
              sqlite_where=text("organization_id IS NULL")),
        Index("ux_deadline_policies_hub", "check", "priority", unique=True,
              postgresql_where=text("organization_id IS NULL AND pathway IS NULL"),
              sqlite_where=text("organization_id IS NULL AND pathway IS NULL")),
    )

    @property
    def source(self) -> str:
        return _source(self.organization_id, self.pathway)


def _source(organization_id: uuid.UUID | None, pathway: str | None) -> str:
    if organization_id is not None:
        return "organization_pathway" if pathway is not None else "organization"
    return "pathway" if pathway is not None else "hub"


# --- the policy in force (hot path) ------------------------------------------------------

def _lookup(*, one_check: bool) -> Any:
    """The rules that may apply to a leg to :organization_id on :pathway (of :check and
    :priority when `one_check`), built once: two index searches, one for the organization's
    own rules, one for rules of any organization, each returning at most two rows (whereas
    `organization_id = :o OR organization_id IS NULL` would read every organization's rules
    for the check)."""
    def branch(organization: Any) -> Any:
        query = select(DeadlinePolicy.organization_id, DeadlinePolicy.pathway,
                       DeadlinePolicy.check, DeadlinePolicy.priority,
                       DeadlinePolicy.business_days).where(
            organization,
            or_(DeadlinePolicy.pathway == bindparam("pathway"),
                DeadlinePolicy.pathway.is_(None)))
        if one_check:
            query = query.where(DeadlinePolicy.check == bindparam("check"),
                                DeadlinePolicy.priority == bindparam("priority"))
        return query

    return union_all(branch(DeadlinePolicy.organization_id == bindparam("organization_id")),
                     branch(DeadlinePolicy.organization_id.is_(None)))


_ONE_CHECK = _lookup(one_check=True)
_EVERY_CHECK = _lookup(one_check=False)


def _applicable(session: Session, statement: Any, **params: Any) -> list[Row[Any]]:
    # No autoflush: callers (referrals.transition) hold changes that must flush where they
    # check the leg's version, not here.
    with session.no_autoflush:
        return list(session.execute(statement, params))


def _most_specific(rules: list[Row[Any]], check: str, priority: str) -> tuple[int, str]:
    best, best_rank = None, len(SOURCES)
    for rule in rules:
        rank = SOURCES.index(_source(rule.organization_id, rule.pathway))
        if rule.check == check and rule.priority == priority and rank < best_rank:
            best, best_rank = rule, rank
    if best is None:
        return DEFAULT_POLICY[check][priority], "default"
    return best.business_days, SOURCES[best_rank]


def resolve(session: Session, *, organization_id: uuid.UUID, pathway: str, check: str,
            priority: str) -> tuple[int, str]:
    """The business days in force for `check` on a leg of `priority` to `organization_id` on
    `pathway`, and where they come from (one of SOURCES)."""
    _require_codes(check=check, priority=priority, pathway=pathway)
    rules = _applicable(session, _ONE_CHECK, organization_id=organization_id, pathway=pathway,
                        check=check, priority=priority)
    return _most_specific(rules, check, priority)


def business_days(session: Session, *, organization_id: uuid.UUID, pathway: str, check: str,
                  priority: str) -> int:
    """The business days in force for `check` on a leg of `priority` to `organization_id` on
    `pathway`: the most specific rule, else the hub's default (docs/design.md §6)."""
    return resolve(session, organization_id=organization_id, pathway=pathway, check=check,
                   priority=priority)[0]


def time_zone_of(session: Session, organization_id: uuid.UUID) -> str:
    """The time zone a receiving organization's business days are counted in: its directory
    entry's (America/Toronto unless it says otherwise)."""
    # No autoflush, as in `_applicable`: a flush here would move the leg's version twice.
    with session.no_autoflush:
        organization = session.get(Organization, organization_id)
    return organization.time_zone if organization and organization.time_zone \
        else DEFAULT_TIME_ZONE


def deadline(session: Session, *, organization_id: uuid.UUID, pathway: str, check: str,
             priority: str, start: datetime) -> datetime:
    """When `check` is due for a leg of `priority` to `organization_id` on `pathway`, from
    `start`: the policy in force, in business days of the receiver's time zone."""
    days = business_days(session, organization_id=organization_id, pathway=pathway,
                         check=check, priority=priority)
    return deadlines.deadline(check, priority, start, business_days=days,
                              time_zone=time_zone_of(session, organization_id))


@dataclass(frozen=True)
class Allowance:
    business_days: int
    source: str


def effective(session: Session, *, organization_id: uuid.UUID | None, pathway: str | None
              ) -> dict[str, dict[str, Allowance]]:
    """Every check and priority with the allowance in force for a leg to `organization_id` on
    `pathway` (None: the hub's view, for any organization or pathway)."""
    _require_codes(pathway=pathway)
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise Invalid({"organization_id": [
            f"No organization with id {organization_id} in the directory."]})
    # None matches no organization (pathway): only the rules for any apply.
    rules = _applicable(session, _EVERY_CHECK, organization_id=organization_id, pathway=pathway)
    return {check: {priority: Allowance(*_most_specific(rules, check, priority))
                    for priority in PRIORITIES} for check in CHECKS}


# --- use cases of hub administrators -----------------------------------------------------

def _require_codes(**codes: str | None) -> None:
    known = {"check": CHECKS, "priority": PRIORITIES, "pathway": PATHWAYS}
    errors = {name: [f"Unknown {name} {value!r}: use one of {', '.join(known[name])}."]
              for name, value in codes.items()
              if value is not None and value not in known[name]}
    if errors:
        raise Invalid(errors)


def _validate(session: Session, *, organization_id: uuid.UUID | None, pathway: str | None,
              check: str, priority: str, business_days: int | None = None) -> None:
    errors: dict[str, list[str]] = {}
    try:
        _require_codes(check=check, priority=priority, pathway=pathway)
    except Invalid as invalid:
        errors.update(invalid.errors)
    if business_days is not None and (
        isinstance(business_days, bool) or not isinstance(business_days, int)
        or not 0 <= business_days <= MAX_BUSINESS_DAYS
    ):
        errors["business_days"] = [f"A whole number of business days, 0 to {MAX_BUSINESS_DAYS}."]
    if organization_id is not None:
        organization = session.get(Organization, organization_id)
        if organization is None:
            errors["organization_id"] = [
                f"No organization with id {organization_id} in the directory."]
        elif organization.is_coordinator:
            errors["organization_id"] = [
                "Coordination bodies receive no referrals: a deadline rule for them would "
                "never apply."]
    if errors:
        raise Invalid(errors)


def _find(session: Session, *, organization_id: uuid.UUID | None, pathway: str | None,
          check: str, priority: str) -> DeadlinePolicy | None:
    return session.scalar(select(DeadlinePolicy).where(
        DeadlinePolicy.check == check,
        DeadlinePolicy.priority == priority,
        DeadlinePolicy.organization_id.is_(None) if organization_id is None
        else DeadlinePolicy.organization_id == organization_id,
        DeadlinePolicy.pathway.is_(None) if pathway is None else DeadlinePolicy.pathway == pathway,
    ))


def set_policy(session: Session, *, organization_id: uuid.UUID | None, pathway: str | None,
               check: str, priority: str, business_days: int, actor: str) -> DeadlinePolicy:
    """Create or replace the rule for this scope (None: any organization, any pathway).

    Applies to legs from now on: deadlines already set stay as they were when set."""
    _validate(session, organization_id=organization_id, pathway=pathway, check=check,
              priority=priority, business_days=business_days)
    key: dict[str, Any] = {"organization_id": organization_id, "pathway": pathway,
                           "check": check, "priority": priority}
    for _ in range(2):
        rule = _find(session, organization_id=organization_id, pathway=pathway, check=check,
                     priority=priority)
        if rule is not None:
            rule.business_days = business_days
            rule.updated_at = utcnow()
            rule.updated_by = actor
            session.flush()
            return rule
        try:
            with session.begin_nested():  # another admin may set the same rule at once
                rule = DeadlinePolicy(**key, business_days=business_days, updated_at=utcnow(),
                                      updated_by=actor)
                session.add(rule)
                session.flush()
            return rule
        except IntegrityError:
            continue  # the other one won: replace its rule
    raise ConcurrentChange(f"The deadline rule {key} kept changing; retry.")


def get_policy(session: Session, policy_id: uuid.UUID) -> DeadlinePolicy:
    rule = session.get(DeadlinePolicy, policy_id)
    if rule is None:
        raise NotFound("deadline policy", policy_id)
    return rule


def remove_policy(session: Session, *, organization_id: uuid.UUID | None, pathway: str | None,
                  check: str, priority: str) -> bool:
    """Remove the rule for exactly this scope; False when there was none.  The next most
    specific rule (or the hub's default) applies to legs from now on."""
    _validate(session, organization_id=None, pathway=pathway, check=check, priority=priority)
    rule = _find(session, organization_id=organization_id, pathway=pathway, check=check,
                 priority=priority)
    if rule is None:
        return False
    session.delete(rule)
    session.flush()
    return True


def remove_policy_by_id(session: Session, policy_id: uuid.UUID) -> None:
    session.delete(get_policy(session, policy_id))
    session.flush()


def list_policies(session: Session, organization_id: uuid.UUID | None = None, *,
                  after_id: uuid.UUID | None = None, limit: int | None = None
                  ) -> list[DeadlinePolicy]:
    """The rules, by id (pages: `after_id`, `limit`); only those of `organization_id` if
    named."""
    query = select(DeadlinePolicy).order_by(DeadlinePolicy.id)
    if organization_id is not None:
        query = query.where(DeadlinePolicy.organization_id == organization_id)
    if after_id is not None:
        query = query.where(DeadlinePolicy.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def as_dict(rule: DeadlinePolicy) -> dict[str, object]:
    return {"id": str(rule.id),
            "organization_id": str(rule.organization_id) if rule.organization_id else None,
            "pathway": rule.pathway, "check": rule.check, "priority": rule.priority,
            "business_days": rule.business_days, "source": rule.source,
            "updated_at": iso_utc(rule.updated_at), "updated_by": rule.updated_by}

