"""Plain-words explanations of smarthost failures, with the fix, keyed on the step and the server's reply."""

from __future__ import annotations

import re
from typing import NamedTuple

ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")  # RFC 3463 class.subject.detail

SET_CAS_MAILBOX = "Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false"
AADSTS = re.compile(r"\bAADSTS(\d{4,9})\b")  # Entra ID's error codes in an OAuth error_description
# Exchange Online PowerShell (`Connect-ExchangeOnline`): register the app's service principal, then let it use the
# mailbox. The object id is the Enterprise application's (Entra ID > Enterprise applications > the app > Overview),
# not the App registration's: the two differ and the wrong one is the most common mistake.
NEW_SERVICE_PRINCIPAL = "New-ServicePrincipal -AppId <client id> -ObjectId <Enterprise application's object id>"
ADD_MAILBOX_PERMISSION = ("Add-MailboxPermission -Identity <mailbox> -User <service principal id from "
                          "Get-ServicePrincipal> -AccessRights FullAccess")
OAUTH_SETUP_STEPS = (
    "1) Entra ID > App registrations > New registration; 2) Certificates & secrets > New client secret (copy its "
    "Value); 3) API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online > "
    "Application permissions > SMTP.SendAsApp, then Grant admin consent; 4) in Exchange Online PowerShell "
    f"(`Connect-ExchangeOnline`): `{NEW_SERVICE_PRINCIPAL}` and `{ADD_MAILBOX_PERMISSION}`; 5) keep SMTP AUTH "
    f"enabled on the mailbox (`{SET_CAS_MAILBOX}`). See docs/providers/microsoft365.md.")


class Explanation(NamedTuple):
    summary: str  # what went wrong, in plain words
    fix: str  # what the admin should do


def enhanced_status_of(reply: str) -> str | None:
    match = ENHANCED_STATUS.search(reply or "")
    return match.group(1) if match else None


def aadsts_of(text: str) -> str | None:
    """The Entra ID error code (`AADSTS7000215`) in a token endpoint's error, if there is one."""
    match = AADSTS.search(text or "")
    return f"AADSTS{match.group(1)}" if match else None


def explain_reply(code: int | None, reply: str, *, host: str = "", username: str = "",
                  oauth: bool = False, google: bool = False) -> Explanation | None:
    """A known provider reply (Exchange Online, Gmail, ...), or None when the reply is not one we know.

    `oauth`: the address signs in with XOAUTH2, where the same reply (535 5.7.3) means something else; `google`: with
    a Google service account's token, where Gmail's 535 5.7.8 is about the token, not a password."""
    text = (reply or "").lower()
    status = enhanced_status_of(reply)
    if oauth and google and code == 535:
        mailbox = username or "<mailbox>"
        return Explanation(
            f"Gmail refused the service account's access token for {mailbox} ({code} {status or ''}".rstrip() + "): "
            "the token was issued for another user than the one signing in, Gmail is off for the user, or the "
            "token lacks the https://mail.google.com/ scope.",
            f"Sign in as the user the token is for (--username {mailbox}, a real user rather than a group or an "
            "alias); in the Google Admin console check that Gmail is on for the user's organizational unit and that "
            "the domain-wide delegation lists the scope https://mail.google.com/. See docs/providers/google.md.")
    if status == "5.7.30" or "basic authentication is not supported" in text:
        return Explanation(
            "Exchange Online no longer accepts a password for SMTP AUTH (550 5.7.30: Basic authentication is not "
            "supported for Client Submission). Microsoft has announced that basic authentication for SMTP AUTH is "
            "off by default for existing tenants at the end of December 2026; this tenant already refuses it.",
            "Switch the address to OAuth 2.0: register an Entra ID app for it, then "
            f"{_switch_command(username)}. Steps: {OAUTH_SETUP_STEPS}")
    if oauth and (status == "5.7.3" or (code == 535 and "authentication unsuccessful" in text)):
        mailbox = username or "<mailbox>"
        return Explanation(
            "Exchange Online refused the app's access token for this mailbox (535 5.7.3): the app's service "
            "principal is not registered in Exchange Online, or it has no permission on the mailbox "
            f"{mailbox}, or SMTP.SendAsApp was not granted admin consent.",
            "In Exchange Online PowerShell (`Connect-ExchangeOnline`): "
            f"`{NEW_SERVICE_PRINCIPAL}` then `{ADD_MAILBOX_PERMISSION.replace('<mailbox>', mailbox)}`. Use the "
            "object id shown under Entra ID > Enterprise applications > the app (not the one under App "
            "registrations). Check that Office 365 Exchange Online > SMTP.SendAsApp has admin consent. Changes can "
            "take up to an hour to apply.")
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


