"""`hub demo`: a realistic network on an empty database, usable at once.

The first run of the first test is the `hub` console script itself, a real process; the other
runs go through click's runner in this process (tests/hub_cli.py), and the databases are made
by the migrations in process, as the shared test databases are (`hub db upgrade` runs them)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from hub import create_app
from hub.config import Settings
from hub.ops import upgrade_database
from tests.hub_cli import run_hub

HUB = str(Path(sys.executable).parent / "hub")


def test_demo_fills_an_empty_database_once_and_its_credentials_work(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    upgrade_database(url)
    result = subprocess.run([HUB, "demo"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    members = json.loads(result.stdout)["organizations"]
    kinds = {m["kind"] for m in members}
    assert {"community", "regional_partner", "entrepreneurship_agency",
            "cooperative_development", "coordination"} <= kinds

    app = create_app(Settings(env="test", database_url=url))
    client = app.test_client()
    community = members[0]
    basic = base64.b64encode(
        f"{community['client_id']}:{community['client_secret']}".encode()).decode()
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers={"Authorization": f"Basic {basic}"}).get_json()["access_token"]
    outbound = client.get("/api/v1/referrals?direction=outbound",
                          headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert {"accepted", "sent", "completed", "declined"} <= {leg["status"] for leg in outbound}
    matches = client.get("/api/v1/peer-matches",
                         headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert [(m["status"], m["peer"]) for m in matches] == [("proposed", None)]
    peers = client.get("/api/v1/peers?region=01",
                       headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert [p["municipality"] for p in peers] == ["Rimouski"]
    offers = client.get("/api/v1/opportunities?region=01",
                        headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert {o["municipality"] for o in offers} == {"Rimouski", "Rivière-du-Loup"}
    assert client.get("/api/v1/opportunities/follows", headers={
        "Authorization": f"Bearer {token}"}).get_json() == {"regions": ["01", "05"],
                                                             "daily_mail": True}

    again = run_hub(env, "demo")
    assert again.returncode == 2
    assert "empty" in again.stderr and "hub demo --reset" in again.stderr


def test_the_demo_has_history_for_the_coordinator_and_starts_again_with_reset(
        tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from hub import demo

    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_ENV": "development"}
    upgrade_database(url)
    made = run_hub(env, "demo")
    assert made.returncode == 0, made.stderr

    app = create_app(Settings(env="test", database_url=url))
    coordinator = app.test_client()
    email = next(e for _, e, _, role, _ in demo.DEMO_USERS if role == "coordinator")
    page = coordinator.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert coordinator.post("/login", data={"email": email, "password": demo.DEMO_PASSWORD,
                                            "csrf_token": token}).status_code == 302
    stalled = coordinator.get("/network/stalled").get_data(as_text=True)
    assert stalled.count('class="overdue"') >= 4  # open legs past their deadlines, as of now
    charts = coordinator.get("/network/charts?from=2026-01-01&to=2030-12-31")
    assert charts.status_code == 200
    assert "Place aux jeunes Bas-Saint-Laurent" in charts.get_data(as_text=True)

    engine = create_engine(url)
    with engine.connect() as connection:
        months = connection.execute(text(
            "SELECT count(DISTINCT strftime('%Y-%m', created_at)) FROM referrals")).scalar_one()
        statuses = set(connection.execute(text("SELECT status FROM referrals")).scalars())
    engine.dispose()
    assert months >= 4
    assert {"sent", "acknowledged", "accepted", "in_progress", "completed", "declined",
            "cancelled", "forwarded"} <= statuses

    reset = run_hub(env, "demo", "--reset")
    assert reset.returncode == 0, reset.stderr
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM organizations")).scalar_one() == len(
            demo.ORGANIZATIONS)
    engine.dispose()


def test_the_readme_lists_every_demo_user() -> None:
    from hub import demo

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for _, email, _, _, _ in demo.DEMO_USERS:
        assert f"| `{email}` |" in readme, email
