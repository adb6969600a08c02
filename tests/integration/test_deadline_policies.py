"""Deadline policies (docs/design.md §6): each leg's deadlines come from the policy in force for its
receiver, pathway and priority, in Québec business days; policies are data, kept by hub
administrators through the API (scope hub:admin) and the CLI.

Rules set on the shared test database are always scoped to this test's own organizations, so
other tests keep the hub's defaults.  Rules for any organization (per pathway, or hub-wide)
are tried on a database of their own (`own_hub`), and the CLI on a temporary SQLite file.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from hub import create_app
from hub.config import Settings
from hub.db import db, utcnow
from hub.followups import deadlines, policies
from hub.followups.policies import DeadlinePolicy
from hub.ops import upgrade_database
from hub.referrals.legs import Referral
from tests.helpers import Network, Partner
from tests.hub_cli import run_hub

PROBLEM_JSON = "application/problem+json"
TORONTO = ZoneInfo("America/Toronto")
POLICIES = "/api/v1/deadline-policies"


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def business_days_after(start: str, days: int) -> datetime:
    return deadlines.add_business_days(moment(start), days)


def stored_expire_by(app: Flask, leg_id: str) -> datetime:
    with app.app_context(), db.job_session() as session:
        leg = session.get(Referral, uuid.UUID(leg_id))
        assert leg is not None and leg.expire_by is not None
        return leg.expire_by


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status
    return body


def set_rule(admin: Partner, receiver: Partner | None, check: str, priority: str, days: int,
             pathway: str | None = None) -> dict[str, Any]:
    body = {"organization_id": receiver.organization_id if receiver else None,
            "pathway": pathway, "check": check, "priority": priority, "business_days": days}
    response = admin.call("PUT", POLICIES, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def assert_acknowledge_within(app: Flask, leg: dict[str, Any], days: int) -> None:
    """The leg is due `days` business days after it was sent, and expires at twice that."""
    assert moment(leg["deadlines"]["acknowledge_by"]) == business_days_after(
        leg["created_at"], days)
    assert stored_expire_by(app, leg["id"]) == business_days_after(leg["created_at"], 2 * days)


@pytest.fixture
def admin(network: Network) -> Partner:
    return network.partner(kind="coordination", scopes=[policies.ADMIN_SCOPE])


# --- the leg's deadlines follow the policy in force ------------------------------------------

def test_the_hub_defaults_apply_without_rules(app: Flask, network: Network) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    assert_acknowledge_within(app, sender.refer(receiver), 3)
    urgent = sender.refer(receiver, priority="urgent")
    assert_acknowledge_within(app, urgent, 1)  # urgent legs are tighter

    acknowledged = receiver.act(urgent["id"], "acknowledge").get_json()
    assert moment(acknowledged["deadlines"]["decide_by"]) == business_days_after(
        acknowledged["updated_at"], 2)
    accepted = receiver.act(urgent["id"], "accept").get_json()
    assert moment(accepted["deadlines"]["start_by"]) == business_days_after(
        accepted["updated_at"], 3)


def test_an_organization_rule_overrides_the_defaults_for_that_receiver_only(
        app: Flask, network: Network, admin: Partner) -> None:
    sender = network.partner()
    slow, other = network.partner(kind="regional_partner"), network.partner()
    set_rule(admin, slow, "acknowledge", "routine", 7)

    assert_acknowledge_within(app, sender.refer(slow), 7)
    assert_acknowledge_within(app, sender.refer(slow, pathway="training"), 7)  # any pathway
    assert_acknowledge_within(app, sender.refer(other), 3)
    assert_acknowledge_within(app, sender.refer(slow, priority="urgent"), 1)  # not its priority


def test_an_organization_and_pathway_rule_beats_the_organization_rule(
        app: Flask, network: Network, admin: Partner) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    set_rule(admin, receiver, "acknowledge", "routine", 7)
    set_rule(admin, receiver, "acknowledge", "routine", 2, pathway="training")

    assert_acknowledge_within(app, sender.refer(receiver, pathway="training"), 2)
    assert_acknowledge_within(app, sender.refer(receiver, pathway="employment"), 7)


def test_urgent_rules_stay_apart_from_routine_ones(
        app: Flask, network: Network, admin: Partner) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    set_rule(admin, receiver, "acknowledge", "routine", 5)
    set_rule(admin, receiver, "acknowledge", "urgent", 2)

    assert_acknowledge_within(app, sender.refer(receiver), 5)
    assert_acknowledge_within(app, sender.refer(receiver, priority="urgent"), 2)


def test_decide_and_start_deadlines_follow_the_rules_when_acknowledged_and_accepted(
        network: Network, admin: Partner) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    set_rule(admin, receiver, "decide", "routine", 4)
    set_rule(admin, receiver, "start", "routine", 12)
    set_rule(admin, receiver, "start", "routine", 6, pathway="settlement")

    leg = sender.refer(receiver)
    assert leg["deadlines"]["decide_by"] is None and leg["deadlines"]["start_by"] is None
    acknowledged = receiver.act(leg["id"], "acknowledge").get_json()
    assert moment(acknowledged["deadlines"]["decide_by"]) == business_days_after(
        acknowledged["updated_at"], 4)
    accepted = receiver.act(leg["id"], "accept").get_json()
    assert moment(accepted["deadlines"]["start_by"]) == business_days_after(
        accepted["updated_at"], 12)

    settlement = sender.refer(receiver, pathway="settlement")
    receiver.act(settlement["id"], "acknowledge")
    accepted = receiver.act(settlement["id"], "accept").get_json()
    assert moment(accepted["deadlines"]["start_by"]) == business_days_after(
        accepted["updated_at"], 6)


def test_a_rule_applies_to_legs_from_now_on_and_its_removal_restores_the_default(
        app: Flask, network: Network, admin: Partner) -> None:
    sender, receiver = network.partner(), network.partner(kind="regional_partner")
    rule = set_rule(admin, receiver, "acknowledge", "routine", 9)
    before = sender.refer(receiver)
    replaced = set_rule(admin, receiver, "acknowledge", "routine", 6)
    assert replaced["id"] == rule["id"] and replaced["business_days"] == 6
    assert replaced["updated_by"].startswith("client:")
    assert_acknowledge_within(app, sender.refer(receiver), 6)
    assert_acknowledge_within(app, before, 9)  # deadlines already set stay

    assert admin.call("DELETE", f"{POLICIES}/{rule['id']}").status_code == 204
    assert_problem(admin.call("DELETE", f"{POLICIES}/{rule['id']}"), 404)
    assert_problem(admin.get(f"{POLICIES}/{rule['id']}"), 404)
    assert_acknowledge_within(app, sender.refer(receiver), 3)


# --- rules for any organization: on a database of their own --------------------------------

@pytest.fixture(scope="module")
def own_hub(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app on a database of its own, same backend as `database_url`: hub-wide and
    per-pathway rules apply to every organization, so they must not reach other tests."""
    admin_engine = None
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('policies') / 'hub.sqlite3'}"
    else:
        admin_url = os.environ["HUB_TEST_POSTGRES_URL"]
        name = f"hub_test_policies_{secrets.token_hex(4)}"
        admin_engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade_database(url)
    application = create_app(Settings(env="test", database_url=url,
                                      secret_key="test-secret-key-" + "x" * 32))
    application.config["TESTING"] = True
    yield application
    application.extensions["hub_db"][0].dispose()
    if admin_engine is not None:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def test_a_pathway_rule_applies_to_every_organization_on_that_pathway(own_hub: Flask) -> None:
    network = Network(own_hub)
    admin = network.partner(kind="coordination", scopes=[policies.ADMIN_SCOPE])
    sender = network.partner()
    first, second = network.partner(kind="regional_partner"), network.partner()
    set_rule(admin, None, "acknowledge", "routine", 8, pathway="training")
    set_rule(admin, None, "acknowledge", "routine", 4)  # hub-wide: below any pathway rule

    assert_acknowledge_within(own_hub, sender.refer(first, pathway="training"), 8)
    assert_acknowledge_within(own_hub, sender.refer(second, pathway="training"), 8)
    assert_acknowledge_within(own_hub, sender.refer(second, pathway="employment"), 4)
    assert_acknowledge_within(own_hub, sender.refer(second, priority="urgent"), 1)

    # An organization's own rule beats the pathway rule, for that organization only.
    set_rule(admin, first, "acknowledge", "routine", 5)
    assert_acknowledge_within(own_hub, sender.refer(first, pathway="training"), 5)
    assert_acknowledge_within(own_hub, sender.refer(second, pathway="training"), 8)

    effective = admin.get(f"{POLICIES}/effective?organization_id={second.organization_id}"
                          "&pathway=training")
    assert effective.status_code == 200, effective.get_data(as_text=True)
    checks = effective.get_json()["checks"]
    assert checks["acknowledge"]["routine"] == {"business_days": 8, "source": "pathway"}
    assert checks["acknowledge"]["urgent"] == {"business_days": 1, "source": "default"}
    assert checks["decide"]["routine"] == {"business_days": 5, "source": "default"}
    assert effective.get_json()["time_zone"] == "America/Toronto"
    hub_view = admin.get(f"{POLICIES}/effective").get_json()["checks"]
    assert hub_view["acknowledge"]["routine"] == {"business_days": 4, "source": "hub"}


