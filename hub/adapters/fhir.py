"""FHIR R4 for one referral leg: a `collection` Bundle of ServiceRequest, Task, Patient (only
when the reader may see who the person is), Organization and Consent.

Built from the leg *as the reader may see it* (`hub.consent.visibility.Reader.referral`), so the
redaction is the API's: a reader not entitled to the person gets a Patient reference by
identifier only, and neither the reason for referral nor the needs.  A leg for an opportunity
names it in ServiceRequest.supportingInfo (by identifier).  Task status follows
docs/design.md §2; a forwarded leg's Task is `partOf` the Task of the leg it came from; declines and
cancellations carry a `statusReason`.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.directory.organizations import QUEBEC_REGIONS, Organization

CODES = "https://maillage.example/fhir/CodeSystem"  # our own code systems (pathway, reasons...)
PARTICIPANT_ID = "https://maillage.example/fhir/participant-id"
PARTICIPANT_PSEUDONYM = "https://maillage.example/fhir/participant-pseudonym"
OPPORTUNITY_ID = "https://maillage.example/fhir/opportunity-id"

# docs/design.md §2: lifecycle status → FHIR Task.status.
TASK_STATUS = {
    "sent": "requested", "acknowledged": "received", "accepted": "accepted",
    "in_progress": "in-progress", "declined": "rejected", "forwarded": "completed",
    "completed": "completed", "cancelled": "cancelled", "expired": "cancelled",
}
# The request itself: open while a leg is, done when it was carried out or passed on.
SERVICE_REQUEST_STATUS = {
    "sent": "active", "acknowledged": "active", "accepted": "active", "in_progress": "active",
    "completed": "completed", "forwarded": "completed", "declined": "revoked",
    "cancelled": "revoked", "expired": "revoked",
}
CONSENT_STATUS = {"active": "active", "withdrawn": "inactive", "expired": "inactive"}


def task_id(leg_id: str) -> str:
    """The Task's id: derived from the leg's, as the ServiceRequest already has the leg's id
    and a Bundle's fullUrls must differ."""
    return str(uuid.uuid5(uuid.UUID(leg_id), "task"))


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": f"{CODES}/{system}", "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display or code}


def _patient_reference(participant: dict[str, Any]) -> dict[str, Any]:
    if not participant.get("redacted"):
        return {"reference": f"Patient/{participant['id']}"}
    if "reference" in participant:  # coordinators: a pseudonym, never the id
        return {"identifier": {"system": PARTICIPANT_PSEUDONYM,
                               "value": participant["reference"]}}
    return {"identifier": {"system": PARTICIPANT_ID, "value": participant["id"]}}


def patient(participant: dict[str, Any]) -> dict[str, Any]:
    """The Patient of an entitled reader's view of the participant."""
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": participant["id"],
        "name": [{"given": [participant["given_name"]], "family": participant["family_name"]}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                    "code": participant["preferred_language"]}]},
                           "preferred": True}],
        "managingOrganization": {"reference": f"Organization/{participant['organization_id']}"},
    }
    telecom = []
    if participant.get("email"):
        telecom.append({"system": "email", "value": participant["email"]})
    if participant.get("phone"):
        telecom.append({"system": "phone", "value": participant["phone"]})
    if telecom:
        resource["telecom"] = telecom
    if participant.get("birth_year"):
        resource["birthDate"] = f"{participant['birth_year']:04d}"  # FHIR allows a year alone
    if participant.get("region") in QUEBEC_REGIONS:
        resource["address"] = [{"district": QUEBEC_REGIONS[participant["region"]],
                                 "state": "QC", "country": "CA"}]
    return resource


def organization(org: Organization) -> dict[str, Any]:
    address = {"state": "QC", "country": "CA"}
    if org.region in QUEBEC_REGIONS:  # FHIR JSON has no nulls: no region, no district
        address["district"] = QUEBEC_REGIONS[org.region]
    return {
        "resourceType": "Organization", "id": str(org.id), "active": True, "name": org.name,
        "type": [_coding("organization-kind", org.kind)], "address": [address],
    }


