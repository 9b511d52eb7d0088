"""SMTP AUTH on a connection that is already TLS-protected: PLAIN/LOGIN with the password, or XOAUTH2 with an OAuth
2.0 access token. Shared by the relay, the live check and rotation's testSecret; failures are typed errors.
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.errors import (
    AuthenticationFailedError,
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


async def authenticate(smtp: aiosmtplib.SMTP, creds: SmtpCredentials, tokens: AccessTokens, *,
                       fresh_token: bool = False) -> None:
    """AUTH as `creds` says. `fresh_token` (oauth2): ask the token endpoint again instead of using a cached token
    (after the smarthost refused one). Raises AuthenticationFailedError (the server's reply; OAuthTokenRefusedError
    when the token endpoint refused the app's credentials), TransientDeliveryError (OAuthTokenUnavailableError when
    the token endpoint is down), TlsRequiredError on a connection without TLS (nothing is sent)."""
    where = f"{creds.host}:{creds.port}"
    if not smtp.is_connected:
        raise TransientDeliveryError(f"AUTH with {where} failed: not connected")
    if smtp.get_transport_info("sslcontext") is None:
        # RFC 4954 4: credentials only over an encrypted channel, whatever the server offers.
        raise TlsRequiredError(f"the connection to {creds.host} is not encrypted; no credentials were sent")
    oauth = creds.auth_kind is AuthKind.OAUTH2
    # The token first, outside the SMTP error mapping below: its errors are typed already.
    token = await _token(creds, tokens, fresh=fresh_token) if oauth else ""
    try:
        if oauth:
            await smtp.auth_xoauth2(creds.username, token)
        else:
            await smtp.login(creds.username, creds.password.get_secret_value())
    except aiosmtplib.SMTPAuthenticationError as error:
        raise AuthenticationFailedError(
            f"{creds.host} refused the credentials of {creds.username}: {error.code} {error.message}",
            smtp_code=error.code, enhanced_status=enhanced_status(error.message),
            server_reply=f"{error.code} {error.message}", action=XOAUTH2_REFUSED_ACTION if oauth else None) from None
    except aiosmtplib.SMTPResponseException as error:
        raise error_for_reply(error.code, error.message, f"AUTH failed: {error.code} {error.message}") from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise TransientDeliveryError(f"AUTH with {where} failed: {type(error).__name__}") from None


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