def test_one_rule_per_scope_even_for_any_organization_or_pathway(own_hub: Flask) -> None:
    """The four unique indexes: NULL ("any") does not let a scope hold two rules."""
    organization_id = uuid.UUID(Network(own_hub).partner().organization_id)
    for scope in [(organization_id, "training"), (organization_id, None), (None, "training"),
                  (None, None)]:
        with own_hub.app_context():
            session = own_hub.extensions["hub_db"][1]()
            try:
                for _ in range(2):
                    session.add(DeadlinePolicy(
                        organization_id=scope[0], pathway=scope[1], check="start",
                        priority="urgent", business_days=2, updated_at=utcnow(),
                        updated_by="test"))
                with pytest.raises(IntegrityError):
                    session.flush()
            finally:
                session.rollback()
                session.close()
    with own_hub.app_context():  # different scopes of one check and priority live side by side
        session = own_hub.extensions["hub_db"][1]()
        try:
            for scope in [(organization_id, "training"), (organization_id, None),
                          (None, "training"), (None, None), (organization_id, "employment")]:
                session.add(DeadlinePolicy(
                    organization_id=scope[0], pathway=scope[1], check="start",
                    priority="urgent", business_days=2, updated_at=utcnow(),
                    updated_by="test"))
            session.flush()
        finally:
            session.rollback()
            session.close()


