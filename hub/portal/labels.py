"""The words users read for the hub's codes (statuses, pathways, reasons...), in their language.

Codes stay codes everywhere else (API, events, database); only pages show these labels.
"""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from hub.directory.text import fold

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
# What the answer page says once a step is taken: a sentence agreeing with its subject
# (« Orientation terminée. »), not an infinitive after « C'est fait ».
DONE = {
    "acknowledge": _l("Receipt confirmed."),
    "accept": _l("Referral accepted."),
    "decline": _l("Referral declined."),
    "start": _l("First contact recorded."),
    "complete": _l("Referral completed."),
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
# Each purpose as the person reads it before agreeing (Law 25: one consent per purpose, asked
# in clear and simple words).
PURPOSE_WORDS = {
    "referral_sharing": _l("Your name, your contact details and the reason for the referral "
                           "are sent to the organizations named, so that they can serve you."),
    "follow_up_contact": _l("We may call or write to you after the referral to ask whether "
                            "someone contacted you and how things are going."),
    "peer_matching": _l("We may put you in touch with a person who settled in the same region "
                        "before you, if you both agree."),
    "outcome_reporting": _l("You may be counted, without your name, in the reports the "
                            "organizations named give their funders."),
}
EVIDENCE = {"written": _l("Written"), "verbal": _l("Verbal"), "electronic": _l("Electronic")}
CAPACITY = {"open": _l("Open"), "waitlist": _l("Waiting list"), "full": _l("Full")}
WAITLIST_BAND = {
    "under_1_month": _l("under a month"),
    "1_to_3_months": _l("1 to 3 months"),
    "over_3_months": _l("over 3 months"),
    "undetermined": _l("wait not known"),
}
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
# A role naming the user themself agrees with their French form (`users.french_form`); the
# catalogue context is the form, so English keeps one word and French has three.
ROLE_BY_FORM = {
    "feminine": {
        "counsellor": _lp("feminine", "Counsellor"),
        "partner_staff": _lp("feminine", "Partner staff"),
        "coordinator": _lp("feminine", "Coordinator"),
        "org_admin": _lp("feminine", "Organization admin"),
        "hub_admin": _lp("feminine", "Hub admin"),
    },
    "masculine": {
        "counsellor": _lp("masculine", "Counsellor"),
        "partner_staff": _lp("masculine", "Partner staff"),
        "coordinator": _lp("masculine", "Coordinator"),
        "org_admin": _lp("masculine", "Organization admin"),
        "hub_admin": _lp("masculine", "Hub admin"),
    },
    "neutral": {
        "counsellor": _lp("neutral", "Counsellor"),
        "partner_staff": _lp("neutral", "Partner staff"),
        "coordinator": _lp("neutral", "Coordinator"),
        "org_admin": _lp("neutral", "Organization admin"),
        "hub_admin": _lp("neutral", "Hub admin"),
    },
}
FRENCH_FORM = {
    "feminine": _l("Feminine"),
    "masculine": _l("Masculine"),
    "neutral": _l("Neutral (épicène)"),
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
    "referral.checklist_updated": _l("Checklist updated"),
    "referral.followup_recorded": _l("Follow-up recorded"),
    "peer_match.proposed": _l("Peer proposed"),
    "peer_match.accepted": _l("Peer accepted"),
    "peer_match.declined": _l("Peer declined"),
    "peer_match.expired": _l("Peer proposal lapsed"),
    "peer_match.ended": _l("Peer match ended"),
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
OFFER = {
    "talk_employment": _l("Talk about work"),
    "talk_settlement": _l("Talk about settling in"),
    "meet_in_person": _l("Meet in person"),
    "visit_places": _l("Show the places"),
    "introduce_network": _l("Introduce people they know"),
}
CHANNEL = {"email": _l("Email"), "phone": _l("Phone")}
MATCH_STATUS = {
    "proposed": _l("Proposed"),
    "accepted": _l("Accepted"),
    "declined": _l("Declined"),
    "expired": _l("Lapsed"),
    "ended": _l("Ended"),
}
MATCH_ACTION = {"accept": _l("Accept for the peer"), "decline": _l("Decline for the peer"),
                "end": _l("End the match")}
END_REASON = {
    "ended": _l("ended by an organization"),
    "peer_ended": _l("ended by the peer"),
    "peer_withdrew": _l("the peer withdrew"),
    "consent_withdrawn": _l("consent withdrawn"),
}
TALKED = {"talked": _l("they talked"), "not_yet": _l("not talked yet")}
PEER_STATUS = {"available": _l("available"), "paused": _l("paused"),
               "withdrawn": _l("withdrawn")}
CHECKLIST_ITEM = {
    "lease_termination": _l("Terminate the lease"),
    "housing": _l("Housing on arrival"),
    "moving": _l("Moving"),
    "drivers_licence": _l("Driver's licence"),
    "vehicle": _l("A car or a way to get around"),
    "health_insurance_card": _l("Health insurance card (RAMQ): change of address"),
    "family_doctor": _l("Family doctor or clinic"),
    "school_or_daycare": _l("School or daycare for the children"),
    "francization": _l("French courses (francisation)"),
    "spouse_employment": _l("Work for the spouse"),
    "bank_account": _l("Bank account"),
    "employer_contact": _l("Contact with the employer"),
    "welcome_on_arrival": _l("Welcome on arrival"),
}
CHECKLIST_STATUS = {"todo": _l("To do"), "done": _l("Done"), "not_needed": _l("Not needed")}
OWNER = {"sender": _l("Sending organization"), "receiver": _l("Receiving organization")}
OPPORTUNITY_KIND = {"job": _l("Job"), "internship": _l("Internship"),
                    "training": _l("Training place"), "other": _l("Other")}
OPPORTUNITY_STATUS = {"open": _l("Open to candidates"), "closed": _l("Closed")}
CLOSED_REASON = {"closes_on_passed": _l("closing date passed"),
                 "places_filled": _l("places filled"), "withdrawn": _l("withdrawn")}

ALL = {
    "status": STATUS, "action": ACTION, "done": DONE, "pathway": PATHWAY, "stage": STAGE,
    "priority": PRIORITY, "decline_reason": DECLINE_REASON, "outcome": OUTCOME,
    "cancel_reason": CANCEL_REASON, "purpose": PURPOSE, "purpose_words": PURPOSE_WORDS,
    "evidence": EVIDENCE,
    "capacity": CAPACITY, "waitlist_band": WAITLIST_BAND, "kind": KIND, "role": ROLE,
    "french_form": FRENCH_FORM,
    "check": CHECK, "event": EVENT,
    "situation": SITUATION, "followup": FOLLOWUP, "offer": OFFER, "channel": CHANNEL,
    "match_status": MATCH_STATUS, "match_action": MATCH_ACTION, "end_reason": END_REASON,
    "talked": TALKED, "peer_status": PEER_STATUS,
    "checklist_item": CHECKLIST_ITEM, "checklist_status": CHECKLIST_STATUS, "owner": OWNER,
    "opportunity_kind": OPPORTUNITY_KIND, "opportunity_status": OPPORTUNITY_STATUS,
    "closed_reason": CLOSED_REASON,
}


def label(kind: str, code: str | None) -> str:
    """The label of `code`, or the code itself when it has none (a code added later)."""
    if code is None:
        return ""
    return str(ALL[kind].get(code, code))


def role_of(role: str, french_form: str | None) -> str:
    """The user's own role as they are addressed: « Conseillère », « Conseiller » or
    « Personne conseillère »; the generic label for a form not known."""
    forms = ROLE_BY_FORM.get(french_form or "neutral", ROLE_BY_FORM["neutral"])
    return str(forms.get(role, label("role", role)))


# --- languages -------------------------------------------------------------------------------

# The languages most of Québec's newcomers speak, first in the list (BCP 47 primary subtags);
# every other language follows, by name. The API takes any BCP 47 tag.
NEWCOMER_LANGUAGES = ("fr", "en", "ar", "es", "zh", "fa", "pt", "uk", "ru", "ht", "vi", "tl",
                      "pa", "ta", "tr", "ro", "so", "ti", "sw", "wo", "ln", "rw", "ur", "bn")
# Where the usual name of the language people speak is not the one of its code.
LANGUAGE_NAMES = {"zh": _l("Mandarin (Chinese)")}


def _locale() -> Locale:
    from flask_babel import get_locale

    return get_locale() or Locale("fr")


def language_name(code: str | None) -> str:
    """'ar' -> 'arabe' (French) or 'Arabic' (English); 'fr-CA' -> 'français (Canada)'; an
    unknown tag is shown as it is."""
    if not code:
        return ""
    if code in LANGUAGE_NAMES:
        return str(LANGUAGE_NAMES[code])
    try:
        return Locale.parse(code, sep="-").get_display_name(_locale()) or code
    except (ValueError, TypeError, UnknownLocaleError):
        return code


def language_choices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The languages to choose from, in the user's language: newcomers' languages first, then
    every other language of two letters, by name (accents ignored in the order)."""
    first = [(code, language_name(code)) for code in NEWCOMER_LANGUAGES]
    names = _locale().languages
    others = [(code, name) for code, name in names.items()
              if len(code) == 2 and code.isalpha() and code not in NEWCOMER_LANGUAGES]
    others.sort(key=lambda choice: fold(choice[1]))
    return first, others


def minute_format() -> str:
    """A moment to the minute, as the user's language writes it: "6 déc. 2026 14 h 05" reads
    as French; seconds say nothing to a counsellor."""
    return "d MMM y, HH 'h' mm" if str(_locale()).startswith("fr") else "MMM d, y, h:mm a"
