"""`Idempotency-Key` on creating POSTs: a retried request replays the first response.

The first response is stored in the same transaction as the change it reports, so either both
exist or neither does.  Two requests racing with one key: the loser's insert collides on the
primary key, its whole transaction rolls back and it replays the winner's response.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, request
from sqlalchemy import JSON, Integer, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hub.api.openapi import reads_header
from hub.crypto import EncryptedText
from hub.db import Base, db, utcnow
from hub.errors import DomainError

MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")


class IdempotentResponse(Base):
    __tablename__ = "idempotent_responses"

    client_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    # Answers may show personal data (a registered participant, a leg): encrypted at rest.
    body: Mapped[str] = mapped_column(EncryptedText)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class IdempotencyKeyReused(DomainError):
    http_status = 422
    title = "Idempotency key reused"
    slug = "idempotency-key-reused"

    def __str__(self) -> str:
        return (
            "This Idempotency-Key was already used with a different request body. "
            "Use a new key for a new request."
        )


class IdempotencyKeyInvalid(DomainError):
    http_status = 400
    title = "Invalid Idempotency-Key"

    def __str__(self) -> str:
        return f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."


def _fingerprint() -> str:
    """The request as far as idempotency cares: method, path and body (JSON-normalized)."""
    raw = request.get_data(cache=True)
    # The document the view reads too: parsed once (and under the limits of hub.api.bodies).
    body = json.dumps(request.get_json(force=True), sort_keys=True,
                      separators=(",", ":")).encode() if raw else raw
    return hashlib.sha256(f"{request.method} {request.path}\n".encode() + body).hexdigest()


# Rebuilds a stored answer for today's reader (see `idempotent`); gets the stored JSON body
# and status code.
Rerender = Callable[[dict[str, Any], int], Response]


def _replay(stored: IdempotentResponse, rerender: Rerender | None = None) -> Response:
    if rerender is not None:
        response = rerender(json.loads(stored.body), stored.status_code)
    else:
        response = Response(stored.body, status=stored.status_code, headers=stored.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _first_answer(client_id: str, key: str, fingerprint: str,
                  rerender: Rerender | None = None) -> Response | None:
    """After a failure: the stored answer of a request with this key that committed meanwhile."""
    session = db.session
    session.rollback()
    stored = session.get(IdempotentResponse, (client_id, key))
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return _replay(stored, rerender)


def _idempotency_key_header() -> str | None:
    return request.headers.get("Idempotency-Key")


def idempotent(client_id_of_request: Callable[[], str],
               key_of_request: Callable[[], str | None] = _idempotency_key_header,
               rerender: Rerender | None = None) -> Callable[..., Any]:
    """Decorate a creating view; `client_id_of_request` names who the key belongs to, and
    `key_of_request` finds the key (default: the Idempotency-Key header).

    Answers that show personal data pass `rerender`: a replay then builds the answer again
    from the stored one's ids, as the reader may see it now (a consent may have been withdrawn
    since) and through the access log, instead of returning the stored body.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = key_of_request()
            if key is None:
                return view(*args, **kwargs)
            if not (0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
                raise IdempotencyKeyInvalid()
            client_id = client_id_of_request()
            fingerprint = _fingerprint()
            session = db.session
            stored = session.get(IdempotentResponse, (client_id, key))
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                return _replay(stored, rerender)

            try:
                response = view(*args, **kwargs)
            except Exception:
                # A retry racing its first attempt loses to it (409 on the leg, a duplicate...):
                # once the first has committed, its answer is the one to give.
                replay = _first_answer(client_id, key, fingerprint, rerender)
                if replay is None:
                    raise
                return replay
            if not isinstance(response, Response) or not 200 <= response.status_code < 300:
                # Errors are not remembered, so a retry runs again; but see above.
                return _first_answer(client_id, key, fingerprint, rerender) or response
            session.add(
                IdempotentResponse(
                    client_id=client_id,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    # With `rerender`, the id is all a replay needs: keep no personal data.
                    body=json.dumps({"id": response.get_json()["id"]}) if rerender
                    else response.get_data(as_text=True),
                    headers={h: response.headers[h] for h in REPLAYED_HEADERS
                             if h in response.headers},
                    created_at=utcnow(),
                )
            )
            try:
                session.flush()
            except IntegrityError:
                # Another request with this key committed first: undo ours, answer as it did.
                replay = _first_answer(client_id, key, fingerprint, rerender)
                if replay is None:
                    raise
                return replay
            return response

        if key_of_request is _idempotency_key_header:
            reads_header("Idempotency-Key")(wrapper)
        return wrapper

    return decorator
