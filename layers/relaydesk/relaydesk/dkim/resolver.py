"""DNS lookups for `dns check`: a small callable port, and the real one on dnspython."""

from __future__ import annotations

from typing import Protocol

from relaydesk.errors import RelaydeskError

LOOKUP_TIMEOUT_SECONDS = 5.0
# The DNS server `relaydesk dns check` and `dkim enable` ask instead of the system's ("host" or "host:port").
RESOLVER_VARIABLE = "RELAYDESK_DNS_RESOLVER"


class DnsLookupError(RelaydeskError, ConnectionError):
    """The resolver gave no answer (timeout, SERVFAIL): unlike NXDOMAIN this says nothing about the record."""

    code = "dns_lookup_failed"
    action = "Check the machine's DNS resolver, then run the check again."


class Resolver(Protocol):
    def __call__(self, name: str, rdtype: str) -> list[str]:
        """Every record of that type at that name (a TXT's strings joined), [] when there is none."""
        ...


def dns_resolver(timeout: float = LOOKUP_TIMEOUT_SECONDS, nameserver: str | None = None) -> Resolver:
    """The system's resolver through dnspython, or the one server `nameserver` names ("host" or "host:port", e.g.
    the domain's authoritative server, or the local stack's); CNAMEs are followed, as a receiving server does."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=not nameserver)
    if nameserver:
        host, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
        resolver.nameservers = [host]
        resolver.port = int(port) if port else 53
    resolver.lifetime = timeout

    def resolve(name: str, rdtype: str) -> list[str]:
        try:
            answer = resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
            raise DnsLookupError(f"no answer for {rdtype} {name}: {error.__class__.__name__}") from None
        if rdtype.upper() == "TXT":
            return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]
        return [record.to_text() for record in answer]

    return resolve
