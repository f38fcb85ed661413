"""Where a webhook may point: the URL's form, and every address its host resolves to."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

import pytest

from service.webhooks.targets import (
    ResolutionFailed,
    TargetRefused,
    check_addresses,
    parse_url,
    refusal,
    resolve,
)


def test_an_https_url_is_taken_apart() -> None:
    target = parse_url("https://hooks.example.org:8443/cg/in?site=blog", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.org",
        8443,
        "/cg/in?site=blog",
    )
    assert parse_url("https://hooks.example.org", allow_private=False).path == "/"
    assert parse_url("https://hooks.example.org", allow_private=False).port == 443
    assert parse_url("http://[::1]/x", allow_private=True).host == "::1"


@pytest.mark.parametrize(
    ("url", "allow_private", "reason"),
    [
        ("http://hooks.example.org/x", False, "must be an https URL"),
        ("ftp://hooks.example.org/x", True, "must be an http or https URL"),
        ("hooks.example.org/x", False, "must be an https URL"),
        ("https://user:pass@hooks.example.org/x", False, "must not hold credentials"),
        ("https://token@hooks.example.org/x", False, "must not hold credentials"),
        ("https://hooks.example.org/x#part", False, "must not have a fragment"),
        ("https:///x", False, "must name a host"),
        ("https://[::1/x", True, "not a valid URL"),
        ("https://[hooks.example.org/x", False, "not a valid URL"),
        ("https://hooks.example.org:99999/x", False, "invalid port"),
        ("https://hooks.example.org:0/x", False, "invalid port"),
        ("https://hôte.example/x", False, "must be ASCII"),
        ("https://hooks.example.org/a b", False, "must be ASCII without spaces"),
        ("https://hooks.example.org/\x00", False, "control characters"),
        ("https://hooks.example.org/" + "a" * 2100, False, "at most 2048"),
        ("", False, "must be a URL"),
    ],
)
def test_a_malformed_url_is_refused(url: str, allow_private: bool, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        parse_url(url, allow_private=allow_private)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),  # noqa: S104  (an address to refuse, not to bind)
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("fec0::1", "site-local"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        ("::ffff:10.0.0.1", "private (IPv4 10.0.0.1 inside IPv6)"),
        ("::ffff:169.254.169.254", "link-local (IPv4 169.254.169.254 inside IPv6)"),
        ("2002:7f00:1::", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # 6to4
        ("64:ff9b::7f00:1", "loopback (IPv4 127.0.0.1 inside IPv6)"),  # NAT64
        ("::127.0.0.1", "reserved"),  # IPv4-compatible, deprecated
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_one_private_address_refuses_the_host_unless_private_targets_are_allowed() -> None:
    addresses = [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.7")]
    with pytest.raises(TargetRefused, match=r"hooks.test resolves to 10.0.0.7, which is private"):
        check_addresses("hooks.test", addresses, allow_private=False)
    check_addresses("hooks.test", addresses, allow_private=True)
    with pytest.raises(TargetRefused, match=r"^127.0.0.1 is loopback"):
        check_addresses("127.0.0.1", [ipaddress.ip_address("127.0.0.1")], allow_private=False)


def _answers(*addresses: str) -> Any:
    def lookup(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return lookup


def test_resolve_answers_each_address_once_in_order() -> None:
    found = resolve(
        "hooks.test", 443, timeout=1, resolver=_answers("8.8.8.8", "fe80::1%eth0", "8.8.8.8")
    )
    assert found == [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("fe80::1")]


def test_an_ip_literal_is_not_looked_up() -> None:
    def never(*_: Any, **__: Any) -> list[tuple[Any, ...]]:
        raise AssertionError("looked up")

    assert resolve("127.0.0.1", 80, timeout=1, resolver=never) == [
        ipaddress.ip_address("127.0.0.1")
    ]


def test_localhost_resolves_to_loopback_on_this_machine() -> None:
    found = resolve("localhost", 80, timeout=5)
    assert found
    assert all(refusal(a) == "loopback" for a in found)


def test_a_name_that_does_not_resolve_or_resolves_too_slowly_fails() -> None:
    with pytest.raises(ResolutionFailed, match="does not resolve"):
        resolve("no-such-host.invalid", 443, timeout=5)

    def slow(*_: Any, **__: Any) -> list[tuple[Any, ...]]:
        time.sleep(2)
        return []

    started = time.monotonic()
    with pytest.raises(ResolutionFailed, match=r"did not resolve within 0\.2 s"):
        resolve("slow.test", 443, timeout=0.2, resolver=slow)
    assert time.monotonic() - started < 1.5
