"""Keep webhook deliveries away from the hub's own network (SSRF defence).

Partners choose endpoint URLs, and the hub POSTs to them from inside its infrastructure: without
a check, an endpoint could target the database, an internal admin port or the cloud metadata
service (which hands out credentials). Two checks, both needed:

* ``check_url`` when an endpoint is registered: https only, no credentials, a sane host and port,
  and every address the name resolves to must be public. It gives an early, explainable refusal.
* ``guarded_client`` at delivery time: names are resolved again and the connection goes only to
  an address that passed the same test. A name that was public at registration and points at
  127.0.0.1 or 169.254.169.254 today (DNS rebinding) is refused before any packet is sent to it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Iterable

import httpcore
import httpx

__all__ = [
    "GuardedNetworkBackend",
    "GuardedTransport",
    "UnsafeURL",
    "address_problem",
    "check_url",
    "guarded_client",
    "is_safe_address",
    "resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048

# Addresses of instance metadata services, named in refusals because they are the classic target.
# Most also fall in a refused range (link-local, private); 168.63.129.16 (Azure) is public.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS IPv6
        "fd00:ec2::23",  # AWS IPv6 time sync
        "fd20:ce::254",  # GCP IPv6
    )
)

# Special-purpose ranges that the Python 3.11 ``ipaddress`` flags do not all mark as non-global.
_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "100.64.0.0/10",  # carrier-grade NAT (also Alibaba metadata)
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "64:ff9b:1::/48",  # local-use NAT64
        "2001:db8::/32",  # documentation
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_LABEL_RE = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


class UnsafeURL(ValueError):
    """A webhook URL, or an address it resolves to, that the hub refuses to call.

    The message is meant for the partner who registered the URL (an API error ``detail``).
    """


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64 well-known prefix, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_problem(ip: str | IPAddress, *, allow_loopback: bool) -> str | None:
    """Why the hub must not connect to ``ip`` ("a private address", ...), or None if it may."""
    try:
        address = ip if isinstance(ip, IPAddress) else ipaddress.ip_address(ip)
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner, allow_loopback=allow_loopback)
            return None if problem is None else f"{problem} ({inner})"
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if any(address in network for network in _SPECIAL) or not address.is_global:
        return "a special-purpose, non-public address"
    return None


def is_safe_address(ip: str | IPAddress, *, allow_loopback: bool) -> bool:
    """Whether the hub may connect to ``ip`` (IPv4-mapped and other embedded IPv4 unwrapped)."""
    return address_problem(ip, allow_loopback=allow_loopback) is None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in resolver order, without duplicates.

    Raises ``OSError`` (``socket.gaierror``) when the name does not resolve.
    """
    literal = _literal(host)
    if literal is not None:
        return [literal]
    found: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no IPv4 or IPv6 address")
    return found


def _unsafe(host: str, address: IPAddress, problem: str) -> UnsafeURL:
    if _literal(host) is not None:
        return UnsafeURL(f"{address} is {problem}")
    return UnsafeURL(f"{host} resolves to {address}, {problem}")


def _valid_hostname(host: str) -> bool:
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL_RE.fullmatch(label) for label in labels)


