"""The closed list of event types (docs/design.md §3), each with what it means.

An event of any other type cannot be recorded: `EventType` is the only way to name one.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    REFERRAL_SENT = "referral.sent"
    REFERRAL_ACKNOWLEDGED = "referral.acknowledged"
    REFERRAL_ACCEPTED = "referral.accepted"
    REFERRAL_DECLINED = "referral.declined"
    REFERRAL_STARTED = "referral.started"
    REFERRAL_COMPLETED = "referral.completed"
    REFERRAL_CANCELLED = "referral.cancelled"
    REFERRAL_EXPIRED = "referral.expired"
    REFERRAL_FORWARDED = "referral.forwarded"
    REFERRAL_DEADLINE_MISSED = "referral.deadline_missed"
    REFERRAL_FOLLOWUP_DUE = "referral.followup_due"
    REFERRAL_FOLLOWUP_RECORDED = "referral.followup_recorded"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    CONSENT_EXPIRED = "consent.expired"
    ORGANIZATION_VALIDATION_DUE = "organization.validation_due"
    PARTICIPANT_ERASED = "participant.erased"
    PEER_MATCH_PROPOSED = "peer_match.proposed"
    PEER_MATCH_ACCEPTED = "peer_match.accepted"
    PEER_MATCH_DECLINED = "peer_match.declined"
    PEER_MATCH_EXPIRED = "peer_match.expired"
    PEER_MATCH_ENDED = "peer_match.ended"
    REFERRAL_CHECKLIST_UPDATED = "referral.checklist_updated"
    ORGANIZATION_OUTDATED_REPORTED = "organization.outdated_reported"
    PARTICIPANT_UPDATED = "participant.updated"
    OPPORTUNITY_PUBLISHED = "opportunity.published"
    OPPORTUNITY_CLOSED = "opportunity.closed"
    # Beyond docs/design.md §3's list: how an organization learns its endpoint stopped receiving.
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"


MEANING: dict[EventType, str] = {
    EventType.REFERRAL_SENT: "A leg was created and sent to the receiving organization "
    "(also the first event of a forwarded leg).",
    EventType.REFERRAL_ACKNOWLEDGED: "The receiving organization saw the leg.",
    EventType.REFERRAL_ACCEPTED: "The receiving organization will serve the participant.",
    EventType.REFERRAL_DECLINED: "The receiving organization declined, with a reason code.",
    EventType.REFERRAL_STARTED: "First contact with the participant took place.",
    EventType.REFERRAL_COMPLETED: "The service ended, with an outcome code.",
    EventType.REFERRAL_CANCELLED: "The sending organization (or a consent withdrawal) "
    "cancelled the leg.",
    EventType.REFERRAL_EXPIRED: "Nobody acknowledged the leg in twice the deadline; the sender "
    "should redirect.",
    EventType.REFERRAL_FORWARDED: "The receiving organization passed the participant on; "
    "the leg is closed and a new leg starts.",
    EventType.REFERRAL_DEADLINE_MISSED: "An acknowledgement, decision or first-contact "
    "deadline passed, or the participant said nobody contacted them (`source: participant`).",
    EventType.REFERRAL_FOLLOWUP_DUE: "A post-handoff follow-up (30 or 180 days) is due.",
    EventType.REFERRAL_FOLLOWUP_RECORDED: "The sending organization recorded a follow-up: "
    "reached, situation, still in the destination region (codes only; the note stays with "
    "the sender).",
    EventType.CONSENT_GRANTED: "A participant gave consent for a purpose.",
    EventType.CONSENT_WITHDRAWN: "A participant withdrew consent; recipients should erase "
    "their copy.",
    EventType.CONSENT_EXPIRED: "A consent reached its expiry date.",
    EventType.ORGANIZATION_VALIDATION_DUE: "A directory entry was not validated for 12 months.",
    EventType.PARTICIPANT_ERASED: "A participant's personal data was erased (on request or at "
    "the end of its retention); every organization that received it should erase its copy.",
    EventType.PEER_MATCH_PROPOSED: "A newcomer's counsellor proposed a peer; the peer is asked "
    "(to both organizations, ids and codes only).",
    EventType.PEER_MATCH_ACCEPTED: "The peer (or their organization) said yes: the newcomer's "
    "organization may now read the peer's given name and chosen contact channels.",
    EventType.PEER_MATCH_DECLINED: "The peer (or their organization) said no.",
    EventType.PEER_MATCH_EXPIRED: "Nobody answered the proposal in 10 business days.",
    EventType.PEER_MATCH_ENDED: "Either side ended the match, the peer withdrew, or a "
    "`peer_matching` consent ended (`end_reason`).",
    EventType.REFERRAL_CHECKLIST_UPDATED: "An item of the leg's checklist for the move changed "
    "(its code, owner and status; never the note).",
    EventType.ORGANIZATION_OUTDATED_REPORTED: "A partner reported the organization's directory "
    "entry as out of date; the report is open until the entry is validated again.",
    EventType.PARTICIPANT_UPDATED: "The registering organization corrected the participant's "
    "personal data (the names of the fields that changed, never their values): read the "
    "person again.",
    EventType.OPPORTUNITY_PUBLISHED: "An organization published an opportunity (a job, "
    "internship or training place) in a region the reader follows, or its own.",
    EventType.OPPORTUNITY_CLOSED: "An opportunity takes no more candidates (`closed_reason`: "
    "`closes_on_passed`, `places_filled` or `withdrawn`).",
    EventType.WEBHOOK_ENDPOINT_DISABLED: "The hub disabled one of the organization's webhook "
    "endpoints (it answered 410, or failed for 5 days); its deliveries wait until it is "
    "re-activated.",
}

assert set(MEANING) == set(EventType), "every event type is documented"
