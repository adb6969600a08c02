"""Authlib glue: the OAuth 2.0 authorization server and the resource protector.

- `POST /oauth/token`: client credentials grant, secret in Basic auth or in the form (one of
  them per request: RFC 6749 §2.3).
- `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009), both authenticated
  by the calling client.
- `require_scope(...)`: guards an API view; 401 without a valid token, 403 without the scope.

OAuth errors keep their RFC 6749 fields (`error`, `error_description`, which client libraries
read) and gain the RFC 9457 ones, served as application/problem+json like every other error.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidRequestError,
    MissingAuthorizationError,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, Response, g, request
from sqlalchemy import select

from hub.accounts import clients
from hub.accounts.callers import Caller
from hub.accounts.clients import OAuthClient, OAuthToken
from hub.api.problems import PROBLEM_TYPE_BASE, Problem
from hub.db import db, utcnow


def _query_client(client_id: str) -> OAuthClient | None:
    client = db.session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    return client if client is not None and client.revoked_at is None else None


def _save_token(token: dict[str, Any], request: Any) -> None:
    ttl = timedelta(seconds=int(token.get("expires_in", 3600)))
    clients.issue_token(db.session, request.client, token["access_token"],
                         token.get("scope", ""), ttl)  # committed with the response


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class TokenLookup:
    """Shared by introspection and revocation: find a token of ours by its value."""

    def query_token(self, token_string: str, token_type_hint: str | None) -> OAuthToken | None:
        return clients.find_token(db.session, token_string)


class Introspection(TokenLookup, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def check_permission(self, token: OAuthToken, client: OAuthClient, request: Any) -> bool:
        # A system may introspect the tokens of its own organization's clients, no others.
        return token.client.organization_id == client.organization_id

    def introspect_token(self, token: OAuthToken) -> dict[str, Any]:
        return {
            "active": True,
            "client_id": token.client.client_id,
            "token_type": "Bearer",
            "scope": token.scope,
            "exp": int(token.expires_at.timestamp()),
            "iat": int(token.issued_at.timestamp()),
            "sub": str(token.client.organization_id),
            "organization_id": str(token.client.organization_id),
        }


class Revocation(TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def revoke_token(self, token: OAuthToken, request: Any) -> None:
        if token.revoked_at is None:
            token.revoked_at = utcnow()  # committed with the response


class HubAuthorizationServer(AuthorizationServer):
    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Response:
        if status_code >= 400:
            body = payload if isinstance(payload, dict) else json.loads(payload)
            body = dict(body)
            if body.get("error") == "invalid_client":
                # One answer for an unknown client and a wrong secret: ids are not confirmed.
                body["error_description"] = _OAUTH_HINTS["invalid_client"]
            body.update(
                type=PROBLEM_TYPE_BASE + "oauth-" + body.get("error", "error").replace("_", "-"),
                title="OAuth request refused",
                status=status_code,
                detail=body.get("error_description") or _OAUTH_HINTS.get(body.get("error", ""), ""),
            )
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", "application/problem+json"))
            return Response(json.dumps(body), status=status_code, headers=headers)
        return super().handle_response(status_code, payload, headers)


_OAUTH_HINTS = {
    "invalid_client": "Client authentication failed: check client_id and client_secret, sent "
    "with HTTP Basic auth (base64 of UTF-8 client_id:client_secret) or as form fields.",
    "unsupported_grant_type": "Use grant_type=client_credentials.",
    "invalid_scope": "Ask only for scopes this client was given.",
    "invalid_request": "The request is missing a required parameter.",
    "invalid_grant": "This token was not issued to your client.",
}


def client_authentication_refusal() -> OAuth2Error | None:
    """What is wrong with how this request authenticates its client, before Authlib reads it.

    A Basic header that is not base64 of UTF-8 `id:secret` is refused here (Authlib would fail
    to decode it); so is a request using Basic and form credentials at once: RFC 6749 §2.3
    allows one method per request, and a wrong Basic secret must not be rescued by the form.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        decoded = ""
    if ":" not in decoded:
        # Answered like any failed client authentication (see HubAuthorizationServer).
        return InvalidClientError(status_code=401)
    if "client_secret" in request.form:
        return InvalidRequestError(
            description="Authenticate the client one way only: HTTP Basic auth or the "
            "client_id and client_secret form fields, not both.")
    return None


class BearerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> OAuthToken | None:
        # One lookup per request even if several decorators ask.
        cache: dict[str, OAuthToken | None] = g.setdefault("_token_lookup", {})
        if token_string not in cache:
            cache[token_string] = clients.find_token(db.session, token_string)
        return cache[token_string]


