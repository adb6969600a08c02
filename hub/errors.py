"""Errors a use case raises when a request cannot be carried out.

They say what went wrong in words a partner's developer can act on; the API and the portal
turn them into problem+json or a message in the user's language.  Lifecycle and consent
refusals live beside their rules (`hub.referrals.lifecycle`, `hub.consent.consents`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class NotFound(Exception):
    """No such object, or one the caller may not know exists (both are 404 on purpose)."""

    def __init__(self, what: str, identifier: object) -> None:
        super().__init__(f"No {what} with id {identifier} is visible to your organization.")


class NotAllowed(Exception):
    """The caller's organization may not do this at all (403), whatever the object."""


@dataclass
class Invalid(Exception):
    """The request is well-formed but names things that do not fit (422, per field)."""

    errors: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.errors.items())


@dataclass
class VersionMismatch(Exception):
    """`If-Match` named a version of the leg that is no longer current (412)."""

    expected: int
    current: int

    def __str__(self) -> str:
        return (
            f"The leg changed since you read it: you sent If-Match version {self.expected}, "
            f"the current version is {self.current}. Read it again and retry."
        )


class ConcurrentChange(Exception):
    """Someone else changed the same object at the same moment; retried, then 409."""
