"""Each organization's event feed: its own events, oldest first, resumable from any cursor."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.referrals.handoffs import send_referral
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
    # A also recorded the participants' consents: those events are A's alone.
    consent_events = [e for e in a_events if e["subject"].startswith("consents/")]
    assert [e["type"] for e in consent_events] == ["consent.granted"] * 2
    a_events = [e for e in a_events if e not in consent_events]
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


# PostgreSQL only: SQLite's writers take turns, so its events cannot commit out of order.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_event_committed_late_is_not_skipped(app: Flask, network: Network) -> None:
    """A transaction that appended first but commits last: readers wait for it, then get it.

    This is the case that breaks a naive `position > cursor` feed on PostgreSQL.
    """
    assert app.extensions["hub_db"][0].dialect.name == "postgresql"
    a, b = network.partner(), network.partner()
    participant_id = uuid.UUID(a.register_participant()["id"])
    a.grant_consent(str(participant_id), b)
    _, cursor = read_all(b)

    engine = app.extensions["hub_db"][0]
    with Session(engine) as slow:  # appends an event, then stays open
        caller = Caller(uuid.UUID(a.organization_id), "test:slow")
        late = send_referral(slow, caller, participant_id=participant_id,
                             to_organization_id=uuid.UUID(b.organization_id),
                             pathway="employment")
        late_id = late.id
        early = a.refer(b)  # commits first (another participant: no lock to wait for)

        page = b.get(f"/api/v1/events?after={cursor}").get_json()
        assert page["items"] == [], "nothing may be read past a transaction still running"
        assert page["next_cursor"] == cursor
        slow.commit()

    items, _ = read_all(b, after=cursor)
    assert [e["subject"] for e in items] == [f"referrals/{late_id}",
                                             f"referrals/{early['id']}"]
