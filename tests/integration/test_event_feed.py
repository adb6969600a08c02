"""Each organization's event feed: its own events, oldest first, resumable from any cursor."""

from __future__ import annotations

from tests.helpers import Network, Partner


def read_all(partner: Partner, after: str = "0", limit: int = 3) -> tuple[list[dict], str]:
    items: list[dict] = []
    while True:
        page = partner.get(f"/api/v1/events?after={after}&limit={limit}").get_json()
        items += page["items"]
        if not page["items"]:
            return items, page["next_cursor"]
        after = page["next_cursor"]


def test_feed_has_each_organizations_events_in_order_and_resumes(network: Network) -> None:
    a, b, c = network.partner(), network.partner(), network.partner()
    leg_ab = a.refer(b)
    leg_ac = a.refer(c)
    b.act(leg_ab["id"], "acknowledge")
    c.act(leg_ac["id"], "decline", {"reason": "out_of_region"})

    a_events, a_cursor = read_all(a)
    b_events, _ = read_all(b)
    c_events, _ = read_all(c)
    assert [(e["subject"], e["type"]) for e in a_events] == [
        (f"referrals/{leg_ab['id']}", "referral.sent"),
        (f"referrals/{leg_ac['id']}", "referral.sent"),
        (f"referrals/{leg_ab['id']}", "referral.acknowledged"),
        (f"referrals/{leg_ac['id']}", "referral.declined"),
    ]
    assert {e["subject"] for e in b_events} == {f"referrals/{leg_ab['id']}"}
    assert {e["subject"] for e in c_events} == {f"referrals/{leg_ac['id']}"}

    # Polling from the last cursor: nothing new, the cursor stays; then the next event only.
    page = a.get(f"/api/v1/events?after={a_cursor}").get_json()
    assert page == {"items": [], "next_cursor": a_cursor}
    b.act(leg_ab["id"], "accept")
    page = a.get(f"/api/v1/events?after={a_cursor}").get_json()
    assert [e["type"] for e in page["items"]] == ["referral.accepted"]


def test_resuming_from_every_cursor_skips_nothing_and_repeats_nothing(network: Network) -> None:
    a, b = network.partner(), network.partner()
    for _ in range(3):
        leg = a.refer(b)
        b.act(leg["id"], "acknowledge")
    everything, _ = read_all(b, limit=500)
    ids = [e["id"] for e in everything]
    assert len(ids) == len(set(ids)) == 6
    # Start from each intermediate cursor with pages of one: the rest comes out exactly.
    cursor = "0"
    for index in range(len(ids)):
        rest, _ = read_all(b, after=cursor, limit=1)
        assert [e["id"] for e in rest] == ids[index:]
        cursor = b.get(f"/api/v1/events?after={cursor}&limit=1").get_json()["next_cursor"]


def test_coordinators_see_every_leg_without_personal_data(network: Network) -> None:
    a, b = network.partner(), network.partner()
    coordinator = network.partner(kind="coordination")
    leg = a.refer(b)
    events, _ = read_all(coordinator, limit=500)
    mine = [e for e in events if e["subject"] == f"referrals/{leg['id']}"]
    assert [e["type"] for e in mine] == ["referral.sent"]
    participant = mine[0]["data"]["referral"]["participant"]
    assert participant["redacted"] is True
    assert "given_name" not in participant and "id" not in participant
    assert participant["reference"].startswith("P-")
    assert mine[0]["data"]["referral"]["reason_for_referral"] is None
