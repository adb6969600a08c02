"""RFC 9457 problem details: the one shape of every error the hub answers.

`Problem` is raised anywhere in a request; `problem_response` renders it.  The error handlers
in `hub.api.errors` map every other exception (HTTP errors, validation, domain refusals) here,
so a client never sees an HTML error page or a stack trace.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE_BASE = "https://maillage.quebec/problems/"


class Problem(HTTPException):
    """An HTTP error with problem+json details; `slug` names its documented `type`."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        slug: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(description=detail)
        self.code = status
        self.title = title
        self.detail = detail
        self.slug = slug or title.lower().replace(" ", "-")
        self.errors = errors
        self.extra_headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.code,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        request_id = g.get("request_id")
        if request_id:
            body["request_id"] = request_id
        return body

    def get_response(self, environ: Any = None, scope: Any = None) -> Response:
        return problem_response(self)


def problem_response(problem: Problem) -> Response:
    response = Response(
        json.dumps(problem.body(), ensure_ascii=False, default=str),
        status=problem.code,
        content_type="application/problem+json",
    )
    for name, value in problem.extra_headers.items():
        if name.lower() != "content-type":  # a problem is always problem+json
            response.headers[name] = value
    return response
