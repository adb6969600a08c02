"""Keep webhook deliveries away from the hub's own network (SSRF defence).

Partners choose endpoint URLs, and the hub POSTs to them from inside its infrastructure: without
a check, an endpoint could target the database, an internal admin port or the cloud metadata
service (which hands out credentials). Two checks, both needed:

* ``check_url`` when an endpoint is registered: https only, no credentials, a sane host and port,
  and every address the name resolves to must be public. It gives an early, explainable refusal.
* ``GuardedResolver`` and ``check_target`` at delivery time (``sender.guarded_client``): names
  are resolved again and the connection goes only to an address that passed the same test. A
  name that was public at registration and points at 127.0.0.1 or 169.254.169.254 today (DNS
  rebinding) is refused before any packet is sent to it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "GuardedResolver",
    "UnsafeURL",
    "address_problem",
    "check_target",
    "check_url",
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


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that answers only with addresses passing the SSRF test.

    Why this is correct against DNS rebinding: the connector asks its resolver for the
    addresses of a host name and then connects to those *literal IPs* (the answers carry
    ``AI_NUMERICHOST``: no second lookup happens between check and connect, the window a
    rebinding resolver exploits). Every answer is checked here, and if any is unsafe none is
    returned, so the connector only ever connects to checked addresses. Connecting by IP does
    not break TLS or virtual hosting: aiohttp takes the TLS ``server_hostname`` (SNI and
    certificate verification) and the Host header from the URL, not from the address.

    The connector does not call its resolver for IP literals: ``check_target`` checks those
    before the request (no lookup, so nothing can change between that check and the connect).
    Use it with ``use_dns_cache=False`` so that each new connection resolves (and checks) again.
    """

    def __init__(self, *, allow_loopback: bool, loopback_only: bool = False) -> None:
        self._allow_loopback = allow_loopback or loopback_only
        self._loopback_only = loopback_only

    def check(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Refuse (``UnsafeURL``) if *any* address is unsafe: a resolver answering one public
        and one private address must not get a chance to steer us to the private one."""
        for address in addresses:
            problem = address_problem(address, allow_loopback=self._allow_loopback)
            if problem is None and self._loopback_only and not _is_loopback(address):
                problem = "not a loopback address (http:// is only allowed to loopback)"
            if problem is not None:
                raise _unsafe(host, address, problem)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not 1 <= port <= 65535:  # getaddrinfo would silently wrap it modulo 65536
            raise UnsafeURL(f"port {port} is out of range")
        if _literal(host) is None and not _valid_hostname(host):
            raise UnsafeURL(f"host {host!r} is not a valid DNS name")
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(None, resolve, host, port)
        except (OSError, UnicodeError) as exc:
            raise socket.gaierror(socket.EAI_NONAME, f"could not resolve {host}: {exc}") from exc
        self.check(host, addresses)
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def check_target(url: URL, *, allow_loopback: bool) -> None:
    """Refuse (``UnsafeURL``) a delivery URL before any connection: the scheme (https; http
    only to loopback, and only when ``allow_loopback``), the port, the host's form, and an IP
    literal's address (names are checked by ``GuardedResolver`` when connecting)."""
    if not url.absolute or not url.scheme or not url.raw_host:
        raise UnsafeURL("URL must be absolute (https://host/path)")
    if url.scheme not in ("https", "http") or (url.scheme == "http" and not allow_loopback):
        raise UnsafeURL(f"{url.scheme}:// is not allowed; use https://")
    if url.user is not None or url.password is not None:
        raise UnsafeURL("URL must not contain credentials (user:password@)")
    port = url.explicit_port if url.explicit_port is not None else url.port
    if port is None or not 1 <= port <= 65535:
        raise UnsafeURL(f"port {port} is out of range")
    host = url.raw_host
    literal = _literal(host)
    if literal is None:
        if not _valid_hostname(host):
            raise UnsafeURL(f"host {host!r} is not a valid DNS name")
        return
    resolver = GuardedResolver(allow_loopback=allow_loopback, loopback_only=url.scheme == "http")
    resolver.check(host, [literal])
