"""The shared checklist of a leg (docs/design.md §12), through the API: default items for
settlement and employment legs, either party of an open leg changes an item with its own
scope, each change an event carrying codes only, notes withheld from an employer without the
details, a closed leg's checklist kept as it was."""

from __future__ import annotations

from hub.referrals.checklists import DEFAULT_ITEMS, ITEM_CODES
from tests.helpers import Network


def items(body: dict) -> dict[str, dict]:
    return {item["code"]: item for item in body["items"]}


def test_either_party_ticks_items_and_each_change_is_an_event(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner", region="01")
    leg = sender.refer(receiver, pathway="settlement")
    listed = sender.get(f"/api/v1/referrals/{leg['id']}/checklist")
    assert listed.status_code == 200
    found = items(listed.get_json())
    assert list(found) == list(DEFAULT_ITEMS["settlement"])
    assert "employer_contact" not in found
    assert {i["status"] for i in found.values()} == {"todo"}
    assert (found["lease_termination"]["owner"], found["housing"]["owner"]) == (
        "sender", "receiver")

    done = sender.call("PUT", f"/api/v1/referrals/{leg['id']}/checklist/lease_termination",
                       json={"status": "done", "note": "Avis remis au propriétaire le 3"})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert items(done.get_json())["lease_termination"]["status"] == "done"
    moved = receiver.call("PUT", f"/api/v1/referrals/{leg['id']}/checklist/housing",
                          json={"status": "not_needed", "owner": "sender"})
    assert moved.status_code == 200
    seen = items(receiver.get(f"/api/v1/referrals/{leg['id']}/checklist").get_json())
    assert seen["housing"]["owner"] == "sender" and seen["housing"]["status"] == "not_needed"
    assert seen["lease_termination"]["note"] == "Avis remis au propriétaire le 3"

    history = receiver.get(f"/api/v1/referrals/{leg['id']}/events").get_json()["items"]
    updates = [e for e in history if e["type"] == "referral.checklist_updated"]
    assert [u["data"]["item"] for u in updates] == [
        {"code": "lease_termination", "owner": "sender", "status": "done"},
        {"code": "housing", "owner": "sender", "status": "not_needed"}]
    assert [e["sequence"] for e in history] == list(range(1, len(history) + 1))
    assert "propriétaire" not in repr(updates)  # the note is never in an event


def test_scopes_items_and_statuses_are_checked(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    narrow_sender = network.partner(scopes=["referrals:read", "referrals:respond"])
    leg = sender.refer(receiver)
    path = f"/api/v1/referrals/{leg['id']}/checklist"
    unknown = sender.call("PUT", f"{path}/jetpack", json={"status": "done"})
    assert unknown.status_code == 422 and "item" in unknown.get_json()["errors"]
    bad = sender.call("PUT", f"{path}/housing", json={"status": "finished"})
    assert bad.status_code == 422 and "status" in bad.get_json()["errors"]
    assert bad.mimetype == "application/problem+json"
    # A token with neither referrals:write nor referrals:respond.
    reader_only = receiver.fetch_token("referrals:read").get_json()["access_token"]
    refused = receiver.call("PUT", f"{path}/housing", json={"status": "done"},
                            token=reader_only)
    assert refused.status_code == 403
    assert "referrals:write or referrals:respond" in refused.get_json()["detail"]
    # An organization that is no party gets 404, whatever its scopes.
    assert narrow_sender.call("PUT", f"{path}/housing", json={"status": "done"}
                              ).status_code == 404


def test_a_closed_leg_keeps_its_checklist(network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    leg = sender.refer(receiver)
    assert sender.act(leg["id"], "cancel").status_code == 200
    refused = receiver.call("PUT", f"/api/v1/referrals/{leg['id']}/checklist/housing",
                            json={"status": "done"})
    assert refused.status_code == 409
    assert refused.get_json()["referral_status"] == "cancelled"
    assert "open leg" in refused.get_json()["detail"]


def test_an_employer_ticks_items_but_reads_no_note(network: Network) -> None:
    sender, employer = network.partner(), network.partner(kind="employer")
    leg = sender.refer(employer)
    assert list(items(sender.get(f"/api/v1/referrals/{leg['id']}/checklist").get_json())
                ) == list(ITEM_CODES)
    sender.call("PUT", f"/api/v1/referrals/{leg['id']}/checklist/housing",
                json={"status": "todo", "note": "Chez la cousine, rue des Érables"})
    answer = employer.call("PUT", f"/api/v1/referrals/{leg['id']}/checklist/employer_contact",
                           json={"status": "done"})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["withheld"] == ["checklist.notes"]
    assert items(body)["housing"]["note"] is None
    assert "Érables" not in employer.get(f"/api/v1/referrals/{leg['id']}/checklist"
                                         ).get_data(as_text=True)
    mine = sender.get(f"/api/v1/referrals/{leg['id']}/checklist").get_json()
    assert mine["withheld"] == [] and items(mine)["housing"]["note"].endswith("Érables")


def test_other_pathways_start_empty_and_items_can_be_added(network: Network) -> None:
    sender, agency = network.partner(), network.partner(kind="entrepreneurship_agency")
    leg = sender.refer(agency, pathway="entrepreneurship", stage="exploration")
    path = f"/api/v1/referrals/{leg['id']}/checklist"
    assert sender.get(path).get_json()["items"] == []
    added = sender.call("PUT", f"{path}/francization", json={"status": "todo"})
    assert added.status_code == 200
    assert items(added.get_json())["francization"]["owner"] == "receiver"
