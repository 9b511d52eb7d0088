"""What SES receiving does for the mail domain: accept mail for <anything>@<sub>.<mail domain>, store the raw message
in S3 at `<prefix><ses message id>` (template.yaml's prefix: `inbound/`), then invoke the inbound function
asynchronously with a real-shaped SES event.

The event follows SES's "Lambda action" notification: `Records[0].ses.mail` (source, destination, headers,
commonHeaders, messageId, timestamp) and `Records[0].ses.receipt` (recipients, spam/virus/SPF/DKIM/DMARC verdicts,
action of type Lambda with invocationType Event). Verdicts default to PASS; `InboundMx.verdicts` changes them.
"""

from __future__ import annotations

import email
import email.policy
import logging
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import format_datetime

from local.ca import LocalCA
from local.smarthost import Received, SmtpServer

log = logging.getLogger(__name__)

SES_HOST = "inbound-smtp.us-east-1.amazonaws.com"
RETRY_DELAY_SECONDS = 1.0  # Lambda waits about a minute, then two; locally a second keeps the demo short
_ALPHABET = string.ascii_lowercase + string.digits


def ses_message_id() -> str:
    """SES receiving message ids are 40 lower-case alphanumerics."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(40))


def recipient_matcher(mail_domain: str) -> Callable[[str], bool]:
    """The receipt rule's recipients: the mail domain and every subdomain of it."""
    domain = mail_domain.lower()

    def matches(address: str) -> bool:
        host = address.rpartition("@")[2].lower().rstrip(">")
        return host == domain or host.endswith("." + domain)

    return matches


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ses_headers(received: Received, message_id: str, now: datetime, verdicts: dict[str, str]) -> bytes:
    """The headers SES puts on top of the stored message (Return-Path, Received, verdicts)."""
    first = received.rcpt_tos[0] if received.rcpt_tos else ""
    spf = verdicts.get("spf", "PASS").lower()
    lines = [
        f"Return-Path: <{received.mail_from}>",
        f"Received: from {received.peer[0] if received.peer else 'localhost'} by {SES_HOST} with SMTP id "
        f"{message_id} for {first}; {format_datetime(now)}",
        f"X-SES-Spam-Verdict: {verdicts.get('spam', 'PASS')}",
        f"X-SES-Virus-Verdict: {verdicts.get('virus', 'PASS')}",
        f"Received-SPF: {spf} (spfCheck: local stack) client-ip=127.0.0.1; envelope-from={received.mail_from};",
        f"Authentication-Results: amazonses.com; spf={spf}; dkim={verdicts.get('dkim', 'PASS').lower()}; "
        f"dmarc={verdicts.get('dmarc', 'PASS').lower()}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def ses_event(*, raw: bytes, mail_from: str, recipients: list[str], message_id: str, now: datetime,
              verdicts: dict[str, str], function_arn: str) -> dict:
    """The event SES's Lambda action (InvocationType Event) delivers, built from the stored message."""
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers = [{"name": name, "value": str(value)} for name, value in parsed.items()]

    def addresses(name: str) -> list[str] | None:
        values = parsed.get_all(name)
        return [str(v) for v in values] if values else None

    common = {"returnPath": mail_from, "from": addresses("From"), "date": parsed.get("Date"),
              "to": addresses("To"), "cc": addresses("Cc"), "messageId": parsed.get("Message-ID"),
              "subject": parsed.get("Subject")}
    receipt = {
        "timestamp": _iso(now), "processingTimeMillis": 12, "recipients": recipients,
        "spamVerdict": {"status": verdicts.get("spam", "PASS")},
        "virusVerdict": {"status": verdicts.get("virus", "PASS")},
        "spfVerdict": {"status": verdicts.get("spf", "PASS")},
        "dkimVerdict": {"status": verdicts.get("dkim", "PASS")},
        "dmarcVerdict": {"status": verdicts.get("dmarc", "PASS")},
        "action": {"type": "Lambda", "invocationType": "Event", "functionArn": function_arn},
    }
    if verdicts.get("dmarc", "PASS") == "FAIL":
        receipt["dmarcPolicy"] = verdicts.get("dmarc_policy", "reject")
    return {"Records": [{"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {
        "mail": {"timestamp": _iso(now), "source": mail_from, "messageId": message_id, "destination": recipients,
                 "headersTruncated": False, "headers": headers,
                 "commonHeaders": {k: v for k, v in common.items() if v is not None}},
        "receipt": receipt}}]}


