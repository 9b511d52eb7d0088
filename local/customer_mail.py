"""acme.test's own mail server, as a customer runs it: a submission service (STARTTLS + AUTH, what the relay uses as
its smarthost), an MX for mail addressed to acme.test, and server-level forwarding of the support address.

Forwarding follows Exchange Online's mailbox forwarding (ForwardingSmtpAddress set by the admin), the scheme of
events/inbound_ses.json: the message is resent unchanged except for new headers on top — `Received`,
`X-MS-Exchange-Organization-AutoForwarded: true`, `X-MS-Exchange-Inbox-Rules-Loop: <support address>` and
`X-MS-Exchange-ForwardingLoop: <support address>;<tenant id>` — with an SRS-rewritten envelope sender
(`bounces+SRS=<hash>=<tag>@acme.test`), so To: still names support@acme.test. A message that already carries the
loop header for that address is not forwarded again (Exchange's loop protection).

Mail for other acme.test users lands in their mailbox; authenticated submissions for outside recipients are
"sent to the internet": they land in that recipient's mailbox (`<state folder>/mailboxes/<address>/`).
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import threading
import uuid
from collections.abc import Callable
from email.utils import formatdate

from relaydesk.outbound.tls import client_tls_context

from local.ca import LocalCA
from local.mailbox import Mailboxes
from local.smarthost import Received, SmtpServer

log = logging.getLogger(__name__)

NextHop = Callable[[str], "tuple[str, int] | None"]  # recipient domain -> an MX on loopback, or None (a mailbox)
SMTP_TIMEOUT_SECONDS = 30


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class CustomerMailServer:
    """Submission on `submission.port` (user/password at run time), MX on `mx.port`; `forward(address, to)`."""

    def __init__(self, ca: LocalCA, mailboxes: Mailboxes, *, domain: str = "acme.test",
                 users: dict[str, str] | None = None, next_hop: NextHop | None = None,
                 hostname: str = "mail.acme.test",
                 on_forwarded: Callable[[str, str, bytes], None] | None = None) -> None:
        self.ca = ca
        self.domain = domain.lower()
        self.hostname = hostname
        self.mailboxes = mailboxes
        self.next_hop = next_hop or (lambda domain: None)
        self.tenant_id = str(uuid.uuid4())
        self.forwards: dict[str, str] = {}
        self.on_forwarded = on_forwarded
        self.forwarded: list[tuple[str, str, bytes]] = []  # (support address, target, bytes sent)
        self._lock = threading.Lock()
        names = ("127.0.0.1", "localhost", hostname)
        self.submission = SmtpServer(ca, users=users, mode="starttls", hostname=hostname, cert_names=names,
                                     on_message=self._submitted)
        self.mx = SmtpServer(ca, mode="starttls", require_tls=False, auth_required=False, hostname=hostname,
                             cert_names=names, on_message=self._received,
                             accept_recipient=lambda rcpt: _domain(rcpt) == self.domain)

    def start(self) -> CustomerMailServer:
        self.submission.start()
        self.mx.start()
        return self

    def stop(self) -> None:
        self.submission.stop()
        self.mx.stop()

    # -- configuration -----------------------------------------------------------------------------------------
    def forward(self, address: str, to: str) -> None:
        """Server-level forward of every message for `address` to `to` (the account's system address)."""
        with self._lock:
            self.forwards[address.lower()] = to.lower()

    def set_password(self, user: str, password: str, *, end_sessions: bool = False) -> None:
        """`end_sessions`: also close the user's open submission sessions, as after an admin's password reset."""
        self.submission.set_password(user, password)
        if end_sessions:
            self.submission.end_sessions(user)

    # -- delivery ----------------------------------------------------------------------------------------------
    def _submitted(self, received: Received) -> None:
        stamp = self._received_header(received, authenticated=True)
        for rcpt in received.rcpt_tos:
            if _domain(rcpt) == self.domain:
                self._deliver_local(rcpt, received.mail_from, stamp + received.data)
            else:
                self._send_out(rcpt, received.mail_from, stamp + received.data)

    def _received(self, received: Received) -> None:
        stamp = self._received_header(received, authenticated=False)
        for rcpt in received.rcpt_tos:
            self._deliver_local(rcpt, received.mail_from, stamp + received.data)

    def _deliver_local(self, rcpt: str, mail_from: str, data: bytes) -> None:
        with self._lock:
            target = self.forwards.get(rcpt.lower())
        loop_header = f"X-MS-Exchange-ForwardingLoop: {rcpt.lower()};".encode()
        if target and loop_header not in data:
            self._forward(rcpt.lower(), target, data)
        else:
            self.mailboxes.deliver(rcpt, data, mail_from=mail_from)

    def _forward(self, address: str, target: str, data: bytes) -> None:
        headers = (
            f"Received: from {self.hostname} (127.0.0.1) by {self.hostname} (127.0.0.1) with Microsoft SMTP Server "
            f"(version=TLS1_2) id 15.20.0.0; {formatdate()}\r\n"
            "X-MS-Exchange-Organization-AutoForwarded: true\r\n"
            f"X-MS-Exchange-Inbox-Rules-Loop: {address}\r\n"
            f"X-MS-Exchange-ForwardingLoop: {address};{self.tenant_id}\r\n"
        ).encode()
        envelope_from = f"bounces+SRS={secrets.token_urlsafe(6)}={secrets.token_hex(2).upper()}@{self.domain}"
        self._relay(target, envelope_from, headers + data)
        with self._lock:
            self.forwarded.append((address, target, headers + data))
        if self.on_forwarded:
            self.on_forwarded(address, target, headers + data)

    def _send_out(self, rcpt: str, mail_from: str, data: bytes) -> None:
        if self.next_hop(_domain(rcpt)) is not None:
            self._relay(rcpt, mail_from, data)
        else:
            self.mailboxes.deliver(rcpt, data, mail_from=mail_from)

    def _relay(self, rcpt: str, mail_from: str, data: bytes) -> None:
        """SMTP to the recipient domain's MX, STARTTLS verified against the local CA, as an outbound MTA does."""
        hop = self.next_hop(_domain(rcpt))
        if hop is None:
            raise LookupError(f"no route to {_domain(rcpt)}")
        host, port = hop
        with smtplib.SMTP(host, port, local_hostname=self.hostname, timeout=SMTP_TIMEOUT_SECONDS) as client:
            client.starttls(context=client_tls_context(self.ca.pem))
            client.sendmail(mail_from, [rcpt], data)

    def _received_header(self, received: Received, *, authenticated: bool) -> bytes:
        peer = received.peer[0] if received.peer else "127.0.0.1"
        protocol = ("ESMTPSA" if authenticated else "ESMTPS") if received.tls else "ESMTP"
        who = f" (authenticated as {received.auth_user})" if authenticated and received.auth_user else ""
        return (f"Received: from [{peer}]{who}\r\n\tby {self.hostname} with {protocol} id "
                f"{secrets.token_hex(6).upper()}; {formatdate()}\r\n").encode()