# --- the calendar: Québec holidays, in America/Toronto ---------------------------------------

@pytest.mark.parametrize(("sent", "days", "due"), [
    # Saint-Jean-Baptiste, Wednesday June 24, 2026.
    (datetime(2026, 6, 23, 10, 0, tzinfo=TORONTO), 1, datetime(2026, 6, 25, 10, 0, tzinfo=TORONTO)),
    # Christmas, Friday December 25, 2026 (Boxing Day is no holiday in Québec).
    (datetime(2026, 12, 24, 15, 30, tzinfo=TORONTO), 1,
     datetime(2026, 12, 28, 15, 30, tzinfo=TORONTO)),
    # Christmas 2027 falls on a Saturday: observed Monday the 27th.
    (datetime(2027, 12, 24, 9, 0, tzinfo=TORONTO), 1, datetime(2027, 12, 28, 9, 0, tzinfo=TORONTO)),
    # Saint-Jean-Baptiste then Canada Day, both Thursdays, in 2027.
    (datetime(2027, 6, 23, 9, 0, tzinfo=TORONTO), 5, datetime(2027, 7, 2, 9, 0, tzinfo=TORONTO)),
    # Friday 22:00 in Québec is Saturday in UTC: counted from the Québec Friday.
    (datetime(2026, 6, 19, 22, 0, tzinfo=TORONTO), 1, datetime(2026, 6, 22, 22, 0, tzinfo=TORONTO)),
])
def test_business_days_skip_weekends_and_quebec_holidays(sent: datetime, days: int,
                                                         due: datetime) -> None:
    sent_utc = sent.astimezone(ZoneInfo("UTC"))
    assert deadlines.deadline("acknowledge", "routine", sent_utc, business_days=days) == due
    assert deadlines.deadline("acknowledge", "routine", sent_utc, business_days=days,
                              time_zone="America/Toronto").tzinfo == sent_utc.tzinfo


def test_defaults_keep_their_old_signature() -> None:
    sent = datetime(2026, 6, 23, 10, 0, tzinfo=TORONTO)
    assert deadlines.deadline("acknowledge", "urgent", sent) == datetime(
        2026, 6, 25, 10, 0, tzinfo=TORONTO)
    assert deadlines.deadline("acknowledge", "urgent", sent, times=2) == datetime(
        2026, 6, 26, 10, 0, tzinfo=TORONTO)


