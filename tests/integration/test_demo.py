"""`hub demo`: a realistic network on an empty database, usable at once."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from hub import create_app
from hub.config import Settings

HUB = str(Path(sys.executable).parent / "hub")


def test_demo_fills_an_empty_database_once_and_its_credentials_work(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    subprocess.run([HUB, "db", "upgrade"], env=env, check=True, capture_output=True)
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
    assert {leg["status"] for leg in outbound} == {"accepted", "sent"}
    matches = client.get("/api/v1/peer-matches",
                         headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert [(m["status"], m["peer"]) for m in matches] == [("proposed", None)]
    peers = client.get("/api/v1/peers?region=01",
                       headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert [p["municipality"] for p in peers] == ["Rimouski"]

    again = subprocess.run([HUB, "demo"], env=env, capture_output=True, text=True)
    assert again.returncode == 2
    assert "empty" in again.stderr
