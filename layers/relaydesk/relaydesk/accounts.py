"""Accounts: a help desk tenant, its kind and the settings the connector depends on."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from relaydesk.clock import utcnow

SUBDOMAIN_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # one DNS label, RFC 1035 2.3.1
# Who hears about an address's hold. A short list kept on the account: the user directory cannot be queried by
# account, and a hold alert must reach people even if nobody can sign in.
MAX_ADMIN_CONTACTS = 10
ADDRESS_LIMIT = 254  # RFC 5321 4.5.3.1.3
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 3.2.3
CONTACT_PATTERN = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                             rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


class AccountKind(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


AGENT_FROM_PLACEHOLDERS = ("{agent}", "{support}")
DEFAULT_AGENT_FROM_NAME = "{agent} ({support})"
AGENT_FROM_NAME_LIMIT = 120


class AccountSettings(BaseModel):
    ccs_and_followers_enabled: bool = True
    include_attachments_in_email: bool = True
    # Tell the requester and CCs when an agent marks their ticket solved.
    notify_requester_on_solved: bool = True
    # The From display name of an agent's reply: {agent} is the agent's name, {support} the support address's name
    # (`Bob Agent (Acme Support)`). Without {agent}, replies show the support address's name only.
    agent_from_name: str = DEFAULT_AGENT_FROM_NAME

    @field_validator("agent_from_name")
    @classmethod
    def _only_known_placeholders(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value) > AGENT_FROM_NAME_LIMIT:
            raise ValueError(f"at most {AGENT_FROM_NAME_LIMIT} characters")
        rest = value
        for placeholder in AGENT_FROM_PLACEHOLDERS:
            rest = rest.replace(placeholder, "")
        if "{" in rest or "}" in rest:
            raise ValueError("only {agent} and {support} may be used as placeholders")
        return value or DEFAULT_AGENT_FROM_NAME

    def from_name(self, agent: str, support: str) -> str:
        """The display name of a reply by `agent` from a support address named `support`."""
        values = {"{agent}": " ".join(agent.split()), "{support}": " ".join(support.split())}
        # One pass: a name that itself reads "{support}" stays as written.
        name = re.sub(r"\{agent\}|\{support\}", lambda m: values[m.group(0)], self.agent_from_name)
        return " ".join(name.split()) or support


class Brand(BaseModel):
    brand_id: str
    name: str


class Account(BaseModel):
    account_id: str
    subdomain: str
    name: str = ""
    kind: AccountKind = AccountKind.SANDBOX
    settings: AccountSettings = Field(default_factory=AccountSettings)
    brands: list[Brand] = Field(default_factory=list)
    admin_emails: list[str] = Field(default_factory=list, max_length=MAX_ADMIN_CONTACTS)
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("subdomain")
    @classmethod
    def _subdomain_is_a_dns_label(cls, value: str) -> str:
        value = value.lower()
        if not SUBDOMAIN_PATTERN.match(value):
            raise ValueError("subdomain must be one DNS label: letters, digits and hyphens")
        return value

    @field_validator("admin_emails")
    @classmethod
    def _admin_emails_are_plain_addresses(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(contact_address(value) for value in values))

    @property
    def display_name(self) -> str:
        return self.brands[0].name if self.brands else (self.name or self.subdomain)


def contact_address(value: str) -> str:
    """One plain addr-spec (no display name, no second address, no line break), lower-cased; ValueError if not."""
    address = value.strip().lower()
    if len(address) > ADDRESS_LIMIT or not CONTACT_PATTERN.match(address):
        raise ValueError("an admin contact must be one plain email address (name@example.com)")
    return address


def system_address(subdomain: str, mail_domain: str) -> str:
    """The account's own address, support@<subdomain>.<mail domain>; never sent through a connector."""
    return f"support@{subdomain.lower()}.{mail_domain.lower()}"


def subdomain_of_system_address(address: str, mail_domain: str) -> str | None:
    """The subdomain named by a system address, or None when the address is not one."""
    local, _, domain = address.lower().rpartition("@")
    suffix = "." + mail_domain.lower()
    if local != "support" or not domain.endswith(suffix):
        return None
    subdomain = domain[: -len(suffix)]
    return subdomain if SUBDOMAIN_PATTERN.match(subdomain) else None
