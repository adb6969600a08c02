"""Portal users: people who log in with an email and a password, each in one organization with
one role, and what keeps their accounts safe (argon2 hashes, lockout, single-use reset links).

Failed logins are rows in the database, not counters in memory, so the lockout holds across
web processes and restarts.  So are sessions (`PortalSession`): the cookie names one, and a
session ends for every process at once when its user logs out, changes password or is
disabled; a copy of the cookie opens nothing afterwards.  Reset and session tokens are 256-bit
random values stored as SHA-256 digests (like OAuth secrets in `hub.accounts.clients`): the
link in the mail, the cookie in the browser are the only copies.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import ForeignKey, Index, String, delete, false, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub.accounts.callers import Caller, user_caller
from hub.accounts.clients import digest
from hub.db import Base, utcnow
from hub.directory.organizations import Organization
from hub.errors import DomainError


class Role(StrEnum):
    COUNSELLOR = "counsellor"
    PARTNER_STAFF = "partner_staff"
    COORDINATOR = "coordinator"
    ORG_ADMIN = "org_admin"
    HUB_ADMIN = "hub_admin"


class FrenchForm(StrEnum):
    """How French pages agree with the user: « Conseillère », « Conseiller » or the épicène
    « Personne conseillère ».  English has one word for all three."""

    FEMININE = "feminine"
    MASCULINE = "masculine"
    NEUTRAL = "neutral"


# Roles that send referrals, answer them, and watch the network. An organization admin does
# the work of both sides of its organization; a hub admin is a coordinator of the hub.
SENDING_ROLES = frozenset({Role.COUNSELLOR, Role.ORG_ADMIN})
RECEIVING_ROLES = frozenset({Role.PARTNER_STAFF, Role.COUNSELLOR, Role.ORG_ADMIN})
MONITORING_ROLES = frozenset({Role.COORDINATOR, Role.HUB_ADMIN})
# Roles that only make sense in a coordination body, and roles that never do.
COORDINATION_ROLES = MONITORING_ROLES

MIN_PASSWORD_LENGTH = 12
# Failed logins are counted as OWASP advises, so that knowing a colleague's address is not
# enough to lock them out:
# - lockout: this many failures for one email from one client address within the window lock
#   that email for that address only (the owner, from their own address, still signs in);
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
# - rate limit: attempts from one address within the window, whatever the emails tried;
MAX_ATTEMPTS_PER_ADDRESS = 30
# - ceiling: past this many failures for one email within the window, from any addresses (a
#   distributed guess), the email is slowed, not locked: one attempt per EMAIL_PACE at most.
EMAIL_CEILING = 50
EMAIL_PACE = timedelta(seconds=30)
RESET_VALIDITY = timedelta(hours=1)
# A session's last use is written at most this often (not on every page).
SESSION_TOUCH = timedelta(minutes=1)
# An invitation is a reset link that lasts longer: the person may read the mail days later.
INVITE_VALIDITY = timedelta(days=7)

_hasher = PasswordHasher()
# Verified when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    # Stored lower-cased: one account per address, however it is typed.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(5), default="fr")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    # Asked to be mailed about every new leg to the organization (`hub.mailbox.notices`).
    notify_referrals: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Asked for the missed-deadline digests of the organization (`hub.followups.digests`).
    deadline_digests: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A `FrenchForm`: how pages name the user's role in French (neutral until the user says).
    french_form: Mapped[str] = mapped_column(String(10), default=FrenchForm.NEUTRAL,
                                             server_default=FrenchForm.NEUTRAL.value)

    organization: Mapped[Organization] = relationship(lazy="joined")

    @property
    def caller(self) -> Caller:
        return user_caller(self.id, self.organization_id, self.organization.is_coordinator)

    def __repr__(self) -> str:  # never the address nor the hash
        return f"<User {self.id} role={self.role}>"


class LoginFailure(Base):
    """One failed login, kept for the lockout and rate-limit windows only."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_login_failures_email_at", "email", "at"),
                      Index("ix_login_failures_address_at", "address", "at"))


class PortalSession(Base):
    """One logged-in browser.  The cookie holds a 256-bit random token; only its digest is
    kept here, like reset tokens."""

    __tablename__ = "portal_sessions"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime] = mapped_column(index=True)


class PasswordReset(Base):
    __tablename__ = "password_resets"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginRefused(Exception):
    """Why a login did not go through: `invalid` (wrong email or password, or a disabled
    account: the same answer, so nobody learns which), `locked` (this email from this
    address), `rate_limited` (this address), or `slowed` (this email, from everywhere, while
    a distributed guess lasts)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WeakPassword(DomainError):
    http_status = 422
    title = "Weak password"

    minimum: int = MIN_PASSWORD_LENGTH

    def __str__(self) -> str:
        return f"A password needs at least {self.minimum} characters."


class UserRefused(ValueError):
    """A user change the rules refuse: `reason` names which rule (`email`, `email_taken`,
    `role`, `role_unfit`, `french_form`, `self`), the message says it in English for the
    command line."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword()


