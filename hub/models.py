"""Every table of the hub, imported in one place so Alembic and tests see the whole schema."""

from hub.accounts.clients import OAuthClient, OAuthToken
from hub.accounts.form_tokens import FormToken
from hub.accounts.users import LoginFailure, PasswordReset, PortalSession, User
from hub.api.idempotency import IdempotentResponse
from hub.consent.access_log import PersonalDataRead
from hub.consent.consents import Consent, ConsentEnding, ConsentNote, ConsentOrganization
from hub.db import Base
from hub.directory.organizations import Contact, Location, Organization, Service, ServicePathway
from hub.directory.outdated import OutdatedReport
from hub.directory.relationships import RelationshipNote
from hub.events.store import Event, EventAudience, OutboxEntry
from hub.followups.checkins import ParticipantCheckin
from hub.followups.digests import QueuedMiss
from hub.followups.followup_digests import FollowUpMailed
from hub.followups.leg_checks import OrganizationCheck, ReferralCheck
from hub.followups.policies import DeadlinePolicy
from hub.followups.records import FollowUpRecord
from hub.mailbox.links import LinkHit
from hub.mailbox.notices import QueuedNotice
from hub.opportunities.offers import Opportunity, RegionFollow
from hub.outbox.mail import OutgoingMail
from hub.outbox.webhook_fanout import EndpointRegistration
from hub.peers.profiles import PeerLink, PeerMatch, PeerProfile
from hub.privacy.erasure import ParticipantErasure
from hub.privacy.incidents import PrivacyIncident
from hub.referrals.checklists import ChecklistItem
from hub.referrals.households import Household, HouseholdMember
from hub.referrals.legs import Referral, ReferralNote
from hub.referrals.participant_search import ParticipantSearchTerm
from hub.referrals.participants import Participant

__all__ = [
    "Household",
    "HouseholdMember",
    "ChecklistItem",
    "Base",
    "EndpointRegistration",
    "FormToken",
    "Consent",
    "Contact",
    "Location",
    "Service",
    "ServicePathway",
    "DeadlinePolicy",
    "FollowUpMailed",
    "FollowUpRecord",
    "ConsentEnding",
    "ConsentNote",
    "ConsentOrganization",
    "Event",
    "EventAudience",
    "IdempotentResponse",
    "LinkHit",
    "LoginFailure",
    "OAuthClient",
    "OAuthToken",
    "OrganizationCheck",
    "Opportunity",
    "RegionFollow",
    "Organization",
    "OutboxEntry",
    "OutgoingMail",
    "OutdatedReport",
    "Participant",
    "PeerLink",
    "PeerMatch",
    "PeerProfile",
    "ParticipantSearchTerm",
    "QueuedMiss",
    "QueuedNotice",
    "ParticipantCheckin",
    "ParticipantErasure",
    "PasswordReset",
    "PortalSession",
    "PersonalDataRead",
    "PrivacyIncident",
    "Referral",
    "ReferralCheck",
    "ReferralNote",
    "RelationshipNote",
    "User",
]