def test_a_leg_sent_before_a_holiday_is_due_after_it_by_the_rule_in_force(
        app: Flask, network: Network, admin: Partner) -> None:
    receiver = network.partner(kind="regional_partner")
    set_rule(admin, receiver, "decide", "urgent", 2, pathway="employment")
    sent = datetime(2026, 12, 24, 11, 0, tzinfo=TORONTO)  # Thursday before Christmas
    with app.app_context(), db.job_session() as session:
        due = policies.deadline(session, organization_id=uuid.UUID(receiver.organization_id),
                                pathway="employment", check="decide", priority="urgent",
                                start=sent)
        default = policies.deadline(session, organization_id=uuid.UUID(receiver.organization_id),
                                    pathway="training", check="decide", priority="urgent",
                                    start=sent)
    assert due == datetime(2026, 12, 29, 11, 0, tzinfo=TORONTO)  # Mon 28, Tue 29
    assert default == due  # the urgent default is 2 days too


# --- the API: hub administrators only, codes checked ----------------------------------------

def test_the_api_refuses_callers_without_hub_admin(network: Network, admin: Partner) -> None:
    receiver = network.partner(kind="regional_partner")
    rule = set_rule(admin, receiver, "acknowledge", "routine", 4)
    partner = network.partner()  # every partner scope, but not hub:admin
    coordinator = network.partner(kind="coordination", scopes=["network:monitor"])
    body = {"organization_id": receiver.organization_id, "check": "acknowledge",
            "priority": "routine", "business_days": 1}
    for caller in (partner, coordinator):
        for method, path, json_body in [
            ("GET", POLICIES, None), ("PUT", POLICIES, body),
            ("GET", f"{POLICIES}/effective", None), ("GET", f"{POLICIES}/{rule['id']}", None),
            ("DELETE", f"{POLICIES}/{rule['id']}", None),
        ]:
            problem = assert_problem(caller.call(method, path, json=json_body), 403)
            assert "hub:admin" in problem["detail"]
    anonymous = partner.app.test_client().get(POLICIES)
    assert_problem(anonymous, 401)
    assert admin.get(f"{POLICIES}/{rule['id']}").get_json()["business_days"] == 4  # unchanged


def test_hub_admin_is_only_for_coordination_bodies(network: Network) -> None:
    with pytest.raises(ValueError, match="coordination"):
        network.partner(kind="community", scopes=[policies.ADMIN_SCOPE])


@pytest.mark.parametrize(("change", "field"), [
    ({"check": "answer"}, "check"),
    ({"priority": "critical"}, "priority"),
    ({"pathway": "bakery"}, "pathway"),
    ({"business_days": 61}, "business_days"),
    ({"business_days": -1}, "business_days"),
    ({"business_days": "3"}, "business_days"),
    ({"business_days": 2.5}, "business_days"),
    ({"organization_id": "not-an-id"}, "organization_id"),
    ({"organization_id": str(uuid.uuid4())}, "organization_id"),  # no such organization
    ({"days": 3}, "days"),  # unknown field
])
def test_the_api_checks_codes(network: Network, admin: Partner, change: dict[str, Any],
                              field: str) -> None:
    receiver = network.partner(kind="regional_partner")
    body = {"organization_id": receiver.organization_id, "check": "acknowledge",
            "priority": "routine", "business_days": 3, **change}
    problem = assert_problem(admin.call("PUT", POLICIES, json=body), 422)
    assert field in problem["errors"], problem
    assert admin.get(f"{POLICIES}?organization_id={receiver.organization_id}"
                     ).get_json()["items"] == []


def test_no_rule_for_a_coordination_body(admin: Partner) -> None:
    problem = assert_problem(admin.call("PUT", POLICIES, json={
        "organization_id": admin.organization_id, "check": "start", "priority": "routine",
        "business_days": 3}), 422)
    assert "organization_id" in problem["errors"]