def explain_token_error(error: str, description: str = "", *, aadsts: str | None = None,
                        tenant_id: str = "", client_id: str = "") -> Explanation:
    """A refused client-credentials token request (OAuth `error`, Entra's `AADSTS<n>`), in plain words with the fix."""
    code = aadsts or aadsts_of(description) or aadsts_of(error)
    error = (error or "").strip()
    tenant = f" {tenant_id}" if tenant_id else ""
    client = f" {client_id}" if client_id else ""
    rotate = "`relaydesk addresses rotate EMAIL --client-secret-stdin`"
    if code == "AADSTS7000215":
        return Explanation(
            "Entra ID refused the client secret (AADSTS7000215: invalid client secret).",
            "Give the secret's Value, not its Secret ID: in Entra ID > App registrations > the app > Certificates & "
            "secrets, the Value is shown only once, right after the secret is created; if it is lost, create a new "
            f"secret. For a connected address, stage it with {rotate}.")
    if code == "AADSTS7000222":
        return Explanation(
            "The app's client secret has expired (AADSTS7000222).",
            "Create a new client secret (Entra ID > App registrations > the app > Certificates & secrets > New "
            f"client secret), then stage its Value with {rotate}; the current secret stays in use until the new "
            "one passes the test. Set a reminder before the new one expires.")
    if code == "AADSTS700016":
        return Explanation(
            f"Entra ID found no application with the client id{client} in the tenant{tenant} (AADSTS700016).",
            "Check --client-id (the Application (client) ID on the app registration's Overview page) and "
            "--tenant-id (the Directory (tenant) ID on the same page): the app must be registered in that tenant.")
    if code in ("AADSTS90002", "AADSTS900023"):
        return Explanation(
            f"Entra ID does not know the tenant{tenant} ({code}: tenant not found).",
            "Use the Directory (tenant) ID from the app registration's Overview page (a GUID), or the tenant's "
            "domain such as acme.onmicrosoft.com.")
    if code == "AADSTS70011" or error == "invalid_scope":
        return Explanation(
            f"Entra ID refused the requested scope ({code or 'invalid_scope'}).",
            "Client credentials need the `.default` scope of the resource: https://outlook.office365.com/.default "
            "for Exchange Online (the default; do not pass a custom --scope).")
    if code == "AADSTS700027":
        return Explanation(
            f"Entra ID does not accept the certificate that signed the request (AADSTS700027): the app{client} has no "
            "such certificate uploaded, or the private key does not belong to it.",
            "Upload the certificate's public part (.cer, .crt or .pem, without the key) under Entra ID > App "
            "registrations > the app > Certificates & secrets > Certificates > Upload certificate, and check that its "
            "thumbprint there is the one `relaydesk addresses show` prints. For a connected address, stage the "
            "certificate and its key with `relaydesk addresses rotate EMAIL --certificate-file PEM`.")
    if code == "AADSTS700024":
        return Explanation(
            "Entra ID found the signed request outside its validity time (AADSTS700024: client assertion is not "
            "within its valid time range).",
            "The relay's clock and Entra ID's differ: check the clock of the machine running Relaydesk (NTP), then "
            "try again.")
    if code == "AADSTS700021":
        return Explanation(
            f"The signed request names another app than the client id{client} (AADSTS700021).",
            "Give the Application (client) ID of the app the certificate is uploaded to (--client-id).")
    if code in ("AADSTS50012", "AADSTS50027"):
        return Explanation(
            f"Entra ID refused the signed client assertion ({code}): it is malformed or addressed to another token "
            "endpoint.",
            "Leave --token-url unset so that the assertion goes to Entra ID's endpoint for the tenant, and check "
            "--tenant-id.")
    if code == "AADSTS7000218" or error == "invalid_client":
        return Explanation(
            f"Entra ID refused the client credentials ({code or error}).",
            "Check the client id and the client secret's Value; for a connected address stage a new one with "
            f"{rotate}.")
    detail = (description or error or "no details").strip()
    return Explanation(
        f"The token endpoint refused the request ({code or error or 'no error code'}): {detail}",
        f"Look the code up in Microsoft's list of Entra ID errors (search \"{code or error}\"); check the tenant id, "
        "the client id and the client secret's Value, and that the app has SMTP.SendAsApp with admin consent.")


