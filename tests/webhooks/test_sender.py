from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks.sender import USER_AGENT, GuardedClient, Outcome, attempt, guarded_client
from webhooks.signing import new_secret

from .conftest import Receiver

BODY = json.dumps({"type": "demo.created", "data": {"id": "42"}}).encode()


@pytest.fixture
def client() -> Iterator[GuardedClient]:
    with guarded_client(allow_loopback=True, timeout=2.0) as c:
        yield c


def _send(client: GuardedClient, url: str, secrets: list[str] | None = None):
    return attempt(
        client,
        url,
        secrets=secrets or [new_secret()],
        message_id="msg_2abc",
        body=BODY,
        now=datetime.now(UTC),
    )


def test_delivery_is_accepted_unchanged_by_the_reference_library(
    client: GuardedClient, receiver: Receiver
) -> None:
    secret = new_secret()
    result = _send(client, receiver.url, [secret])
    assert result.outcome is Outcome.DELIVERED
    assert result.status_code == 204
    assert result.error is None
    assert result.duration_ms > 0
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.body == BODY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["webhook-id"] == "msg_2abc"
    assert Webhook(secret).verify(request.body, request.headers) == json.loads(BODY)


def test_during_rotation_a_receiver_holding_either_secret_verifies(
    client: GuardedClient, receiver: Receiver
) -> None:
    old, new = new_secret(), new_secret()
    assert _send(client, receiver.url, [old, new]).outcome is Outcome.DELIVERED
    [request] = receiver.requests
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers) == json.loads(BODY)


@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [
        (200, Outcome.DELIVERED, None),
        (204, Outcome.DELIVERED, None),
        (410, Outcome.GONE, "HTTP 410 (gone)"),
        (400, Outcome.REJECTED, "HTTP 400"),
        (404, Outcome.REJECTED, "HTTP 404"),
        (429, Outcome.RETRY, "HTTP 429"),
        (500, Outcome.RETRY, "HTTP 500"),
        (503, Outcome.RETRY, "HTTP 503"),
    ],
)
def test_status_codes_are_classified(
    client: GuardedClient, receiver: Receiver, status: int, outcome: Outcome, error: str | None
) -> None:
    receiver.status = status
    result = _send(client, receiver.url)
    assert result.outcome is outcome
    assert result.status_code == status
    assert result.error == error
    assert len(receiver.requests) == 1


def test_redirects_are_retried_never_followed(client: GuardedClient, receiver: Receiver) -> None:
    receiver.status = 302
    receiver.response_headers = {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}
    result = _send(client, receiver.url)
    assert result.outcome is Outcome.RETRY
    assert result.status_code == 302
    assert result.error == "HTTP 302 (redirects are not followed)"
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_retry_after_seconds_is_reported(client: GuardedClient, receiver: Receiver) -> None:
    receiver.status = 503
    receiver.response_headers = {"Retry-After": "120"}
    result = _send(client, receiver.url)
    assert result.outcome is Outcome.RETRY
    assert result.retry_after == timedelta(seconds=120)


def test_retry_after_http_date_is_reported(client: GuardedClient, receiver: Receiver) -> None:
    receiver.status = 429
    receiver.response_headers = {
        "Retry-After": format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    }
    result = _send(client, receiver.url)
    assert result.retry_after is not None
    assert timedelta(minutes=59) <= result.retry_after <= timedelta(hours=1)


def test_retry_after_is_ignored_unless_retrying(client: GuardedClient, receiver: Receiver) -> None:
    receiver.status = 200
    receiver.response_headers = {"Retry-After": "120"}
    assert _send(client, receiver.url).retry_after is None


def test_a_timeout_is_retried_with_its_duration(receiver: Receiver) -> None:
    receiver.hang_seconds = 3
    with guarded_client(allow_loopback=True, timeout=0.3) as impatient:
        result = _send(impatient, receiver.url)
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert result.error == "timeout after 0.3 s"
    assert 250 <= result.duration_ms < 2000
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retried(client: GuardedClient, closed_port: int) -> None:
    result = _send(client, f"http://127.0.0.1:{closed_port}/hook")
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert result.error == "connection refused"


def test_only_the_start_of_the_response_body_is_kept(
    client: GuardedClient, receiver: Receiver
) -> None:
    receiver.status = 400
    receiver.response_body = b'{"error": "unknown event type"}' + b" " * 200_000
    result = _send(client, receiver.url)
    assert result.outcome is Outcome.REJECTED
    assert result.response_excerpt is not None
    assert result.response_excerpt.startswith('{"error": "unknown event type"}')
    assert len(result.response_excerpt) == 1024


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://[::1/", "invalid URL: "),
        ("https://exa mple.com/", "unsafe address: host 'exa mple.com' is not a valid DNS name"),
        ("http://127.0.0.1:65979/", "invalid URL: Port out of range"),  # never wrapped to 443
        ("ftp://127.0.0.1/", "unsafe address: ftp:// is not allowed; use https://"),
        ("/relative", "unsafe address: URL must be absolute (https://host/path)"),
    ],
)
def test_an_invalid_url_is_rejected_not_raised(client: GuardedClient, url: str, error: str) -> None:
    result = _send(client, url)
    assert result.outcome is Outcome.REJECTED
    assert result.status_code is None
    assert result.error is not None and result.error.startswith(error)


def test_an_unresolvable_host_is_retried(client: GuardedClient, fake_dns: dict) -> None:
    result = _send(client, "https://gone-for-now.example/hook")
    assert result.outcome is Outcome.RETRY
    assert result.error == "could not resolve host"


def test_http_is_refused_when_loopback_is_not_allowed(receiver: Receiver) -> None:
    with guarded_client(allow_loopback=False) as strict:
        result = _send(strict, receiver.url)
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None and result.error.startswith("unsafe address:")
    assert receiver.connections == 0


@pytest.fixture
def trickler() -> Iterator[int]:
    """A server that reads the request, then sends a header one byte every 0.1 s, for ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nx-slow: ")
            while not stop.wait(0.1):
                try:
                    connection.sendall(b"a")
                except OSError:
                    return

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


def test_a_receiver_trickling_bytes_is_cut_at_three_timeouts(trickler: int) -> None:
    # Every read gets a byte within the timeout: only the whole attempt's bound stops it.
    with guarded_client(allow_loopback=True, timeout=0.4) as impatient:
        result = _send(impatient, f"http://127.0.0.1:{trickler}/hook")
    assert result.outcome is Outcome.RETRY
    assert result.error == "timeout after 1.2 s (whole attempt)"
    assert 1100 <= result.duration_ms < 3000
