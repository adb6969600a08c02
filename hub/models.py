"""Every table of the hub, imported in one place so Alembic and tests see the whole schema."""

from hub.access_log import PersonalDataRead
from hub.accounts import OAuthClient, OAuthToken
from hub.checkins import ParticipantCheckin
from hub.consent import Consent, ConsentEnding, ConsentNote, ConsentOrganization
from hub.db import Base
from hub.deadline_digests import QueuedMiss
from hub.directory import Organization
from hub.directory_entries import Contact, Location, Service, ServicePathway
from hub.events.store import Event, EventAudience, OutboxEntry
from hub.followups import OrganizationCheck, ReferralCheck
from hub.idempotency import IdempotentResponse
from hub.mail import OutgoingMail
from hub.outbound import EndpointRegistration
from hub.participants import Participant
from hub.policies import DeadlinePolicy
from hub.referrals import Referral, ReferralNote
from hub.users import LoginFailure, PasswordReset, User

__all__ = [
    "Base",
    "EndpointRegistration",
    "Consent",
    "Contact",
    "Location",
    "Service",
    "ServicePathway",
    "DeadlinePolicy",
    "ConsentEnding",
    "ConsentNote",
    "ConsentOrganization",
    "Event",
    "EventAudience",
    "IdempotentResponse",
    "LoginFailure",
    "OAuthClient",
    "OAuthToken",
    "OrganizationCheck",
    "Organization",
    "OutboxEntry",
    "OutgoingMail",
    "Participant",
    "QueuedMiss",
    "ParticipantCheckin",
    "PasswordReset",
    "PersonalDataRead",
    "Referral",
    "ReferralCheck",
    "ReferralNote",
    "User",
]
