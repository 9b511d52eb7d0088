"""Typed errors: each one a caller treats differently, carrying SMTP codes and what the operator should do; and the
SMTP reply codes Relaydesk acts on, as one IntEnum.

Every field an error carries is a constructor argument. A cause is chained (`raise ... from error`) so a traceback
shows what failed underneath, except where the cause could carry a secret; there it is dropped (`from None`):
- the SMTP AUTH exchange (`outbound/auth.py`): a server may echo what it was sent, the password or a token;
- reading a secret's value as credentials (`outbound/credentials.py`, `addresses/rotation.py`,
  `cli/credentials_input.py`): pydantic's error quotes its input;
- the OAuth token request (`oauth.py`): its body holds the client secret;
- the Secrets Manager adapter (`store/secrets.py`): its requests hold secret values;
- attachment links and their signing key (`attachments/`): the token is the authorization.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaydesk.tickets.model import RecipientOutcome


class ReplyCode(IntEnum):
    """SMTP reply codes Relaydesk acts on by value (RFC 5321 4.2.2-4.2.3, RFC 4954 6, RFC 3207 4). Any other code is
    judged by its first digit: `is_positive`, `is_transient`, `is_permanent`."""

    SERVICE_READY = 220
    AUTH_SUCCEEDED = 235  # RFC 4954 6
    OK = 250
    WILL_FORWARD = 251  # RFC 5321 3.4: user not local, will forward (a recipient accepted)
    START_MAIL_INPUT = 354  # the answer to DATA: send the message
    SERVICE_CLOSING = 421  # the server is closing the transmission channel (e.g. an idle timeout)
    AUTH_REQUIRED = 530  # RFC 4954 6 (and "must issue STARTTLS first", RFC 3207 4)
    AUTH_TOO_WEAK = 534  # RFC 4954 6: the mechanism is too weak (Gmail: an app password is required)
    AUTH_INVALID = 535  # RFC 4954 6: authentication credentials invalid
    ENCRYPTION_REQUIRED = 538  # RFC 4954 6: encryption required for the requested mechanism
    MESSAGE_TOO_BIG = 552  # exceeded storage allocation; submission servers use it for size limits

    @staticmethod
    def is_positive(code: int | None) -> bool:
        return code is not None and 200 <= code < 300

    @staticmethod
    def is_transient(code: int | None) -> bool:
        return code is not None and 400 <= code < 500

    @staticmethod
    def is_permanent(code: int | None) -> bool:
        return code is not None and 500 <= code < 600


# The replies that mean "these credentials were refused": the auth_failed hold, never a retry with the same ones.
AUTH_REFUSED_CODES = frozenset({ReplyCode.AUTH_INVALID, ReplyCode.AUTH_TOO_WEAK, ReplyCode.ENCRYPTION_REQUIRED})


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


class ApiFailed(ConfigurationError):
    """No answer from the tenant API, or it failed on its side (5xx): whether a write happened is unknown; a retry
    with the same request id settles it."""

    code = "api_failed"
    action = "Run the same command again: its request id makes sure nothing is done twice."


class NotFoundError(RelaydeskError, LookupError):
    code = "not_found"


class UsageError(RelaydeskError, ValueError):
    """The command line itself is wrong (a value out of range, options that do not go together): exit 2, like
    argparse's own errors. Nothing was sent or changed. Its message says what to give instead (one line)."""

    code = "usage"


class RuleViolation(RelaydeskError, ValueError):
    """A connector rule was broken (system address, uniqueness, CCs and followers, default, ...)."""

    code = "rule_violation"

    def __init__(self, message: str, *, rule: str, action: str | None = None) -> None:
        super().__init__(message, action=action)
        self.code = rule


class ConflictError(RelaydeskError):
    code = "conflict"


class AlreadyInProgress(ConflictError):
    """Another invocation is delivering this notification right now: this attempt is deferred, not sent."""

    code = "already_in_progress"
    action = "Nothing to do: the notification is retried later and then finds the stored outcome."


class TransitionRefused(ConflictError):
    """A support address cannot make this change from where it is (enable what is not disabled, release what is
    not on, ...): `transition` and `phase` name both (`relaydesk.addresses.state.TRANSITIONS`). Nothing changed."""

    code = "transition_refused"
    action = "Check the address's state with `relaydesk addresses show EMAIL`."

    def __init__(self, message: str, *, transition: str, phase: str, action: str | None = None) -> None:
        super().__init__(message, action=action)
        self.transition = transition
        self.phase = phase


class InvalidCursorError(RelaydeskError, ValueError):
    """A page cursor that this service did not hand out (changed, truncated or from elsewhere)."""

    code = "invalid_cursor"
    action = "Start again from the first page."


class UploadRefusedError(RelaydeskError):
    """An attachment upload to its presigned POST failed: the file is not on the ticket."""

    code = "upload_refused"
    action = "Try again; if it keeps failing, check the stack's S3 endpoint."


