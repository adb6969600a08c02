"""The words users read for the hub's codes (statuses, pathways, reasons...), in their language.

Codes stay codes everywhere else (API, events, database); only pages show these labels.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATUS = {
    "sent": _l("Sent"),
    "acknowledged": _l("Acknowledged"),
    "accepted": _l("Accepted"),
    "in_progress": _l("In progress"),
    "declined": _l("Declined"),
    "completed": _l("Completed"),
    "cancelled": _l("Cancelled"),
    "expired": _l("Expired"),
    "forwarded": _l("Forwarded"),
}
ACTION = {
    "acknowledge": _l("Acknowledge"),
    "accept": _l("Accept"),
    "decline": _l("Decline"),
    "start": _l("Record first contact"),
    "complete": _l("Complete"),
    "forward": _l("Forward"),
    "cancel": _l("Cancel the referral"),
    "expire": _l("Expire"),
}
PATHWAY = {
    "employment": _l("Employment"),
    "settlement": _l("Settling in a region"),
    "training": _l("Training"),
    "entrepreneurship": _l("Entrepreneurship"),
    "cooperative_entrepreneurship": _l("Cooperative entrepreneurship"),
    "other": _l("Other"),
}
STAGE = {"exploration": _l("Exploration"), "prevalidation": _l("Pre-validation")}
PRIORITY = {"routine": _l("Routine"), "urgent": _l("Urgent")}
DECLINE_REASON = {
    "not_eligible": _l("Not eligible"),
    "no_capacity": _l("No capacity"),
    "out_of_region": _l("Out of our region"),
    "participant_unreachable": _l("Participant unreachable"),
    "duplicate": _l("Duplicate"),
    "other": _l("Other reason"),
}
OUTCOME = {
    "employed": _l("Employed"),
    "in_training": _l("In training"),
    "business_started": _l("Business started"),
    "settled": _l("Settled in the region"),
    "service_delivered": _l("Service delivered"),
    "participant_withdrew": _l("Participant withdrew"),
    "no_show": _l("Did not come"),
    "other": _l("Other outcome"),
}
CANCEL_REASON = {
    "participant_withdrew": _l("Participant withdrew"),
    "referred_elsewhere": _l("Referred elsewhere"),
    "no_longer_needed": _l("No longer needed"),
    "sent_by_mistake": _l("Sent by mistake"),
    "other": _l("Other reason"),
    "consent_withdrawn": _l("Consent withdrawn"),
}
PURPOSE = {
    "referral_sharing": _l("Share the referral with the organizations named"),
    "follow_up_contact": _l("Be contacted for follow-up"),
    "peer_matching": _l("Be put in touch with a peer"),
    "outcome_reporting": _l("Be counted in outcome reports"),
}
EVIDENCE = {"written": _l("Written"), "verbal": _l("Verbal"), "electronic": _l("Electronic")}
CAPACITY = {"open": _l("Open"), "waitlist": _l("Waiting list"), "full": _l("Full")}
KIND = {
    "community": _l("Community organization"),
    "regional_partner": _l("Regional partner"),
    "entrepreneurship_agency": _l("Entrepreneurship agency"),
    "cooperative_development": _l("Cooperative development"),
    "insertion_enterprise": _l("Insertion enterprise"),
    "employer": _l("Employer"),
    "public_institution": _l("Public institution"),
    "other": _l("Other organization"),
    "coordination": _l("Coordination body"),
}
ROLE = {
    "counsellor": _l("Counsellor"),
    "partner_staff": _l("Partner staff"),
    "coordinator": _l("Coordinator"),
    "org_admin": _l("Organization admin"),
    "hub_admin": _l("Hub admin"),
}
CHECK = {
    "acknowledge": _l("Acknowledgement"),
    "decide": _l("Decision"),
    "start": _l("First contact"),
}
EVENT = {
    "referral.sent": _l("Referral sent"),
    "referral.acknowledged": _l("Acknowledged"),
    "referral.accepted": _l("Accepted"),
    "referral.declined": _l("Declined"),
    "referral.started": _l("First contact recorded"),
    "referral.completed": _l("Completed"),
    "referral.cancelled": _l("Cancelled"),
    "referral.expired": _l("Expired"),
    "referral.forwarded": _l("Forwarded"),
    "referral.deadline_missed": _l("Deadline missed"),
    "referral.followup_due": _l("Follow-up due"),
    "referral.followup_recorded": _l("Follow-up recorded"),
}
SITUATION = {
    "employed": _l("Employed"),
    "in_training": _l("In training"),
    "business_running": _l("Running a business"),
    "looking_for_work": _l("Looking for work"),
    "needs_support": _l("Needs support"),
    "unknown": _l("Not known"),
}
FOLLOWUP = {
    "followup_30": _l("30-day follow-up"),
    "followup_180": _l("180-day follow-up"),
    "ad_hoc": _l("Other call"),
}

ALL = {
    "status": STATUS, "action": ACTION, "pathway": PATHWAY, "stage": STAGE,
    "priority": PRIORITY, "decline_reason": DECLINE_REASON, "outcome": OUTCOME,
    "cancel_reason": CANCEL_REASON, "purpose": PURPOSE, "evidence": EVIDENCE,
    "capacity": CAPACITY, "kind": KIND, "role": ROLE, "check": CHECK, "event": EVENT,
    "situation": SITUATION, "followup": FOLLOWUP,
}


def label(kind: str, code: str | None) -> str:
    """The label of `code`, or the code itself when it has none (a code added later)."""
    if code is None:
        return ""
    return str(ALL[kind].get(code, code))
