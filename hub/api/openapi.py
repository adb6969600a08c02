"""What the OpenAPI document says beyond what flask-smorest writes by itself, so that a client
generated from it handles the hub's answers as they are.

- Every error is RFC 9457 problem+json with the `Problem` schema (flask-smorest documents its
  own error shape as application/json): the standard responses are registered once here, and
  every operation gets the errors it can answer (`default` covers the rest).
- A request body is marked required only when its schema has a required field: the hub
  accepts an empty body elsewhere.
- A success without documented content is JSON (an object), the hub's default.
- Headers a view reads are declared by the decorator that reads them (`reads_header`), and
  become parameters of the operation here: `Idempotency-Key`, `If-Match`.

All of it is generic: an endpoint added later gets it without doing anything but use the
decorators.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

from apispec import APISpec, BasePlugin
from marshmallow import fields, validate

PROBLEM_JSON = "application/problem+json"
# A CSV answer beside a JSON one (`format=csv`): UTF-8 with a byte order mark, for spreadsheets.
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# The extension key a decorator leaves in an operation; removed from the published document.
HEADERS_KEY = "x-hub-reads-headers"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details: the body of every error the hub answers. Other "
    "members may be added (RFC 9457 extension members), e.g. `current_version` on 412.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri",
                 "description": "Names the kind of problem; stable, documented."},
        "title": {"type": "string", "description": "Short summary of the kind of problem."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599,
                   "description": "The HTTP status of the answer."},
        "detail": {"type": "string", "description": "What went wrong and what to do."},
        "errors": {"type": "object", "description": "Invalid fields, by name (dotted for nested "
                   "fields, `query.` before query parameters).",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "request_id": {"type": "string", "description": "Quote it when reporting a problem."},
    },
    "additionalProperties": True,
}

HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {
        "in": "header", "name": "Idempotency-Key", "required": False,
        "description": "Any unique string (a UUID, say), up to 255 printable ASCII "
        "characters. A retry with the same key and the same body gets the first answer again "
        "instead of acting twice; the same key with another body is 422.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                   "pattern": "^[\\x20-\\x7e]+$"},
    },
    "If-Match": {
        "in": "header", "name": "If-Match", "required": False,
        "description": "The ETag of the leg as you read it (e.g. `\"3\"`): the change is "
        "refused with 412 if the leg changed since. `*` or no header: no check.",
        "schema": {"type": "string", "pattern": '^(\\*|(W/)?"?[0-9]{1,18}"?)$'},
    },
}


# `hub.api.common.Input` refuses NUL in every text, which no database stores.
NO_NUL_PATTERN = "^[^\\x00]*$"


def text_without_nul(converter: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """An apispec attribute function: every text field without a pattern of its own gets
    one that says NUL is refused (a field with a pattern says more)."""
    if not isinstance(field, fields.String) or isinstance(field, fields.UUID):
        return {}
    if "pattern" in field.metadata or any(isinstance(v, validate.Regexp)
                                          for v in field.validators):
        return {}
    return {"pattern": NO_NUL_PATTERN}


def null_means_null(converter: Any, field: fields.Field, ret: dict[str, Any],
                    **kwargs: Any) -> dict[str, Any]:
    """apispec writes a nullable nested schema, in OpenAPI 3.0, as `anyOf: [$ref, {type:
    object, nullable: true}]`, whose second branch accepts any object at all: make it accept
    null only."""
    branches = ret.get("anyOf")
    if not isinstance(branches, list):
        return {}
    return {"anyOf": [dict(b, enum=[None]) if b == {"type": "object", "nullable": True} else b
                      for b in branches]}


def reads_header(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare in the document that a view reads the header `name` (one of
    `HEADER_PARAMETERS`); apply it on the function flask-smorest documents."""
    assert name in HEADER_PARAMETERS, name

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        # flask-smorest's documentation attribute, read when the blueprint is registered.
        apidoc: dict[str, Any] = view.__dict__.setdefault("_apidoc", {})
        headers = apidoc.setdefault("manual_doc", {}).setdefault(HEADERS_KEY, [])
        if name not in headers:
            headers.append(name)
        return view

    return decorator


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def register_problem_responses(spec: APISpec) -> None:
    """flask-smorest's named responses (`UNPROCESSABLE_ENTITY`, `DEFAULT_ERROR`, ...), each as
    problem+json; lazy, so only those referred to are published."""
    for status in http.HTTPStatus:
        if status >= 400:
            spec.components.response(status.name, problem_response(status.phrase), lazy=True)
    spec.components.response("DEFAULT_ERROR", problem_response(
        "Any other error, as problem+json."), lazy=True)


class HubDocument(BasePlugin):
    """An apispec plugin that completes every operation (see the module's docstring)."""

    def init_spec(self, spec: APISpec) -> None:
        self.spec = spec
        spec.components.schema("Problem", component=PROBLEM_SCHEMA)
        for name, parameter in HEADER_PARAMETERS.items():
            spec.components.parameter(name.replace("-", ""), "header", parameter, lazy=True)

    def _has_required_fields(self, schema: dict[str, Any]) -> bool:
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = self.spec.components.schemas.get(ref.rsplit("/", 1)[1], {})
        return bool(schema.get("required"))

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            if not isinstance(operation, dict) or method == "parameters":
                continue
            body = operation.get("requestBody")
            if body and "content" in body:
                schemas = [media.get("schema", {}) for media in body["content"].values()]
                body["required"] = any(self._has_required_fields(s) for s in schemas)
            for name in operation.pop(HEADERS_KEY, []):
                # A component's id: apispec turns it into a $ref (and publishes the component).
                operation.setdefault("parameters", []).append(name.replace("-", ""))
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                # A success documented without content (`@blp.response(200)` with no schema)
                # is the hub's JSON: say at least that (the fuzz test checks it is true).
                if (str(status).startswith("2") and str(status) != "204"
                        and isinstance(response, dict) and "content" not in response
                        and "$ref" not in response):
                    response["content"] = {"application/json": {"schema": {"type": "object"}}}
            errors = ["400"]
            if operation.get("security"):
                errors += ["401", "403"]
            if "{" in (path or ""):
                errors.append("404")
            if body:
                errors.append("413")
                if (path or "").startswith("/api/"):  # /webhooks/ reads any type as JSON
                    errors.append("415")
            references = self.spec.components.get_ref
            for status in errors:
                responses.setdefault(status, references(
                    "response", http.HTTPStatus(int(status)).name))
            responses.setdefault("default", references("response", "DEFAULT_ERROR"))
