"""Where Relaydesk may connect on a customer's behalf: a smarthost or an OAuth token endpoint is a host an account
chose, so it is checked like hostile input. Every connection (the relay, the live check, the token fetch) resolves
the host, refuses it when any address is loopback, link-local (169.254.0.0/16: the instance metadata service; IPv6
fe80::/10 and fd00:ec2::/32), private, shared, reserved, multicast or unspecified (IPv4 inside IPv6 included), and
connects to exactly the addresses it checked, so a second DNS answer cannot send it elsewhere.

The operator may allow more: RELAYDESK_ALLOWED_DESTINATIONS, a comma-separated list of addresses or networks (a
private smarthost, the local stack's 127.0.0.1), and RELAYDESK_ALLOWED_TOKEN_HOSTS, token hosts beyond the providers'
own (an OAuth token URL of Microsoft 365 must be on login.microsoftonline.com, of Google on oauth2.googleapis.com).
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import os
import socket
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from relaydesk.errors import ConfigurationError, SmtpDeliveryError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
# The token host of each provider, by the smarthost its preset uses (addresses/presets.py): the client secret goes
# nowhere else unless the operator allows it.
PROVIDER_TOKEN_HOSTS = {"smtp.office365.com": ("login.microsoftonline.com",),
                        "smtp.gmail.com": ("oauth2.googleapis.com",),
                        "smtp-relay.gmail.com": ("oauth2.googleapis.com",)}


class DestinationRefused(SmtpDeliveryError, ConfigurationError):
    """The host resolves to an address Relaydesk never connects to, or a token URL is not the provider's: nothing
    was sent. The relay defers it as it does a TLS policy it cannot meet (then the DLQ, for a redrive once the
    address's settings or the operator's allow-list change); the live check fails its dns step."""

    code = "destination_refused"
    action = ("Use the provider's public host name. A smarthost or token endpoint on a private network needs the "
              "operator to allow it (RELAYDESK_ALLOWED_DESTINATIONS, RELAYDESK_ALLOWED_TOKEN_HOSTS; docs/DEPLOY.md).")


@dataclass(frozen=True)
class Policy:
    allowed: tuple[Network, ...] = ()
    token_hosts: tuple[str, ...] = ()

    @classmethod
    def from_environment(cls) -> Policy:
        networks = []
        for item in _items("RELAYDESK_ALLOWED_DESTINATIONS"):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(f"RELAYDESK_ALLOWED_DESTINATIONS: {item!r} is not an address or network",
                                         action="List addresses or networks, e.g. 10.0.4.0/24,127.0.0.1") from None
        return cls(tuple(networks), tuple(host.lower() for host in _items("RELAYDESK_ALLOWED_TOKEN_HOSTS")))

    def permits(self, address: Address) -> bool:
        return any(address in network for network in self.allowed if network.version == address.version) or \
            _public(address)


def _items(variable: str) -> list[str]:
    return [item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()]


@lru_cache(maxsize=1)
def policy() -> Policy:
    """Read once per container, as every setting is; `policy.cache_clear()` after changing the environment."""
    return Policy.from_environment()


def _public(address: Address) -> bool:
    """Globally routable unicast only; an IPv4 address carried inside IPv6 is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _public(embedded)
    return address.is_global and not address.is_multicast


def check(host: str, addresses: list[str]) -> list[str]:
    """`addresses` (what `host` resolved to) when every one may be connected to; else DestinationRefused naming the
    first that may not. All or nothing: a host that also resolves to a private address is refused."""
    rules = policy()
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # a scope id (fe80::1%eth0) is not part of the address
        if not rules.permits(address):
            raise DestinationRefused(f"{host} resolves to {address}, a {_kind(address)} address Relaydesk never "
                                     "connects to; nothing was sent")
    return addresses


def _kind(address: Address) -> str:
    for label, test in (("loopback", "is_loopback"), ("link-local", "is_link_local"),
                        ("unspecified", "is_unspecified"), ("multicast", "is_multicast"), ("private", "is_private")):
        if getattr(address, test):
            return label
    return "non-public"


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, IPv4 first (Lambda has no IPv6 egress outside a dual-stack VPC), each checked."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    seen: list[str] = []
    for info in infos:
        if str(info[4][0]) not in seen:
            seen.append(str(info[4][0]))
    return check(host, seen)


def connect(host: str, port: int, timeout: float,
            resolver: Callable[[str, int], list[str]] = resolve) -> socket.socket:
    """A connected TCP socket to one of the host's checked addresses (blocking: the token fetch)."""
    errors = []
    for address in resolver(host, port):
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as error:
            errors.append(f"{address}: {type(error).__name__}")
    raise OSError(f"could not connect to {host} port {port}: {'; '.join(errors) or 'no address'}")


async def open_socket(host: str, port: int, timeout: float,
                      resolver: Callable[[str, int], list[str]] = resolve) -> socket.socket:
    """The same for asyncio (the relay's SMTP): a connected non-blocking socket to a checked address."""
    loop = asyncio.get_running_loop()
    addresses = await asyncio.wait_for(loop.run_in_executor(None, resolver, host, port), timeout)
    errors = []
    for address in addresses:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
            return sock
        except (OSError, TimeoutError) as error:
            sock.close()
            errors.append(f"{address}: {type(error).__name__}")
    raise OSError(f"could not connect to {host} port {port}: {'; '.join(errors) or 'no address'}")


def token_url_refusal(url: str, smarthost: str) -> DestinationRefused | None:
    """None when the client secret may go to `url`: the provider's own token host for the smarthost's provider, or
    a host the operator allowed. Else the refusal (raised by the caller, before anything is sent)."""
    host = (urlsplit(url).hostname or "").lower()
    provider = PROVIDER_TOKEN_HOSTS.get(smarthost.lower().rstrip("."), ())
    if host in (*provider, *policy().token_hosts):
        return None
    expected = f"{smarthost}'s provider issues tokens at {', '.join(provider)}" if provider else \
        f"{smarthost} is no provider Relaydesk knows, so only hosts the operator allows may issue its tokens"
    return DestinationRefused(f"the token URL's host {host or '(none)'} is not allowed: {expected}; nothing was sent")


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = connect(self.host, self.port, self.timeout if isinstance(self.timeout, float | int) else 30.0)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS handler, connecting only to checked addresses (certificate still verified for the host)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._tls = context

    def https_open(self, req: urllib.request.Request):  # type: ignore[override]
        return self.do_open(_CheckedHTTPSConnection, req, context=self._tls)