class InboundMx:
    """SES receiving on 127.0.0.1: STARTTLS offered (TlsPolicy Optional), no AUTH, only the mail domain's recipients.

    `put_raw(key, bytes)` stores the message (S3); `invoke(event)` runs the inbound function; both are injected so
    this module stays free of boto3 and of the handler. Invocations run in a worker pool, like Lambda's async
    invocation: the sending server gets its 250 when the message is stored. A failing invocation is retried, then
    `on_failure(record)` gets what the on-failure destination (the inbound DLQ) would.
    """

    def __init__(self, ca: LocalCA, *, mail_domain: str, put_raw: Callable[[str, bytes], None],
                 invoke: Callable[[dict], object], function_arn: str,
                 on_invoked: Callable[[str, object, BaseException | None], None] | None = None,
                 on_failure: Callable[[dict], None] | None = None, key_prefix: str = "inbound/",
                 max_retry_attempts: int = 2) -> None:
        self.mail_domain = mail_domain
        self.verdicts: dict[str, str] = {}
        self._put_raw = put_raw
        self._invoke = invoke
        self._function_arn = function_arn
        self._on_invoked = on_invoked
        self._on_failure = on_failure
        self.key_prefix = key_prefix  # template.yaml's S3Action ObjectKeyPrefix
        self.attempts = 1 + max_retry_attempts  # the function's EventInvokeConfig (Lambda's default: 2 retries)
        # One worker: a Lambda container runs one invocation at a time, and the handler's module state (powertools'
        # logger keys, caches) assumes so. Lambda would scale out with more containers; one is plenty here.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ses-inbound")
        self._lock = threading.Lock()
        self.message_ids: list[str] = []
        self.server = SmtpServer(ca, mode="starttls", require_tls=False, auth_required=False,
                                 hostname=SES_HOST, on_message=self._receive,
                                 accept_recipient=recipient_matcher(mail_domain),
                                 cert_names=("127.0.0.1", "localhost", SES_HOST))

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> InboundMx:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _receive(self, received: Received) -> None:
        message_id = ses_message_id()
        now = datetime.now(UTC)
        raw = ses_headers(received, message_id, now, self.verdicts) + received.data
        self._put_raw(self.key_prefix + message_id, raw)  # S3 action first: the function reads the object it is told
        event = ses_event(raw=raw, mail_from=received.mail_from, recipients=list(received.rcpt_tos),
                          message_id=message_id, now=now, verdicts=dict(self.verdicts),
                          function_arn=self._function_arn)
        with self._lock:
            self.message_ids.append(message_id)
        self._pool.submit(self._run, message_id, event)

    def _run(self, message_id: str, event: dict) -> None:
        error: BaseException | None = None
        for attempt in range(1, self.attempts + 1):  # Lambda retries a failed async invocation
            try:
                result = self._invoke(event)
            except Exception as failure:
                error = failure
                log.exception("inbound function failed for SES message %s (attempt %d)", message_id, attempt)
                time.sleep(RETRY_DELAY_SECONDS)
                continue
            if self._on_invoked:
                self._on_invoked(message_id, result, None)
            return
        if self._on_failure:
            self._on_failure(failure_record(event, self._function_arn, error, self.attempts))
        if self._on_invoked:
            self._on_invoked(message_id, None, error)


def failure_record(event: dict, function_arn: str, error: BaseException | None, attempts: int) -> dict:
    """What Lambda's on-failure destination receives after the retries of an async invocation ran out."""
    return {
        "version": "1.0", "timestamp": _iso(datetime.now(UTC)),
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{function_arn}:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": attempts},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": type(error).__name__ if error else "Unknown",
                            "errorMessage": "the inbound function failed; see its log"},
    }