class HubResourceProtector(ResourceProtector):
    def raise_error_response(self, error: OAuth2Error) -> None:
        challenge = dict(error.get_headers()).get("WWW-Authenticate", "Bearer")
        if isinstance(error, MissingAuthorizationError):
            challenge = 'Bearer realm="maillage"'  # RFC 6750 §3.1: no error code without a token
        if error.status_code == 403:
            raise Problem(
                403, "Insufficient scope",
                "This token lacks the scope this operation needs: "
                f"{' '.join(g.get('required_scopes', []))}. Ask for it at /oauth/token "
                "(the client must have been given it).",
                headers={"WWW-Authenticate": challenge},
            )
        raise Problem(
            401, "Authentication required",
            "Send a valid access token: Authorization: Bearer <token>, from POST /oauth/token. "
            f"({error.description or error.error})",
            headers={"WWW-Authenticate": challenge},
        )


require_oauth = HubResourceProtector()
require_oauth.register_token_validator(BearerValidator())


def current_oauth_token() -> OAuthToken:
    """The token of this request, authenticating now if no view did yet (401 if none)."""
    token = g.get("authlib_server_oauth2_token")
    if token is None:
        try:
            token = require_oauth.acquire_token()
        except OAuth2Error as error:
            require_oauth.raise_error_response(error)
    return token


def current_client_id() -> str:
    """The OAuth client behind this request (what an Idempotency-Key belongs to)."""
    return current_oauth_token().client.client_id


def current_caller() -> Caller:
    token = current_oauth_token()
    client = token.client
    return Caller(
        organization_id=client.organization_id,
        actor=f"client:{client.client_id}",
        is_coordinator=client.organization.is_coordinator,
    )


def require_any_scope(*scopes: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a view: a valid bearer token holding at least one of `scopes` (a change either
    party of a leg may make: the sender with `referrals:write`, the receiver with
    `referrals:respond`)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.required_scopes = [" or ".join(scopes)]  # as the refusal words it
            try:
                require_oauth.acquire_token(list(scopes))  # a list: any of these
            except OAuth2Error as error:
                require_oauth.raise_error_response(error)
            return view(*args, **kwargs)

        apidoc: dict[str, Any] = getattr(view, "_apidoc", {})
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        security = apidoc.setdefault("manual_doc", {}).setdefault("security", [])
        security.extend({"oauth2": [scope]} for scope in scopes)
        return wrapper

    return decorator


def require_scope(*scopes: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Guard a view: a valid bearer token holding every scope in `scopes`."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.required_scopes = scopes
            try:
                # Authlib reads a list as "any of these"; one space-separated entry as "all".
                require_oauth.acquire_token([" ".join(scopes)])
            except OAuth2Error as error:
                require_oauth.raise_error_response(error)
            return view(*args, **kwargs)

        # flask-smorest reads this to document the security requirement.
        apidoc: dict[str, Any] = getattr(view, "_apidoc", {})
        # A function attribute of flask-smorest's, unknown to the type of functools.wraps.
        wrapper._apidoc = apidoc  # type: ignore[attr-defined]
        apidoc.setdefault("manual_doc", {}).setdefault("security", []).append(
            {"oauth2": list(scopes)}
        )
        return wrapper

    return decorator


def init_app(app: Flask) -> None:
    settings = app.config["HUB_SETTINGS"]
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": settings.token_ttl_seconds}
    app.config["OAUTH2_SCOPES_SUPPORTED"] = list(clients.SCOPES)
    authorization_server = HubAuthorizationServer()
    authorization_server.init_app(app, query_client=_query_client, save_token=_save_token)
    authorization_server.register_grant(ClientCredentialsGrant)
    authorization_server.register_endpoint(Introspection)
    authorization_server.register_endpoint(Revocation)

    def refused() -> Response | None:
        refusal = client_authentication_refusal()
        return None if refusal is None else authorization_server.handle_response(*refusal())

    @app.post("/oauth/token")
    def issue_token() -> Response:
        """Client credentials grant."""
        return refused() or authorization_server.create_token_response()

    @app.post("/oauth/introspect")
    def introspect_token() -> Response:
        return refused() or authorization_server.create_endpoint_response(
            Introspection.ENDPOINT_NAME)

    @app.post("/oauth/revoke")
    def revoke_token() -> Response:
        return refused() or authorization_server.create_endpoint_response(
            Revocation.ENDPOINT_NAME)
