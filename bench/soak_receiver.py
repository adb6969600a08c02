"""The soak's webhook receiver: one path per organization (`/hook/<n>`), answering as a real
partner system sometimes does.

The first delivery of a message may fail (500, or a hang longer than the hub's 15 s timeout);
its retries succeed, so every message arrives within the run, through the hub's retries.
Everything received is recorded; the soak's checks dedupe on `webhook-id`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAIL_FIRST = 0.04  # share of messages whose first delivery gets a 500
HANG_FIRST = 0.01  # share whose first delivery hangs past the hub's timeout
HANG_SECONDS = 20.0


@dataclass
class Received:
    path: str
    webhook_id: str
    subject: str
    sequence: int
    event_type: str


@dataclass
class Partners:
    """What the receiver got, in arrival order, and how it chose to answer."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    first_answers: dict[tuple[str, str], int] = field(default_factory=dict)  # 0: hang
    answered: dict[int, int] = field(default_factory=dict)  # status -> count
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(8))

    def url(self, organization: int) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{organization}"

    def take(self, path: str, headers: dict[str, str], body: bytes) -> int:
        """Record one delivery; the status to answer (0: hang)."""
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = {}
        webhook_id = headers.get("webhook-id", "")
        with self.lock:
            self.received.append(Received(path, webhook_id, str(envelope.get("subject", "")),
                                          int(envelope.get("sequence") or 0),
                                          str(envelope.get("type", ""))))
            key = (path, webhook_id)
            if key in self.first_answers:
                status = 204  # a retry: accepted
            else:
                draw = self.rng.random()
                status = 0 if draw < HANG_FIRST else 500 if draw < HANG_FIRST + FAIL_FIRST else 204
                self.first_answers[key] = status
            self.answered[status] = self.answered.get(status, 0) + 1
            return status


def _handler(partners: Partners) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = partners.take(self.path, {k.lower(): v for k, v in self.headers.items()},
                                   body)
            if status == 0:
                partners.stop.wait(HANG_SECONDS)
                status = 204
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the hub gave up waiting (its timeout): that is the point

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


@contextmanager
def running_partners() -> Iterator[Partners]:
    partners = Partners()
    server = _Server(("127.0.0.1", 0), _handler(partners))
    partners.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield partners
    finally:
        partners.stop.set()
        server.shutdown()
        server.server_close()
        time.sleep(0.1)
