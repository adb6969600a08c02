"""The partner API (`/api/v1`): blueprints, OpenAPI document, error answers, and the one
commit per request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, g, render_template, request, send_from_directory
from flask_smorest import Api
from sqlalchemy.exc import IntegrityError, OperationalError
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException

from hub.accounts import clients
from hub.api import (
    bodies,
    checklists,
    consents,
    events,
    fhir,
    followups,
    handoffs,
    households,
    hsds,
    inbound,
    openapi,
    opportunities,
    organizations,
    participants,
    peers,
    policies,
    privacy_incidents,
    referrals,
    reports,
    webhook_endpoints,
)
from hub.api.errors import problem_for, register_error_handlers
from hub.api.problems import Problem, problem_response

API_PREFIXES = ("/api/", "/oauth/", "/webhooks/")
JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}


class HubApi(Api):
    """flask-smorest's Api, answering every HTTP error as problem+json, and documenting them
    so (`hub.api.openapi`)."""

    def handle_http_exception(self, error: HTTPException) -> Response:
        return problem_response(problem_for(error))

    def _register_responses(self) -> None:
        openapi.register_problem_responses(self.spec)


def _require_json_body() -> None:
    """Refuse bodies that are not JSON on the API (form posts go to /oauth/ only)."""
    if request.method not in JSON_BODY_METHODS or not request.path.startswith("/api/"):
        return
    if request.content_length == 0 or (request.content_length is None and not request.data):
        return
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise Problem(
            415, "Unsupported media type",
            f"Send JSON with Content-Type: application/json (got {request.mimetype or 'none'}).",
        )


# The interactive documentation: Swagger UI's own files only; its styles are set inline.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def _not_stored(response: Response) -> Response:
    """API answers carry personal data or may: no cache keeps them (RFC 9111 no-store)."""
    if request.path.startswith(API_PREFIXES):
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _commit(response: Response) -> Response:
    """The one commit of a request: only when the answer is a success."""
    session = g.get("db_session")
    if session is None:
        return response
    if response.status_code >= 400:
        session.rollback()
        return response
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return problem_response(Problem(
            409, "Conflict",
            "Another request changed the same data at the same moment. Read it again and retry.",
        ))
    except OperationalError:
        session.rollback()
        return problem_response(Problem(
            503, "Service unavailable", "The database is busy; retry in a moment.",
            headers={"Retry-After": "1"},
        ))
    return response


def init_app(app: Flask) -> None:
    app.config.update(
        API_TITLE="Maillage hub API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="v1/openapi.json",
        OPENAPI_SWAGGER_UI_PATH=None,  # served below from local files, without inline script
    )
    api = HubApi(spec_kwargs={
        "info": {"description": (Path(__file__).parent / "description.md").read_text()},
        "extra_plugins": [openapi.HubDocument()],
    })
    api.init_app(app)
    api.ma_plugin.converter.add_attribute_function(openapi.text_without_nul)
    api.ma_plugin.converter.add_attribute_function(openapi.null_means_null)
    api.spec.components.security_scheme("oauth2", {
        "type": "oauth2",
        "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": clients.SCOPES}},
    })

    for module in (organizations, participants, consents, referrals, checklists, households, events,
                   webhook_endpoints, inbound, handoffs, policies, fhir, reports, hsds,
                   privacy_incidents, followups, peers, opportunities):
        api.register_blueprint(module.blp)
    api.register_blueprint(privacy_incidents.erasures_blp)

    register_error_handlers(app)
    # Every JSON document read in a request is read here, under the limits (hub.api.bodies).
    app.json = bodies.LimitedJSONProvider(app)
    app.before_request(_require_json_body)
    app.after_request(_commit)
    app.after_request(_not_stored)

    docs_dir = Path(__file__).parent / "docs"
    # The page lives with the API, outside the portal's templates: read and compiled once.
    docs_page = app.jinja_env.from_string((docs_dir / "api_docs.html").read_text(encoding="utf-8"))

    @app.get("/api/docs")
    def api_docs() -> Response:
        """Interactive API documentation (Swagger UI, served by the hub itself)."""
        return Response(render_template(docs_page), mimetype="text/html", headers={
            "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"})

    @app.get("/api/docs/static/<path:filename>")
    def api_docs_static(filename: str) -> Any:
        if filename == "swagger-init.js":
            return send_from_directory(docs_dir, filename)
        return send_from_directory(swagger_ui_path, filename)