class AwsProblem(RelaydeskError):
    """An AWS SDK failure the CLI can name (no region, no credentials, an expired session, access denied, ...)."""

    code = "aws_problem"
    action = "Check the AWS profile, region and permissions the command runs with (docs/DEPLOY.md)."


class Unauthenticated(RelaydeskError):
    """No usable identity on a tenant API request: it is answered 401 and nothing runs."""

    code = "unauthorized"
    action = "Sign in (`relaydesk login`) and send its ID token as `Authorization: Bearer ...`."


class PermissionDenied(RelaydeskError):
    """The tenant API refused the signed-in user's role for this (403): nothing changed."""

    code = "forbidden"
    action = "Ask an admin of your account, or run the command as the operator (`--operator`, AWS credentials)."


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
        refused: Sequence[RecipientOutcome] = (),
        action: str | None = None,
    ) -> None:
        super().__init__(message, action=action)
        self.smtp_code = smtp_code
        self.enhanced_status = enhanced_status
        self.server_reply = server_reply
        self.recipient = recipient
        self.refused = list(refused)  # every recipient was refused: each one's reply, for the ticket record


class TransientDeliveryError(SmtpDeliveryError, ConnectionError):
    """4xx, a dropped connection or a timeout: try again later."""

    code = "transient"
    action = "Nothing to do: the notification is retried with a growing delay."


class PermanentDeliveryError(SmtpDeliveryError):
    """5xx: never retried, recorded on the ticket."""

    code = "permanent"
    action = "Read the server's reply; fix the recipient or the mailbox's sending rights, then resend."


class AuthenticationFailedError(SmtpDeliveryError):
    """535 and friends: the smarthost refused the credentials. `version_id`: the secret version it refused, when
    the credentials came from the secret store (a new version is worth one more try, the same one is not)."""

    code = "auth_failed"
    action = (
        "Check the username and password of the support address, and that SMTP AUTH is enabled for the "
        "mailbox; then rotate the credentials with `relaydesk addresses rotate`."
    )

    def __init__(self, message: str, *, version_id: str | None = None, **fields) -> None:
        super().__init__(message, **fields)
        self.version_id = version_id


class NothingAcceptedError(TransientDeliveryError):
    """The connection failed before DATA: nothing of this transaction was accepted, so another connection may
    send it without any risk of a duplicate."""

    code = "nothing_accepted"


class AuthMechanismUnavailableError(AuthenticationFailedError):
    """The server offers no AUTH mechanism the credentials can use over TLS (a password needs PLAIN or LOGIN, OAuth
    2.0 needs XOAUTH2): nothing was sent, and the address is held like a refused login."""

    code = "auth_unavailable"
    action = ("Enable SMTP AUTH over TLS on the submission port (PLAIN or LOGIN for a password, XOAUTH2 for OAuth "
              "2.0), then run `relaydesk addresses verify EMAIL`.")


class DestinationRefused(SmtpDeliveryError, ConfigurationError):
    """The host resolves to an address Relaydesk never connects to, or a token URL is not the provider's: nothing
    was sent. The relay defers it as it does a TLS policy it cannot meet (then the DLQ, for a redrive once the
    address's settings or the operator's allow-list change); the live check fails its dns step."""

    code = "destination_refused"
    action = ("Use the provider's public host name. A smarthost or token endpoint on a private network needs the "
              "operator to allow it (RELAYDESK_ALLOWED_DESTINATIONS, RELAYDESK_ALLOWED_TOKEN_HOSTS; docs/DEPLOY.md).")


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


class MalformedMessageError(DkimSigningError):
    """dkimpy's parser refused the header block (it says why)."""

    code = "malformed_message"


class DnsLookupError(RelaydeskError, ConnectionError):
    """The resolver gave no answer (timeout, SERVFAIL): unlike NXDOMAIN this says nothing about the record."""

    code = "dns_lookup_failed"
    action = "Check the machine's DNS resolver, then run the check again."


class InvalidAddressError(RelaydeskError, ValueError):
    """An address that is not one plain addr-spec (a CR/LF, a second address, a display name): the notification
    is never sent as it is."""

    code = "invalid_address"
    action = "Correct the recipient's or the support address's email address; a notification to it is not retried."


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

    def __init__(self, token_error: OAuthTokenError, *, message: str | None = None, action: str | None = None,
                 version_id: str | None = None) -> None:
        said = " ".join(part for part in (token_error.oauth_error, token_error.aadsts) if part)
        super().__init__(message or token_error.message, server_reply=f"token endpoint: {said or token_error.message}",
                         action=action or token_error.action, version_id=version_id)
        self.token_error = token_error


class OAuthTokenUnavailableError(TransientDeliveryError):
    """The token endpoint could not be reached or failed (5xx, 429, a timeout): retried like a 4xx."""

    def __init__(self, token_error: OAuthTokenError, *, message: str | None = None,
                 action: str | None = None) -> None:
        super().__init__(message or token_error.message, action=action or token_error.action)
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
