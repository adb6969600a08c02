"""What operators need: health and readiness probes, Prometheus metrics, JSON logs with a
request id on every line and in the `X-Request-Id` response header."""

from __future__ import annotations

import hmac
import json
import logging
import re
import sys
import time
import uuid
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text

from hub.db import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

HTTP_REQUESTS = Counter(
    "hub_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "hub_http_request_duration_seconds",
    "Time to answer HTTP requests",
    ["method", "route"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_APPENDED = Counter("hub_events_appended_total", "Events committed to the log", ["type"])

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is a request."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        try:
            request_id = g.get("request_id")
        except RuntimeError:  # outside an application context
            request_id = None
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def migrations_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    # Date-prefixed files, so the directory lists migrations in the order they were written.
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"
    )
    return config


def upgrade_database(database_url: str) -> None:
    """Apply every pending migration; for SQLite, make the database's folder first."""
    from alembic import command

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(migrations_config(database_url), "head")


SECRET_PATHS = ("/suivi/", "/password/reset/", "/a/")  # paths that carry a token


def init_app(app: Flask) -> None:
    access_log = logging.getLogger("hub.access")
    head_revision = ScriptDirectory.from_config(
        migrations_config(app.config["HUB_SETTINGS"].database_url)
    ).get_current_head()

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "<unmatched>"
        response.headers["X-Request-Id"] = g.get("request_id", "")
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        token = g.get("authlib_server_oauth2_token")
        # A check-in link's token is a secret: logs show its route, not the link itself.
        path = route if request.path.startswith(SECRET_PATHS) else request.path
        access_log.info(
            "%s %s %s", request.method, path, response.status_code,
            extra={"fields": {
                "method": request.method, "path": path, "route": route,
                "status": response.status_code, "duration_ms": round(elapsed * 1000, 2),
                "address": request.remote_addr,
                "client_id": token.client.client_id if token is not None else None,
            }},
        )
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> tuple[dict[str, Any], int]:
        """Readiness: the database answers and its schema is at the code's migration head."""
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                current = MigrationContext.configure(connection).get_current_revision()
        except Exception as error:  # any database failure means "not ready"
            logging.getLogger(__name__).warning("readiness check failed: %s", error)
            return {"status": "unavailable", "database": "unreachable"}, 503
        if current != head_revision:
            return {
                "status": "unavailable",
                "database": "reachable",
                "migrations": {"current": current, "expected": head_revision},
                "hint": "run `hub db upgrade`",
            }, 503
        return {"status": "ok", "database": "reachable", "migrations": {"current": current}}, 200

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format, for those HUB_METRICS_TOKEN / _NETWORKS let in."""
        if not _may_read_metrics(app.config["HUB_SETTINGS"]):
            return Response("Metrics need Authorization: Bearer <HUB_METRICS_TOKEN>, or a "
                            "request from HUB_METRICS_NETWORKS.\n", status=403,
                            content_type="text/plain; charset=utf-8")
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def _may_read_metrics(settings: Any) -> bool:  # hub.config.Settings (a layer above this one)
    token, networks = settings.metrics_token, settings.metrics_network_list()
    if not token and not networks:
        return not settings.is_production  # open in development; closed in production
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in networks)
