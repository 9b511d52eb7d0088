"""What an admin does to a domain's DKIM: set up, rotate, enable, disable — over the directory and the secret store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from relaydesk.addresses.model import SupportAddress, VerificationStatus
from relaydesk.clock import utcnow
from relaydesk.dkim.dnscheck import Status, check_dkim
from relaydesk.dkim.keyring import Generation, Keyring, new_keyring
from relaydesk.dkim.resolver import Resolver
from relaydesk.dkim.storage import create_keyring, load_keyring, save_keyring, secret_name
from relaydesk.errors import ConflictError, NotFoundError, RuleViolation
from relaydesk.wiring import Stores

Clock = Callable[[], datetime]


def normalize(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def addresses_of(stores: Stores, domain: str, account_id: str | None = None) -> list[SupportAddress]:
    """Every support address at the domain: of one account, or of every account (the operator's CLI)."""
    accounts = [account_id] if account_id else [a.account_id for a in stores.directory.list_accounts()]
    return [address for account in accounts
            for address in stores.directory.list_addresses(account) if address.domain == domain]


def require_own_domain(stores: Stores, account_id: str, domain: str) -> list[SupportAddress]:
    """The account's addresses at the domain, when it has proved control of one of them (its forwarding verified,
    the account the address's owner). A domain's keys are one secret: an account that merely claimed an address
    there must not create, rotate or switch them. The refusal names no other account."""
    domain = normalize(domain)
    mine = addresses_of(stores, domain, account_id)
    proven = [a for a in mine if a.forwarding.status is VerificationStatus.VERIFIED
              and stores.directory.owner_of(a.email) == account_id]
    if not proven:
        raise RuleViolation(f"DKIM for {domain} needs a verified support address of yours at {domain}",
                            rule="dkim_domain_not_verified",
                            action=f"Connect an address at {domain} and verify its forwarding first.")
    return mine


def smarthosts_of(stores: Stores, domain: str) -> list[str]:
    return [a.connector.host for a in addresses_of(stores, domain) if a.connector is not None]


def secret_of(stores: Stores, domain: str) -> str:
    return secret_name(normalize(domain), stores.settings.dkim_secret_prefix)


def load(stores: Stores, domain: str) -> Keyring:
    return load_keyring(stores.secrets, secret_of(stores, domain))[0]


def setup(stores: Stores, domain: str, *, now: Clock = utcnow, account_id: str | None = None,
          ) -> tuple[Keyring, str]:
    """New keys for the domain, stored in its secret, recorded (signing still off) on its addresses (of
    `account_id` only, when given)."""
    domain = normalize(domain)
    mail_domain = stores.settings.mail_domain.lower()
    if domain == mail_domain or domain.endswith("." + mail_domain):
        raise RuleViolation(f"{domain} is Relaydesk's own mail domain", rule="system_address",
                            action="System addresses are signed by Relaydesk's own outbound; set up your domain.")
    keyring = new_keyring(domain, now())
    arn = create_keyring(stores.secrets, keyring, stores.settings.dkim_secret_prefix)
    _record(stores, domain, keyring, arn, now(), enabled=None, account_id=account_id)
    return keyring, arn


def ensure_keys(stores: Stores, account_id: str, domain: str, *, now: Clock = utcnow) -> tuple[Keyring, bool]:
    """The domain's keys for an account that proved control of it: created when there are none, else the existing
    ones (recorded on the account's addresses at the domain). True when they were created now."""
    require_own_domain(stores, account_id, domain)
    domain = normalize(domain)
    try:
        keyring, _ = setup(stores, domain, now=now, account_id=account_id)
        return keyring, True
    except ConflictError:
        keyring = load(stores, domain)
        _record(stores, domain, keyring, None, now(), enabled=None, account_id=account_id)
        return keyring, False


def rotate(stores: Stores, domain: str, *, overlap: timedelta, now: Clock = utcnow) -> tuple[Keyring, Generation]:
    domain = normalize(domain)
    keyring = load(stores, domain)
    generation = keyring.add_generation(now(), overlap=overlap)
    save_keyring(stores.secrets, secret_of(stores, domain), keyring)
    _record(stores, domain, keyring, None, now(), enabled=None)
    return keyring, generation


def set_signing(stores: Stores, domain: str, enabled: bool, *, resolver: Resolver | None = None,
                now: Clock = utcnow, account_id: str | None = None) -> list[SupportAddress]:
    """Signing on or off for every address at the domain (of `account_id` only, when given). Turning it on first
    checks, with `resolver`, that the records of the keys that sign now are published: a signature nobody can
    verify helps no one."""
    domain = normalize(domain)
    if not addresses_of(stores, domain, account_id):
        raise NotFoundError(f"no support address at {domain}",
                            action="Connect an address at the domain first (`relaydesk addresses connect`).")
    keyring = load(stores, domain) if enabled else None
    if keyring is not None and resolver is not None:
        _require_published(domain, keyring, resolver, now())
    return _record(stores, domain, keyring, None, now(), enabled=enabled, account_id=account_id)


def _require_published(domain: str, keyring: Keyring, resolver: Resolver, at: datetime) -> None:
    signing = keyring.signing_generation(at)
    current = Keyring(domain=domain, generations=[signing] if signing else [])
    problems = [f for f in check_dkim(domain, resolver, current, at) if f.status is Status.FAIL]
    if problems:
        raise RuleViolation("; ".join(f.message for f in problems), rule="dkim_not_published",
                            action=" ".join(f.fix for f in problems) + " Then run the command again (or pass "
                                   "--skip-dns-check if the records were just published and DNS is still catching "
                                   "up).")


def _record(stores: Stores, domain: str, keyring: Keyring | None, secret_arn: str | None, at: datetime, *,
            enabled: bool | None, account_id: str | None = None) -> list[SupportAddress]:
    """The domain's DKIM settings on each of its addresses (an address connected after setup gets them here)."""
    selectors = [s for g, _ in keyring.published(at) for s in g.selectors] if keyring else None
    changed = []
    for address in addresses_of(stores, domain, account_id):
        address.dkim.domain = domain
        address.dkim.secret_arn = secret_arn or address.dkim.secret_arn or secret_of(stores, domain)
        if selectors is not None:
            address.dkim.selectors = selectors
        if enabled is not None:
            address.dkim.enabled = enabled
        address.updated_at = at
        stores.directory.put_address(address)
        changed.append(address)
    return changed
