"""SMTP AUTH on a connection that is already TLS-protected: one attempt with one mechanism. A password goes with
PLAIN (LOGIN only when the server does not offer PLAIN), an OAuth 2.0 access token with XOAUTH2. After a refusal
nothing else is tried on the connection: walking a list of mechanisms (aiosmtplib's `login()` tries CRAM-MD5,
PLAIN and LOGIN in turn) costs the customer's server one failed login per mechanism, enough to trip fail2ban.
Shared by the relay, the live check and rotation's testSecret (through `outbound/smtp.py`); failures are typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiosmtplib

from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.errors import (
    AuthenticationFailedError,
    AuthMechanismUnavailableError,
    OAuthTokenError,
    OAuthTokenRefusedError,
    OAuthTokenUnavailableError,
    TlsRequiredError,
    TransientDeliveryError,
)
from relaydesk.oauth import AccessTokens
from relaydesk.outbound.policy import enhanced_status, error_for_reply

XOAUTH2_REFUSED_ACTION = (
    "The smarthost refused the app's access token for this mailbox. For Exchange Online: the app needs the "
    "SMTP.SendAsApp application permission (Office 365 Exchange Online) with admin consent, its service principal "
    "registered in Exchange Online (New-ServicePrincipal) with FullAccess on the mailbox (Add-MailboxPermission), "
    "and SMTP AUTH enabled on the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false).")


PLAIN, LOGIN, XOAUTH2 = "PLAIN", "LOGIN", "XOAUTH2"


def mechanism_for(creds: SmtpCredentials, offered: Sequence[str]) -> str:
    """The one mechanism to use: XOAUTH2 for OAuth 2.0; PLAIN for a password (RFC 4616: over TLS it is as safe as
    any), LOGIN only when PLAIN is not offered. AuthMechanismUnavailableError (nothing is sent) otherwise."""
    available = [name.upper() for name in offered]
    wanted = (XOAUTH2,) if creds.auth_kind is AuthKind.OAUTH2 else (PLAIN, LOGIN)
    found = next((name for name in wanted if name in available), None)
    if found is None:
        said = ", ".join(available) if available else "no AUTH at all"
        raise AuthMechanismUnavailableError(
            f"{creds.host} offers {said} after TLS, not {' or '.join(wanted)}; no credentials were sent")
    return found


async def authenticate(smtp: aiosmtplib.SMTP, creds: SmtpCredentials, tokens: AccessTokens, *,
                       offered: Sequence[str], fresh_token: bool = False) -> str:
    """One AUTH attempt as `creds` says, with the mechanism `mechanism_for` picks from `offered` (the server's EHLO
    after TLS); returns that mechanism. `fresh_token` (oauth2): ask the token endpoint again instead of using a
    cached token (after the smarthost refused one). Raises AuthenticationFailedError (the server's reply;
    OAuthTokenRefusedError when the token endpoint refused the app's credentials; AuthMechanismUnavailableError when
    no usable mechanism is offered), TransientDeliveryError (OAuthTokenUnavailableError when the token endpoint is
    down), TlsRequiredError on a connection without TLS (nothing is sent)."""
    where = f"{creds.host}:{creds.port}"
    if not smtp.is_connected:
        raise TransientDeliveryError(f"AUTH with {where} failed: not connected")
    if smtp.get_transport_info("sslcontext") is None:
        # RFC 4954 4: credentials only over an encrypted channel, whatever the server offers.
        raise TlsRequiredError(f"the connection to {creds.host} is not encrypted; no credentials were sent")
    mechanism = mechanism_for(creds, offered)
    oauth = mechanism == XOAUTH2
    # The token first, outside the SMTP error mapping below: its errors are typed already.
    token = await _token(creds, tokens, fresh=fresh_token) if oauth else ""
    try:
        if oauth:
            await smtp.auth_xoauth2(creds.username, token)
        elif mechanism == PLAIN:
            await smtp.auth_plain(creds.username, creds.password.get_secret_value())
        else:
            await smtp.auth_login(creds.username, creds.password.get_secret_value())
    except aiosmtplib.SMTPAuthenticationError as error:
        raise AuthenticationFailedError(
            f"{creds.host} refused the credentials of {creds.username}: {error.code} {error.message}",
            smtp_code=error.code, enhanced_status=enhanced_status(error.message),
            server_reply=f"{error.code} {error.message}", action=XOAUTH2_REFUSED_ACTION if oauth else None) from None
    except aiosmtplib.SMTPResponseException as error:
        raise error_for_reply(error.code, error.message, f"AUTH failed: {error.code} {error.message}") from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise TransientDeliveryError(f"AUTH with {where} failed: {type(error).__name__}") from None
    return mechanism


async def _token(creds: SmtpCredentials, tokens: AccessTokens, *, fresh: bool) -> str:
    cached = None if fresh else tokens.cached(creds)
    if cached is not None:
        return cached
    try:
        # A blocking HTTPS request: off the connection loop, which other smarthost groups share.
        return await asyncio.to_thread(tokens.token, creds, fresh=fresh)
    except OAuthTokenError as error:
        if error.transient:
            raise OAuthTokenUnavailableError(error) from None
        raise OAuthTokenRefusedError(error) from None
