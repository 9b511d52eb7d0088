"""Typed errors: each one a caller treats differently, carrying SMTP codes and what the operator should do."""

from __future__ import annotations


class RelaydeskError(Exception):
    """Base of every Relaydesk error. `action` tells the operator what to do about it."""

    code = "relaydesk_error"
    action = ""

    def __init__(self, message: str, *, action: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if action is not None:
            self.action = action

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.action:
            body["action"] = self.action
        return body


class ConfigurationError(RelaydeskError, ValueError):
    code = "configuration_error"


class NotFoundError(RelaydeskError, LookupError):
    code = "not_found"


class RuleViolation(RelaydeskError, ValueError):
    """A connector rule was broken (system address, uniqueness, CCs and followers, default, ...)."""

    code = "rule_violation"

    def __init__(self, message: str, *, rule: str, action: str | None = None) -> None:
        super().__init__(message, action=action)
        self.code = rule


class ConflictError(RelaydeskError):
    code = "conflict"


class OtherEnvironmentUnreadable(RelaydeskError):
    """The other environment's directory (sandbox <-> production) could not be read: uniqueness across the two
    stacks was not checked. Callers decide whether to go on (the CLI and the API do, with a note)."""

    code = "other_environment_unreadable"
    action = ("Check the OtherEnvironmentDirectoryTableArn parameter of this stack and that the other stack's table "
              "allows this function to read it (docs/DEPLOY.md).")


class SignInError(RelaydeskError):
    """Cognito did not sign the user in (or no longer refreshes its session); never says which credential was wrong."""

    code = "sign_in_failed"
    action = "Check the username and password (`relaydesk login`), or ask an admin of your account."


class RotationRefusedError(RelaydeskError, ValueError):
    """A rotation step that cannot proceed (nothing staged, a version that is not pending): nothing was changed."""

    code = "rotation_refused"
    action = "Stage the new credentials with `relaydesk addresses rotate EMAIL` (the password is read from stdin)."


class SmtpDeliveryError(RelaydeskError):
    """A failed SMTP exchange with the server's reply: code, enhanced status and text."""

    code = "smtp_error"

    def __init__(
        self,
        message: str,
        *,
        smtp_code: int | None = None,
        enhanced_status: str | None = None,
        server_reply: str = "",
        recipient: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message, action=action)
        self.smtp_code = smtp_code
        self.enhanced_status = enhanced_status
        self.server_reply = server_reply
        self.recipient = recipient


class TransientDeliveryError(SmtpDeliveryError, ConnectionError):
    """4xx, a dropped connection or a timeout: try again later."""

    code = "transient"
    action = "Nothing to do: the notification is retried with a growing delay."


class PermanentDeliveryError(SmtpDeliveryError):
    """5xx: never retried, recorded on the ticket."""

    code = "permanent"
    action = "Read the server's reply; fix the recipient or the mailbox's sending rights, then resend."


class AuthenticationFailedError(SmtpDeliveryError):
    """535 and friends: the smarthost refused the credentials."""

    code = "auth_failed"
    action = (
        "Check the username and password of the support address, and that SMTP AUTH is enabled for the "
        "mailbox; then rotate the credentials with `relaydesk addresses rotate`."
    )


class TlsRequiredError(SmtpDeliveryError):
    """The server did not offer STARTTLS: nothing was sent and no credentials left."""

    code = "tls_required"
    action = "Enable STARTTLS on the smarthost, or use port 465 with implicit TLS."


class CertificateVerificationError(SmtpDeliveryError):
    """The server's certificate did not verify for the configured host name."""

    code = "certificate_invalid"
    action = "Use the host name on the server's certificate, or configure the CA bundle that issued it."


class DkimNotSetUpError(NotFoundError):
    """Signing is on for a domain that has no DKIM keys (or its secret cannot be read)."""

    code = "dkim_not_set_up"
    action = ("Create the domain's keys with `relaydesk dkim setup DOMAIN`, publish the records it prints, then "
              "`relaydesk dkim enable DOMAIN`.")


class DkimSigningError(RelaydeskError, ValueError):
    """The message cannot be DKIM-signed as it is (no From header, a malformed header)."""

    code = "dkim_signing_failed"
    action = "The composed message is malformed: report it with the notification id."


class ForeignAttachmentError(RelaydeskError, ValueError):
    """A notification names an attachment outside its own account's prefix: the relay sends nothing of it."""

    code = "foreign_attachment"
    action = "Report it with the notification id: a notification can only carry its own account's attachments."


class LinkInvalidError(RelaydeskError, ValueError):
    """An attachment link that this stack did not sign as it is (tampered, malformed, not an attachment)."""

    code = "link_invalid"
    action = "Open the link from the notification mail as it was sent, or ask the help desk for the attachment."


class LinkExpiredError(RelaydeskError, ValueError):
    """A genuine attachment link past its lifetime (RELAYDESK_ATTACHMENT_LINK_DAYS)."""

    code = "link_expired"
    action = "Ask the help desk to send the attachment again."


class OAuthTokenError(RelaydeskError):
    """The OAuth 2.0 token endpoint issued no access token. Carries the OAuth `error` (RFC 6749 5.2) and Entra ID's
    `AADSTS<number>` code, never the client secret or a token. `transient` (5xx, 429, a timeout, no connection): try
    again later; otherwise the app's credentials or settings are wrong (treated like a refused AUTH)."""

    code = "oauth_token_error"
    action = ("Check the tenant id, client id and client secret of the address's Entra ID app, then store them again "
              "with `relaydesk addresses rotate`.")

    def __init__(self, message: str, *, oauth_error: str | None = None, aadsts: str | None = None,
                 http_status: int | None = None, transient: bool = False, action: str | None = None,
                 description: str | None = None) -> None:
        super().__init__(message, action=action)
        self.oauth_error = oauth_error
        self.description = description  # the endpoint's error_description (first line, bounded, scrubbed)
        self.aadsts = aadsts
        self.http_status = http_status
        self.transient = transient


class OAuthTokenRefusedError(AuthenticationFailedError):
    """The token endpoint refused the app's client credentials: the same auth_failed hold as a 535. `token_error`
    has the OAuth error and the AADSTS code."""

    def __init__(self, token_error: OAuthTokenError) -> None:
        said = " ".join(part for part in (token_error.oauth_error, token_error.aadsts) if part)
        super().__init__(token_error.message, server_reply=f"token endpoint: {said or token_error.message}",
                         action=token_error.action)
        self.token_error = token_error


class OAuthTokenUnavailableError(TransientDeliveryError):
    """The token endpoint could not be reached or failed (5xx, 429, a timeout): retried like a 4xx."""

    def __init__(self, token_error: OAuthTokenError) -> None:
        super().__init__(token_error.message, action=token_error.action)
        self.token_error = token_error


class ItemTooLargeError(RelaydeskError, ValueError):
    """A write that DynamoDB would refuse (an item over 400 KB, a key over its limit), refused before it is sent, so
    nothing of a transaction is written. Inbound bounds every field of a mail so that this never happens."""

    code = "item_too_large"
    action = ("Nothing was written. This is a defect in what Relaydesk stores: report it with the key named here; the "
              "raw mail (inbound/<SES message id>) is kept in S3 for a replay once it is fixed.")

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ShaperBusyError(RelaydeskError):
    """The mailbox's sending-limit state could not be updated (lost races, or the store failed): its notifications
    wait a little and try again; nothing is sent unshaped."""

    code = "shaper_busy"
    action = "Nothing to do if it passes; if it lasts, check the counters table (DynamoDB) and the relay's logs."
