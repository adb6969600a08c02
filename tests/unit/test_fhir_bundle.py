"""FHIR R4 bundles (hub/adapters/fhir.py) for a leg in every status of the lifecycle, for an
entitled reader, a reader without identity and a coordinator, checked against the official
R4 JSON schema (tests/data/fhir) and the fhir.resources models."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from hub.adapters.fhir import TASK_STATUS, referral_bundle, task_id
from hub.directory.organizations import Organization
from tests.fhir_schema import fhir_r4_errors

SENDER, RECEIVER = uuid.uuid4(), uuid.uuid4()
PARTICIPANT = str(uuid.uuid4())
ENTITLED = {"id": PARTICIPANT, "organization_id": str(SENDER), "given_name": "Amina",
            "family_name": "Benali", "preferred_language": "fr",
            "email": "amina.benali@example.org", "phone": "+1 514 555 0101",
            "birth_year": 1990, "region": "06"}
WITHOUT_IDENTITY = {"id": PARTICIPANT, "redacted": True}
PSEUDONYMOUS = {"id": PARTICIPANT, "redacted": True, "reference": "P-7Q2M4K"}
CONSENT = {"id": str(uuid.uuid4()), "status": "active", "purpose": "referral_sharing",
           "granted_at": "2026-11-02T14:00:00+00:00", "expires_at": "2027-11-02T14:00:00+00:00"}


def leg(status: str, participant: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "status": status, "pathway": "entrepreneurship",
        "stage": "exploration", "priority": "urgent", "participant": participant,
        "from_organization_id": str(SENDER), "to_organization_id": str(RECEIVER),
        "created_at": "2026-11-02T14:05:12.345000+00:00",
        "updated_at": "2026-11-04T09:00:00+00:00",
        "reason_for_referral": "Projet de boulangerie à Rimouski",
        "needs": ["financement", "local commercial"],
        "deadlines": {"acknowledge_by": "2026-11-03T21:00:00+00:00", "decide_by": None,
                      "start_by": None},
        "forwarded_from": str(uuid.uuid4()),
        "decline_reason": "no_capacity" if status == "declined" else None,
        "cancel_reason": "participant_withdrew" if status == "cancelled" else None,
        "outcome": "business_started" if status == "completed" else None,
    }


def organizations() -> list[Organization]:
    return [Organization(id=SENDER, name="Carrefour d'intégration de Montréal",
                         kind="community", region="06"),
            Organization(id=RECEIVER, name="Place aux jeunes Bas-Saint-Laurent",
                         kind="entrepreneurship_agency", region="01")]


@pytest.mark.parametrize("participant", [ENTITLED, WITHOUT_IDENTITY, PSEUDONYMOUS],
                         ids=["entitled", "without-identity", "coordinator"])
@pytest.mark.parametrize("status", sorted(TASK_STATUS))
def test_every_status_gives_a_valid_r4_bundle(status: str, participant: dict[str, Any]
                                              ) -> None:
    the_leg = leg(status, participant)
    bundle = referral_bundle(the_leg, organizations(), CONSENT)
    assert fhir_r4_errors(bundle) == []
    Bundle.parse_obj(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert ("Patient" in kinds) == (participant is ENTITLED)
    task = next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Task")
    assert task["status"] == TASK_STATUS[status]
    assert task["partOf"] == [{"reference": f"Task/{task_id(the_leg['forwarded_from'])}"}]
    assert ("statusReason" in task) == (status in ("declined", "cancelled", "expired"))


def test_the_schema_catches_what_r4_refuses() -> None:
    bundle = referral_bundle(leg("declined", ENTITLED), organizations(), CONSENT)
    broken = copy.deepcopy(bundle)
    resources = {e["resource"]["resourceType"]: e["resource"] for e in broken["entry"]}
    resources["Task"]["status"] = "declined"  # the hub's word, not FHIR's
    resources["ServiceRequest"]["reasonReference"] = "not a Reference"
    resources["Patient"]["nickname"] = "Mina"  # no such element
    resources["Consent"]["patient"] = {"reference": "Patient/1", "display": None}
    errors = fhir_r4_errors(broken)
    assert any(e.startswith("entry/1/Task/status") and "'declined' is not one of" in e
               for e in errors), errors
    assert any(e.startswith("entry/0/ServiceRequest/reasonReference") for e in errors)
    assert any(e.startswith("entry/2/Patient") and "'nickname'" in e for e in errors)
    assert any("Consent/patient/display" in e for e in errors)
    # A resource R4B added is not R4.
    assert fhir_r4_errors({"resourceType": "SubscriptionTopic", "status": "active"})


@pytest.mark.parametrize("kind", ["public_institution", "other"])
def test_the_new_kinds_are_coded_in_a_valid_bundle(kind: str) -> None:
    """Issue 20: a CISSS or an organization of a kind to confirm receives legs like any
    other; its FHIR Organization carries its kind as the hub codes it."""
    sender, receiver = organizations()
    receiver.kind = kind
    bundle = referral_bundle(leg("accepted", ENTITLED), [sender, receiver], CONSENT)
    assert fhir_r4_errors(bundle) == []
    (coded,) = [entry["resource"]["type"][0]["coding"][0] for entry in bundle["entry"]
                if entry["resource"]["resourceType"] == "Organization"
                and entry["resource"]["id"] == str(RECEIVER)]
    assert coded["code"] == kind and coded["system"].endswith("/organization-kind")
