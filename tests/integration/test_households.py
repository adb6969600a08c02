"""Households (docs/design.md §12) through the API: participants of one organization linked,
one household each at most; the same referral sent for every member, one leg each under that
member's own consent, the others refused; a member's leg shows its sender the others' open
legs; reports count households beside participants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from hub.accounts.callers import Caller
from hub.referrals import households
from tests.helpers import Network, second_during_first


def test_linking_rules(network: Network) -> None:
    counsellor, other = network.partner(), network.partner()
    amina, karim, lina = (counsellor.register_participant()["id"] for _ in range(3))
    stranger = other.register_participant()["id"]
    created = counsellor.post("/api/v1/households", {"participant_ids": [amina, karim]})
    assert created.status_code == 201
    household = created.get_json()
    assert sorted(household["participant_ids"]) == sorted([amina, karim])
    assert counsellor.get(f"/api/v1/households/{household['id']}").get_json() == household
    assert other.get(f"/api/v1/households/{household['id']}").status_code == 404

    again = counsellor.post("/api/v1/households", {"participant_ids": [karim, lina]})
    assert again.status_code == 409
    assert again.get_json()["participant_ids"] == [karim]
    assert "one household at most" in again.get_json()["detail"]
    foreign = counsellor.post("/api/v1/households", {"participant_ids": [lina, stranger]})
    assert foreign.status_code == 422 and stranger in foreign.get_json()["errors"][
        "participant_ids"][0]
    alone = counsellor.post("/api/v1/households", {"participant_ids": [lina]})
    assert alone.status_code == 422


def test_one_referral_for_the_household_one_leg_per_consenting_member(
        network: Network) -> None:
    counsellor = network.partner()
    receiver = network.partner(kind="regional_partner", region="01")
    amina, karim, lina = (counsellor.register_participant()["id"] for _ in range(3))
    household = counsellor.post("/api/v1/households",
                                {"participant_ids": [amina, karim, lina]}).get_json()
    counsellor.grant_consent(amina, receiver)
    counsellor.grant_consent(karim, receiver)  # Lina's consent does not cover the receiver

    response = counsellor.post(f"/api/v1/households/{household['id']}/referrals", {
        "to_organization_id": receiver.organization_id, "pathway": "settlement",
        "priority": "urgent", "needed_by": "2099-07-02"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert sorted(leg["participant"]["id"] for leg in body["items"]) == sorted([amina, karim])
    assert [r["participant_id"] for r in body["refused"]] == [lina]
    assert "POST /api/v1/participants" in body["refused"][0]["detail"]
    assert all(leg["needed_by"] == "2099-07-02" for leg in body["items"])

    # Each leg shows its sender the others' open legs; the receiver is not shown them.
    first, second = body["items"]
    shown = counsellor.get(f"/api/v1/referrals/{first['id']}").get_json()
    assert [leg["id"] for leg in shown["household_legs"]] == [second["id"]]
    assert "household_legs" not in receiver.get(f"/api/v1/referrals/{first['id']}").get_json()
    # Cancelled, the other leg is no longer shown.
    assert counsellor.act(second["id"], "cancel").status_code == 200
    assert counsellor.get(f"/api/v1/referrals/{first['id']}").get_json()[
        "household_legs"] == []


def test_nobody_covered_is_a_consent_refusal(network: Network) -> None:
    counsellor, receiver = network.partner(), network.partner(kind="regional_partner")
    amina, karim = (counsellor.register_participant()["id"] for _ in range(2))
    household = counsellor.post("/api/v1/households",
                                {"participant_ids": [amina, karim]}).get_json()
    refused = counsellor.post(f"/api/v1/households/{household['id']}/referrals", {
        "to_organization_id": receiver.organization_id, "pathway": "settlement"})
    assert refused.status_code == 409
    assert refused.get_json()["type"].endswith("consent_required")
    assert counsellor.get("/api/v1/referrals?direction=outbound").get_json()["items"] == []


def test_reports_count_households(network: Network) -> None:
    counsellor, receiver = network.partner(), network.partner(kind="regional_partner")
    # Seven people: two couples and three alone make five households (five: the smallest
    # count a report shows, HUB_REPORT_MIN_CELL).
    people = [counsellor.register_participant()["id"] for _ in range(7)]
    counsellor.post("/api/v1/households", {"participant_ids": people[:2]})
    counsellor.post("/api/v1/households", {"participant_ids": people[2:4]})
    for person in people:
        counsellor.grant_consent(person, receiver)
        counsellor.grant_consent(person, counsellor, purpose="outcome_reporting")
        counsellor.refer(receiver, person, consent=False)
    start = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    end = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    report = counsellor.get(f"/api/v1/reports/funder?from={start}&to={end}")
    assert report.status_code == 200, report.get_data(as_text=True)
    assert report.get_json()["participants_counted"] == 7
    assert report.get_json()["households_counted"] == 5


def test_members_added_and_removed_until_the_household_dissolves(network: Network) -> None:
    counsellor, other, receiver = (network.partner(), network.partner(),
                                   network.partner(kind="regional_partner"))
    amina, karim, lina, sami = (counsellor.register_participant()["id"] for _ in range(4))
    stranger = other.register_participant()["id"]
    household = counsellor.post("/api/v1/households",
                                {"participant_ids": [amina, karim]}).get_json()
    members = f"/api/v1/households/{household['id']}/members"

    added = counsellor.call("PUT", f"{members}/{lina}")
    assert added.status_code == 200, added.get_data(as_text=True)
    assert sorted(added.get_json()["participant_ids"]) == sorted([amina, karim, lina])
    assert counsellor.call("PUT", f"{members}/{lina}").get_json() == added.get_json()
    assert counsellor.call("PUT", f"{members}/{stranger}").status_code == 422
    assert other.call("PUT", f"{members}/{stranger}").status_code == 404
    counsellor.post("/api/v1/households", {"participant_ids": [sami, counsellor.
                                                               register_participant()["id"]]})
    taken = counsellor.call("PUT", f"{members}/{sami}")
    assert taken.status_code == 409 and taken.get_json()["participant_ids"] == [sami]

    # Karim's leg shows Amina's while both are members, not once he left.
    legs = [counsellor.refer(receiver, person)["id"] for person in (amina, karim)]
    assert [leg["id"] for leg in counsellor.get(f"/api/v1/referrals/{legs[1]}").get_json()[
        "household_legs"]] == [legs[0]]
    assert counsellor.call("DELETE", f"{members}/{karim}").status_code == 204
    assert counsellor.get(f"/api/v1/referrals/{legs[1]}").get_json()["household_legs"] == []
    assert sorted(counsellor.get(f"/api/v1/households/{household['id']}").get_json()[
        "participant_ids"]) == sorted([amina, lina])
    gone = counsellor.call("DELETE", f"{members}/{karim}")
    assert gone.status_code == 404 and gone.headers["Content-Type"].startswith(
        "application/problem+json")

    # Two left, one leaves: nobody is linked any more, and each can join another household.
    assert counsellor.call("DELETE", f"{members}/{lina}").status_code == 204
    assert counsellor.get(f"/api/v1/households/{household['id']}").status_code == 404
    again = counsellor.post("/api/v1/households", {"participant_ids": [amina, karim]})
    assert again.status_code == 201, again.get_data(as_text=True)


def test_two_removals_at_once_never_leave_a_household_of_one(
        app: Flask, network: Network) -> None:
    """Two of three members taken out at the same moment: the second removal counts the
    members the first left, so the household dissolves instead of keeping one person."""
    counsellor = network.partner()
    amina, karim, lina = (counsellor.register_participant()["id"] for _ in range(3))
    household = counsellor.post("/api/v1/households",
                                {"participant_ids": [amina, karim, lina]}).get_json()
    household_id = uuid.UUID(household["id"])
    caller = Caller(organization_id=uuid.UUID(counsellor.organization_id), actor="test")

    def remove_amina(session: Session) -> None:
        assert households.remove_member(session, caller, household_id,
                                        uuid.UUID(amina)) is not None  # two left, for now

    assert second_during_first(app, remove_amina, lambda session: households.remove_member(
        session, caller, household_id, uuid.UUID(karim))) == []
    assert counsellor.get(f"/api/v1/households/{household_id}").status_code == 404


def test_a_person_put_in_two_households_at_once_is_refused_by_the_second(
        app: Flask, network: Network) -> None:
    """One request links Amina into a new household while another adds her to an existing
    one: the second, which found her in none, gets the 409 that says she is in one."""
    counsellor = network.partner()
    amina, karim, lina, sami = (counsellor.register_participant()["id"] for _ in range(4))
    existing = uuid.UUID(counsellor.post("/api/v1/households", {
        "participant_ids": [lina, sami]}).get_json()["id"])
    caller = Caller(organization_id=uuid.UUID(counsellor.organization_id), actor="test")
    refusals = second_during_first(
        app, lambda session: households.create_household(
            session, caller, [uuid.UUID(amina), uuid.UUID(karim)]),
        lambda session: households.add_members(session, caller, existing, [uuid.UUID(amina)]))
    assert [type(error) for error in refusals] == [households.AlreadyInHousehold]
    assert refusals[0].members() == {"participant_ids": [amina]}  # type: ignore[attr-defined]
    assert sorted(counsellor.get(f"/api/v1/households/{existing}").get_json()[
        "participant_ids"]) == sorted([lina, sami])


# One step on four people: link two, add one to a household, take one out of it (households
# are named by the order they were created in; one not created yet is skipped).
STEPS = st.lists(st.one_of(
    st.tuples(st.just("create"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("add"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("remove"), st.integers(0, 2), st.integers(0, 3))), min_size=1, max_size=8)


@pytest.mark.timeout(300)
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_any_edits_keep_one_household_per_person_and_two_people_per_household(
        network: Network, steps: list[tuple[str, int, int]]) -> None:
    """Whatever the order of creations, additions and removals, the API agrees with a plain
    model: a person is in one household at most, and a household of fewer than two people no
    longer exists."""
    counsellor = network.partner()
    people = [counsellor.register_participant()["id"] for _ in range(4)]
    model: dict[str, set[str]] = {}  # household id -> members; dissolved ones removed
    created: list[str] = []

    def household_of(person: str) -> str | None:
        return next((h for h, members in model.items() if person in members), None)

    for step, first, second in steps:
        if step == "create":
            chosen = [people[first], people[second]]
            response = counsellor.post("/api/v1/households", {"participant_ids": chosen})
            if first == second:
                expected = 422
            elif any(household_of(p) for p in chosen):
                expected = 409
            else:
                expected = 201
                model[response.get_json()["id"]] = set(chosen)
                created.append(response.get_json()["id"])
        else:
            if first >= len(created):
                continue
            household, person = created[first], people[second]
            path = f"/api/v1/households/{household}/members/{person}"
            if step == "add":
                response = counsellor.call("PUT", path)
                elsewhere = household_of(person) not in (None, household)
                expected = 404 if household not in model else 409 if elsewhere else 200
                if expected == 200:
                    model[household].add(person)
            else:
                response = counsellor.call("DELETE", path)
                present = household in model and person in model[household]
                expected = 204 if present else 404
                if present:
                    model[household].discard(person)
                    if len(model[household]) < 2:
                        del model[household]
        assert response.status_code == expected, (step, response.get_data(as_text=True))
        for household in created:
            shown = counsellor.get(f"/api/v1/households/{household}")
            if household in model:
                assert set(shown.get_json()["participant_ids"]) == model[household]
            else:
                assert shown.status_code == 404
