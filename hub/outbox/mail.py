"""Outgoing mail: queued in the transaction of the change that causes it, sent later by the
worker through a transport, with retries.

Why a queue: a mail must exist only if the change that caused it commits, and a slow or
unreachable mail server must never hold up a web request.  So:

- `queue_mail(session, ...)` adds a row to `mail_outbox` in the *caller's* transaction (it never
  commits, never talks to a mail server): rolled back with the change, the mail never existed.
- `send_due(sessions, transport, now=...)` is the background sender.  The worker's mail loop
  calls it (`hub worker`, or the background threads of `hub run`); it must never be called in a
  web request.  It claims due rows in a short transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`,
  so several workers share the queue), sends outside any transaction, then records each result
  in a transaction of its own: sent, or failed and retried later (`RETRY_DELAYS`), or given up
  on after `GIVE_UP_AFTER` (or at once when the server refuses the recipient for good), with
  `last_error` kept for the operator.
- A transport sends one `EmailMessage`: `SmtpTransport` (HUB_SMTP_HOST set) or `FileTransport`,
  the embedded default, which writes one .eml file per message under ./var/mail/.

Delivery is at least once: a worker that dies between handing a message to the server and
recording it sends it again when its lease runs out.  The Message-ID stays the same across
attempts (and the .eml file name too), so such a duplicate can be recognised.

Recipients' addresses, subjects and bodies are personal data: they are stored encrypted
(`EncryptedText`), like every other personal column of the hub.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import smtplib
import socket
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import BigInteger, Index, Integer, String, Table, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.crypto import EncryptedText
from hub.db import Base, table_of, utcnow

log = logging.getLogger(__name__)

# The INSERTs with ON CONFLICT, by dialect name (a dict of the two would type as their common
# base, which has no `on_conflict_do_nothing`).
_DIALECT_INSERTS: dict[str, Callable[[type[Base] | Table], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert, "sqlite": sqlite.insert}

DEFAULT_SENDER = "Maillage <maillage@localhost>"
DEFAULT_SMTP_PORT = 587
SMTP_TIMEOUT_SECONDS = 30.0

# Wait after the 1st, 2nd, ... failed attempt; the last delay repeats until GIVE_UP_AFTER.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
# No attempt is scheduled later than this after the mail was queued: the mail is given up.
GIVE_UP_AFTER = timedelta(hours=24)
# How long a claimed mail is reserved for the worker that claimed it.  A worker sends a batch
# one mail at a time and stops starting new sends at half the lease (handing the rest back), so
# a lease never runs out while its mail is still being sent; a worker that dies leaves its mails
# to be claimed again when their lease runs out.
DEFAULT_LEASE = timedelta(minutes=10)

Id = BigInteger().with_variant(Integer, "sqlite")


class OutgoingMail(Base):
    """One mail to send: due when `next_attempt_at` has come; `next_attempt_at` is NULL once the
    mail is sent (`sent_at`) or given up (`given_up_at`)."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    to_address: Mapped[str] = mapped_column(EncryptedText)
    subject: Mapped[str] = mapped_column(EncryptedText)
    body_text: Mapped[str] = mapped_column(EncryptedText)
    body_html: Mapped[str | None] = mapped_column(EncryptedText)
    language: Mapped[str] = mapped_column(String(35))
    # Makes queueing idempotent: one mail per key, ever (e.g. "deadline-reminder:<leg>:<check>").
    # Never put personal data in it: it is stored in clear.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Random; the Message-ID is made from it, so every attempt sends the same Message-ID.
    message_token: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed attempts
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    given_up_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))

    # Partial: only mails still to send are indexed, however many sent ones the table keeps.
    __table_args__ = (Index("ix_mail_outbox_due", "next_attempt_at",
                            postgresql_where=sql_text("next_attempt_at IS NOT NULL"),
                            sqlite_where=sql_text("next_attempt_at IS NOT NULL")),)

    def __repr__(self) -> str:  # never show the address or the contents
        return f"<OutgoingMail {self.id} attempts={self.attempts} sent_at={self.sent_at}>"


# -- queueing ------------------------------------------------------------------------------------


