"""The hub's WSGI app plus `POST /bench/baseline`: one authenticated INSERT, the benchmark's floor.

The route goes through what every API write pays for (WSGI server, Flask, the hub's request
hooks and JSON logs, bearer-token lookup with scope check, one commit per request by the hub's
`after_request` hook) but does a single INSERT into the benchmark's own table `bench_baseline`.
Serving it from the same app and server process as the real API makes the lifecycle figures
directly comparable: whatever the lifecycle costs above this floor is the hub's own work.

Serve it like `hub.wsgi:app`, e.g. `gunicorn bench.baseline_app:app`, with the hub's
HUB_* environment; the database must already be at the migration head.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, text
from sqlalchemy.schema import CreateTable

from hub import create_app
from hub.adapters.oauth import current_oauth_token, require_scope
from hub.db import UTCDateTime, db, utcnow

baseline_table = Table(
    "bench_baseline",
    MetaData(),  # not the hub's metadata: Alembic never sees this table
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

app = create_app()


@app.post("/bench/baseline")
@require_scope("referrals:write")
def baseline() -> tuple[dict[str, Any], int]:
    """One INSERT; the hub's after_request hook commits it."""
    result = db.session.execute(
        insert(baseline_table).values(
            client_id=current_oauth_token().client.client_id, created_at=utcnow()
        )
    )
    return {"id": result.inserted_primary_key[0]}, 201


def _create_baseline_table() -> None:
    with app.app_context(), db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # gunicorn workers start together; concurrent CREATE ... IF NOT EXISTS can collide.
            connection.execute(text("SELECT pg_advisory_xact_lock(20251123)"))
        connection.execute(CreateTable(baseline_table, if_not_exists=True))


_create_baseline_table()
