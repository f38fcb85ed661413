"""Where a webhook may point: URL rules and the addresses a delivery may connect to.

A webhook makes this service send requests to a URL someone typed, which is how a
server-side request forgery (SSRF) reaches what only the service can reach: the
database's network, the cloud's metadata endpoint (169.254.169.254), a loopback admin
port. So, unless the site allows private targets:

* the URL must be ``https``, absolute, ASCII, without credentials or a fragment;
* its host must resolve, and every address it resolves to must be globally routable:
  loopback, private (RFC 1918, ULA), shared (100.64/10), link-local, multicast, reserved,
  unspecified, documentation and benchmark ranges are refused, for IPv4 and IPv6 alike,
  including IPv4 addresses embedded in IPv6 ones (``::ffff:127.0.0.1``, 6to4, NAT64).

The same check runs again at each delivery on the addresses the sender is about to
connect to (``service/webhooks/sender.py`` connects to exactly those), so a name that
resolved to a public address at registration and to a private one later (DNS
rebinding) is refused then. Where a site allows private targets, ``http`` and every
address are allowed (development, or a receiver on the service's own network).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``socket.getaddrinfo``'s shape; a test may hand in its own.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

# The well-known NAT64 prefix (RFC 6052): the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(ValueError):
    """The URL, or an address its host resolves to, is not allowed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResolutionFailed(Exception):
    """The host could not be resolved (now): no such name, or the resolver failed or took
    too long. Possibly transient."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: what to connect to and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    #: The request target: path and query (``/`` when the URL has no path).
    path: str


def parse_url(url: str, *, allow_private: bool) -> Target:
    """``url`` as a :class:`Target`, or :class:`TargetRefused` saying what is wrong.

    Checks the URL's form only; :func:`check_addresses` checks where its host points."""
    if not isinstance(url, str) or not url:
        raise TargetRefused("must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetRefused(
            "must be ASCII without spaces or control characters (write an international "
            "domain name in its xn-- form, and percent-encode the path)"
        )
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed or invalid bracketed host: "https://[::1/"
        raise TargetRefused(
            "is not a valid URL (its host in [...] is not an IPv6 address)"
        ) from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused(
            "must be an http or https URL"
            if allow_private
            else "must be an https URL (http only where the site allows private targets)"
        )
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "must not hold credentials (user:password@): receivers check the signature"
        )
    if parts.fragment or url.endswith("#"):
        raise TargetRefused("must not have a fragment (#...)")
    host = parts.hostname
    if not host:
        raise TargetRefused("must name a host")
    try:
        port = parts.port
    except ValueError:
        raise TargetRefused("has an invalid port") from None
    if port == 0:
        raise TargetRefused("has an invalid port")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        url=url,
        scheme=parts.scheme,
        host=host.rstrip(".") or host,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def refusal(address: IPAddress) -> str | None:
    """Why a delivery must not connect to ``address``, or None when it is globally
    routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal(embedded)
            return f"{reason} (IPv4 {embedded} inside IPv6)" if reason else None
        if address.is_site_local:
            return "site-local"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        # What is left and not global: shared address space (100.64.0.0/10) and the like.
        (not address.is_global, "not globally routable"),
    )
    return next((reason for refused, reason in checks if refused), None)


def resolve(
    host: str,
    port: int,
    *,
    timeout: float,
    resolver: Resolver | None = None,
) -> list[IPAddress]:
    """The addresses ``host`` resolves to (TCP), in the resolver's order, without repeats.

    An IP literal is its own answer. :class:`ResolutionFailed` when the name does not
    resolve, or the resolver does not answer within ``timeout`` seconds (the system
    resolver has no timeout of its own: it is asked from a helper thread).
    """
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    lookup = resolver or socket.getaddrinfo
    answer: list[Any] = []

    def ask() -> None:
        try:
            answer.append(lookup(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))
        except (OSError, UnicodeError) as exc:
            answer.append(exc)

    thread = threading.Thread(target=ask, name="webhook-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        raise ResolutionFailed(f"{host} did not resolve within {timeout:g} s")
    found = answer[0]
    if isinstance(found, Exception):
        raise ResolutionFailed(f"{host} does not resolve ({found})")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in found:
        # An IPv6 sockaddr may carry a zone (fe80::1%eth0): the address is before it.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ResolutionFailed(f"{host} resolves to no address")
    return addresses


def check_addresses(host: str, addresses: Sequence[IPAddress], *, allow_private: bool) -> None:
    """:class:`TargetRefused` when any of ``addresses`` (what ``host`` resolved to) is not
    globally routable, unless ``allow_private``. One bad address refuses the host: a name
    that answers with a public and a private address is not a public name."""
    if allow_private:
        return
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            where = host if host == str(address) else f"{host} resolves to {address}, which"
            raise TargetRefused(f"{where} is {reason}; this site does not allow private targets")
