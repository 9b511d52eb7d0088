"""Provider presets for `addresses connect`: the smarthost, port and TLS mode each provider documents. A preset
also names the provider's sending limits (`addresses/providers.py`)."""

from __future__ import annotations

from typing import NamedTuple

from relaydesk.credentials import SUBMISSION_PORT, SUBMISSIONS_PORT, TlsMode
from relaydesk.errors import ConfigurationError

DEFAULT_SES_REGION = "us-east-1"


class Preset(NamedTuple):
    name: str
    host: str | None  # None: the admin must give --host
    port: int
    tls_mode: TlsMode
    notes: str


PRESETS: dict[str, Preset] = {
    # Microsoft: "How to set up SMTP AUTH client submission" (port 587 recommended, STARTTLS).
    "microsoft365": Preset("microsoft365", "smtp.office365.com", SUBMISSION_PORT, TlsMode.STARTTLS,
                           "SMTP AUTH must be enabled for the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled"
                           " $false); the username is the mailbox's sign-in address."),
    # Google Workspace: SMTP submission with XOAUTH2 (a service account with domain-wide delegation) or an app
    # password (2-Step Verification on).
    "google": Preset("google", "smtp.gmail.com", SUBMISSION_PORT, TlsMode.STARTTLS,
                     "Sign in with a service account (--auth oauth2 --service-account-file KEY.json) or an app "
                     "password for the mailbox, never the account password."),
    # Amazon SES SMTP interface: the region's endpoint, SMTP credentials derived from an IAM user.
    "amazon-ses": Preset("amazon-ses", f"email-smtp.{DEFAULT_SES_REGION}.amazonaws.com", SUBMISSION_PORT,
                         TlsMode.STARTTLS, "Use SES SMTP credentials (not IAM access keys); the support address's "
                         "domain must be verified in SES."),
    # The customer's own servers: the host is theirs; the preset picks the limits' profile.
    "exchange": Preset("exchange", None, SUBMISSION_PORT, TlsMode.STARTTLS,
                       "Exchange Server's Client Frontend receive connector (587, STARTTLS, AUTH)."),
    "postfix": Preset("postfix", None, SUBMISSION_PORT, TlsMode.STARTTLS,
                      "Postfix's submission service (587, STARTTLS, SASL AUTH)."),
    "generic": Preset("generic", None, SUBMISSION_PORT, TlsMode.STARTTLS,
                      "Any submission server with STARTTLS (587) or implicit TLS (465) and SMTP AUTH."),
}
# The sending limits' profile (addresses/providers.py) each preset names; generic leaves it to the host.
PROFILE_OF_PRESET = {"microsoft365": "microsoft365", "google": "google", "amazon-ses": "amazon-ses",
                     "exchange": "exchange", "postfix": "postfix"}


def ses_host(region: str) -> str:
    return f"email-smtp.{region}.amazonaws.com"


def resolve(preset: str | None, *, host: str | None = None, port: int | None = None,
            tls_mode: TlsMode | str | None = None, region: str | None = None) -> tuple[str, int, TlsMode]:
    """The smarthost for a preset, with any explicit host, port or TLS mode taking precedence."""
    chosen = PRESETS.get(preset or "generic")
    if chosen is None:
        raise ConfigurationError(f"unknown provider preset {preset!r}",
                                 action=f"Use one of: {', '.join(sorted(PRESETS))}.")
    default_host = ses_host(region) if chosen.name == "amazon-ses" and region else chosen.host
    final_host = host or default_host
    if not final_host:
        raise ConfigurationError(f"the {chosen.name} preset needs a smarthost",
                                 action="Pass --host (and --port, --tls).")
    mode = TlsMode(tls_mode) if tls_mode else chosen.tls_mode
    final_port = port or (SUBMISSIONS_PORT if mode is TlsMode.IMPLICIT else chosen.port)
    return final_host, final_port, mode
