"""What an end user's mail client does with a delivered notification: answer it (reply or reply-all, quoting it,
In-Reply-To its Message-ID, References grown by it) or forward it to a colleague. Built from the delivered .eml
itself, so threading is tested against the exact bytes the user got.

    answer = reply_to(delivered.path.read_bytes(), sender=("Jane Doe", "jane@example.net"), text="Thanks!")
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid


def _read(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""


def _quoted(message: EmailMessage) -> str:
    return "\n".join(f"> {line}".rstrip() for line in _text_of(message).splitlines())


def reply_to(raw: bytes, *, sender: tuple[str, str], text: str, reply_all: bool = False, subject: str | None = None,
             client: str = "thunderbird") -> EmailMessage:
    """The answer to the delivered message `raw`. `client="outlook"` writes what Outlook does: "RE:", no
    References (In-Reply-To only), Thread-Topic/Thread-Index, and its "From: ... Sent: ..." block above the quote."""
    original = _read(raw)
    answer = EmailMessage()
    answer["From"] = formataddr(sender)
    reply_target = original.get("Reply-To") or original["From"]
    answer["To"] = str(reply_target)
    if reply_all:
        others = [(n, a) for n, a in getaddresses([str(original.get("To", "")), str(original.get("Cc", ""))])
                  if a.lower() != sender[1].lower()]
        if others:
            answer["Cc"] = ", ".join(formataddr(pair) for pair in others)
    prefix = "RE: " if client == "outlook" else "Re: "
    answer["Subject"] = subject if subject is not None else prefix + str(original["Subject"])
    answer["Date"] = formatdate(localtime=True)
    answer["Message-ID"] = make_msgid(domain=sender[1].rpartition("@")[2])
    answer["In-Reply-To"] = original["Message-ID"]
    if client == "outlook":
        answer["Thread-Topic"] = str(original["Subject"])
        answer["Thread-Index"] = "AdrOutlookThreadIndex=="
        body = (f"{text}\n\n________________________________\nFrom: {original['From']}\nSent: {original['Date']}\n"
                f"To: {original['To']}\nSubject: {original['Subject']}\n\n{_text_of(original)}")
    else:
        references = " ".join(filter(None, [str(original.get("References", "")), str(original["Message-ID"])]))
        answer["References"] = references
        body = f"{text}\n\nOn {original['Date']}, {original['From']} wrote:\n{_quoted(original)}\n"
    answer.set_content(body)
    return answer


def forward(raw: bytes, *, sender: tuple[str, str], to: str, text: str) -> EmailMessage:
    """An inline forward (Gmail's and Thunderbird's "---------- Forwarded message ---------"), subject "Fwd:"."""
    original = _read(raw)
    message = EmailMessage()
    message["From"] = formataddr(sender)
    message["To"] = to
    message["Subject"] = f"Fwd: {original['Subject']}"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender[1].rpartition("@")[2])
    message.set_content(f"{text}\n\n---------- Forwarded message ---------\nFrom: {original['From']}\n"
                        f"Date: {original['Date']}\nSubject: {original['Subject']}\nTo: {original['To']}\n\n"
                        f"{_text_of(original)}")
    return message
