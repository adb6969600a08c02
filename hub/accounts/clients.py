"""Who may call the hub: OAuth clients of partner systems, their tokens, and the scopes.

Client secrets and access tokens are stored only as SHA-256 digests.  Both are 256-bit random
values made by the hub, so a fast digest is enough (a slow password hash protects guessable
secrets, which these are not) and keeps token checks cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, Text, bindparam, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub.db import Base, utcnow
from hub.directory.organizations import Organization

# Every scope of docs/design.md §4, with what it allows.
SCOPES: dict[str, str] = {
    "directory:read": "Read the directory of organizations.",
    "directory:write": "Change the organization's own directory entry.",
    "participants:read": "Read participants the organization may see.",
    "participants:write": "Register participants.",
    "consents:read": "Read participants' consents.",
    "consents:write": "Record and withdraw consents.",
    "referrals:read": "Read the organization's referrals and their history.",
    "referrals:write": "Create, send and cancel referrals.",
    "referrals:respond": "Answer inbound referrals (acknowledge, accept, decline, ...).",
    "events:read": "Read the organization's event feed.",
    "webhooks:manage": "Manage webhook endpoints and deliveries.",
    "privacy:manage": "Keep the organization's register of confidentiality incidents.",
    "peers:read": "Find peers (pseudonymous profiles) and read the organization's peer matches.",
    "peers:write": "Enrol peers, propose peer matches, answer and end them.",
    "opportunities:read": "Browse the network's opportunities, the candidates referred to the "
    "organization's own, and the regions it follows.",
    "opportunities:write": "Publish and withdraw the organization's opportunities; choose the "
    "regions it follows.",
    "network:monitor": "Coordinators: watch handoffs across the network.",
    "hub:admin": "Hub administrators: set the deadline policies (coordination bodies only, "
    "given only when named in `hub client create --scopes`).",
}
COORDINATOR_ONLY_SCOPES = frozenset({"network:monitor", "hub:admin"})
# What `hub client create` grants when no scopes are named: what a partner system needs.
# The incident register is named on purpose, not handed to every system connected.
DEFAULT_PARTNER_SCOPES = tuple(s for s in SCOPES
                               if s not in COORDINATOR_ONLY_SCOPES and s != "privacy:manage")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class OAuthClient(Base):
    """A partner system allowed to call the API on behalf of one organization."""

    __tablename__ = "oauth_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(48), unique=True)
    secret_digest: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(lazy="joined")

    # --- authlib.oauth2.rfc6749.ClientMixin ---
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """All of the client's scopes when none are asked; the asked ones if the client holds
        them all; None (invalid_scope) otherwise, rather than a token missing what was asked."""
        granted = self.scope.split()
        if not scope:
            return " ".join(granted)
        asked = scope.split()
        return " ".join(asked) if set(asked) <= set(granted) else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.revoked_at is None and hmac.compare_digest(
            self.secret_digest, digest(client_secret)
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class OAuthToken(Base):
    """An access token, known by its digest only."""

    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("oauth_clients.id"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    client: Mapped[OAuthClient] = relationship(lazy="joined")

    # --- authlib.oauth2.rfc6749.TokenMixin ---
    def check_client(self, client: OAuthClient) -> bool:
        return self.client_pk == client.id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None or self.client.revoked_at is not None

    @property
    def organization_id(self) -> uuid.UUID:
        return self.client.organization_id


def create_client(
    session: Session,
    *,
    organization: Organization,
    scopes: list[str] | None = None,
    name: str = "",
) -> tuple[OAuthClient, str]:
    """Register a partner system; returns the client and its secret, which is not kept."""
    scopes = list(scopes) if scopes else list(DEFAULT_PARTNER_SCOPES)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")
    if not organization.is_coordinator and COORDINATOR_ONLY_SCOPES & set(scopes):
        raise ValueError("Only coordination organizations may hold "
                         f"{' or '.join(sorted(COORDINATOR_ONLY_SCOPES & set(scopes)))}.")
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=secrets.token_urlsafe(18),
        secret_digest=digest(secret),
        organization_id=organization.id,
        organization=organization,
        name=name or f"{organization.name} system",
        scope=" ".join(dict.fromkeys(scopes)),
    )
    session.add(client)
    session.flush()
    return client, secret


def issue_token(
    session: Session, client: OAuthClient, access_token: str, scope: str, ttl: timedelta
) -> OAuthToken:
    now = utcnow()
    token = OAuthToken(
        token_digest=digest(access_token),
        client_pk=client.id,
        client=client,
        scope=scope,
        issued_at=now,
        expires_at=now + ttl,
    )
    session.add(token)
    return token


# Every API request asks it: built once, with a bound value (see
# `hub.consent.consents._COVERED_AMONG`).
_TOKEN_BY_DIGEST = select(OAuthToken).where(
    OAuthToken.token_digest == bindparam("token_digest", type_=String()))


def find_token(session: Session, access_token: str) -> OAuthToken | None:
    return session.scalar(_TOKEN_BY_DIGEST, {"token_digest": digest(access_token)})


def revoke_client(session: Session, client: OAuthClient) -> None:
    """Revoke a client and every token it holds."""
    now = utcnow()
    client.revoked_at = now
    session.execute(
        update(OAuthToken)
        .where(OAuthToken.client_pk == client.id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
