"""Consent: the participant's permission, checked before personal data moves (DESIGN §5).

This module is the single seam every flow calls before a referral is sent or forwarded.
Consent tracking (grants, withdrawals, expiry) is not built yet: until it is,
`require_referral_sharing` allows every organization.  The README's status section says so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from hub.participants import Participant


@dataclass(frozen=True)
class ConsentRequired(Exception):
    participant_id: uuid.UUID
    organization_id: uuid.UUID
    purpose: str = "referral_sharing"

    def __str__(self) -> str:
        return (
            f"No active '{self.purpose}' consent of participant {self.participant_id} covers "
            f"organization {self.organization_id}. Record the participant's consent first."
        )


def covers(
    session: Session, participant: Participant, organization_id: uuid.UUID, purpose: str
) -> bool:
    """Whether an active consent of `participant` for `purpose` covers `organization_id`.

    Allows everything until consent tracking is built (see module docstring).
    """
    return True


def require_referral_sharing(
    session: Session, participant: Participant, organization_id: uuid.UUID
) -> None:
    """Refuse (ConsentRequired) to send `participant`'s referral to an organization not covered."""
    if not covers(session, participant, organization_id, "referral_sharing"):
        raise ConsentRequired(participant.id, organization_id)
