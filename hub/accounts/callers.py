"""Who is asking: the organization behind a request and the actor to record in events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    organization_id: uuid.UUID
    # Recorded as the event's actor: "client:<client_id>", "user:<id>" or "scheduler".
    actor: str
    is_coordinator: bool = False


def user_caller(user_id: uuid.UUID, organization_id: uuid.UUID, is_coordinator: bool) -> Caller:
    """A person using the portal: the use cases see their organization, events record them."""
    return Caller(organization_id=organization_id, actor=f"user:{user_id}",
                  is_coordinator=is_coordinator)
