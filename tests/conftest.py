"""Fixtures shared by the integration and end-to-end tiers.

Every database test runs twice: on SQLite and on a real PostgreSQL server (`make test` starts
one and sets HUB_TEST_POSTGRES_URL).  Each backend gets one fresh database per test run, made
by the Alembic migrations; tests do not clean up but work inside organizations of their own,
as separate tenants of one hub would.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub import create_app, crypto
from hub.accounts import users
from hub.config import Settings
from hub.ops import upgrade_database
from hub.privacy import keystore
from tests.helpers import Network
from tests.integration.test_mail import SmtpServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Argon2 with argon2-cffi's profile for tests (`profiles.CHEAPEST`): the same algorithm
    and code path, without spending a quarter of a second on each login the tests make.
    Hashes made either way verify either way (the parameters are in the hash)."""
    production = users._hasher
    users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    users._hasher = production


def _postgres_admin_url() -> str | None:
    url = os.environ.get("HUB_TEST_POSTGRES_URL")
    if not url and os.environ.get("HUB_REQUIRE_POSTGRES"):
        pytest.fail("HUB_REQUIRE_POSTGRES is set but HUB_TEST_POSTGRES_URL is not")
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'hub.sqlite3'}"
        upgrade_database(url)
        yield url
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL tests need HUB_TEST_POSTGRES_URL (make test sets it)")
    name = f"hub_test_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # The key store: a database of its own, as in production (hub.privacy.keystore).
        connection.execute(text(f'CREATE DATABASE "{name}_keys"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade_database(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}_keys" WITH (FORCE)'))
    admin.dispose()


def keystore_url_for(database_url: str) -> str:
    """The key store beside a test database: `<name>_keys` on PostgreSQL, and on SQLite the
    file the settings choose by default (beside the database's)."""
    if database_url.startswith("sqlite"):
        return Settings(database_url=database_url).keystore
    url = make_url(database_url)
    return url.set(database=f"{url.database}_keys").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    application = create_app(Settings(env="test", database_url=database_url,
                                      keystore_url=keystore_url_for(database_url),
                                      secret_key="test-secret-key-" + "x" * 32))
    application.config["TESTING"] = True
    yield application
    application.extensions["hub_db"][0].dispose()


@pytest.fixture(autouse=True)
def _keep_the_key_ring() -> Iterator[None]:
    """Tests that build their own app (other secret, other keys) install its key ring, which is
    process-wide (see hub.crypto): put back the one the shared apps encrypt with."""
    ring, person_keys = crypto._current, crypto._person_keys
    yield
    crypto._current, crypto._person_keys = ring, person_keys


@pytest.fixture(autouse=True)
def _the_apps_key_store(request: pytest.FixtureRequest) -> None:
    """Each backend's app has its key store; the one installed (process-wide, as the key ring)
    is the app's under test."""
    if "app" in request.fixturenames:
        keystore.install(request.getfixturevalue("app").extensions["hub_keystore"])


@pytest.fixture
def network(app: Flask) -> Network:
    """A fresh set of organizations with OAuth clients, in the app under test."""
    return Network(app)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on a loopback port, for tests that follow a mail to its receiver."""
    server = SmtpServer()
    # shutdown() waits for the loop to look at its flag, every poll_interval (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
