"""What the console's wizard tells an admin per provider: the preset's smarthost, how to sign in, and how to set
up the server-level forward to the account's system address (the article's step "forward mail to the help desk")."""

from __future__ import annotations

from typing import NamedTuple

from relaydesk.addresses.presets import PRESETS
from relaydesk.credentials import SUBMISSION_PORT, TlsMode


class ProviderGuide(NamedTuple):
    key: str
    label: str
    preset: str  # relaydesk.addresses.presets
    host: str | None
    port: int
    tls_mode: TlsMode
    auth_kinds: tuple[str, ...]  # password, oauth2
    sign_in: str  # how to get working credentials
    forwarding: tuple[str, ...]  # the steps of the server-level forward; {support} and {target} are filled in
    grants: tuple[str, ...] = ()  # oauth2: client_secret, client_certificate, service_account (credentials.OAuthGrant)


M365_FORWARD = (
    "In the Exchange admin center, open Mail flow > Rules and add a rule: apply to messages sent to {support}, "
    "redirect the message to {target}. (Redirect, not forward as an attachment; a mailbox forwarding set by the "
    "admin on the mailbox works too.)",
    "In Microsoft 365 Defender > Policies > Anti-spam > Outbound policy, allow automatic forwarding for the "
    "mailbox, or Exchange Online refuses the forward (5.7.520).",
    "Do not forward from Outlook: a rule in a mail client forwards by hand, and such mail is suspended.",
)
GOOGLE_FORWARD = (
    "In the Google Admin console, open Apps > Google Workspace > Gmail > Routing and add a recipient address map or "
    "routing rule for {support} that also delivers to {target}.",
    "Or, in the mailbox's Gmail settings > Forwarding, add {target} as the forwarding address (Google sends a "
    "confirmation code to it: Relaydesk turns that mail into a ticket you can read it from).",
)
GUIDES: dict[str, ProviderGuide] = {guide.key: guide for guide in (
    ProviderGuide("microsoft365", "Microsoft 365 (password)", "microsoft365", PRESETS["microsoft365"].host,
                  SUBMISSION_PORT, TlsMode.STARTTLS, ("password",),
                  PRESETS["microsoft365"].notes + " Microsoft turns basic authentication for SMTP off by default at "
                  "the end of December 2026: prefer OAuth 2.0.", M365_FORWARD),
    ProviderGuide("microsoft365-oauth", "Microsoft 365 (OAuth 2.0 app)", "microsoft365", PRESETS["microsoft365"].host,
                  SUBMISSION_PORT, TlsMode.STARTTLS, ("oauth2",),
                  "Register an Entra ID app with the SMTP.SendAsApp application permission (admin consent) and give "
                  "it a client secret (copy its Value) or, as Microsoft recommends, a certificate (upload it to the "
                  "app's Certificates & secrets; give its PEM with the private key here); then register the app's "
                  "service principal in Exchange Online and give it FullAccess on the mailbox "
                  "(docs/providers/microsoft365.md).", M365_FORWARD, ("client_secret", "client_certificate")),
    ProviderGuide("exchange", "Exchange Server", "exchange", None, SUBMISSION_PORT, TlsMode.STARTTLS, ("password",),
                  "Use the client submission receive connector (port 587, STARTTLS, basic authentication offered "
                  "after TLS) and the support mailbox's own sign-in.",
                  ("In the Exchange admin center, open Mail flow > Rules and add a transport rule: messages sent to "
                   "{support} are redirected to {target}; or set forwarding on the mailbox (Set-Mailbox "
                   "-ForwardingSmtpAddress {target}).",
                   "Exchange needs a mail contact or a remote domain that allows automatic forwarding to {target}.")),
    ProviderGuide("google-service-account", "Google Workspace (service account)", "google", PRESETS["google"].host,
                  SUBMISSION_PORT, TlsMode.STARTTLS, ("oauth2",),
                  "Create a service account with a JSON key in the Google Cloud console, then in the Google Admin "
                  "console (Security > API controls > Domain-wide delegation) give its client ID the scope "
                  "https://mail.google.com/. Relaydesk signs in as the mailbox with it (docs/providers/google.md).",
                  GOOGLE_FORWARD, ("service_account",)),
    ProviderGuide("google", "Google Workspace (app password)", "google", PRESETS["google"].host, SUBMISSION_PORT,
                  TlsMode.STARTTLS, ("password",), PRESETS["google"].notes, GOOGLE_FORWARD),
    ProviderGuide("postfix", "Postfix or another server", "generic", None, SUBMISSION_PORT, TlsMode.STARTTLS,
                  ("password",),
                  "Any submission service with STARTTLS (587) or implicit TLS (465) and SMTP AUTH; for a private CA, "
                  "upload its certificate (PEM).",
                  ("Add {support} -> {target} to the server's virtual alias map (Postfix: virtual_alias_maps, then "
                   "postmap and reload), so the server itself forwards every mail.",
                   "Keep one forwarding hop: {support} must forward straight to {target}.")),
)}


# The guide of each provider profile (addresses/providers.py), for a password and for an OAuth 2.0 sign-in. The
# profile says where the mailbox lives, whatever host relays for it (a hybrid Exchange in front of Microsoft 365).
GUIDES_OF_PROFILE: dict[str, tuple[str, str]] = {
    "microsoft365": ("microsoft365", "microsoft365-oauth"), "google": ("google", "google-service-account"),
    "exchange": ("exchange", "exchange"), "postfix": ("postfix", "postfix"), "amazon-ses": ("postfix", "postfix"),
    "other": ("postfix", "postfix")}


def guide_for(provider: str | None, host: str | None, *, oauth: bool = False) -> ProviderGuide:
    """The guide of a connected address: by the provider profile recorded with it (the preset it was connected
    with), else, for an address recorded before profiles were, by its smarthost's name."""
    password_guide, oauth_guide = GUIDES_OF_PROFILE[provider if provider in GUIDES_OF_PROFILE
                                                    else _profile_of_host(host)]
    return GUIDES[oauth_guide if oauth else password_guide]


def _profile_of_host(host: str | None) -> str:
    host = (host or "").lower()
    if host.endswith(("office365.com", "outlook.com")):
        return "microsoft365"
    if host.endswith(("gmail.com", "google.com")):
        return "google"
    return "postfix"


def forwarding_steps(guide: ProviderGuide, support: str, target: str) -> list[str]:
    return [step.format(support=support, target=target) for step in guide.forwarding]