def queue_mail(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    language: str = "fr",
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> OutgoingMail | None:
    """Queue one mail in the caller's transaction (flushed, not committed); the worker sends it
    once that transaction has committed.  Returns None, without error, when a mail with the
    same `dedupe_key` was already queued (by a committed transaction, or earlier in this one).

    Raises ValueError at once for what could never be sent (a malformed address, a line break
    in the subject), instead of queueing a mail that would fail on every attempt.
    """
    now = now or utcnow()
    build_message(to=to, subject=subject, text=text, html=html, language=language,
                  sender=DEFAULT_SENDER, message_id="<check@localhost>", date=now)
    values = {
        "to_address": to,
        "subject": subject,
        "body_text": text,
        "body_html": html,
        "language": language,
        "dedupe_key": dedupe_key,
        "message_token": uuid.uuid4().hex,
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
    }
    if dedupe_key is None:
        mail = OutgoingMail(**values)
        session.add(mail)
        session.flush()
        return mail
    # ON CONFLICT DO NOTHING rather than a lookup: two transactions queueing the same key at
    # once neither fail nor both insert (PostgreSQL makes the second wait for the first).
    dialect = session.get_bind().dialect.name
    insert = _DIALECT_INSERTS[dialect]
    statement = (
        insert(OutgoingMail)
        .values(values)
        .on_conflict_do_nothing(index_elements=[OutgoingMail.dedupe_key])
        .returning(OutgoingMail)
    )
    return session.scalars(statement).one_or_none()


def queue_mails(session: Session, mails: list[dict[str, str]], *,
                now: datetime | None = None) -> int:
    """`queue_mail` for many mails at once (each a dict of `to`, `subject`, `text`, `language`,
    `dedupe_key`), in one INSERT; returns how many were queued (a key queued before is
    skipped).  A mail no server would take (a malformed address) is logged and left out."""
    now = now or utcnow()
    rows = []
    for mail in mails:
        problem = _address_problem(mail["to"]) or ("a line break in the subject" if "\n" in mail[
            "subject"] or "\r" in mail["subject"] else None)
        if problem:
            log.warning("mail %s not queued: %s", mail["dedupe_key"], problem)
            continue
        rows.append({"to_address": mail["to"], "subject": mail["subject"],
                     "body_text": mail["text"], "body_html": None,
                     "language": mail["language"], "dedupe_key": mail["dedupe_key"],
                     "message_token": uuid.uuid4().hex, "created_at": now, "attempts": 0,
                     "next_attempt_at": now})
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = _DIALECT_INSERTS[dialect]
    table = table_of(OutgoingMail)
    # Core, not the ORM's bulk insert: no per-row bookkeeping for rows nobody reads back.
    statement = (insert(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key])
                 .returning(table.c.id))
    return len(session.connection().execute(statement, rows).all())


@functools.lru_cache(maxsize=4096)
def _address_problem(to: str) -> str | None:
    """Why no server would take `to`, or None: what `queue_mail` learns by building the whole
    message (milliseconds each), remembered per address, since a scheduled check may queue
    thousands of mails to a few hundred contacts."""
    try:
        recipient(to)
    except ValueError as error:
        return str(error)
    return None


# -- messages ------------------------------------------------------------------------------------