def create_user(session: Session, *, organization: Organization, email: str, role: str,
                password: str, name: str = "", language: str = "fr",
                french_form: str = FrenchForm.NEUTRAL) -> User:
    """Add a portal user; ValueError for an unknown role, a role unfit for the organization,
    a malformed or taken email, an unknown French form; WeakPassword for a short password."""
    email = normalize_email(email)
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise UserRefused("email", f"Not an email address: {email!r}.")
    check_role_fits(organization, role)
    check_french_form(french_form)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserRefused("email_taken", f"A user with the email {email} already exists.")
    _check_strength(password)
    user = User(id=uuid.uuid4(), organization_id=organization.id, organization=organization,
                email=email, name=name.strip() or email.split("@")[0], role=role,
                password_hash=_hasher.hash(password), language=language,
                french_form=french_form)
    session.add(user)
    session.flush()
    return user


def check_french_form(french_form: str) -> None:
    if french_form not in set(FrenchForm):
        raise UserRefused("french_form", f"Unknown French form {french_form!r}; one of: "
                                         f"{', '.join(FrenchForm)}.")


def check_role_fits(organization: Organization, role: str) -> None:
    """Coordination roles only in a coordination body, the other roles only elsewhere."""
    if role not in set(Role):
        raise UserRefused("role", f"Unknown role {role!r}; one of: {', '.join(Role)}.")
    if (Role(role) in COORDINATION_ROLES) != organization.is_coordinator:
        raise UserRefused("role_unfit",
            f"The role {role} is for {'coordination bodies' if role in COORDINATION_ROLES else 'member organizations'}; "  # noqa: E501
            f"{organization.name} is {'a coordination body' if organization.is_coordinator else 'a member organization'}."  # noqa: E501
        )


def invite_user(session: Session, *, organization: Organization, email: str, role: str,
                name: str = "", language: str = "fr", now: datetime | None = None,
                french_form: str = FrenchForm.NEUTRAL) -> tuple[User, str]:
    """Add a user who chooses their own password through a single-use link (the token
    returned, valid `INVITE_VALIDITY`); until then the account has a random password that
    nobody knows."""
    now = now or utcnow()
    user = create_user(session, organization=organization, email=email, role=role,
                       password=secrets.token_urlsafe(32), name=name, language=language,
                       french_form=french_form)
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(token_digest=digest(token), user_id=user.id, created_at=now,
                              expires_at=now + INVITE_VALIDITY))
    session.flush()
    return user, token


def _check_not_self(user: User, by: User) -> None:
    # An administrator who demotes or disables themself may leave nobody to undo it.
    if user.id == by.id:
        raise UserRefused("self", "Administrators do not change their own role or access.")


def change_role(session: Session, user: User, role: str, *, by: User) -> None:
    """Give `user` another role fit for their organization."""
    _check_not_self(user, by)
    check_role_fits(user.organization, role)
    user.role = role
    session.flush()


def set_french_form(session: Session, user: User, french_form: str) -> None:
    """How French pages address `user`: set by the person (their account page) or by their
    organization's admin."""
    check_french_form(french_form)
    user.french_form = french_form
    session.flush()


def set_disabled(session: Session, user: User, disabled: bool, *, by: User,
                 now: datetime | None = None) -> None:
    """Disable (no login, every session ends) or enable an account; pending reset links stop
    working when disabled."""
    _check_not_self(user, by)
    now = now or utcnow()
    user.disabled_at = now if disabled else None
    if disabled:
        for reset in session.scalars(select(PasswordReset).where(
                PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))):
            reset.used_at = now
        end_sessions(session, user.id)
    session.flush()


