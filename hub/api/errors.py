"""Every exception a request can raise, turned into RFC 9457 problem+json.

HTTP errors (404, 405, 413, validation 422 from webargs, ...) and the domain's refusals
(lifecycle, consent, visibility, idempotency) each get a status, a title, and a detail that
tells a partner's developer what to do.  Anything unexpected is logged with its traceback
and answered 500 without one.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from hub.api.idempotency import IdempotencyKeyInvalid, IdempotencyKeyReused
from hub.api.problems import Problem, problem_response
from hub.consent.consents import ConsentNotActive, ConsentRequired
from hub.db import iso_utc
from hub.errors import ConcurrentChange, Invalid, NotAllowed, NotFound, VersionMismatch
from hub.referrals.lifecycle import NotYourTurn, TransitionRefused
from hub.referrals.participants import PossibleDuplicate

log = logging.getLogger(__name__)

DETAILS = {
    400: "The request could not be understood.",
    404: "Nothing here: check the method and path against /api/v1/openapi.json.",
    405: "This path does not accept this method.",
    413: "The request body is too large.",
    415: "Send JSON with Content-Type: application/json.",
    422: "Some fields are invalid; see `errors`.",
}


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs' {location: {field: [msg]}} as {field: [msg]}, nested fields dotted."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(_flatten(value, name))
            else:
                flat[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return flat


def problem_for(error: HTTPException) -> Problem:
    if isinstance(error, Problem):
        return error
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        locations = dict(messages)
        if locations.get("json") == ["Invalid JSON body."]:
            return Problem(400, "Malformed JSON",
                           "The request body is not valid JSON. Check quotes, commas and "
                           "brackets, and that it is UTF-8.")
        errors: dict[str, list[str]] = {}
        for location, fields_messages in locations.items():
            flat = _flatten(fields_messages)
            if location == "query":
                flat = {f"query.{k}": v for k, v in flat.items()}
            errors.update(flat)
        return Problem(422, "Invalid request", DETAILS[422], slug="validation", errors=errors)
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if status == 413:
        limit = request.max_content_length
        detail = f"The request body is larger than the {limit} bytes this hub accepts."
    else:
        detail = DETAILS.get(status, error.description or error.name)
    return Problem(status, error.name, detail, headers=headers)


def register_error_handlers(app: Flask) -> None:
    def handle_http(error: HTTPException) -> Response:
        return problem_response(problem_for(error))

    app.register_error_handler(HTTPException, handle_http)

    @app.errorhandler(NotFound)
    def _not_found(error: NotFound) -> Response:
        return problem_response(Problem(404, "Not found", str(error)))

    @app.errorhandler(NotAllowed)
    def _not_allowed(error: NotAllowed) -> Response:
        return problem_response(Problem(403, "Not allowed", str(error)))

    @app.errorhandler(Invalid)
    def _invalid(error: Invalid) -> Response:
        return problem_response(Problem(422, "Invalid request", str(error), slug="validation",
                                        errors=error.errors))

    @app.errorhandler(TransitionRefused)
    def _refused(error: TransitionRefused) -> Response:
        return problem_response(Problem(
            409, "Transition not allowed", str(error), slug="transition-not-allowed",
            current_status=error.status.value, allowed=[a.value for a in error.allowed],
        ))

    @app.errorhandler(NotYourTurn)
    def _not_your_turn(error: NotYourTurn) -> Response:
        return problem_response(Problem(403, "Not your organization's action", str(error),
                                        slug="wrong-party"))

    @app.errorhandler(VersionMismatch)
    def _stale(error: VersionMismatch) -> Response:
        return problem_response(Problem(412, "Precondition failed", str(error),
                                        slug="stale-version", current_version=error.current))

    @app.errorhandler(ConcurrentChange)
    def _concurrent(error: ConcurrentChange) -> Response:
        return problem_response(Problem(
            409, "Concurrent change",
            "Another request changed this leg at the same moment. Read it again and retry.",
        ))

    @app.errorhandler(ConsentRequired)
    def _consent(error: ConsentRequired) -> Response:
        return problem_response(Problem(
            409, "Consent required", str(error), slug="consent_required",
            participant_id=str(error.participant_id),
            organization_id=str(error.organization_id), purpose=error.purpose,
        ))

    @app.errorhandler(ConsentNotActive)
    def _consent_not_active(error: ConsentNotActive) -> Response:
        return problem_response(Problem(409, "Consent not active", str(error),
                                        slug="consent-not-active",
                                        consent_status=error.status.value))

    @app.errorhandler(PossibleDuplicate)
    def _duplicate(error: PossibleDuplicate) -> Response:
        # Ids only: reading the matches' personal data is a GET, which the access log records.
        return problem_response(Problem(
            409, "Possible duplicate", str(error), slug="possible-duplicate",
            matches=[{"id": str(p.id), "created_at": iso_utc(p.created_at)}
                     for p in error.matches],
        ))

    @app.errorhandler(IdempotencyKeyReused)
    def _key_reused(error: IdempotencyKeyReused) -> Response:
        return problem_response(Problem(422, "Idempotency key reused", str(error),
                                        slug="idempotency-key-reused"))

    @app.errorhandler(IdempotencyKeyInvalid)
    def _key_invalid(error: IdempotencyKeyInvalid) -> Response:
        return problem_response(Problem(400, "Invalid Idempotency-Key", str(error)))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem(
            500, "Internal error",
            "Something failed on the hub's side; nothing was changed. Retry later, and quote "
            "the request_id if you report it.",
        ))