def build_message(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    language: str,
    sender: str,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """An RFC 5322 message in UTF-8: quoted-printable bodies (readable, 7-bit safe for any
    server), encoded-word headers where they hold accents; text/plain, or
    multipart/alternative when there is an HTML version."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(date.astimezone(UTC))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = language  # after the content, which resets Content-*
    return message


def recipient(to: str) -> Address:
    """The one address of `to` ("name@domain" or "Display Name <name@domain>"), its domain in
    ASCII (IDNA: "exémple.fr" -> "xn--exmple-cva.fr").  ValueError when it is not exactly one
    well-formed address, or when its local part is not ASCII (that needs SMTPUTF8, which many
    servers lack)."""
    probe = EmailMessage()
    try:
        probe["To"] = to
        addresses = probe["To"].addresses
        defects = probe["To"].defects
    except (ValueError, IndexError) as error:  # the parser can fail on e.g. "name@"
        raise ValueError(f"malformed recipient address: {error}") from None
    if defects or len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError("a mail goes to exactly one well-formed address (name@domain), "
                         "with no accent before the @")
    address = addresses[0]
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("malformed domain in the recipient address") from None
    return Address(display_name=address.display_name, username=address.username, domain=domain)


def _sender_domain(sender: str) -> str:
    try:
        return recipient(sender).domain
    except ValueError:
        return "localhost"


def message_of(mail: OutgoingMail, sender: str) -> EmailMessage:
    """The message for a queued mail, the same at every attempt (Date: when it was queued)."""
    return build_message(
        to=mail.to_address, subject=mail.subject, text=mail.body_text, html=mail.body_html,
        language=mail.language, sender=sender,
        message_id=f"<{mail.message_token}@{_sender_domain(sender)}>", date=mail.created_at,
    )


# -- transports ----------------------------------------------------------------------------------


class Transport(Protocol):
    """Sends one message (From is `sender`) or raises; `PermanentMailError` means that trying
    again is pointless (the mail is given up at once), anything else is retried."""

    sender: str

    def send(self, message: EmailMessage) -> None: ...


class PermanentMailError(Exception):
    """The server refused the mail for good (e.g. 550 no such user): do not retry."""


_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class FileTransport:
    """Writes each message to `directory` as `<date>-<message id>.eml` (RFC 5322, readable by
    any mail client).  The file appears complete or not at all: it is written under a hidden
    temporary name, flushed to disk, then renamed.  Files are readable by their owner only,
    since they hold personal data in clear.  Sending a message again (same Message-ID)
    replaces its file."""

    def __init__(self, directory: str | os.PathLike[str], sender: str = DEFAULT_SENDER) -> None:
        self.directory = Path(directory)
        self.sender = sender

    def __repr__(self) -> str:
        return f"<FileTransport {self.directory}>"

    def file_name(self, message: EmailMessage) -> str:
        date = message["Date"].datetime if message["Date"] else None
        stamp = (date or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        local_part = str(message["Message-ID"]).strip("<>").split("@")[0]
        return f"{stamp}-{_UNSAFE_IN_FILE_NAME.sub('_', local_part)[:100]}.eml"

    def send(self, message: EmailMessage) -> None:
        if message["Message-ID"] is None:
            message["Message-ID"] = make_msgid(domain=_sender_domain(self.sender))
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.directory / self.file_name(message)
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:  # mkstemp: mode 0600
                file.write(message.as_bytes())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable (POSIX)
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


class SmtpTransport:
    """Sends through an SMTP server (submission: port 587 with STARTTLS).  With `starttls`, a
    server that does not offer STARTTLS is an error: nothing is ever sent in clear instead.
    Logs in when a username is given.  One connection per message."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_SMTP_PORT,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        sender: str = DEFAULT_SENDER,
        timeout: float = SMTP_TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.sender = sender
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname

    def __repr__(self) -> str:  # never show the password
        return f"<SmtpTransport {self.host}:{self.port} starttls={self.starttls}>"

    def send(self, message: EmailMessage) -> None:
        if self._local_hostname is None:  # the EHLO name; looked up once, not per message
            self._local_hostname = socket.getfqdn()
        with smtplib.SMTP(self.host, self.port, local_hostname=self._local_hostname,
                          timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password)
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as refused:
                codes = [code for code, _ in refused.recipients.values()]
                if codes and all(500 <= code < 600 for code in codes):
                    raise PermanentMailError(_describe(refused)) from refused
                raise


def parse_flag(value: bool | str) -> bool:
    """`true/false`, `yes/no`, `on/off`, `1/0` (environment variables are strings)."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {value!r} (use true or false)")


def default_mail_dir() -> Path:
    """./var/mail/ of the directory the hub is started from (next to the default SQLite)."""
    return Path("var").resolve() / "mail"


def transport_from_settings(
    *,
    smtp_host: str = "",
    smtp_port: int | str = DEFAULT_SMTP_PORT,
    smtp_username: str = "",
    smtp_password: str = "",
    smtp_starttls: bool | str = True,
    mail_from: str = DEFAULT_SENDER,
    mail_dir: str | os.PathLike[str] | None = None,
) -> Transport:
    """SMTP when a host is configured, else .eml files under `mail_dir` (default ./var/mail/).
    ValueError for settings that cannot work (a sender that is not an address, a bad flag)."""
    sender = mail_from or DEFAULT_SENDER
    try:
        recipient(sender)
    except ValueError:
        raise ValueError(f"HUB_MAIL_FROM is not a mail address: {sender!r}") from None
    if smtp_host:
        return SmtpTransport(
            smtp_host, int(smtp_port or DEFAULT_SMTP_PORT), smtp_username, smtp_password,
            parse_flag(smtp_starttls), sender,
        )
    return FileTransport(mail_dir or default_mail_dir(), sender)


# -- sending -------------------------------------------------------------------------------------


def retry_at(mail: OutgoingMail, failed_at: datetime) -> datetime | None:
    """When to try again after the `mail.attempts`-th failure, or None to give up."""
    delay = RETRY_DELAYS[min(mail.attempts, len(RETRY_DELAYS)) - 1]
    at = failed_at + delay
    return None if at > mail.created_at + GIVE_UP_AFTER else at


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _claim(
    sessions: Callable[[], Session], sender: str, now: datetime, lease_until: datetime,
    limit: int,
) -> list[tuple[int, datetime, EmailMessage | Exception]]:
    """Lease up to `limit` due mails (oldest due first) in one short transaction; for each:
    its id, when it was due (to hand it back), and its message (or why none can be built)."""
    with sessions() as session, session.begin():
        candidates = (
            select(OutgoingMail.id, OutgoingMail.next_attempt_at)
            .where(OutgoingMail.next_attempt_at <= now)
            .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        due: dict[int, datetime] = {}
        for mail_id, due_at in session.execute(candidates):
            assert due_at is not None  # `next_attempt_at <= now` leaves the NULLs out
            due[mail_id] = due_at
        if not due:
            return []
        # Leased only if still due: on SQLite the candidates were read before this transaction
        # took the write lock, and another worker may have leased some of them meanwhile.
        leased = set(session.scalars(
            update(OutgoingMail)
            .where(OutgoingMail.id.in_(due), OutgoingMail.next_attempt_at <= now)
            .values(next_attempt_at=lease_until)
            .returning(OutgoingMail.id),
            execution_options={"synchronize_session": False},
        ))
        mails = session.scalars(select(OutgoingMail).where(OutgoingMail.id.in_(leased)))
        claimed: list[tuple[int, datetime, EmailMessage | Exception]] = []
        for mail in sorted(mails, key=lambda m: (due[m.id], m.id)):
            try:
                message: EmailMessage | Exception = message_of(mail, sender)
            except Exception as error:  # undecryptable data, a sender that cannot be used...
                message = error
            claimed.append((mail.id, due[mail.id], message))
        return claimed


def _record(
    sessions: Callable[[], Session], mail_id: int, lease_until: datetime, now: datetime,
    error: Exception | None,
) -> bool:
    """Record one attempt, if the mail is still leased to us; whether it was sent."""
    with sessions() as session, session.begin():
        still_ours = (OutgoingMail.id == mail_id, OutgoingMail.next_attempt_at == lease_until)
        if error is None:
            session.execute(update(OutgoingMail).where(*still_ours)
                            .values(sent_at=now, next_attempt_at=None))
            return True
        mail = session.scalars(select(OutgoingMail).where(*still_ours)).one_or_none()
        if mail is None:
            return False
        mail.attempts += 1
        mail.last_error = _describe(error)
        mail.next_attempt_at = (None if isinstance(error, PermanentMailError)
                                else retry_at(mail, now))
        if mail.next_attempt_at is None:
            mail.given_up_at = now
            log.warning("mail %s given up after %s attempt(s): %s",
                        mail_id, mail.attempts, mail.last_error)
        else:
            log.info("mail %s failed (attempt %s), retrying at %s: %s",
                     mail_id, mail.attempts, mail.next_attempt_at.isoformat(), mail.last_error)
        return False


def _hand_back(sessions: Callable[[], Session], leased: list[tuple[int, datetime]],
               lease_until: datetime) -> None:
    with sessions() as session, session.begin():
        for mail_id, due in leased:
            session.execute(update(OutgoingMail)
                            .where(OutgoingMail.id == mail_id,
                                   OutgoingMail.next_attempt_at == lease_until)
                            .values(next_attempt_at=due))


def send_due(
    sessions: Callable[[], Session],
    transport: Transport,
    *,
    now: datetime | None = None,
    limit: int = 50,
    lease: timedelta = DEFAULT_LEASE,
) -> int:
    """Send the mails due at `now` (at most `limit`); returns how many were sent.

    The background sender: the worker's mail loop calls it, never a web request (a mail server
    can take `SMTP_TIMEOUT_SECONDS` to answer).  Safe in several workers at once.  No
    transaction is open while a message is being sent.  A failure is recorded (attempts,
    last_error) and retried per `RETRY_DELAYS` until `GIVE_UP_AFTER`.
    """
    now = now or utcnow()
    lease_until = now + lease
    claimed = _claim(sessions, transport.sender, now, lease_until, limit)
    stop_starting = time.monotonic() + lease.total_seconds() / 2
    sent = 0
    for position, (mail_id, _due, message) in enumerate(claimed):
        if time.monotonic() > stop_starting:
            _hand_back(sessions, [(i, d) for i, d, _ in claimed[position:]], lease_until)
            break
        error: Exception | None = message if isinstance(message, Exception) else None
        if error is None:
            assert isinstance(message, EmailMessage)
            try:
                transport.send(message)
            except Exception as exc:
                error = exc
        if _record(sessions, mail_id, lease_until, now, error):
            sent += 1
    return sent


__all__ = [
    "DEFAULT_SENDER",
    "GIVE_UP_AFTER",
    "RETRY_DELAYS",
    "FileTransport",
    "OutgoingMail",
    "PermanentMailError",
    "SmtpTransport",
    "Transport",
    "build_message",
    "default_mail_dir",
    "parse_flag",
    "queue_mail",
    "queue_mails",
    "send_due",
    "transport_from_settings",
]
