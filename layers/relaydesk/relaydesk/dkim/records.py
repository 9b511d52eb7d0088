"""The DNS records a customer publishes for a DKIM key: a TXT at `<selector>._domainkey.<domain>`."""

from __future__ import annotations

from typing import NamedTuple

from relaydesk.dkim.keyring import DkimKey

TXT_STRING_LIMIT = 255  # RFC 1035 §3.3.14: one character-string is at most 255 octets


class DnsRecord(NamedTuple):
    name: str
    type: str
    value: str  # the whole value, as a resolver joins it
    strings: tuple[str, ...]  # the value split into character-strings, as a zone file or DNS console wants it

    def zone_line(self) -> str:
        quoted = " ".join(f'"{s}"' for s in self.strings)
        return f"{self.name}. IN {self.type} {quoted}"


def key_record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"  # RFC 6376 §3.6.2.1


def key_record_value(key: DkimKey) -> str:
    return f"v=DKIM1; k={key.algorithm.key_type}; p={key.public_key}"


def split_txt(value: str, limit: int = TXT_STRING_LIMIT) -> tuple[str, ...]:
    data = value.encode("ascii")
    return tuple(data[i:i + limit].decode("ascii") for i in range(0, len(data), limit)) or ("",)


def key_record(key: DkimKey, domain: str) -> DnsRecord:
    value = key_record_value(key)
    return DnsRecord(key_record_name(key.selector, domain), "TXT", value, split_txt(value))
