"""The referral lifecycle through the API: every path of DESIGN §2, with its events."""

from __future__ import annotations

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
