"""Outgoing mail (hub.outbox.mail): queued in the caller's transaction, sent after commit by the
background sender through a transport, retried on a schedule, encrypted at rest.

The database is shared by every test of a run, so each test uses addresses and dedupe keys of
its own and looks only at its own messages; each leaves its mails sent or given up, so that no
later test (with a later injected `now`) finds them due.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import secrets
import socketserver
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hub import crypto
from hub.db import utcnow
from hub.outbox import mail
from hub.outbox.mail import (
    FileTransport,
    OutgoingMail,
    PermanentMailError,
    SmtpTransport,
    queue_mail,
    send_due,
    transport_from_settings,
)

SENDER = "Maillage <no-reply@maillage.example>"
SUBJECT = "Rappel : la demande de Zoé n’a pas reçu de réponse — « échéance dépassée »"
TEXT = ("Bonjour Éloïse,\n\nLa référence envoyée à l’organisme Accès-Emploi attend toujours "
        "une réponse.\nMerci de vérifier où en est le dossier.\n\n— L’équipe Maillage\n")
HTML = "<p>Bonjour Éloïse,</p><p>La référence attend toujours une réponse.</p>\n"
MANY = 10_000  # send_due's limit in tests: other tests' mails never hide this test's


def sessions_of(app: Flask) -> Callable[[], Session]:
    return app.extensions["hub_db"][1]


def new_address() -> str:
    return f"eloise.{secrets.token_hex(4)}@example.org"


def addressed_to(message: EmailMessage) -> str:
    return message["To"].addresses[0].addr_spec


@dataclass
class FakeTransport:
    """A mail server stand-in: records what it is given; `fail` may return an error to raise."""

    fail: Callable[[EmailMessage], BaseException | None] = lambda _message: None
    sender: str = SENDER
    calls: list[EmailMessage] = field(default_factory=list)
    sent: list[EmailMessage] = field(default_factory=list)

    def send(self, message: EmailMessage) -> None:
        self.calls.append(message)
        error = self.fail(message)
        if error is not None:
            raise error
        self.sent.append(message)

    def calls_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.calls if addressed_to(m) == address]

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.sent if addressed_to(m) == address]


def queue(app: Flask, address: str, **overrides: object) -> int:
    """Queue one mail and commit; its id."""
    with sessions_of(app)() as session, session.begin():
        arguments: dict[str, object] = {"to": f"Éloïse Tremblay <{address}>",
                                        "subject": SUBJECT, "text": TEXT, **overrides}
        queued = queue_mail(session, **arguments)  # type: ignore[arg-type]
        assert queued is not None
        return queued.id


def load(app: Flask, mail_id: int) -> OutgoingMail:
    with sessions_of(app)() as session:
        row = session.get(OutgoingMail, mail_id)
        assert row is not None
        return row


# -- after commit, never before -----------------------------------------------------------------


def test_a_mail_queued_in_a_rolled_back_transaction_is_never_sent(app: Flask) -> None:
    address, key = new_address(), f"test-rollback:{secrets.token_hex(4)}"
    with sessions_of(app)() as session:
        session.begin()
        queued = queue_mail(session, to=address, subject=SUBJECT, text=TEXT, dedupe_key=key)
        assert queued is not None and queued.id is not None
        session.rollback()
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=utcnow() + timedelta(days=2), limit=MANY)
    assert transport.calls_to(address) == []
    with sessions_of(app)() as session:
        assert session.scalar(select(OutgoingMail).where(OutgoingMail.dedupe_key == key)) is None


def test_a_queued_mail_is_invisible_to_the_sender_until_its_transaction_commits(
    app: Flask,
) -> None:
    address = new_address()
    transport = FakeTransport()
    with sessions_of(app)() as session, session.begin():
        queue_mail(session, to=address, subject=SUBJECT, text=TEXT)
        if session.get_bind().dialect.name == "postgresql":  # SQLite: one writer at a time
            send_due(sessions_of(app), transport, now=utcnow() + timedelta(seconds=1),
                     limit=MANY)
            assert transport.calls_to(address) == []
    send_due(sessions_of(app), transport, now=utcnow() + timedelta(seconds=1), limit=MANY)
    assert len(transport.sent_to(address)) == 1


def test_after_commit_the_sender_writes_a_parseable_eml_file(app: Flask, tmp_path: Path) -> None:
    address = new_address()
    mail_id = queue(app, address, html=HTML)
    transport = FileTransport(tmp_path / "mail", sender=SENDER)
    now = utcnow() + timedelta(seconds=1)
    assert send_due(sessions_of(app), transport, now=now, limit=MANY) >= 1

    files = {}
    for path in (tmp_path / "mail").iterdir():
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        files[addressed_to(parsed)] = (path, parsed)  # type: ignore[arg-type]
    path, message = files[address]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[A-Za-z0-9._-]+\.eml", path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # personal data: the owner's only
    assert not [p for p in (tmp_path / "mail").iterdir() if p.name.endswith(".tmp")]

    assert message["To"].addresses[0].display_name == "Éloïse Tremblay"
    assert message["Subject"] == SUBJECT
    assert message["From"] == SENDER
    assert re.fullmatch(r"<[0-9a-f]{32}@maillage\.example>", message["Message-ID"])
    assert message["Date"].datetime is not None
    assert message["Content-Language"] == "fr"
    assert message.get_body(("plain",)).get_content() == TEXT
    assert message.get_body(("html",)).get_content() == HTML
    assert all(byte < 128 for byte in path.read_bytes())  # 7-bit: QP bodies, encoded headers

    row = load(app, mail_id)
    assert row.sent_at == now and row.next_attempt_at is None and row.attempts == 0
    # Sent once: a later pass does not send it again.
    again = FakeTransport()
    send_due(sessions_of(app), again, now=now + timedelta(days=3), limit=MANY)
    assert again.calls_to(address) == []


def test_the_default_transport_writes_under_var_mail_of_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    transport = transport_from_settings(mail_from=SENDER)
    assert isinstance(transport, FileTransport)
    assert transport.directory == tmp_path.resolve() / "var" / "mail"
    message = mail.build_message(to="zoe@example.org", subject="Bienvenue à bord",
                                 text="Voilà.\n", html=None, language="fr", sender=SENDER,
                                 message_id="<abc@maillage.example>", date=utcnow())
    transport.send(message)
    (written,) = (tmp_path / "var" / "mail").iterdir()
    assert written.name.endswith("-abc.eml")
    assert stat.S_IMODE((tmp_path / "var" / "mail").stat().st_mode) == 0o700


def test_transport_from_settings_chooses_smtp_when_a_host_is_set() -> None:
    transport = transport_from_settings(smtp_host="smtp.example.org", smtp_port="2525",
                                        smtp_username="hub", smtp_password="s3cret",
                                        smtp_starttls="false", mail_from=SENDER)
    assert isinstance(transport, SmtpTransport)
    assert (transport.host, transport.port, transport.username, transport.starttls,
            transport.sender) == ("smtp.example.org", 2525, "hub", False, SENDER)
    assert "s3cret" not in repr(transport)
    assert transport_from_settings(smtp_host="smtp.example.org").starttls is True  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="yes/no"):
        transport_from_settings(smtp_host="smtp.example.org", smtp_starttls="maybe")
    with pytest.raises(ValueError, match="HUB_MAIL_FROM"):
        transport_from_settings(mail_from="Maillage")


# -- queueing -----------------------------------------------------------------------------------


def test_a_dedupe_key_makes_queueing_again_a_no_op(app: Flask) -> None:
    address, key = new_address(), f"deadline-reminder:{secrets.token_hex(4)}:acknowledge"
    with sessions_of(app)() as session, session.begin():
        first = queue_mail(session, to=address, subject=SUBJECT, text=TEXT, dedupe_key=key)
        assert first is not None and first.subject == SUBJECT
        # Again in the same transaction, then in another one: no error, no second mail.
        assert queue_mail(session, to=address, subject="x", text="x", dedupe_key=key) is None
    with sessions_of(app)() as session, session.begin():
        assert queue_mail(session, to=address, subject="y", text="y", dedupe_key=key) is None
        session.execute(text("SELECT 1"))  # the transaction is still usable
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=utcnow() + timedelta(seconds=1), limit=MANY)
    (sent,) = transport.sent_to(address)
    assert sent["Subject"] == SUBJECT
    with sessions_of(app)() as session, session.begin():
        # Still a no-op once the mail has been sent.
        assert queue_mail(session, to=address, subject=SUBJECT, text=TEXT,
                          dedupe_key=key) is None


def test_two_transactions_queueing_the_same_key_at_once_make_one_mail(app: Flask) -> None:
    address, key = new_address(), f"test-race:{secrets.token_hex(4)}"
    second: list[OutgoingMail | None] = []

    def other_transaction() -> None:
        with sessions_of(app)() as session, session.begin():
            second.append(queue_mail(session, to=address, subject=SUBJECT, text=TEXT,
                                     dedupe_key=key))

    with sessions_of(app)() as session, session.begin():
        assert queue_mail(session, to=address, subject=SUBJECT, text=TEXT,
                          dedupe_key=key) is not None
        racer = threading.Thread(target=other_transaction)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # it waits for this transaction to end...
    racer.join(10)
    assert second == [None]  # ...then finds the key taken, without an error
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=utcnow() + timedelta(seconds=1), limit=MANY)
    assert len(transport.sent_to(address)) == 1


def test_what_could_never_be_sent_is_refused_when_queued(app: Flask) -> None:
    with sessions_of(app)() as session, session.begin():
        for bad in ("not an address", "a@example.org, b@example.org", "name@", "",
                    "élodie@example.org"):
            with pytest.raises(ValueError):
                queue_mail(session, to=bad, subject=SUBJECT, text=TEXT)
        with pytest.raises(ValueError):
            queue_mail(session, to=new_address(), subject="Bonjour\nBcc: x@example.org",
                       text=TEXT)
        assert not [o for o in session.new if isinstance(o, OutgoingMail)]


def test_an_accented_domain_is_sent_in_idna(app: Flask) -> None:
    token = secrets.token_hex(4)
    mail_id = queue(app, f"zoe.{token}@exémple.fr")
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=utcnow() + timedelta(seconds=1), limit=MANY)
    assert len(transport.sent_to(f"zoe.{token}@xn--exmple-cva.fr")) == 1
    assert load(app, mail_id).to_address == f"Éloïse Tremblay <zoe.{token}@exémple.fr>"


# -- retries ------------------------------------------------------------------------------------


def test_a_failed_mail_is_retried_on_the_schedule_and_not_resent_after_success(
    app: Flask,
) -> None:
    address = new_address()
    t0 = utcnow()
    mail_id = queue(app, address, now=t0)
    failures = iter([ConnectionRefusedError("connection refused"),
                     TimeoutError("timed out")])
    transport = FakeTransport(
        fail=lambda m: next(failures, None) if addressed_to(m) == address else None
    )
    sessions = sessions_of(app)

    send_due(sessions, transport, now=t0, limit=MANY)
    row = load(app, mail_id)
    assert (row.attempts, row.next_attempt_at, row.sent_at) == (1, t0 + timedelta(minutes=1),
                                                                  None)
    assert row.last_error == "ConnectionRefusedError: connection refused"

    send_due(sessions, transport, now=t0 + timedelta(seconds=59), limit=MANY)  # not yet due
    assert len(transport.calls_to(address)) == 1

    t1 = t0 + timedelta(minutes=1)
    send_due(sessions, transport, now=t1, limit=MANY)
    row = load(app, mail_id)
    assert (row.attempts, row.next_attempt_at) == (2, t1 + timedelta(minutes=5))
    assert row.last_error == "TimeoutError: timed out"

    t2 = t1 + timedelta(minutes=5)
    assert send_due(sessions, transport, now=t2, limit=MANY) >= 1
    row = load(app, mail_id)
    assert (row.attempts, row.sent_at, row.next_attempt_at, row.given_up_at) == (2, t2, None,
                                                                                 None)
    for later in (timedelta(hours=1), timedelta(days=2)):
        send_due(sessions, transport, now=t2 + later, limit=MANY)
    assert len(transport.calls_to(address)) == 3
    assert len(transport.sent_to(address)) == 1
    # Every attempt sent the same Message-ID, so a receiver can recognise a repeat.
    assert len({m["Message-ID"] for m in transport.calls_to(address)}) == 1


def test_a_mail_that_keeps_failing_is_given_up_after_a_day(app: Flask) -> None:
    address = new_address()
    t0 = utcnow()
    mail_id = queue(app, address, now=t0)
    transport = FakeTransport(
        fail=lambda m: OSError("no route to host") if addressed_to(m) == address else None
    )
    attempted_at = []
    now: datetime | None = t0
    while now is not None:
        send_due(sessions_of(app), transport, now=now, limit=MANY)
        attempted_at.append(now)
        now = load(app, mail_id).next_attempt_at
        assert len(attempted_at) < 20
    gaps = [later - earlier for earlier, later in zip(attempted_at, attempted_at[1:], strict=False)]
    assert gaps == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                    timedelta(hours=2), timedelta(hours=6), timedelta(hours=6),
                    timedelta(hours=6)]
    assert attempted_at[-1] - t0 <= mail.GIVE_UP_AFTER
    row = load(app, mail_id)
    assert (row.attempts, row.sent_at, row.given_up_at) == (8, None, attempted_at[-1])
    assert row.last_error == "OSError: no route to host"
    send_due(sessions_of(app), transport, now=t0 + timedelta(days=5), limit=MANY)
    assert len(transport.calls_to(address)) == 8


def test_a_permanent_refusal_is_not_retried(app: Flask) -> None:
    address = new_address()
    now = utcnow() + timedelta(seconds=1)
    mail_id = queue(app, address)
    transport = FakeTransport(
        fail=lambda m: PermanentMailError("550 no such user") if addressed_to(m) == address
        else None
    )
    send_due(sessions_of(app), transport, now=now, limit=MANY)
    row = load(app, mail_id)
    assert (row.attempts, row.next_attempt_at, row.given_up_at) == (1, None, now)
    assert row.last_error == "PermanentMailError: 550 no such user"


# -- several workers, crashes -------------------------------------------------------------------


def test_a_claimed_mail_is_not_claimed_again_and_no_transaction_is_open_while_sending(
    app: Flask,
) -> None:
    address = new_address()
    now = utcnow() + timedelta(seconds=1)
    queue(app, address)
    other_worker = FakeTransport()

    def meanwhile(message: EmailMessage) -> None:
        # Another worker's pass while this one sends: on SQLite it would wait forever for the
        # write lock if the claim's transaction were still open.
        send_due(sessions_of(app), other_worker, now=now, limit=MANY)
        return None

    transport = FakeTransport(fail=meanwhile)
    send_due(sessions_of(app), transport, now=now, limit=MANY)
    assert len(transport.sent_to(address)) == 1
    assert other_worker.calls_to(address) == []


class WorkerDied(BaseException):
    """Stands for a worker killed in the middle of sending."""


def test_a_mail_whose_worker_died_is_sent_again_once_the_lease_has_run_out(app: Flask) -> None:
    address = new_address()
    now = utcnow() + timedelta(seconds=1)
    mail_id = queue(app, address)

    def die(message: EmailMessage) -> BaseException | None:
        return WorkerDied() if addressed_to(message) == address else None

    with pytest.raises(WorkerDied):
        send_due(sessions_of(app), FakeTransport(fail=die), now=now, limit=MANY)
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=now + timedelta(minutes=9), limit=MANY)
    assert transport.calls_to(address) == []  # still leased to the dead worker
    send_due(sessions_of(app), transport, now=now + mail.DEFAULT_LEASE, limit=MANY)
    assert len(transport.sent_to(address)) == 1
    assert load(app, mail_id).attempts == 0  # a crash is not a failed attempt


def test_a_batch_that_runs_long_hands_back_the_mails_it_has_not_started(app: Flask) -> None:
    t0 = utcnow()
    send_due(sessions_of(app), FakeTransport(), now=t0, limit=MANY)  # others' mails out first
    t0 += timedelta(seconds=1)
    addresses = [new_address() for _ in range(3)]
    ids = [queue(app, address, now=t0) for address in addresses]
    now = t0 + timedelta(seconds=1)
    slow = FakeTransport(fail=lambda _m: time.sleep(0.3))
    # Half of this lease has gone by once the first mail is sent: the others are handed back.
    assert send_due(sessions_of(app), slow, now=now, limit=3,
                    lease=timedelta(milliseconds=400)) == 1
    rows = [load(app, mail_id) for mail_id in ids]
    assert [row.sent_at is not None for row in rows] == [True, False, False]
    assert [row.next_attempt_at for row in rows[1:]] == [t0, t0]  # due again, as before
    assert [row.attempts for row in rows] == [0, 0, 0]
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=now, limit=MANY)
    assert [len(transport.sent_to(address)) for address in addresses] == [0, 1, 1]


def test_workers_in_parallel_send_each_mail_once(app: Flask) -> None:
    addresses = [new_address() for _ in range(20)]
    for address in addresses:
        queue(app, address)
    now = utcnow() + timedelta(seconds=1)
    transport = FakeTransport(fail=lambda _m: time.sleep(0.005))
    lock = threading.Lock()

    def worker() -> None:
        mine = FakeTransport(fail=lambda _m: time.sleep(0.005))
        send_due(sessions_of(app), mine, now=now, limit=3)
        while send_due(sessions_of(app), mine, now=now, limit=3):
            pass
        with lock:
            transport.sent.extend(mine.sent)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for address in addresses:
        assert len(transport.sent_to(address)) == 1, address


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has no row locks
def test_workers_skip_the_mails_another_one_has_locked(app: Flask) -> None:
    address = new_address()
    mail_id = queue(app, address)
    now = utcnow() + timedelta(seconds=1)
    with sessions_of(app)() as locker, locker.begin():
        locker.execute(select(OutgoingMail.id).where(OutgoingMail.id == mail_id)
                       .with_for_update())
        transport = FakeTransport()
        sender = threading.Thread(
            target=lambda: send_due(sessions_of(app), transport, now=now, limit=MANY)
        )
        sender.start()
        sender.join(15)
        assert not sender.is_alive(), "send_due waited for a locked row"
        assert transport.calls_to(address) == []
    transport = FakeTransport()
    send_due(sessions_of(app), transport, now=now, limit=MANY)
    assert len(transport.sent_to(address)) == 1


# -- at rest ------------------------------------------------------------------------------------


def test_the_database_holds_no_clear_text_address_subject_or_body(app: Flask) -> None:
    address, key = new_address(), f"test-at-rest:{secrets.token_hex(4)}"
    mail_id = queue(app, address, html=HTML, dedupe_key=key)
    with sessions_of(app)() as session:
        raw = session.execute(
            text("SELECT to_address, subject, body_text, body_html FROM mail_outbox "
                 "WHERE id = :id"), {"id": mail_id}
        ).one()
    stored = " ".join(raw)
    for clear in (address, "Tremblay", "Zoé", "Rappel", "Éloïse", "Bonjour", "Accès-Emploi"):
        assert clear not in stored
    ring = crypto.current()
    assert [ring.decrypt(value) for value in raw] == [f"Éloïse Tremblay <{address}>", SUBJECT,
                                                      TEXT, HTML]
    send_due(sessions_of(app), FakeTransport(), now=utcnow() + timedelta(seconds=1), limit=MANY)


# -- a real SMTP round trip ---------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


class SmtpServer(socketserver.ThreadingTCPServer):
    """Just enough SMTP for smtplib (EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
    on a free loopback port; no STARTTLS.  The standard library's smtpd is gone in 3.12, and
    aiosmtpd is not a dependency."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.received: list[Received] = []
        self.logins: list[str] = []
        self.credentials = ("maillage", "s3cret-mot-de-passe")
        self.refused: set[str] = set()

    @property
    def port(self) -> int:
        return self.server_address[1]


def _path_of(argument: str) -> str:
    found = re.search(r"<([^>]*)>", argument)
    return found.group(1) if found else argument.split(":", 1)[-1].strip()


class SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpServer

    def reply(self, *lines: str) -> None:
        for line in lines[:-1]:
            self.wfile.write(f"{line[:3]}-{line[4:]}\r\n".encode())
        self.wfile.write(f"{lines[-1]}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 test.invalid ESMTP")
        envelope: tuple[str, list[str]] = ("", [])
        while raw := self.rfile.readline():
            verb, _, argument = raw.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250 test.invalid", "250 8BITMIME", "250 AUTH PLAIN")
            elif verb == "HELO":
                self.reply("250 test.invalid")
            elif verb == "AUTH":
                _mechanism, _, initial = argument.partition(" ")
                if not initial:
                    self.reply("334 ")
                    initial = self.rfile.readline().decode().strip()
                _, user, password = base64.b64decode(initial).decode().split("\0")
                if (user, password) == self.server.credentials:
                    self.server.logins.append(user)
                    self.reply("235 2.7.0 Authentication successful")
                else:
                    self.reply("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                envelope = (_path_of(argument), [])
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                recipient = _path_of(argument)
                if recipient in self.server.refused:
                    self.reply("550 5.1.1 No such user")
                else:
                    envelope[1].append(recipient)
                    self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                self.server.received.append(Received(*envelope, b"".join(lines)))
                self.reply("250 2.0.0 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.1 Command not implemented")


@pytest.fixture
def smtp_server(smtp: SmtpServer) -> SmtpServer:
    """The shared loopback SMTP server (conftest's `smtp`), under this module's name."""
    return smtp


def smtp_transport(server: SmtpServer, **overrides: object) -> SmtpTransport:
    arguments: dict[str, object] = {
        "host": "127.0.0.1", "port": server.port, "username": "maillage",
        "password": "s3cret-mot-de-passe", "starttls": False, "sender": SENDER, "timeout": 5.0,
        **overrides,
    }
    return SmtpTransport(**arguments)  # type: ignore[arg-type]


def test_a_mail_goes_through_a_real_smtp_server(app: Flask, smtp_server: SmtpServer) -> None:
    address = new_address()
    mail_id = queue(app, address, html=HTML)
    now = utcnow() + timedelta(seconds=1)
    send_due(sessions_of(app), smtp_transport(smtp_server), now=now, limit=MANY)

    (received,) = [r for r in smtp_server.received if r.rcpt_to == [address]]
    assert received.mail_from == "no-reply@maillage.example"
    assert smtp_server.logins and set(smtp_server.logins) == {"maillage"}
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert addressed_to(message) == address  # type: ignore[arg-type]
    assert message["Subject"] == SUBJECT
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == TEXT
    assert message.get_body(("html",)).get_content().replace("\r\n", "\n") == HTML
    assert load(app, mail_id).sent_at == now


def test_with_starttls_required_nothing_is_sent_in_clear(
    app: Flask, smtp_server: SmtpServer
) -> None:
    address = new_address()
    now = utcnow() + timedelta(seconds=1)
    mail_id = queue(app, address)
    send_due(sessions_of(app), smtp_transport(smtp_server, starttls=True), now=now, limit=MANY)
    assert not [r for r in smtp_server.received if address in r.rcpt_to]
    assert not smtp_server.logins  # the password did not leave in clear either
    row = load(app, mail_id)
    assert row.attempts == 1 and row.next_attempt_at == now + timedelta(minutes=1)
    assert "STARTTLS" in (row.last_error or "")
    # Leave nothing due for later tests.
    send_due(sessions_of(app), smtp_transport(smtp_server), now=now + timedelta(minutes=1),
             limit=MANY)
    assert load(app, mail_id).sent_at is not None


def test_a_recipient_refused_by_the_server_is_given_up_at_once(
    app: Flask, smtp_server: SmtpServer
) -> None:
    address = new_address()
    smtp_server.refused.add(address)
    now = utcnow() + timedelta(seconds=1)
    mail_id = queue(app, address)
    send_due(sessions_of(app), smtp_transport(smtp_server), now=now, limit=MANY)
    row = load(app, mail_id)
    assert (row.attempts, row.next_attempt_at, row.given_up_at) == (1, None, now)
    assert "550" in (row.last_error or "")


def test_an_unreachable_smtp_server_is_retried(app: Flask) -> None:
    address = new_address()
    now = utcnow() + timedelta(seconds=1)
    mail_id = queue(app, address)
    closed = SmtpServer()  # a port that was free a moment ago, now closed again
    port = closed.port
    closed.server_close()
    transport = SmtpTransport("127.0.0.1", port, starttls=False, sender=SENDER, timeout=5.0)
    send_due(sessions_of(app), transport, now=now, limit=MANY)
    row = load(app, mail_id)
    assert row.attempts == 1 and row.next_attempt_at == now + timedelta(minutes=1)
    send_due(sessions_of(app), FakeTransport(), now=now + timedelta(minutes=1), limit=MANY)
    assert load(app, mail_id).sent_at is not None
