"""`GET /api/v1/referrals/{id}/fhir`: a leg as a FHIR R4 bundle that the official R4 JSON
schema and the `fhir.resources` models accept, with the referral read's visibility: the Patient
only for a reader entitled to the person (and the read logged), a reference without identity
otherwise."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle

from hub.adapters.fhir import PARTICIPANT_ID, PARTICIPANT_PSEUDONYM, task_id
from tests.fhir_schema import fhir_r4_errors
from tests.helpers import Network, Partner

FHIR_JSON = "application/fhir+json"


def bundle_of(partner: Partner, leg_id: str) -> dict[str, dict[str, Any]]:
    """The leg's bundle, validated, as {resourceType: resource} (Organizations as a list)."""
    response = partner.get(f"/api/v1/referrals/{leg_id}/fhir")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = response.get_json()
    assert fhir_r4_errors(body) == []  # R4's value sets, types and element names
    # Cardinalities, which the JSON schema leaves out: R4B's models, the same as R4's for
    # these resources.
    Bundle.parse_obj(body)
    urls = [entry["fullUrl"] for entry in body["entry"]]
    assert len(urls) == len(set(urls))
    found: dict[str, Any] = {"Organization": []}
    for entry in body["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Organization":
            found["Organization"].append(resource)
        else:
            assert resource["resourceType"] not in found
            found[resource["resourceType"]] = resource
    return found


def test_the_sender_and_an_entitled_receiver_get_the_patient(network: Network) -> None:
    sender = network.partner()
    receiver = network.partner(kind="regional_partner", region="01")
    leg = sender.refer(receiver, pathway="settlement", priority="urgent",
                       reason_for_referral="S'installer à Rimouski avec sa famille")
    participant = leg["participant"]["id"]

    for reader in (sender, receiver):
        found = bundle_of(reader, leg["id"])
        assert found["Patient"]["id"] == participant
        assert found["Patient"]["name"] == [{"given": ["Amina"], "family": "Benali"}]
        assert found["Patient"]["birthDate"] == "1990"
        request, task = found["ServiceRequest"], found["Task"]
        assert request["subject"] == {"reference": f"Patient/{participant}"}
        assert request["reasonCode"] == [{"text": "S'installer à Rimouski avec sa famille"}]
        assert request["priority"] == "urgent"
        assert request["category"][0]["coding"][0]["code"] == "settlement"
        assert task["status"] == "requested" and "partOf" not in task
        assert task["owner"] == {"reference": f"Organization/{receiver.organization_id}"}
        assert {o["id"] for o in found["Organization"]} == {sender.organization_id,
                                                             receiver.organization_id}
        assert found["Consent"]["status"] == "active"
        assert found["Consent"]["patient"] == {"reference": f"Patient/{participant}"}

    log = sender.get(f"/api/v1/participants/{participant}/access-log").get_json()["items"]
    assert (receiver.organization_id, "GET /api/v1/referrals/{referral_id}/fhir") in {
        (row["organization_id"], row["via"]) for row in log}


def test_statuses_follow_the_lifecycle_and_a_decline_hides_the_person(network: Network
                                                                       ) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    receiver.act(leg["id"], "acknowledge")
    assert bundle_of(receiver, leg["id"])["Task"]["status"] == "received"
    receiver.act(leg["id"], "accept")
    assert bundle_of(receiver, leg["id"])["Task"]["status"] == "accepted"
    receiver.act(leg["id"], "start")
    assert bundle_of(receiver, leg["id"])["Task"]["status"] == "in-progress"
    receiver.act(leg["id"], "complete", {"outcome": "employed"})
    done = bundle_of(sender, leg["id"])
    assert done["Task"]["status"] == "completed"
    assert done["ServiceRequest"]["status"] == "completed"
    assert done["Task"]["output"][0]["valueCodeableConcept"]["coding"][0]["code"] == "employed"

    declined = sender.refer(receiver)
    receiver.act(declined["id"], "decline", {"reason": "no_capacity", "note": "Complet"})
    found = bundle_of(receiver, declined["id"])
    assert found["Task"]["status"] == "rejected"
    assert found["Task"]["statusReason"]["coding"][0]["code"] == "no_capacity"
    assert found["ServiceRequest"]["status"] == "revoked"
    # The leg is closed: the receiver no longer sees who the person is.
    assert "Patient" not in found
    assert found["Task"]["for"] == {"identifier": {"system": PARTICIPANT_ID,
                                                   "value": declined["participant"]["id"]}}
    assert "reasonCode" not in found["ServiceRequest"]


def test_a_forwarded_leg_is_part_of_the_first(network: Network) -> None:
    community = network.partner()
    regional = network.partner(kind="regional_partner", region="01")
    employer = network.partner(kind="employer", region="01")
    first = community.refer(regional, pathway="settlement")
    community.grant_consent(first["participant"]["id"], employer)
    regional.act(first["id"], "acknowledge")
    second = regional.act(first["id"], "forward",
                          {"to_organization_id": employer.organization_id}).get_json()

    found = bundle_of(employer, second["id"])
    assert found["Task"]["partOf"] == [{"reference": f"Task/{task_id(first['id'])}"}]
    assert bundle_of(community, first["id"])["Task"]["status"] == "completed"


def test_a_coordinator_sees_a_pseudonym_and_no_patient(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    leg = sender.refer(receiver)
    found = bundle_of(coordinator, leg["id"])
    assert "Patient" not in found
    subject = found["ServiceRequest"]["subject"]
    assert subject["identifier"]["system"] == PARTICIPANT_PSEUDONYM
    assert leg["participant"]["id"] not in str(found)
    assert found["Consent"]["patient"] == subject


def test_after_withdrawal_the_consent_is_inactive_and_the_person_hidden(network: Network
                                                                        ) -> None:
    sender, receiver = network.partner(), network.partner()
    participant = sender.register_participant()["id"]
    consent = sender.grant_consent(participant, receiver)
    leg = sender.refer(receiver, participant, consent=False)
    sender.post(f"/api/v1/consents/{consent['id']}/withdraw", {})
    found = bundle_of(receiver, leg["id"])
    assert found["Consent"]["status"] == "inactive"
    assert "Patient" not in found
    assert found["Task"]["status"] == "cancelled"


def test_other_organizations_get_404(network: Network) -> None:
    sender, receiver, outsider = network.partner(), network.partner(), network.partner()
    leg = sender.refer(receiver)
    response = outsider.get(f"/api/v1/referrals/{leg['id']}/fhir")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert "Benali" not in response.get_data(as_text=True)
