"""Answers to inputs and races found in review: each once gave a 500, a leak or a wrong 409."""

from __future__ import annotations

import pytest

from tests.helpers import Network


@pytest.mark.parametrize("value", ['"\u00b2"', '"1\u00b9"', '"9999999999999999999999"'])
def test_if_match_with_non_ascii_or_huge_digits_is_400(network: Network, value: str) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    response = receiver.act(leg["id"], "acknowledge", headers={"If-Match": value})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_dates_outside_utc_range_are_422(network: Network, moment: str) -> None:
    partner = network.partner()
    response = partner.get("/api/v1/referrals", query_string={"updated_since": moment})
    assert response.status_code == 422
    assert "query.updated_since" in response.get_json()["errors"]


def test_notes_are_withheld_from_a_party_no_longer_entitled(network: Network) -> None:
    community, regional, employer = network.partner(), network.partner(), network.partner()
    first = community.refer(regional)
    community.grant_consent(first["participant"]["id"], employer)
    regional.act(first["id"], "acknowledge")
    second = regional.act(first["id"], "forward",
                          {"to_organization_id": employer.organization_id}).get_json()
    employer.act(second["id"], "acknowledge")
    employer.act(second["id"], "accept", {"note": "Rendez-vous avec Mme Benali le 2 décembre"})

    def accepted_note(reader_events: list[dict]) -> dict:
        return next(e for e in reader_events if e["type"] == "referral.accepted")["data"]

    regional_view = regional.get(f"/api/v1/referrals/{second['id']}/events").get_json()["items"]
    data = accepted_note(regional_view)
    assert data["referral"]["participant"]["redacted"] is True  # its own leg is closed
    assert "note" not in data
    employer_view = employer.get(f"/api/v1/referrals/{second['id']}/events").get_json()["items"]
    assert accepted_note(employer_view)["note"].startswith("Rendez-vous")


def test_a_cancel_reason_outside_the_codes_is_422(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    for reason in ["consent_withdrawn", "x" * 60]:
        response = sender.act(leg["id"], "cancel", {"reason": reason})
        assert response.status_code == 422, reason
    assert sender.get(f"/api/v1/referrals/{leg['id']}").get_json()["status"] == "sent"


def test_coordinators_neither_register_participants_nor_send_referrals(network: Network) -> None:
    coordinator, partner, other = (network.partner(kind="coordination"), network.partner(),
                                   network.partner())
    refused = coordinator.post("/api/v1/participants", {
        "given_name": "A", "family_name": "B", "preferred_language": "fr"})
    assert refused.status_code == 403
    participant = partner.register_participant()
    refused = coordinator.post("/api/v1/referrals", {
        "participant_id": participant["id"], "to_organization_id": other.organization_id,
        "pathway": "employment"})
    assert refused.status_code == 403
    assert "watch the network" in refused.get_json()["detail"]