def service_request(leg: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": leg["id"],
        "status": SERVICE_REQUEST_STATUS[leg["status"]], "intent": "order",
        "category": [_coding("pathway", leg["pathway"])],
        "priority": leg["priority"],  # routine / urgent are FHIR request priorities too
        "subject": subject, "authoredOn": leg["created_at"],
        "requester": {"reference": f"Organization/{leg['from_organization_id']}"},
        "performer": [{"reference": f"Organization/{leg['to_organization_id']}"}],
    }
    if leg.get("needed_by"):
        # When the service is needed by: the first day of the job, the departure (§12).
        resource["occurrencePeriod"] = {"end": leg["needed_by"]}
    if leg.get("opportunity_id"):
        # The job, internship or training the person is referred for (docs/opportunities.md).
        # No FHIR resource is an opportunity, and `basedOn` only takes care plans and
        # requests: R4's `supportingInfo` takes a Reference(Any), here a logical one by the
        # opportunity's identifier (GET /api/v1/opportunities/{id} resolves it).
        resource["supportingInfo"] = [{"identifier": {
            "system": OPPORTUNITY_ID, "value": leg["opportunity_id"]}}]
    if leg.get("stage"):
        resource["orderDetail"] = [_coding("entrepreneurship-stage", leg["stage"])]
    if leg.get("reason_for_referral"):
        resource["reasonCode"] = [{"text": leg["reason_for_referral"]}]
    if leg.get("needs"):
        resource["note"] = [{"text": need} for need in leg["needs"]]
    return resource


def task(leg: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task", "id": task_id(leg["id"]), "status": TASK_STATUS[leg["status"]],
        "businessStatus": {"text": leg["status"]}, "intent": "order",
        "priority": leg["priority"],
        "basedOn": [{"reference": f"ServiceRequest/{leg['id']}"}],
        "focus": {"reference": f"ServiceRequest/{leg['id']}"},
        "for": subject, "authoredOn": leg["created_at"], "lastModified": leg["updated_at"],
        "requester": {"reference": f"Organization/{leg['from_organization_id']}"},
        "owner": {"reference": f"Organization/{leg['to_organization_id']}"},
    }
    if leg.get("forwarded_from"):
        resource["partOf"] = [{"reference": f"Task/{task_id(leg['forwarded_from'])}"}]
    if leg["status"] == "declined" and leg.get("decline_reason"):
        resource["statusReason"] = _coding("decline-reason", leg["decline_reason"])
    elif leg["status"] == "cancelled" and leg.get("cancel_reason"):
        resource["statusReason"] = _coding("cancel-reason", leg["cancel_reason"])
    elif leg["status"] == "expired":
        resource["statusReason"] = _coding("cancel-reason", "expired",
                                           "Not acknowledged by the deadline")
    deadline = (leg.get("deadlines") or {}).get("acknowledge_by")
    if deadline:
        resource["restriction"] = {"period": {"end": deadline}}
    if leg.get("outcome"):
        resource["output"] = [{"type": {"text": "outcome"},
                               "valueCodeableConcept": _coding("outcome", leg["outcome"])}]
    return resource


def consent(state: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    """A referral_sharing consent (as `hub.consent.consents.snapshot` gives it, trimmed per
    reader)."""
    resource: dict[str, Any] = {
        "resourceType": "Consent", "id": state["id"],
        "status": CONSENT_STATUS.get(state["status"], "inactive"),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [_coding("consent-purpose", state["purpose"])],
        "patient": subject, "dateTime": state["granted_at"],
        "policyRule": _coding("consent-policy", "maillage-referral-sharing"),
        "provision": {"type": "permit", "period": {"start": state["granted_at"],
                                                   "end": state["expires_at"]}},
    }
    return resource


def referral_bundle(leg: dict[str, Any], organizations: list[Organization],
                    consent_state: dict[str, Any] | None) -> dict[str, Any]:
    """The Bundle for one leg; `leg` is the reader's view of it (`Reader.referral`)."""
    participant = leg["participant"]
    subject = _patient_reference(participant)
    resources = [service_request(leg, subject), task(leg, subject)]
    if not participant.get("redacted"):
        resources.append(patient(participant))
    resources += [organization(org) for org in organizations]
    if consent_state is not None:
        resources.append(consent(consent_state, subject))
    return {
        "resourceType": "Bundle", "type": "collection", "timestamp": leg["updated_at"],
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