class GoogleTokenError(NamedTuple):
    """One row of Google's token endpoint refusals: the OAuth `error`, a fragment of `error_description` (lower
    case, "" for any), what it means and the fix. `{sa}`, `{client_id}`, `{mailbox}` are filled in."""

    error: str
    fragment: str
    summary: str
    fix: str


ROTATE_KEY = ("`relaydesk addresses rotate {mailbox} --service-account-file KEY.json` (the same key file is fine): it "
              "tests the sign-in and releases the held notifications")
DELEGATION = ("Google Admin console (admin.google.com) > Security > Access and data control > API controls > Manage "
              "Domain Wide Delegation > Add new: Client ID {client_id} (the service account's numeric Unique ID), "
              "OAuth scope https://mail.google.com/")
GOOGLE_TOKEN_ERRORS = (
    GoogleTokenError(
        "unauthorized_client", "",
        "Google refused to give the service account {sa} a token for {mailbox} (unauthorized_client): domain-wide "
        "delegation is not set up for its client ID with the scope https://mail.google.com/ (or was set up minutes "
        "ago: it can take up to 24 hours to apply).",
        f"{DELEGATION}. Then run {ROTATE_KEY}."),
    GoogleTokenError(
        "invalid_grant", "signature",
        "Google refused the service account's signature (invalid_grant: Invalid JWT Signature): the key was deleted "
        "or disabled, or the key file does not belong to the service account {sa}.",
        "In Google Cloud console > IAM & Admin > Service accounts > {sa} > Keys, check that the key exists and is "
        "enabled; otherwise Add key > Create new key > JSON and store the new file with `relaydesk addresses rotate "
        "{mailbox} --service-account-file KEY.json`."),
    GoogleTokenError(
        "invalid_grant", "email",
        "Google does not know {mailbox} as a user of the Workspace domain (invalid_grant: Invalid email or User ID).",
        "Sign in as a real user of the domain that granted the delegation: the mailbox's primary address, not a "
        "group, an alias or an address of another domain (--username)."),
    GoogleTokenError(
        "invalid_grant", "timeframe",
        "Google found the signed request outside its validity time (invalid_grant: the JWT must be short-lived and "
        "in a reasonable timeframe).",
        "The relay's clock and Google's differ: check the clock of the machine running Relaydesk (NTP), then try "
        "again."),
    GoogleTokenError(
        "invalid_grant", "audience",
        "Google refused the signed request: it was addressed to another token endpoint (invalid_grant: audience).",
        "Use Google's token endpoint https://oauth2.googleapis.com/token (the token_uri of the key file); do not "
        "set --token-url."),
    GoogleTokenError(
        "invalid_client", "",
        "Google does not know the service account {sa} (invalid_client: the OAuth client was not found).",
        "Check that the service account exists (Google Cloud console > IAM & Admin > Service accounts) and that the "
        "key file is one created for it; store a current key file with `relaydesk addresses rotate {mailbox} "
        "--service-account-file KEY.json`."),
    GoogleTokenError(
        "disabled_client", "",
        "The service account {sa} is disabled (disabled_client).",
        "Enable it in Google Cloud console > IAM & Admin > Service accounts > {sa} > Enable, then run "
        f"{ROTATE_KEY}."),
    GoogleTokenError(
        "deleted_client", "",
        "The service account {sa} was deleted (deleted_client).",
        "Create a service account (or undelete it within 30 days), give its client ID domain-wide delegation, and "
        "store its new key file with `relaydesk addresses rotate {mailbox} --service-account-file KEY.json`."),
    GoogleTokenError(
        "admin_policy_enforced", "",
        "A Google Workspace admin policy blocks the service account for {mailbox} (admin_policy_enforced).",
        "In the Google Admin console > Security > Access and data control > API controls > App access control, "
        "make sure the service account's client ID {client_id} is not blocked (mark it Trusted) and that Gmail "
        f"access is not restricted for the user's organizational unit. Then run {ROTATE_KEY}."),
    GoogleTokenError(
        "access_denied", "",
        "Google denied the service account access to {mailbox} (access_denied): the user is suspended, or Gmail is "
        "off for the user's organizational unit.",
        "In the Google Admin console > Directory > Users, the user must be active; under Apps > Google Workspace > "
        f"Gmail, the service must be on for the user's organizational unit. Then run {ROTATE_KEY}."),
    GoogleTokenError(
        "invalid_scope", "",
        "Google refused the requested scope (invalid_scope).",
        "SMTP needs exactly the scope https://mail.google.com/ (the default; do not pass a custom --scope), and the "
        "domain-wide delegation must list it."),
    GoogleTokenError(
        "invalid_grant", "",
        "Google refused the service account's signed request (invalid_grant).",
        f"Check the key file (a current key of {{sa}}), the relay's clock, and the domain-wide delegation: "
        f"{DELEGATION}."),
)


