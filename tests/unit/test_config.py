"""Settings from the environment, and the refusal to run production on development defaults."""

from __future__ import annotations

import pytest

from hub import create_app
from hub.config import DEVELOPMENT_SECRET_KEY, SETTINGS, Settings


def test_embedded_defaults_need_no_variable() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("var/hub.sqlite3")
    assert settings.problems() == []


def test_variables_are_read_and_typed() -> None:
    settings = Settings.from_env({"HUB_MAX_BODY_BYTES": "2048", "HUB_ENV": "test"})
    assert settings.max_body_bytes == 2048
    assert settings.env == "test"


def test_every_documented_variable_is_a_setting() -> None:
    attributes = set(Settings.__dataclass_fields__)
    assert {s.attribute for s in SETTINGS} == attributes
    assert all(s.env.startswith("HUB_") for s in SETTINGS)


def test_production_refuses_development_secret_and_sqlite() -> None:
    settings = Settings.from_env({"HUB_ENV": "production"})
    problems = " ".join(settings.problems())
    assert "HUB_SECRET_KEY" in problems
    assert "PostgreSQL" in problems
    with pytest.raises(RuntimeError, match="refuses to start"):
        create_app(settings)


def test_production_accepts_a_real_secret_and_postgresql() -> None:
    settings = Settings.from_env({
        "HUB_ENV": "production",
        "HUB_SECRET_KEY": "k" * 40,
        "HUB_DATABASE_URL": "postgresql+psycopg://hub@db/hub",
        "HUB_DATA_KEYS": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
        "HUB_KEYSTORE_URL": "postgresql+psycopg://keystore@keystore/keystore",
    })
    assert settings.secret_key != DEVELOPMENT_SECRET_KEY
    assert settings.problems() == []


def test_production_needs_a_key_store_of_its_own() -> None:
    """Each participant's key lives apart from the database its backups copy."""
    base = {"HUB_ENV": "production", "HUB_SECRET_KEY": "k" * 40,
            "HUB_DATABASE_URL": "postgresql+psycopg://hub@db/hub",
            "HUB_DATA_KEYS": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="}
    for keystore_url in ("", "sqlite:///var/keys.sqlite3", "postgresql+psycopg://hub@db/hub"):
        problems = Settings.from_env({**base, "HUB_KEYSTORE_URL": keystore_url}).problems()
        assert any("HUB_KEYSTORE_URL" in problem for problem in problems), keystore_url


def test_the_embedded_key_store_is_a_file_beside_the_database() -> None:
    settings = Settings(database_url="sqlite:////srv/hub/var/hub.sqlite3")
    assert settings.keystore == "sqlite:////srv/hub/var/hub-keys.sqlite3"
    assert Settings(keystore_url="sqlite:///k.db").keystore == "sqlite:///k.db"



def test_production_refuses_to_start_without_data_keys_and_names_bad_ones() -> None:
    base = {"HUB_ENV": "production", "HUB_SECRET_KEY": "k" * 40,
            "HUB_DATABASE_URL": "postgresql+psycopg://hub@db/hub"}
    assert any("HUB_DATA_KEYS must be set" in p for p in Settings.from_env(base).problems())
    good_key = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="
    bad = Settings.from_env({**base, "HUB_DATA_KEYS": f"{good_key},not-a-key"})
    problems = " ".join(bad.problems())
    assert "HUB_DATA_KEYS" in problems and "#2" in problems
    assert "not-a-key" not in problems  # key material is never echoed


def test_the_report_threshold_is_read_and_checked() -> None:
    assert Settings.from_env({}).report_min_cell == 5
    assert Settings.from_env({"HUB_REPORT_MIN_CELL": "11"}).report_min_cell == 11
    problems = Settings.from_env({"HUB_REPORT_MIN_CELL": "0"}).problems()
    assert any("HUB_REPORT_MIN_CELL must be 1 or more" in p for p in problems)
