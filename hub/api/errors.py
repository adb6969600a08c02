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

from hub.api.problems import Problem, problem_response
from hub.errors import DomainError

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
    # MethodNotAllowed's list, read as any HTTPException's attribute.
    valid_methods = getattr(error, "valid_methods", None) if status == 405 else None
    if valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
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

    @app.errorhandler(DomainError)
    def _refused(error: DomainError) -> Response:
        # The one error table: each domain error knows its status and problem type.
        return problem_response(Problem(error.http_status, error.title, error.detail(),
                                        slug=error.slug, **error.members()))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem(
            500, "Internal error",
            "Something failed on the hub's side; nothing was changed. Retry later, and quote "
            "the request_id if you report it.",
        ))
