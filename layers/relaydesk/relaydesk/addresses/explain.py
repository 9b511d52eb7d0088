"""Plain-words explanations of smarthost failures, with the fix, keyed on the step and the server's reply."""

from __future__ import annotations

import re
from typing import NamedTuple

ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")  # RFC 3463 class.subject.detail

SET_CAS_MAILBOX = "Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false"


class Explanation(NamedTuple):
    summary: str  # what went wrong, in plain words
    fix: str  # what the admin should do


def enhanced_status_of(reply: str) -> str | None:
    match = ENHANCED_STATUS.search(reply or "")
    return match.group(1) if match else None


def explain_reply(code: int | None, reply: str, *, host: str = "", username: str = "") -> Explanation | None:
    """A known provider reply (Exchange Online, Gmail, ...), or None when the reply is not one we know."""
    text = (reply or "").lower()
    status = enhanced_status_of(reply)
    if status == "5.7.139" or "smtpclientauthentication is disabled" in text:
        return Explanation(
            "Exchange Online refused SMTP AUTH (535 5.7.139): SMTP AUTH is disabled for the tenant or for this "
            "mailbox, or the tenant's security defaults block basic authentication.",
            f"Enable SMTP AUTH for the mailbox in Exchange Online PowerShell: `{SET_CAS_MAILBOX}` (or Microsoft 365 "
            "admin center > Users > Active users > the user > Mail > Manage email apps > Authenticated SMTP). If "
            "it is disabled for the whole tenant, the per-mailbox setting overrides it; security defaults must not "
            "block the mailbox. Changes can take up to an hour; then run `relaydesk addresses connect` again.")
    if status == "5.7.57" or "not authenticated to send anonymous mail" in text:
        return Explanation(
            "The server says the client was not authenticated to send (5.7.57): the mail was submitted without a "
            "successful SMTP AUTH.",
            "Use port 587 with STARTTLS and the mailbox's own credentials; make sure the mailbox is licensed and "
            "SMTP AUTH is enabled for it.")
    if status == "5.7.60" or "sendasdenied" in text or "not allowed to send as" in text:
        return Explanation(
            "The mailbox that signs in is not allowed to send as the support address (5.7.60 SendAsDenied).",
            "Sign in as the support address's own mailbox, or grant Send As: `Add-RecipientPermission -Identity "
            "<support address> -Trustee <mailbox that signs in> -AccessRights SendAs`.")
    if status == "5.7.520" or "does not allow external forwarding" in text:
        return Explanation(
            "Exchange Online blocked the automatic forward to Relaydesk (5.7.520): external forwarding is off.",
            "In Microsoft 365 Defender > Policies > Anti-spam > Outbound policy, set Automatic forwarding rules to "
            "On for the support mailbox.")
    if status == "5.7.9" or "application-specific password required" in text:
        return Explanation(
            "Google requires an app password for this account (534 5.7.9): the account password is refused "
            "because 2-Step Verification is on.",
            "Create an app password for the mailbox (Google Account > Security > 2-Step Verification > App "
            "passwords) and connect with it instead of the account password.")
    if status == "5.7.8" or "username and password not accepted" in text:
        return Explanation(
            "The server refused the username or password (5.7.8: authentication credentials invalid).",
            "Check the username (usually the full address) and the password; for Google, use an app password.")
    if status == "5.7.3" or (code == 535 and "authentication unsuccessful" in text):
        return Explanation(
            "The server refused the credentials (535): wrong username or password, or the account requires "
            "multi-factor sign-in that SMTP cannot do.",
            f"Check the username{f' ({username})' if username else ''} and password. For Microsoft 365, sign in "
            "once on the web to check the password, and make sure Conditional Access does not block the "
            "sign-in (device platform Linux must not be excluded).")
    if code == 535:
        return Explanation("The server refused the username or password (535).",
                           "Check the username and password with the mail server's administrator.")
    if code == 530 and "starttls" in text:
        return Explanation("The server requires STARTTLS before anything else (530).",
                           "Use --tls starttls on port 587.")
    if code is not None and 400 <= code < 500:
        return Explanation(f"The server answered with a temporary error ({code}): {reply.strip()}",
                           "Try again in a few minutes; if it persists, ask the mail server's administrator.")
    return None


def explain_step(step: str, *, code: int | None = None, reply: str = "", error: str = "", host: str = "",
                 port: int | None = None, username: str = "") -> Explanation:
    """The explanation for a failed live-check step."""
    known = explain_reply(code, reply, host=host, username=username)
    if known is not None:
        return known
    detail = (reply or error).strip()
    lowered = detail.lower()
    if step == "dns":
        return Explanation(f"The host name {host} does not resolve: {detail}",
                           "Check the smarthost name (for Microsoft 365: smtp.office365.com; Google: smtp.gmail.com).")
    if step == "tcp":
        return Explanation(
            f"Could not open a connection to {host} port {port}: {detail}",
            "Check the port (587 for STARTTLS, 465 for implicit TLS) and that the server's firewall allows "
            "Relaydesk's outbound addresses.")
    if step == "greeting":
        return Explanation(f"The server did not greet with 220: {detail}",
                           "Check that the host and port are an SMTP submission service.")
    if step == "starttls":
        if "not supported" in lowered or ("starttls" in lowered and "extension" in lowered):
            return Explanation(
                f"{host} does not offer STARTTLS on port {port}: Relaydesk never sends credentials without TLS.",
                "Enable STARTTLS on the submission port, or use port 465 with --tls implicit.")
        return Explanation(f"STARTTLS failed: {detail}",
                           "Check the server's TLS configuration (TLS 1.2 or newer is required).")
    if step == "tls":
        if "wrong version number" in lowered or "unknown protocol" in lowered or "record layer" in lowered:
            return Explanation(f"Port {port} does not speak implicit TLS (the server answered in plain text).",
                               "Use --tls starttls for port 587, --tls implicit only for port 465.")
        return Explanation(f"The TLS handshake with {host} failed: {detail}",
                           "The server must offer TLS 1.2 or newer; check its TLS configuration.")
    if step == "certificate":
        if "hostname mismatch" in lowered or "doesn't match" in lowered or "not valid for" in lowered:
            return Explanation(
                f"The server's certificate is not valid for the host name {host}.",
                "Connect with the host name written on the server's certificate (for Microsoft 365: "
                "smtp.office365.com), or have the certificate reissued for this name.")
        if "expired" in lowered:
            return Explanation("The server's certificate has expired.", "Renew the smarthost's certificate.")
        if "self-signed" in lowered or "unable to get local issuer" in lowered or "self signed" in lowered:
            return Explanation(
                "The server's certificate is issued by an authority Relaydesk does not trust.",
                "For a private smarthost, pass its CA with --ca-bundle FILE (PEM); otherwise install a certificate "
                "from a public CA. Relaydesk never skips certificate verification.")
        return Explanation(f"The server's certificate did not verify: {detail}",
                           "Fix the certificate, or pass the issuing CA with --ca-bundle FILE.")
    if step == "auth":
        if "auth" in lowered and "not supported" in lowered:
            return Explanation(f"{host} does not offer SMTP AUTH after TLS.",
                               "Enable SMTP AUTH (PLAIN or LOGIN) on the submission port.")
        return Explanation(f"Authentication failed: {detail}", "Check the username and password.")
    if step == "sender":
        return Explanation(f"The server refused the support address as sender: {detail}",
                           "Allow the mailbox that signs in to send as the support address.")
    return Explanation(f"The {step} step failed: {detail}", "Check the smarthost settings.")
