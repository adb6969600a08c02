"""The background work of the hub, never inside web workers: outbound webhooks and the
scheduled checks.

`hub worker` runs it in the foreground (production: as many replicas as wanted); `hub run`
runs it in background threads of the embedded process.  Each loop survives its own errors:
it logs them and carries on, since everything it does is driven by rows in the database.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from hub.db import utcnow
from hub.followups.scheduler import CheckScheduler
from hub.mailbox import notices
from hub.outbox import mail, webhook_fanout
from webhooks import metrics as webhook_metrics
from webhooks.dispatcher import Dispatcher
from webhooks.sender import guarded_client

log = logging.getLogger(__name__)

CHECKS_EVERY_SECONDS = 60.0
IDLE_SECONDS = 0.2
MAIL_IDLE_SECONDS = 2.0
DAILY_MAILS_EVERY_SECONDS = 60.0


class Worker:
    """Background work in threads: outbox → deliveries, deliveries → HTTP, mail, and the
    scheduled checks (APScheduler, led by one process at a time)."""

    def __init__(self, app: Flask, *, clock: Callable[[], datetime] = utcnow,
                 checks_every: float = CHECKS_EVERY_SECONDS) -> None:
        settings = app.config["HUB_SETTINGS"]
        self.sessions: Callable[[], Session] = app.extensions["hub_db"][1]
        self.clock = clock
        self.checks_every = checks_every
        # One process at a time leads the checks (an advisory lock on PostgreSQL); each check
        # is exactly-once by itself anyway.
        self.scheduler = CheckScheduler.for_app(app, clock=clock, interval=checks_every)
        self.stopping = threading.Event()
        self.client = guarded_client(allow_loopback=not settings.is_production)
        self.dispatcher = Dispatcher(
            self.sessions, render=webhook_fanout.renderer(settings.secret_key.encode()),
            client=self.client, clock=clock,
            worker_id=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}",
            on_disabled=webhook_fanout.on_endpoint_disabled(settings.public_url),
            concurrency=settings.webhook_concurrency,
            lease=timedelta(seconds=settings.webhook_lease_seconds),
        )
        self.mail_transport = mail.transport_from_settings(
            smtp_host=settings.smtp_host, smtp_port=settings.smtp_port,
            smtp_username=settings.smtp_username, smtp_password=settings.smtp_password,
            smtp_starttls=settings.smtp_starttls, mail_from=settings.mail_from,
            mail_dir=settings.mail_dir or None,
        )
        self.secret_key = settings.secret_key
        self.public_url = settings.public_url
        # Set when mails were queued, so the mail loop sends them without waiting out its
        # idle sleep (new-leg mails: commit to SMTP within seconds, bench/mailbox.py).
        self.mail_queued = threading.Event()
        self.threads: list[threading.Thread] = []

    def _notify(self, session: Session, events: list[Any], now: datetime) -> None:
        if notices.notify(session, events, now, secret_key=self.secret_key,
                          public_url=self.public_url):
            session.info["mail_queued"] = True

    def fan_out_once(self) -> int:
        with self.sessions() as session:
            with session.begin():
                moved = webhook_fanout.fan_out(session, now=self.clock(),
                                               on_events=self._notify)
            if session.info.pop("mail_queued", False):
                self.mail_queued.set()  # after the commit: the mails are there to claim
        return moved

    def daily_mails_once(self) -> int:
        """The new-leg mails of organizations that chose `daily`, once their 8:00 has come."""
        with self.sessions() as session, session.begin():
            queued = notices.mail_daily(session, self.clock(), secret_key=self.secret_key,
                                        public_url=self.public_url)
        if queued:
            self.mail_queued.set()
        return queued

    def fan_out_loop(self) -> None:
        """Outbox → deliveries (the dispatcher's own loop sends them, see `start`), and the
        new-leg mails: at once with the fan-out, the daily ones each minute."""
        next_daily = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_daily:
                    next_daily = time.monotonic() + DAILY_MAILS_EVERY_SECONDS
                    self.daily_mails_once()
                moved = self.fan_out_once()
                with self.sessions() as session:
                    webhook_metrics.refresh_queue_gauges(session, self.clock())
            except Exception:
                log.exception("webhook fan-out failed; trying again shortly")
                moved = 0
                self.stopping.wait(2.0)
            if not moved:
                self.stopping.wait(IDLE_SECONDS)

    def deliver_loop(self) -> None:
        # run_forever keeps its threads busy as each request ends: a hung receiver holds one
        # thread until its timeout, never the deliveries to the others.
        self.dispatcher.run_forever(self.stopping, idle_sleep=IDLE_SECONDS)

    def send_mail_once(self) -> int:
        return mail.send_due(self.sessions, self.mail_transport, now=self.clock())

    def mail_loop(self) -> None:
        """Mail outbox → SMTP or ./var/mail/: the only caller of `mail.send_due`."""
        while not self.stopping.is_set():
            try:
                sent = self.send_mail_once()
            except Exception:
                log.exception("sending mail failed; trying again shortly")
                sent = 0
            if not sent:
                self.mail_queued.wait(MAIL_IDLE_SECONDS)
                self.mail_queued.clear()

    def start(self) -> None:
        self.scheduler.start()
        for target in (self.fan_out_loop, self.deliver_loop, self.mail_loop):
            thread = threading.Thread(target=target, name=f"hub-{target.__name__}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 20.0) -> None:
        self.stopping.set()
        self.mail_queued.set()
        self.scheduler.shutdown(wait=True)
        for thread in self.threads:
            thread.join(timeout)
        self.dispatcher.close()
        self.client.close()
