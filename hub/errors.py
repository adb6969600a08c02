"""Errors a use case raises when a request cannot be carried out, and the one table of what
each becomes on the wire.

Every refusal is a `DomainError`: it says what went wrong in words a partner's developer can
act on, and its class says which HTTP status and which problem type (RFC 9457) it is.  The API
renders that as problem+json (`hub.api.errors`), the portal as a plain message in the user's
language with the same status (`hub.portal.common`): one table, read by both.  Lifecycle and
consent refusals live beside their rules (`hub.referrals.lifecycle`, `hub.consent.consents`)
and subclass `DomainError` like the ones here.  Nothing here imports Flask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal with its place in the error table.

    `http_status` is the HTTP status, `title` the problem's short title, `slug` names its documented
    type (`https://maillage.quebec/problems/<slug>`; None: `about:blank`).  `members()` adds what
    a client needs to act on it to the problem (RFC 9457 extension members)."""

    http_status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"
    slug: ClassVar[str | None] = None

    def detail(self) -> str:
        return str(self)

    def members(self) -> dict[str, Any]:
        return {}


class NotFound(DomainError):
    """No such object, or one the caller may not know exists (both are 404 on purpose)."""

    http_status = 404
    title = "Not found"

    def __init__(self, what: str, identifier: object) -> None:
        super().__init__(f"No {what} with id {identifier} is visible to your organization.")


class NotAllowed(DomainError):
    """The caller's organization may not do this at all (403), whatever the object."""

    http_status = 403
    title = "Not allowed"


@dataclass
class Invalid(DomainError):
    """The request is well-formed but names things that do not fit (422, per field)."""

    http_status = 422
    title = "Invalid request"
    slug = "validation"

    errors: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.errors.items())

    def members(self) -> dict[str, Any]:
        return {"errors": self.errors}


@dataclass
class VersionMismatch(DomainError):
    """`If-Match` (or a portal form) named a version of the leg (or of the participant) that
    is no longer current."""

    http_status = 412
    title = "Precondition failed"
    slug = "stale-version"

    expected: int
    current: int
    what: str = "leg"

    def __str__(self) -> str:
        return (
            f"The {self.what} changed since you read it: you sent If-Match version "
            f"{self.expected}, the current version is {self.current}. Read it again and retry."
        )

    def members(self) -> dict[str, Any]:
        return {"current_version": self.current}


class ConcurrentChange(DomainError):
    """Someone else changed the same object at the same moment; retried, then 409."""

    http_status = 409
    title = "Concurrent change"

    def __str__(self) -> str:
        return "Another request changed this leg at the same moment. Read it again and retry."


@dataclass
class LegClosed(DomainError):
    """A change that only an open leg takes (its checklist) asked of a closed one (409)."""

    http_status = 409
    title = "Leg closed"
    slug = "leg-closed"

    referral_id: object
    status: str

    def __str__(self) -> str:
        return (f"Referral {self.referral_id} is {self.status}: its checklist is kept as it "
                "was when the leg closed. Change the checklist of the open leg instead.")

    def members(self) -> dict[str, Any]:
        return {"referral_status": self.status}
