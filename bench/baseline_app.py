"""The hub's WSGI app plus `POST /bench/baseline`: one authenticated INSERT, the benchmark's floor.

The route goes through what every API write pays for (WSGI server, Flask, the hub's request
hooks and JSON logs, bearer-token lookup with scope check, one commit per request by the hub's
`after_request` hook) but does a single INSERT into the benchmark's own table `bench_baseline`.
Serving it from the same app and server process as the real API makes the lifecycle figures
directly comparable: whatever the lifecycle costs above this floor is the hub's own work.

Consent switch, for the benchmark's comparison only: a request carrying the header
`X-Bench-Consent: off` runs without the consent machinery, as the foundation did before consent
enforcement.  For that request alone,
- `hub.consent.consents.covered_among` answers "all of them" without querying (no consent query; it
  is also the rule behind `hub.consent.consents.covers`),
- `hub.consent.consents.lock_participant` does nothing (no participant row lock),
- `hub.consent.access_log.note_read` records nothing (no access-log INSERT before the commit),
- `hub.consent.consents.locked_participant` is a plain load (`session.get`, no FOR UPDATE),
- `hub.referrals.handoffs.leg_to_change` is `hub.referrals.legs.visible_referral` (the leg
  loaded without the consent question asked inside that query).
Redaction itself still runs in both modes: the API renders every leg through
`hub.consent.visibility.Reader` (entitlement per reader, the open-leg check, the redacted or full
view); only its consent question is answered without a query and its read goes unlogged.
Every other request, and any call outside a request, runs the real functions.  The wrappers
replace the module attributes at import: `hub.consent.visibility` calls `consents.covered_among` and
`access_log.note_read` through the module, and `covers` and `require_referral_sharing` look
`covered_among` and `lock_participant` up as globals of `hub.consent.consents`, i.e. in the same
module dictionary, at call time; `hub.consent.visibility` calls `consents.locked_participant`, and
`hub.referrals.handoffs.transition` calls `leg_to_change`, the same way.  Never serve this app to
anyone: the header turns consent enforcement off.

Serve it like `hub.wsgi:app`, e.g. `gunicorn bench.baseline_app:app`, with the hub's
HUB_* environment; the database must already be at the migration head.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, has_request_context, request
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, text
from sqlalchemy.schema import CreateTable

from hub import create_app
from hub.adapters.oauth import current_oauth_token, require_scope
from hub.consent import access_log, consents
from hub.db import UTCDateTime, db, utcnow
from hub.referrals import handoffs, legs
from hub.referrals.participants import Participant

CONSENT_SWITCH = "X-Bench-Consent"

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


@app.before_request
def _consent_switch() -> None:
    g.bench_consent_off = request.headers.get(CONSENT_SWITCH, "").lower() == "off"


def _unless_consent_off(real: Callable[..., Any], answer: Any,
                        instead: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """`real`, except in a request with the switch off: then `answer`, doing nothing (or what
    `instead` does, when given)."""

    @functools.wraps(real)
    def switched(*args: Any, **kwargs: Any) -> Any:
        if has_request_context() and g.get("bench_consent_off", False):
            return answer if instead is None else instead(*args, **kwargs)
        return real(*args, **kwargs)

    return switched


consents.covered_among = _unless_consent_off(
    consents.covered_among, None,
    instead=lambda _session, participants, *_args, **_kwargs: {p.id for p in participants})
consents.lock_participant = _unless_consent_off(consents.lock_participant, None)
access_log.note_read = _unless_consent_off(access_log.note_read, None)
consents.locked_participant = _unless_consent_off(
    consents.locked_participant, None,
    instead=lambda session, participant_id: session.get(Participant, participant_id))
handoffs.leg_to_change = _unless_consent_off(handoffs.leg_to_change, None,
                                              instead=legs.visible_referral)


def _create_baseline_table() -> None:
    with app.app_context(), db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # gunicorn workers start together; concurrent CREATE ... IF NOT EXISTS can collide.
            connection.execute(text("SELECT pg_advisory_xact_lock(20251123)"))
        connection.execute(CreateTable(baseline_table, if_not_exists=True))


_create_baseline_table()
