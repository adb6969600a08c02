"""A real local HTTP receiver of webhooks, for tests: records what it gets and answers as told
(status, headers, or hanging; per path, per message, or a programmed sequence)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received_at: float = 0.0  # time.monotonic()


@dataclass(frozen=True)
class Reply:
    """One programmed answer."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait (until `release` is set) before answering


@dataclass
class Receiver:
    """What the local receiver got, and how it should answer the next requests.

    An answer is chosen in this order: the next programmed reply for (path, webhook-id), then
    for the path (``plan``, consumed one per request); the path's standing reply (``standing``);
    the defaults (``status``, ``response_headers``, ``hang_seconds``).
    """

    port: int = 0
    status: int = 204
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    hang_seconds: float = 0.0
    plan: dict[str | tuple[str, str], list[Reply]] = field(default_factory=dict)
    standing: dict[str, Reply] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ids(self, path: str | None = None) -> list[str]:
        """The webhook-ids received (at ``path``), in arrival order, duplicates included."""
        with self.lock:
            return [r.headers.get("webhook-id", "") for r in self.requests
                    if path is None or r.path == path]

    def answer(self, request: Recorded) -> Reply:
        with self.lock:
            self.requests.append(request)
            for key in ((request.path, request.headers.get("webhook-id", "")), request.path):
                queued = self.plan.get(key)
                if queued:
                    return queued.pop(0)
            if request.path in self.standing:
                return self.standing[request.path]
            return Reply(self.status, dict(self.response_headers), self.hang_seconds)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            reply = receiver.answer(
                Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                         body, time.monotonic())
            )
            if reply.hang:
                receiver.release.wait(reply.hang)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.response_body)))
                self.end_headers()
                self.wfile.write(receiver.response_body)
            except OSError:
                pass  # the client gave up (timeout) while we hung

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.receiver.connections += 1
        return True


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = _CountingServer(("127.0.0.1", 0), _handler_for(state))
    server.receiver = state
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
