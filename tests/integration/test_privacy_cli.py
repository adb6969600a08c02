"""The command line for privacy operations: `hub checks run` (consent expiry) and
`hub data rotate-keys`, run by click as the `hub` command does (tests/hub_cli.py) on a fresh
SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from hub import crypto
from hub.config import Settings
from hub.privacy import keystore
from tests.hub_cli import run_hub


def hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_hub(env, *args)


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}",
           "HUB_ENV": "development"}
    env.pop("HUB_DATA_KEYS", None)
    return env


def test_checks_run_expires_consents_once_and_now_is_for_development_only(
        demo_env: dict[str, str]) -> None:
    assert hub(demo_env, "db", "upgrade").returncode == 0
    assert hub(demo_env, "demo").returncode == 0

    today = hub(demo_env, "checks", "run")
    assert today.returncode == 0, today.stderr
    assert json.loads(today.stdout)["consent_expiry"] == 0

    engine = create_engine(demo_env["HUB_DATABASE_URL"])
    with engine.connect() as connection:
        granted = connection.execute(text("SELECT count(*) FROM consents")).scalar_one()
    in_two_years = hub(demo_env, "checks", "run", "--now", "2028-12-01T09:00:00-05:00")
    assert in_two_years.returncode == 0, in_two_years.stderr
    assert json.loads(in_two_years.stdout)["consent_expiry"] == granted  # every demo consent
    again = hub(demo_env, "checks", "run", "--now", "2028-12-01T09:00:00-05:00")
    assert set(json.loads(again.stdout).values()) == {0}  # every check fired once already

    engine = create_engine(demo_env["HUB_DATABASE_URL"])
    with engine.connect() as connection:
        expired = connection.execute(text(
            "SELECT count(*) FROM events WHERE type = 'consent.expired'")).scalar_one()
        cancelled = connection.execute(text(
            "SELECT count(*) FROM referrals WHERE cancel_reason = 'consent_withdrawn'")
        ).scalar_one()
        still_open = connection.execute(text(
            "SELECT count(*) FROM referrals WHERE closed_at IS NULL")).scalar_one()
    assert expired == granted
    # Every open leg of the demo lost its consent (or expired unacknowledged before).
    assert cancelled >= 3 and still_open == 0

    bad = hub(demo_env, "checks", "run", "--now", "tomorrow")
    assert bad.returncode == 2 and "ISO-8601" in bad.stderr


def test_rotate_keys_re_encrypts_everything_so_old_keys_can_go(
        demo_env: dict[str, str]) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with_old = {**demo_env, "HUB_DATA_KEYS": old}
    assert hub(with_old, "db", "upgrade").returncode == 0
    assert hub(with_old, "demo").returncode == 0

    both = {**demo_env, "HUB_DATA_KEYS": f"{new},{old}"}
    rotated = hub(both, "data", "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr
    # The demo's personal data is sealed under each participant's own key: what rotates is
    # the wrapping of those keys in the key store.
    lines = rotated.stdout.splitlines()
    assert int(lines[1].split()[0]) >= 2  # the demo's participants
    again = hub(both, "data", "rotate-keys").stdout.splitlines()
    assert again[0].startswith("0 values") and again[1].startswith("0 participants")

    only_new = crypto.KeyRing.from_settings(new, Settings().secret_key)
    only_old = crypto.KeyRing.from_settings(old, Settings().secret_key)
    engine = create_engine(demo_env["HUB_DATABASE_URL"])
    with engine.connect() as connection:
        names = connection.execute(text("SELECT given_name FROM participants")).scalars().all()
    from hub.demo import HISTORY_PEOPLE

    # Every name is sealed under its participant's own key, whose wrapping the new key reads.
    store = keystore.KeyStore(Settings(database_url=demo_env["HUB_DATABASE_URL"]).keystore)
    column = crypto.EncryptedText()
    with crypto.using(only_new, store):
        decrypted = [column.process_result_value(token, None) for token in names]
    assert {"Amina", "Diego", *(given for given, _, _ in HISTORY_PEOPLE)} <= set(decrypted)
    with crypto.using(only_old, keystore.KeyStore(store.url)), \
            pytest.raises(crypto.UndecryptableData):
        column.process_result_value(names[0], None)
    store.dispose()


def test_reindex_participants_makes_them_findable_under_a_new_secret_key(
        demo_env: dict[str, str]) -> None:
    from hub.referrals import participant_search

    data_key = Fernet.generate_key().decode()
    before = {**demo_env, "HUB_DATA_KEYS": data_key, "HUB_SECRET_KEY": "a" * 40}
    assert hub(before, "db", "upgrade").returncode == 0
    assert hub(before, "demo").returncode == 0
    after = {**before, "HUB_SECRET_KEY": "b" * 40}
    reindexed = hub(after, "data", "reindex-participants")
    assert reindexed.returncode == 0, reindexed.stderr
    engine = create_engine(demo_env["HUB_DATABASE_URL"])
    with engine.connect() as connection:
        registered = connection.execute(text("SELECT count(*) FROM participants")).scalar_one()
    engine.dispose()
    assert reindexed.stdout.startswith(f"{registered} participants")

    new_ring = crypto.KeyRing.from_settings(data_key, "b" * 40)
    wanted = participant_search.hashed(new_ring, participant_search.query_terms("amin"))
    engine = create_engine(demo_env["HUB_DATABASE_URL"])
    with engine.connect() as connection:
        holders = connection.execute(text(
            "SELECT count(*) FROM participant_search_terms WHERE term = :t"),
            {"t": wanted.pop()}).scalar_one()
    assert holders == 1
