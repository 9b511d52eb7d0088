"""What SES sending does with the mail the relay hands it: deliver it by SMTP to each recipient's domain.

moto's SES keeps every sent message in its backend (`sent_messages`, the list that `/moto-api/data.json`
serializes). The moto server runs in this process (`ThreadedMotoServer`), so this poller reads that backend directly
and delivers each new raw message: to a loopback MX when the recipient's domain has one (acme.test: the customer's
server; the mail domain: the inbound MX), else into the recipient's mailbox (the rest of the internet). The message
bytes are sent as given, with one `Received` header on top, as SES's outbound MTA adds. (Real SES may also replace
Message-ID; the relay's hidden body marker is what keeps threading working in that case.)
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from email.utils import formatdate, parseaddr

from relaydesk.outbound.tls import client_tls_context

from local.ca import LocalCA
from local.mailbox import Mailboxes

log = logging.getLogger(__name__)

NextHop = Callable[[str], "tuple[str, int] | None"]
POLL_SECONDS = 0.2
SES_OUTBOUND_HOST = "a8-30.smtp-out.amazonses.com"


def _backend(account_id: str, region: str):
    from moto.ses.models import ses_backends  # in-process moto server: the same backend object it serves

    return ses_backends[account_id][region]


class SesSending:
    """A thread that delivers what moto's SES "sent"; `delivered` lists (ses message id, recipient, where)."""

    def __init__(self, ca: LocalCA, mailboxes: Mailboxes, next_hop: NextHop, *, region: str = "us-east-1",
                 account_id: str | None = None,
                 on_delivered: Callable[[str, str, str], None] | None = None) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID

        self.ca = ca
        self.mailboxes = mailboxes
        self.next_hop = next_hop
        self.region = region
        self.account_id = account_id or DEFAULT_ACCOUNT_ID
        self.on_delivered = on_delivered
        self.delivered: list[tuple[str, str, str]] = []
        self._seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SesSending:
        self._seen = len(_backend(self.account_id, self.region).sent_messages)
        self._thread = threading.Thread(target=self._loop, name="ses-sending", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.poll_once()

    def poll_once(self) -> int:
        messages = _backend(self.account_id, self.region).sent_messages
        new, self._seen = messages[self._seen:], len(messages)
        for message in new:
            try:
                self._deliver(message)
            except Exception:  # one bad message must not stop the poller; SES would bounce it
                log.exception("local SES could not deliver message %s", getattr(message, "id", "?"))
        return len(new)

    def _deliver(self, message) -> None:
        raw = getattr(message, "raw_data", None)
        if raw is None:  # SendEmail (not raw): rebuild a plain message as SES would
            raw = (f"From: {message.source}\r\nTo: {', '.join(message.destinations.get('ToAddresses', []))}\r\n"
                   f"Subject: {message.subject}\r\n\r\n{message.body}\r\n")
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        stamp = (f"Received: from {SES_OUTBOUND_HOST} (127.0.0.1) by local; {formatdate()}\r\n").encode()
        sender = parseaddr(message.source or "")[1]
        recipients = dict.fromkeys(parseaddr(d)[1].lower() for d in message.destinations if parseaddr(d)[1])
        for rcpt in recipients:
            hop = self.next_hop(rcpt.rpartition("@")[2])
            if hop is None:
                where = str(self.mailboxes.deliver(rcpt, stamp + data, mail_from=sender).path)
            else:
                with smtplib.SMTP(hop[0], hop[1], local_hostname=SES_OUTBOUND_HOST, timeout=30) as client:
                    client.starttls(context=client_tls_context(self.ca.pem))
                    client.sendmail(sender, [rcpt], stamp + data)
                where = f"smtp://{hop[0]}:{hop[1]}"
            self.delivered.append((message.id, rcpt, where))
            if self.on_delivered:
                self.on_delivered(message.id, rcpt, where)
