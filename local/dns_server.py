"""The local stack's DNS: an authoritative server on 127.0.0.1 (UDP and TCP on one ephemeral port) for the domains
of this little internet, answering from a zone file that `acme-admin dns ...` edits, as a customer's DNS provider
would. `relaydesk dns check` and `dkim enable` ask it when RELAYDESK_DNS_RESOLVER names it (the env file does).

The zone is JSON, `{"records": [{"name": ..., "type": "TXT"|"MX"|"A"|"CNAME", "value": ...}]}`, read again when it
changes. A name with no record of any type is NXDOMAIN; a known name without the asked type is an empty answer.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

log = logging.getLogger(__name__)

TTL = 60
UDP_PAYLOAD = 512  # RFC 1035 4.2.1, without EDNS; a longer answer sets TC and the client asks again over TCP
TXT_STRING_LIMIT = 255  # RFC 1035 3.3.14: one character-string
SUPPORTED_TYPES = ("TXT", "MX", "A", "CNAME")


def seed_records(customer_domain: str) -> list[dict[str, str]]:
    """What acme.test's DNS already has before Relaydesk: its MX, an SPF naming its own server, a DMARC policy."""
    return [
        {"name": customer_domain, "type": "MX", "value": f"10 mail.{customer_domain}."},
        {"name": f"mail.{customer_domain}", "type": "A", "value": "127.0.0.1"},
        {"name": customer_domain, "type": "TXT", "value": "v=spf1 ip4:127.0.0.1 -all"},
        {"name": f"_dmarc.{customer_domain}", "type": "TXT",
         "value": f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{customer_domain}"},
    ]


def normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


def txt_rdata(value: str) -> str:
    """A TXT value as quoted character-strings of at most 255 bytes (a DKIM RSA key needs two)."""
    data = value.encode()
    chunks = [data[i:i + TXT_STRING_LIMIT] for i in range(0, len(data), TXT_STRING_LIMIT)] or [b""]
    return " ".join('"' + chunk.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks)


class Zone:
    """The zone file, read again whenever its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._records: dict[str, list[tuple[str, str]]] = {}

    def lookup(self, name: str) -> dict[str, list[str]] | None:
        """Every record at the name by type, or None when the name does not exist."""
        records = self._current().get(normalize(name))
        if records is None:
            return None
        by_type: dict[str, list[str]] = {}
        for rdtype, value in records:
            by_type.setdefault(rdtype, []).append(value)
        return by_type

    def _current(self) -> dict[str, list[tuple[str, str]]]:
        with self._lock:
            try:
                stamp = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                return {}
            if stamp != self._stamp:
                try:
                    entries = json.loads(self.path.read_text()).get("records", [])
                except (OSError, ValueError):
                    log.exception("local DNS: %s is not a readable zone; keeping the previous one", self.path)
                    return self._records
                records: dict[str, list[tuple[str, str]]] = {}
                for entry in entries:
                    records.setdefault(normalize(entry["name"]), []).append((entry["type"].upper(), entry["value"]))
                self._records, self._stamp = records, stamp
            return self._records


def answer(zone: Zone, wire: bytes, *, max_size: int = 65535) -> bytes | None:
    """The response to one query, authoritative; None for something that is not a DNS query."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    for question in query.question:
        found = zone.lookup(question.name.to_text())
        if found is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            continue
        rdtype = dns.rdatatype.to_text(question.rdtype)
        values = found.get(rdtype, [])
        if not values and "CNAME" in found:
            rdtype, values = "CNAME", found["CNAME"]
        if values:
            texts = [txt_rdata(v) if rdtype == "TXT" else v for v in values]
            response.answer.append(dns.rrset.from_text(question.name, TTL, "IN", rdtype, *texts))
    try:
        return response.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        truncated = dns.message.make_response(query)
        truncated.flags |= dns.flags.AA | dns.flags.TC
        return truncated.to_wire()


class _Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        reply = answer(self.server.zone, data, max_size=UDP_PAYLOAD)  # type: ignore[attr-defined]
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:  # RFC 1035 4.2.2: each message prefixed by its two-byte length
        while True:
            prefix = self.rfile.read(2)
            if len(prefix) < 2:
                return
            data = self.rfile.read(int.from_bytes(prefix, "big"))
            reply = answer(self.server.zone, data)  # type: ignore[attr-defined]
            if reply is None:
                return
            self.wfile.write(len(reply).to_bytes(2, "big") + reply)


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class LocalDns:
    """`start()` binds UDP and TCP on one free loopback port; `address` is what RELAYDESK_DNS_RESOLVER takes."""

    def __init__(self, zone_path: Path, *, seed: list[dict[str, str]] | None = None) -> None:
        self.zone_path = Path(zone_path)
        self.zone = Zone(self.zone_path)
        self._seed = seed or []
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LocalDns:
        self.zone_path.parent.mkdir(parents=True, exist_ok=True)
        self.zone_path.write_text(json.dumps({"records": self._seed}, indent=2) + "\n")
        for _attempt in range(20):  # the UDP port's number may be taken for TCP: try another
            udp = _UdpServer((self.host, 0), _Udp)
            try:
                tcp = _TcpServer((self.host, udp.server_address[1]), _Tcp)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise OSError("no loopback port free for both UDP and TCP")
        for server in (udp, tcp):
            server.zone = self.zone  # type: ignore[attr-defined]
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name=f"local-dns-{type(server).__name__}", daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        self.port = udp.server_address[1]
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()


def zone_records(path: Path) -> list[dict[str, str]]:
    try:
        return list(json.loads(path.read_text()).get("records", []))
    except FileNotFoundError:
        return []


def write_zone(path: Path, records: list[dict[str, str]]) -> None:
    """Replace the zone atomically, so the server never reads half a file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"records": records}, indent=2) + "\n")
    temporary.replace(path)

