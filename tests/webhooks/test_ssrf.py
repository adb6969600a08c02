from __future__ import annotations

import ipaddress

import pytest

from webhooks.ssrf import UnsafeURL, check_url, is_safe_address

from .conftest import Answer


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.0.0.1/hook", "private"),
        ("https://172.16.0.1/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://100.100.100.200/", "cloud metadata"),
        ("https://168.63.129.16/", "cloud metadata"),
        ("https://[fd00:ec2::254]/", "cloud metadata"),
        ("https://[::1]:8443/hook", "loopback"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://[::]/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://169.254.1.1/hook", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://100.64.0.1/hook", "non-public"),
        ("https://240.0.0.1/hook", "private"),  # reserved, and in Python's private list
        ("https://[64:ff9b::a00:1]/hook", "private"),  # NAT64 for 10.0.0.1
    ],
)
def test_refuses_unsafe_literal_addresses(url: str, why: str) -> None:
    with pytest.raises(UnsafeURL, match=why):
        check_url(url, allow_loopback_http=False)


@pytest.mark.parametrize(
    "url", ["https://2130706433/hook", "https://127.1/hook", "https://0x7f000001/hook"]
)
def test_refuses_legacy_numeric_spellings_of_loopback(url: str, fake_dns: dict) -> None:
    with pytest.raises(UnsafeURL, match="resolves to 127.0.0.1, a loopback address"):
        check_url(url, allow_loopback_http=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "https://93.184.216.34:8443/hook?x=1",
        "https://[2606:4700:4700::1111]/hook",
        "https://[::ffff:93.184.216.34]/hook",
    ],
)
def test_allows_public_literal_addresses_without_connecting(url: str) -> None:
    check_url(url, allow_loopback_http=False)


def test_requires_https() -> None:
    with pytest.raises(UnsafeURL, match="must use https://"):
        check_url("http://93.184.216.34/hook", allow_loopback_http=False)
    with pytest.raises(UnsafeURL, match="must use https://"):
        check_url("ftp://93.184.216.34/hook", allow_loopback_http=True)


def test_development_allows_loopback_and_http_to_loopback_only() -> None:
    check_url("http://127.0.0.1:8080/hook", allow_loopback_http=True)
    check_url("http://[::1]:8080/hook", allow_loopback_http=True)
    check_url("https://127.0.0.1:8443/hook", allow_loopback_http=True)
    with pytest.raises(UnsafeURL, match="only accepted for loopback"):
        check_url("http://93.184.216.34/hook", allow_loopback_http=True)
    with pytest.raises(UnsafeURL, match="private"):
        check_url("https://10.0.0.1/hook", allow_loopback_http=True)
    with pytest.raises(UnsafeURL, match="must use https://"):
        check_url("http://127.0.0.1:8080/hook", allow_loopback_http=False)


def test_refuses_credentials_in_the_url() -> None:
    with pytest.raises(UnsafeURL, match="credentials"):
        check_url("https://user:secret@93.184.216.34/hook", allow_loopback_http=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https:///hook", "no host"),
        ("https://exa mple.com/", "not a valid DNS name"),
        ("https://93.184.216.34:0/", "port 0"),
        ("https://93.184.216.34:99999/", "port 99999"),
        ("https://" + "a" * 3000 + ".com/", "longer than"),
    ],
)
def test_refuses_malformed_urls(url: str, why: str) -> None:
    with pytest.raises(UnsafeURL, match=why):
        check_url(url, allow_loopback_http=False)


def test_names_are_checked_against_every_address_they_resolve_to(
    fake_dns: dict[str, Answer],
) -> None:
    fake_dns["hooks.partner.example"] = ["93.184.216.34", "2606:4700:4700::1111"]
    check_url("https://hooks.partner.example/hook", allow_loopback_http=False)

    fake_dns["mixed.partner.example"] = ["93.184.216.34", "10.0.0.5"]
    with pytest.raises(UnsafeURL) as caught:
        check_url("https://mixed.partner.example/hook", allow_loopback_http=False)
    assert str(caught.value) == "mixed.partner.example resolves to 10.0.0.5, a private address"

    fake_dns["meta.partner.example"] = ["169.254.169.254"]
    with pytest.raises(UnsafeURL, match="cloud metadata"):
        check_url("https://meta.partner.example/", allow_loopback_http=False)


def test_unresolvable_names_are_refused(fake_dns: dict[str, Answer]) -> None:
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.invalid/hook", allow_loopback_http=False)


def test_unsafe_url_is_a_value_error() -> None:
    assert issubclass(UnsafeURL, ValueError)


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "fec0::1",
        "ff02::1",
        "192.0.0.8",
        "198.18.0.1",
        "not an address",
    ],
)
def test_is_safe_address_refuses(address: str) -> None:
    assert not is_safe_address(address, allow_loopback=False)
    assert not is_safe_address(address, allow_loopback=True)


def test_is_safe_address_allows_public_and_optionally_loopback() -> None:
    assert is_safe_address("93.184.216.34", allow_loopback=False)
    assert is_safe_address(ipaddress.ip_address("2606:4700::1111"), allow_loopback=False)
    assert is_safe_address("64:ff9b::5db8:d822", allow_loopback=False)  # NAT64 of 93.184.216.34
    for loopback in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_safe_address(loopback, allow_loopback=True)
        assert not is_safe_address(loopback, allow_loopback=False)
