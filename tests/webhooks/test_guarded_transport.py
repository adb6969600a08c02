"""Connect-time SSRF checks: DNS rebinding, loopback in development, TLS names kept."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from webhooks.sender import GuardedClient, Outcome, attempt, guarded_client
from webhooks.signing import new_secret
from webhooks.ssrf import GuardedResolver, UnsafeURL, check_url

from .conftest import Answer, Receiver


def _resolve(resolver: GuardedResolver, host: str, port: int) -> list[Any]:
    """The resolver's answer, on a loop of its own (another test may have left one running
    on this thread, e.g. Playwright's synchronous API)."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, resolver.resolve(host, port)).result()


def _send(client: GuardedClient, url: str):
    return attempt(
        client, url, secrets=[new_secret()], message_id="msg_1", body=b"{}", now=datetime.now(UTC)
    )


def test_dns_rebinding_is_caught_at_connect_time(
    fake_dns: dict[str, Answer], receiver: Receiver
) -> None:
    # Public when the endpoint is registered, loopback when the delivery connects.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    fake_dns["rebind.example"] = lambda: next(answers)
    url = f"https://rebind.example:{receiver.port}/hook"
    check_url(url, allow_loopback_http=False)

    with guarded_client(allow_loopback=False) as client:
        result = _send(client, url)

    assert result.outcome is Outcome.REJECTED
    assert result.status_code is None
    assert result.error == (
        "unsafe address: rebind.example resolves to 127.0.0.1, a loopback address"
    )
    assert receiver.connections == 0
    assert receiver.requests == []


def test_one_unsafe_answer_among_safe_ones_is_enough_to_refuse(
    fake_dns: dict[str, Answer], receiver: Receiver
) -> None:
    fake_dns["mixed.example"] = ["93.184.216.34", "127.0.0.1"]
    with guarded_client(allow_loopback=False) as client:
        result = _send(client, f"https://mixed.example:{receiver.port}/hook")
    assert result.outcome is Outcome.REJECTED
    assert "127.0.0.1" in (result.error or "")
    assert receiver.connections == 0


def test_the_resolver_raises_unsafe_url_itself(fake_dns: dict[str, Answer]) -> None:
    fake_dns["meta.example"] = ["169.254.169.254"]
    resolver = GuardedResolver(allow_loopback=True)
    with pytest.raises(UnsafeURL, match="metadata"):
        _resolve(resolver, "meta.example", 443)


def test_the_resolver_answers_checked_addresses_as_numeric_hosts(
    fake_dns: dict[str, Answer],
) -> None:
    fake_dns["receiver.test"] = ["127.0.0.1", "::1"]
    answers = _resolve(GuardedResolver(allow_loopback=True), "receiver.test", 8080)
    assert [(a["host"], a["hostname"], a["port"]) for a in answers] == [
        ("127.0.0.1", "receiver.test", 8080), ("::1", "receiver.test", 8080)]
    assert all(a["flags"] & socket.AI_NUMERICHOST for a in answers)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("https://10.0.0.7/hook", "a private address"),
        ("https://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("https://[fe80::1]/hook", "a link-local address"),
        ("https://127.0.0.1/hook", "a loopback address"),
    ],
)
def test_ip_literals_are_checked_before_connecting(url: str, error: str) -> None:
    # The connector never asks its resolver about an IP literal: the sender checks those.
    with guarded_client(allow_loopback=False) as client:
        result = _send(client, url)
    assert result.outcome is Outcome.REJECTED
    assert error in (result.error or "")


def test_with_loopback_allowed_the_guarded_client_reaches_the_receiver_by_name(
    fake_dns: dict[str, Answer], receiver: Receiver
) -> None:
    fake_dns["receiver.test"] = ["127.0.0.1"]
    with guarded_client(allow_loopback=True) as client:
        result = _send(client, f"http://receiver.test:{receiver.port}/hook")
    assert result.outcome is Outcome.DELIVERED
    [request] = receiver.requests
    # Connected by IP, but the Host header still names the endpoint.
    assert request.headers["host"] == f"receiver.test:{receiver.port}"


def test_the_name_is_resolved_once_and_the_checked_ip_is_what_gets_connected(
    fake_dns: dict[str, Answer], receiver: Receiver
) -> None:
    # A rebinding resolver answers the check with a good address and any later lookup with
    # another one: connecting by name after checking would take the second answer.
    lookups: list[str] = []

    def rebinding() -> list[str]:
        lookups.append("flip.test")
        return ["127.0.0.1"] if len(lookups) == 1 else ["192.0.2.1"]

    fake_dns["flip.test"] = rebinding
    with guarded_client(allow_loopback=True, timeout=1.0) as client:
        result = _send(client, f"http://flip.test:{receiver.port}/hook")
    assert result.outcome is Outcome.DELIVERED
    assert lookups == ["flip.test"]
    assert len(receiver.requests) == 1


def test_next_checked_address_is_tried_when_one_does_not_answer(
    fake_dns: dict[str, Answer], receiver: Receiver
) -> None:
    fake_dns["dual.test"] = ["::1", "127.0.0.1"]  # the receiver listens on IPv4 only
    with guarded_client(allow_loopback=True) as client:
        result = _send(client, f"http://dual.test:{receiver.port}/hook")
    assert result.outcome is Outcome.DELIVERED
    assert len(receiver.requests) == 1


def test_development_http_goes_to_loopback_only(
    fake_dns: dict[str, Answer], receiver: Receiver
) -> None:
    fake_dns["public.test"] = ["93.184.216.34"]
    with guarded_client(allow_loopback=True) as client:
        result = _send(client, "http://public.test/hook")
    assert result.outcome is Outcome.REJECTED
    assert "not a loopback address" in (result.error or "")


def test_guarded_client_has_the_contract_timeout_and_no_http_without_loopback(
    receiver: Receiver,
) -> None:
    with guarded_client(allow_loopback=False) as client:
        assert client.timeout == 15.0
        result = _send(client, receiver.url)  # http:// to 127.0.0.1
    assert result.outcome is Outcome.REJECTED
    assert result.error == "unsafe address: http:// is not allowed; use https://"
    assert receiver.connections == 0


@pytest.fixture
def hello_catcher() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener that records the first bytes a client sends (a TLS ClientHello)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    received: list[bytes] = []

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(5)
            received.append(connection.recv(4096))

    thread = threading.Thread(target=serve)
    thread.start()
    yield listener.getsockname()[1], received
    listener.close()
    thread.join(timeout=5)


def test_tls_server_name_is_the_host_name_not_the_checked_ip(
    fake_dns: dict[str, Answer], hello_catcher: tuple[int, list[bytes]]
) -> None:
    port, received = hello_catcher
    fake_dns["partner.test"] = ["127.0.0.1"]
    with guarded_client(allow_loopback=True, timeout=2.0) as client:
        result = _send(client, f"https://partner.test:{port}/hook")
    assert result.outcome is Outcome.RETRY  # no TLS server there: a network failure
    [hello] = received
    assert hello[:1] == b"\x16"  # a TLS handshake record
    assert b"partner.test" in hello  # SNI carries the name