def test_listing_rules_by_organization(network: Network, admin: Partner) -> None:
    receiver, other = network.partner(kind="regional_partner"), network.partner()
    mine = [set_rule(admin, receiver, check, "routine", days)
            for check, days in [("acknowledge", 2), ("decide", 4), ("start", 8)]]
    set_rule(admin, other, "start", "urgent", 1)

    listed = admin.get(f"{POLICIES}?organization_id={receiver.organization_id}&limit=2")
    assert listed.status_code == 200, listed.get_data(as_text=True)
    first = listed.get_json()
    second = admin.get(f"{POLICIES}?organization_id={receiver.organization_id}&limit=2"
                       f"&cursor={first['next_cursor']}").get_json()
    assert second["next_cursor"] is None
    items = first["items"] + second["items"]
    assert sorted(items, key=lambda r: r["id"]) == sorted(mine, key=lambda r: r["id"])
    assert {r["source"] for r in items} == {"organization"}
    assert_problem(admin.get(f"{POLICIES}?organization_id=nope"), 422)
    effective = admin.get(f"{POLICIES}/effective?pathway=bakery")
    assert_problem(effective, 422)


# --- the hot path stays cheap --------------------------------------------------------------

def test_the_policy_lookup_is_cheap(app: Flask, network: Network, admin: Partner) -> None:
    receiver = network.partner(kind="regional_partner")
    set_rule(admin, receiver, "acknowledge", "urgent", 1, pathway="training")
    set_rule(admin, receiver, "acknowledge", "urgent", 2)
    organization_id = uuid.UUID(receiver.organization_id)
    with app.app_context(), db.job_session() as session:
        timings = []
        for _ in range(300):
            began = time.perf_counter()
            days = policies.business_days(session, organization_id=organization_id,
                                          pathway="training", check="acknowledge",
                                          priority="urgent")
            timings.append(time.perf_counter() - began)
        assert days == 1
    median = statistics.median(timings) * 1000
    print(f"\npolicy lookup on {app.extensions['hub_db'][0].dialect.name}: median "
          f"{median:.3f} ms, p95 {sorted(timings)[284] * 1000:.3f} ms")
    assert median < 5, f"{median:.3f} ms per lookup"


# --- the CLI -------------------------------------------------------------------------------

def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_hub(env, *args)


def test_the_cli_sets_lists_and_removes_rules(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    assert _hub(env, "db", "upgrade").returncode == 0
    created = _hub(env, "org", "create", "--name", "Carrefour jeunesse-emploi", "--kind",
                   "community", "--region", "06")
    assert created.returncode == 0, created.stderr
    organization_id = json.loads(created.stdout)["id"]

    hub_wide = _hub(env, "deadlines", "set", "--check", "acknowledge", "--priority", "urgent",
                    "--days", "2")
    assert hub_wide.returncode == 0, hub_wide.stderr
    assert json.loads(hub_wide.stdout)["source"] == "hub"
    own = _hub(env, "deadlines", "set", "--check", "acknowledge", "--priority", "urgent",
               "--days", "1", "--org", organization_id, "--pathway", "training")
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["updated_by"].startswith("cli")

    listed = [json.loads(line) for line in _hub(env, "deadlines", "list").stdout.splitlines()]
    assert [(r["organization_id"], r["pathway"], r["business_days"]) for r in listed] == [
        (None, None, 2), (organization_id, "training", 1)]
    only = _hub(env, "deadlines", "list", "--org", organization_id).stdout.splitlines()
    assert [json.loads(line)["business_days"] for line in only] == [1]

    app = create_app(Settings(env="test", database_url=url))

    def acknowledge_urgent(pathway: str) -> int:
        with app.app_context(), db.job_session() as session:
            return policies.business_days(session, organization_id=uuid.UUID(organization_id),
                                          pathway=pathway, check="acknowledge",
                                          priority="urgent")

    assert (acknowledge_urgent("training"), acknowledge_urgent("employment")) == (1, 2)
    removed = _hub(env, "deadlines", "remove", "--check", "acknowledge", "--priority", "urgent")
    assert removed.returncode == 0, removed.stderr
    again = _hub(env, "deadlines", "remove", "--check", "acknowledge", "--priority", "urgent")
    assert again.returncode == 2 and "No rule" in again.stderr
    assert (acknowledge_urgent("training"), acknowledge_urgent("employment")) == (1, 1)
    app.extensions["hub_db"][0].dispose()

    for bad in (["--days", "61"], ["--days", "2", "--check-typo"],
                ["--days", "2", "--pathway", "bakery"], ["--days", "2", "--org", "nope"],
                ["--days", "2", "--org", str(uuid.uuid4())]):
        refused = _hub(env, "deadlines", "set", "--check", "start", "--priority", "routine",
                       *bad)
        assert refused.returncode == 2, (bad, refused.stdout, refused.stderr)
    assert len(_hub(env, "deadlines", "list").stdout.splitlines()) == 1