def explain_google_token_error(error: str, description: str = "", *, service_account: str = "", client_id: str = "",
                               mailbox: str = "") -> Explanation:
    """A refused JWT bearer request at Google's token endpoint, in plain words with the fix (GOOGLE_TOKEN_ERRORS)."""
    lowered = (description or "").lower()
    names = {"sa": service_account or "<service account>", "client_id": client_id or "<client ID>",
             "mailbox": mailbox or "EMAIL"}
    for row in GOOGLE_TOKEN_ERRORS:
        if row.error == (error or "").strip() and row.fragment in lowered:
            return Explanation(row.summary.format(**names), row.fix.format(**names))
    detail = (description or error or "no details").strip()
    return Explanation(f"Google's token endpoint refused the request ({error or 'no error code'}): {detail}",
                       "Check the key file, the domain-wide delegation for client ID {client_id} with the scope "
                       "https://mail.google.com/ and docs/providers/google.md.".format(**names))


def _switch_command(username: str) -> str:
    email = username or "EMAIL"
    return (f"`relaydesk addresses rotate {email} --auth oauth2 --tenant-id <tenant id> --client-id <client id> "
            "--client-secret-stdin` (a new address: `relaydesk addresses connect ... --preset microsoft365 --auth "
            "oauth2 ...`)")


def explain_step(step: str, *, code: int | None = None, reply: str = "", error: str = "", host: str = "",
                 port: int | None = None, username: str = "", oauth: bool = False,
                 google: bool = False) -> Explanation:
    """The explanation for a failed live-check step."""
    known = explain_reply(code, reply, host=host, username=username, oauth=oauth, google=google)
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
            "Check the port (587 for STARTTLS, 465 for implicit TLS) and that the server's firewall lets this "
            "machine in; notifications connect from Relaydesk's functions (fixed addresses only if the stack has "
            "them: its OutboundIpAddresses output).")
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
    if step == "token":
        return explain_token_error("", detail)
    if step == "auth":
        if "xoauth2" in lowered and "not supported" in lowered:
            return Explanation(f"{host} does not offer AUTH XOAUTH2 after TLS.",
                               "OAuth 2.0 sign-in needs a server that offers XOAUTH2 (smtp.office365.com does); "
                               "use --auth password for other servers.")
        if "auth" in lowered and "not supported" in lowered:
            return Explanation(f"{host} does not offer SMTP AUTH after TLS.",
                               "Enable SMTP AUTH (PLAIN or LOGIN) on the submission port.")
        return Explanation(f"Authentication failed: {detail}", "Check the username and password.")
    if step == "sender":
        return Explanation(f"The server refused the support address as sender: {detail}",
                           "Allow the mailbox that signs in to send as the support address.")
    return Explanation(f"The {step} step failed: {detail}", "Check the smarthost settings.")
