"""The referral lifecycle through the API: every path of docs/design.md §2, with its events."""

from __future__ import annotations

import re

from hub.api.referrals import ReferralOut
from tests.helpers import Network


def test_full_walk_acknowledge_accept_start_complete(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    leg = sender.refer(receiver)
    assert leg["status"] == "sent"
    assert leg["version"] == 1
    assert leg["deadlines"]["acknowledge_by"] is not None
    assert leg["participant"]["given_name"] == "Amina"

    for action, status in [("acknowledge", "acknowledged"), ("accept", "accepted"),
                           ("start", "in_progress")]:
        response = receiver.act(leg["id"], action, {"note": f"{action} noté"})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["status"] == status
    response = receiver.act(leg["id"], "complete", {"outcome": "employed"})
    assert response.status_code == 200
    done = response.get_json()
    assert done["status"] == "completed"
    assert done["outcome"] == "employed"
    assert done["version"] == 5
    assert response.headers["ETag"] == '"5"'

    history = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert [e["type"] for e in history] == [
        "referral.sent", "referral.acknowledged", "referral.accepted", "referral.started",
        "referral.completed",
    ]
    assert [e["sequence"] for e in history] == [1, 2, 3, 4, 5]
    assert history[1]["data"]["note"] == "acknowledge noté"
    assert history[1]["data"]["referral"]["status"] == "acknowledged"
    first = history[0]
    assert first["specversion"] == "1.0"
    assert first["subject"] == f"referrals/{leg['id']}"
    assert first["source"] == f"/organizations/{sender.organization_id}"
    assert len(first["id"]) == 26


def test_decline_needs_a_reason_code_and_closes_the_leg(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    response = receiver.act(leg["id"], "decline", {"reason": "no_capacity", "note": "Complet"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "declined"
    assert response.get_json()["decline_reason"] == "no_capacity"
    again = receiver.act(leg["id"], "accept")
    assert again.status_code == 409
    assert again.get_json()["allowed"] == []


def test_sender_cancels_with_a_reason_code(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    receiver.act(leg["id"], "acknowledge")
    response = sender.act(leg["id"], "cancel", {"reason": "referred_elsewhere"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["cancel_reason"] == "referred_elsewhere"
    events = receiver.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    assert events[-1]["type"] == "referral.cancelled"


def test_forward_closes_the_leg_and_starts_a_linked_leg(network: Network) -> None:
    community = network.partner()
    regional = network.partner(kind="regional_partner", region="01")
    employer = network.partner(kind="employer", region="01")
    first = community.refer(regional, pathway="settlement")
    community.grant_consent(first["participant"]["id"], employer)
    regional.act(first["id"], "acknowledge")
    response = regional.act(first["id"], "forward",
                            {"to_organization_id": employer.organization_id,
                             "note": "Poste de soudeur à Rimouski"})
    assert response.status_code == 201, response.get_data(as_text=True)
    second = response.get_json()
    assert second["status"] == "sent"
    assert second["forwarded_from"] == first["id"]
    assert second["from_organization_id"] == regional.organization_id
    assert second["to_organization_id"] == employer.organization_id
    assert second["pathway"] == "settlement"
    assert [leg["id"] for leg in second["chain"]] == [first["id"], second["id"]]

    closed = community.get(f"/api/v1/referrals/{first['id']}").get_json()
    assert closed["status"] == "forwarded"
    assert closed["forwarded_to"] == second["id"]
    assert [(leg["id"], leg["status"]) for leg in closed["chain"]] == [
        (first["id"], "forwarded"), (second["id"], "sent")]

    # The employer received the participant with the new leg and may answer it.
    assert employer.get(f"/api/v1/participants/{first['participant']['id']}").status_code == 200
    assert employer.act(second["id"], "acknowledge").status_code == 200
    # The first sender is not a party to the new leg.
    assert community.get(f"/api/v1/referrals/{second['id']}").status_code == 404


def test_receiver_can_refer_onwards_with_forwarded_from(network: Network) -> None:
    community, regional, agency = (network.partner(), network.partner(),
                                   network.partner(kind="entrepreneurship_agency"))
    first = community.refer(regional)
    community.grant_consent(first["participant"]["id"], agency)
    regional.act(first["id"], "acknowledge")
    second = regional.refer(agency, participant_id=first["participant"]["id"], consent=False,
                            pathway="entrepreneurship", stage="exploration",
                            forwarded_from=first["id"])
    assert second["forwarded_from"] == first["id"]
    assert second["stage"] == "exploration"
    assert [leg["id"] for leg in second["chain"]] == [first["id"], second["id"]]


def test_list_filters_by_direction_status_and_pages_without_gaps(network: Network) -> None:
    hub_org, partner_a, partner_b = network.partner(), network.partner(), network.partner()
    outbound = [hub_org.refer(partner_a)["id"] for _ in range(3)]
    inbound = partner_b.refer(hub_org)["id"]
    hub_org.act(inbound, "acknowledge")

    def collect(query: str) -> list[str]:
        ids, cursor = [], None
        while True:
            url = f"/api/v1/referrals?limit=2&{query}" + (f"&cursor={cursor}" if cursor else "")
            page = hub_org.get(url).get_json()
            ids += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids

    assert collect("direction=outbound") == outbound
    assert collect("direction=inbound") == [inbound]
    assert sorted(collect("")) == sorted(outbound + [inbound])
    assert collect("status=acknowledged") == [inbound]
    assert collect("status=sent,acknowledged&direction=inbound") == [inbound]


def test_forwarding_records_forwarded_before_the_new_legs_sent(network: Network) -> None:
    community, regional, employer = network.partner(), network.partner(), network.partner()
    first = community.refer(regional)
    community.grant_consent(first["participant"]["id"], employer)
    regional.act(first["id"], "acknowledge")
    second = regional.act(first["id"], "forward",
                          {"to_organization_id": employer.organization_id}).get_json()
    feed = regional.get("/api/v1/events?limit=500").get_json()["items"]
    tail = [(e["subject"], e["type"]) for e in feed][-2:]
    assert tail == [(f"referrals/{first['id']}", "referral.forwarded"),
                    (f"referrals/{second['id']}", "referral.sent")]


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_legs_and_events_keep_to_the_documented_shape(network: Network) -> None:
    sender, receiver = network.partner(), network.partner()
    leg = sender.refer(receiver)
    answered = receiver.act(leg["id"], "acknowledge").get_json()
    read = sender.get(f"/api/v1/referrals/{leg['id']}").get_json()
    event = sender.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"][0]

    documented = set(ReferralOut().fields)
    for view in (leg, answered, read, event["data"]["referral"]):
        assert set(view) <= documented, set(view) - documented
        timestamps = [view["created_at"], view["updated_at"], view["participant"]["created_at"],
                      *[v for v in view["deadlines"].values() if v]]
        timestamps += [t for link in view.get("chain", []) for t in
                       (link["created_at"], link["updated_at"])]
        assert all(ISO_UTC.match(t) for t in timestamps), timestamps
    assert ISO_UTC.match(event["time"])
    assert answered["deadlines"]["decide_by"] is not None