def authenticate(session: Session, email: str, password: str, *, address: str,
                 now: datetime | None = None) -> User:
    """The user with this email and password, or LoginRefused.  Every failure is recorded
    (not a slowed attempt: its password is not even tried); the caller commits it even though
    the login failed.  `address` is the client's (behind HUB_TRUSTED_PROXIES, the one the
    proxies saw)."""
    now = now or utcnow()
    email = normalize_email(email)[:254]
    address = address[:64]
    since = now - FAILURE_WINDOW
    session.execute(delete(LoginFailure).where(LoginFailure.at < since))  # keep it small
    # A COUNT has exactly one row: scalar_one() is what scalar() returns, typed as an int.
    by_address = session.execute(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.address == address, LoginFailure.at >= since)).scalar_one()
    if by_address >= MAX_ATTEMPTS_PER_ADDRESS:
        raise LoginRefused("rate_limited")
    # The email's failures, from everywhere and from this address, read together.
    by_email, by_pair, last = session.execute(select(
        func.count(), func.count().filter(LoginFailure.address == address),
        func.max(LoginFailure.at)).where(
        LoginFailure.email == email, LoginFailure.at >= since)).one()
    if by_pair >= MAX_FAILURES:
        _fail(session, email, address, now)
        raise LoginRefused("locked")
    if by_email >= EMAIL_CEILING and last is not None and last > now - EMAIL_PACE:
        raise LoginRefused("slowed")
    user = session.scalar(select(User).where(User.email == email))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        _fail(session, email, address, now)
        raise LoginRefused("invalid") from None
    if user is None or user.disabled_at is not None:
        _fail(session, email, address, now)
        raise LoginRefused("invalid")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    # This address's failures are forgiven; others' still count towards their lock and the
    # ceiling (an attack elsewhere goes on whether the owner signed in or not).
    session.execute(delete(LoginFailure).where(LoginFailure.email == email,
                                               LoginFailure.address == address))
    return user


def _fail(session: Session, email: str, address: str, now: datetime) -> None:
    session.add(LoginFailure(email=email, address=address, at=now))
    session.flush()


def active_user(session: Session, user_id: uuid.UUID) -> User | None:
    user = session.get(User, user_id)
    return user if user is not None and user.disabled_at is None else None


def start_session(session: Session, user: User, *, idle: timedelta,
                  now: datetime | None = None) -> str:
    """A new session for `user`: the token for the cookie.  Sessions idle for longer than
    `idle` (anyone's) are deleted on the way, which keeps the table small."""
    now = now or utcnow()
    session.execute(delete(PortalSession).where(PortalSession.seen_at < now - idle))
    token = secrets.token_urlsafe(32)
    session.add(PortalSession(token_digest=digest(token), user_id=user.id, created_at=now,
                              seen_at=now))
    session.flush()
    return token


def session_user(session: Session, token: str, *, idle: timedelta,
                 now: datetime | None = None) -> User | None:
    """The active user of the session `token` names, if it has not ended nor been idle for
    longer than `idle`; None otherwise (and an expired session is ended)."""
    now = now or utcnow()
    found = session.get(PortalSession, digest(token))
    if found is None:
        return None
    if now - found.seen_at > idle:
        session.delete(found)
        session.flush()
        return None
    user = active_user(session, found.user_id)
    if user is not None and now - found.seen_at > SESSION_TOUCH:
        found.seen_at = now  # committed with the page
    return user


def end_session(session: Session, token: str) -> None:
    session.execute(delete(PortalSession).where(PortalSession.token_digest == digest(token)))


def end_sessions(session: Session, user_id: uuid.UUID) -> None:
    """End every session of a user, in every browser (password changed, account disabled)."""
    session.execute(delete(PortalSession).where(PortalSession.user_id == user_id))


def start_password_reset(session: Session, email: str, *, now: datetime | None = None
                         ) -> tuple[User, str] | None:
    """A single-use reset token for the active user with this email (None when there is no
    such user: the page says the same either way)."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.email == normalize_email(email)[:254]))
    if user is None or user.disabled_at is not None:
        return None
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(token_digest=digest(token), user_id=user.id, created_at=now,
                              expires_at=now + RESET_VALIDITY))
    session.flush()
    return user, token


def reset_target(session: Session, token: str, now: datetime | None = None) -> PasswordReset | None:
    """The unused, unexpired reset of this token, if any."""
    reset = session.get(PasswordReset, digest(token))
    if reset is None or reset.used_at is not None or reset.expires_at <= (now or utcnow()):
        return None
    return reset


def reset_password(session: Session, token: str, password: str,
                   now: datetime | None = None) -> User | None:
    """Set a new password with a reset token, once; None if the link is unknown, used or
    expired. Other reset links of the user stop working too, every session of the user ends,
    and the lockout is lifted."""
    now = now or utcnow()
    reset = reset_target(session, token, now)
    if reset is None:
        return None
    _check_strength(password)
    user = session.get(User, reset.user_id)
    if user is None or user.disabled_at is not None:
        return None
    user.password_hash = _hasher.hash(password)
    for other in session.scalars(select(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))):
        other.used_at = now
    end_sessions(session, user.id)
    session.execute(delete(LoginFailure).where(LoginFailure.email == user.email))
    session.flush()
    return user


def names_of(session: Session, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not user_ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
