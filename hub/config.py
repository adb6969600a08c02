"""Settings of the hub, read from environment variables.

Nothing here connects to anything: reading the settings is free, so `create_app`, the CLI and
the tests can all build a `Settings` and decide what to do with it.  The embedded default
(SQLite under ./var/, development secret) works with no variable set; production mode refuses
the development defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

DEVELOPMENT_SECRET_KEY = "maillage-development-secret-do-not-use-in-production"
ENVIRONMENTS = ("development", "production", "test")


def default_database_url() -> str:
    """SQLite file under ./var/ of the directory the hub is started from."""
    return f"sqlite:///{Path('var').resolve() / 'hub.sqlite3'}"


@dataclass(frozen=True)
class Setting:
    """One environment variable the hub reads, with its meaning (used for the docs)."""

    env: str
    attribute: str
    default: Any
    help: str


# The one list of variables the hub reads. The table of docs/operations.md and the deployment
# checks are generated from it, so documentation cannot drift from the code.
SETTINGS: tuple[Setting, ...] = (
    Setting("HUB_ENV", "env", "development", "`development`, `production` or `test`."),
    Setting(
        "HUB_DATABASE_URL",
        "database_url",
        None,
        "SQLAlchemy URL; default SQLite under ./var/. PostgreSQL: "
        "`postgresql+psycopg://user:pass@host/db`.",
    ),
    Setting(
        "HUB_SECRET_KEY",
        "secret_key",
        DEVELOPMENT_SECRET_KEY,
        "Signs sessions and derives pseudonyms. Must be set in production.",
    ),
    Setting(
        "HUB_DATA_KEYS",
        "data_keys",
        "",
        "Fernet keys encrypting personal data at rest, comma-separated, newest first (the "
        "first encrypts, all decrypt: add a new key in front to rotate, then run "
        "`hub data rotate-keys`). Default: one key derived from HUB_SECRET_KEY (development "
        "only). Must be set in production.",
    ),
    Setting(
        "HUB_KEYSTORE_URL",
        "keystore_url",
        None,
        "SQLAlchemy URL of the key store, the database of each participant's own key (erasing "
        "a person destroys it): never the database of HUB_DATABASE_URL, so that a restored "
        "backup of the hub cannot bring an erased person back. Default: a SQLite file beside "
        "the hub's (./var/hub-keys.sqlite3). Must be set in production.",
    ),
    Setting(
        "HUB_RETENTION_MONTHS",
        "retention_months",
        24,
        "Personal data of a participant with no open leg and no active consent is erased "
        "this many months after their last leg closed (docs/design.md §15).",
    ),
    Setting(
        "HUB_TOKEN_TTL_SECONDS", "token_ttl_seconds", 3600, "Lifetime of OAuth access tokens."
    ),
    Setting(
        "HUB_MAX_BODY_BYTES",
        "max_body_bytes",
        1_048_576,
        "Largest request body accepted; larger bodies get 413.",
    ),
    Setting("HUB_LOG_LEVEL", "log_level", "INFO", "Python logging level of the JSON logs."),
    Setting(
        "HUB_WEB_WORKERS", "web_workers", 4, "gunicorn worker processes started by `hub serve`."
    ),
    Setting(
        "HUB_WEB_THREADS", "web_threads", 8, "Threads per web worker (`hub run` and `hub serve`)."
    ),
    Setting(
        "HUB_DB_POOL_SIZE", "db_pool_size", 10, "Database connections kept per web process."
    ),
    Setting(
        "HUB_WEBHOOK_CONCURRENCY", "webhook_concurrency", 256,
        "Webhook requests in flight per dispatcher (`hub worker`, `hub run`).",
    ),
    Setting(
        "HUB_WEBHOOK_LEASE_SECONDS", "webhook_lease_seconds", 60,
        "How long a dispatcher holds a delivery it claimed; after a crash, another one sends it "
        "again once the lease has run out. Must outlast a whole attempt (45 s at most with the "
        "15 s timeouts).",
    ),
    Setting(
        "HUB_PUBLIC_URL", "public_url", "http://127.0.0.1:5000",
        "Address at which people reach the hub's pages, e.g. `https://maillage.example.org`; "
        "the links of participant check-in mails start with it.",
    ),
    Setting(
        "HUB_SMTP_HOST", "smtp_host", "",
        "SMTP server for outgoing mail. Empty (default): mails are written as .eml files "
        "under HUB_MAIL_DIR instead of being sent.",
    ),
    Setting("HUB_SMTP_PORT", "smtp_port", 587, "Port of the SMTP server (submission: 587)."),
    Setting("HUB_SMTP_USERNAME", "smtp_username", "", "SMTP login; empty: no authentication."),
    Setting("HUB_SMTP_PASSWORD", "smtp_password", "", "Password of HUB_SMTP_USERNAME."),
    Setting(
        "HUB_SMTP_STARTTLS", "smtp_starttls", True,
        "`true` (default): require STARTTLS, never send in clear; `false` only for a relay on "
        "a trusted network.",
    ),
    Setting(
        "HUB_MAIL_FROM", "mail_from", "Maillage <maillage@localhost>",
        "From: of the hub's mails, e.g. `Maillage <no-reply@example.org>`.",
    ),
    Setting(
        "HUB_MAIL_DIR", "mail_dir", "",
        "Where mails are written when HUB_SMTP_HOST is empty; default ./var/mail/.",
    ),
    Setting(
        "HUB_SESSION_MINUTES", "session_minutes", 60,
        "Portal sessions end after this many minutes without a request.",
    ),
    Setting(
        "HUB_TRUSTED_PROXIES", "trusted_proxies", 0,
        "How many reverse proxies stand in front of the web service: the hub then takes the "
        "client's address (login limits, logs) and scheme from their X-Forwarded-For and "
        "X-Forwarded-Proto. 0 (default): the connecting address is the client's. The compose "
        "file's Caddy is one: 1. Never more than there are, or clients choose their address.",
    ),
    Setting(
        "HUB_METRICS_TOKEN", "metrics_token", "",
        "When set, `/metrics` answers a request with `Authorization: Bearer <this token>`.",
    ),
    Setting(
        "HUB_METRICS_NETWORKS", "metrics_networks", "",
        "Comma-separated networks (e.g. `10.0.0.0/8,127.0.0.1/32`) whose addresses may read "
        "`/metrics` without the token. In production `/metrics` is closed (403) to anyone else, "
        "and to everyone when neither this nor HUB_METRICS_TOKEN is set; elsewhere it is open "
        "while neither is set.",
    ),
    Setting(
        "HUB_REPORT_MIN_CELL", "report_min_cell", 5,
        "Funder reports show no count from 1 to one less than this (and no median, "
        "percentile or share from fewer legs), so no participant can be singled out; 1 shows "
        "everything.",
    ),
)


def _parse_bool(env: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{env} must be true or false, not {raw!r}")


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = field(default_factory=default_database_url)
    secret_key: str = DEVELOPMENT_SECRET_KEY
    data_keys: str = ""
    keystore_url: str = ""
    retention_months: int = 24
    token_ttl_seconds: int = 3600
    max_body_bytes: int = 1_048_576
    log_level: str = "INFO"
    web_workers: int = 4
    web_threads: int = 8
    db_pool_size: int = 10
    webhook_concurrency: int = 256
    webhook_lease_seconds: int = 60
    public_url: str = "http://127.0.0.1:5000"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "Maillage <maillage@localhost>"
    mail_dir: str = ""
    session_minutes: int = 60
    trusted_proxies: int = 0
    metrics_token: str = ""
    metrics_networks: str = ""
    report_min_cell: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from environment variables, then apply explicit overrides."""
        environ = os.environ if environ is None else environ
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            if raw is None or raw == "":
                continue
            kind = types[setting.attribute]
            if kind == "int":
                values[setting.attribute] = int(raw)
            elif kind == "bool":
                values[setting.attribute] = _parse_bool(setting.env, raw)
            else:
                values[setting.attribute] = raw
        values.update(overrides)
        return cls(**values)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def keystore(self) -> str:
        """The key store's URL: HUB_KEYSTORE_URL, else a SQLite file beside the hub's own
        (./var/hub-keys.sqlite3 for the default), else ./var/hub-keys.sqlite3."""
        if self.keystore_url:
            return self.keystore_url
        if self.is_sqlite and self.database_url.startswith("sqlite:///") and \
                ":memory:" not in self.database_url:
            path = Path(self.database_url.removeprefix("sqlite:///"))
            return f"sqlite:///{path.with_name(path.stem + '-keys.sqlite3')}"
        return f"sqlite:///{Path('var').resolve() / 'hub-keys.sqlite3'}"

    def metrics_network_list(self) -> list[IPv4Network | IPv6Network]:
        """HUB_METRICS_NETWORKS read; ValueError if one is not a network."""
        return [ip_network(part.strip(), strict=False)
                for part in self.metrics_networks.split(",") if part.strip()]

    def problems(self) -> list[str]:
        """What makes these settings unfit to start with; empty when they are fine."""
        found = []
        if self.env not in ENVIRONMENTS:
            found.append(f"HUB_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}.")
        if self.is_production:
            if self.secret_key == DEVELOPMENT_SECRET_KEY or len(self.secret_key) < 32:
                found.append(
                    "HUB_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production (for example: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')."
                )
            if not self.data_keys.strip():
                found.append(
                    "HUB_DATA_KEYS must be set in production: the personal data of "
                    "participants is encrypted with it (for example: python -c 'from "
                    "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
                )
            if self.is_sqlite:
                found.append("HUB_DATABASE_URL must point to PostgreSQL in production.")
            if not self.keystore_url or self.keystore_url.startswith("sqlite"):
                found.append(
                    "HUB_KEYSTORE_URL must point to a PostgreSQL database of its own in "
                    "production (not the one of HUB_DATABASE_URL): it keeps each "
                    "participant's key, which erasure destroys.")
        if self.keystore_url and self.keystore_url == self.database_url:
            found.append("HUB_KEYSTORE_URL must name another database than HUB_DATABASE_URL: "
                         "a backup of the hub's database must not hold the participants' keys.")
        if self.retention_months < 1:
            found.append(f"HUB_RETENTION_MONTHS must be 1 or more (24 is usual), not "
                         f"{self.retention_months}.")
        if not 0 <= self.trusted_proxies <= 5:
            found.append(f"HUB_TRUSTED_PROXIES must be the number of proxies in front of the "
                         f"hub, 0 to 5, not {self.trusted_proxies}.")
        try:
            self.metrics_network_list()
        except ValueError as error:
            found.append(f"HUB_METRICS_NETWORKS: {error}")
        if self.report_min_cell < 1:
            found.append(f"HUB_REPORT_MIN_CELL must be 1 or more (5 is usual), not "
                         f"{self.report_min_cell}.")
        # Imported here: `hub --help` reads the settings, and must load no model or database
        # type (tests/unit/test_cli_tree.py); only the app's start asks for these checks.
        try:
            from hub.outbox.mail import recipient

            recipient(self.mail_from)
        except ValueError:
            found.append(f"HUB_MAIL_FROM is not a mail address: {self.mail_from!r}.")
        try:
            from hub.crypto import KeyRing

            KeyRing.from_settings(self.data_keys, self.secret_key)
        except ValueError as error:
            found.append(f"HUB_DATA_KEYS: {error}")
        return found