def check_url(url: str, *, allow_loopback_http: bool) -> None:
    """Refuse (``UnsafeURL``) an endpoint URL the hub must not call; resolves the host.

    ``allow_loopback_http`` is the development mode: loopback receivers are allowed, over http
    too. Anything else must be https to public addresses only.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURL(f"invalid URL: {exc}") from None
    if parsed.scheme == "http":
        if not allow_loopback_http:
            raise UnsafeURL("URL must use https://")
    elif parsed.scheme != "https":
        raise UnsafeURL("URL must use https://")
    if parsed.userinfo:
        raise UnsafeURL("URL must not contain credentials (user:password@)")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise UnsafeURL("URL has no host")
    if _literal(host) is None and not _valid_hostname(host):
        raise UnsafeURL(f"host {host!r} is not a valid DNS name")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise UnsafeURL(f"port {port} is out of range")

    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"host {host} does not resolve") from None
    for address in addresses:
        problem = address_problem(address, allow_loopback=allow_loopback_http)
        if problem is not None:
            raise _unsafe(host, address, problem)
    if parsed.scheme == "http" and not all(_is_loopback(a) for a in addresses):
        raise UnsafeURL("URL must use https:// (http:// is only accepted for loopback receivers)")


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to addresses passing the SSRF test.

    Why this is correct against DNS rebinding: the host is resolved exactly once, here; every
    address is checked; then the wrapped backend is asked to connect to the *literal IP* of a
    checked address, so no second lookup can happen between check and connect (the window a
    rebinding resolver exploits). Checking the peer address after connecting would be too late:
    the SYN (and for https a ClientHello) would already have reached the internal address.
    Connecting by IP does not break TLS or virtual hosting: httpcore's ``HTTPConnection`` takes
    the TLS ``server_hostname`` (SNI and certificate verification) from the request's origin,
    not from the ``host`` passed to ``connect_tcp``, and the Host header comes from the URL.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool,
        loopback_only: bool = False,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._allow_loopback = allow_loopback or loopback_only
        self._loopback_only = loopback_only
        self._inner = inner if inner is not None else httpcore.SyncBackend()

    def _check(self, host: str, addresses: Iterable[IPAddress]) -> None:
        # Refuse if *any* address is unsafe: a resolver answering one public and one private
        # address must not get a chance to steer us to the private one.
        for address in addresses:
            problem = address_problem(address, allow_loopback=self._allow_loopback)
            if problem is None and self._loopback_only and not _is_loopback(address):
                problem = "not a loopback address (http:// is only allowed to loopback)"
            if problem is not None:
                raise _unsafe(host, address, problem)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if not 1 <= port <= 65535:  # getaddrinfo would silently wrap it modulo 65536
            raise UnsafeURL(f"port {port} is out of range")
        if _literal(host) is None and not _valid_hostname(host):
            raise UnsafeURL(f"host {host!r} is not a valid DNS name")
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        self._check(host, addresses)

        deadline = None if timeout is None else time.monotonic() + timeout
        failure: Exception | None = None
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"timed out connecting to {host}")
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise UnsafeURL("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _BackendTransport(httpx.HTTPTransport):
    """httpx's standard transport, over a chosen httpcore network backend.

    httpx 0.28 does not expose httpcore's ``network_backend`` argument, so the pool that
    ``HTTPTransport.__init__`` builds is replaced by an identical one over ``backend``
    (``_pool`` is what ``handle_request`` and ``close`` use; httpx is pinned below 1.0).
    """

    def __init__(
        self, backend: httpcore.NetworkBackend, *, verify: ssl.SSLContext, limits: httpx.Limits
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that sends https anywhere safe, and http only to loopback (dev)."""

    def __init__(self, *, allow_loopback: bool, limits: httpx.Limits | None = None) -> None:
        limits = limits if limits is not None else httpx.Limits()
        ssl_context = httpx.create_ssl_context(trust_env=False)
        self._https = _BackendTransport(
            GuardedNetworkBackend(allow_loopback=allow_loopback), verify=ssl_context, limits=limits
        )
        self._http = (
            _BackendTransport(
                GuardedNetworkBackend(allow_loopback=True, loopback_only=True),
                verify=ssl_context,
                limits=limits,
            )
            if allow_loopback
            else None
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme
        if not scheme or not request.url.raw_host:
            raise UnsafeURL("URL must be absolute (https://host/path)")
        if scheme == "https":
            return self._https.handle_request(request)
        if scheme == "http" and self._http is not None:
            return self._http.handle_request(request)
        raise UnsafeURL(f"{scheme}:// is not allowed; use https://")

    def close(self) -> None:
        self._https.close()
        if self._http is not None:
            self._http.close()


def guarded_client(*, allow_loopback: bool, timeout: float = 15.0) -> httpx.Client:
    """An ``httpx.Client`` whose every connection passes the SSRF test at connect time.

    Redirects are never followed (a 3xx is a failed attempt, retried later), and proxies and
    other environment settings are ignored (a proxy would connect on our behalf, unchecked).
    """
    # Keep alive as many connections as may be open (httpx keeps 20 by default): above 20
    # requests at once, connections would otherwise be closed and opened again all the time.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    return httpx.Client(
        transport=GuardedTransport(allow_loopback=allow_loopback, limits=limits),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
