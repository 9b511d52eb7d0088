"""The admin operations on accounts and support addresses, each rule of the connector enforced with a clear error;
every change of an address's state goes through `relaydesk.addresses.state`.

Rules (each a `RuleViolation` whose `code` names it):
- `system_address`: the account's system address (or any address in the mail domain) cannot be connected or removed.
- `address_in_use`: an address belongs to one account only, sandbox and production alike (also across the
  separately deployed sandbox and production stacks, through `peers`). Decided at verification: any account may add
  an address no one has verified; the first to verify its forwarding owns it (`take_ownership`), and the others'
  verifications of it fail with a message that names no account.
- `ccs_and_followers_required`: the connector needs the account's CCs and followers enabled.
- `default_requires_verification`: only an address whose forwarding and outbound are verified can be the default.
- `connector_requires_admin_path`: connector addresses are created only by `connect_address`, which carries
  credentials; the HTTP API may only add forwarding addresses.
- `forwarding_cannot_switch`: an address set up with standard forwarding cannot become a connector in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from relaydesk.accounts import Account, AccountKind, AccountSettings, subdomain_of_system_address, system_address
from relaydesk.addresses import state
from relaydesk.addresses.live_check import LiveCheckReport, run_live_check
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.clock import utcnow
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import ConfigurationError, ConflictError, NotFoundError, OtherEnvironmentUnreadable, RuleViolation
from relaydesk.ids import new_id
from relaydesk.store.ports import DirectoryStore, Stores

Checker = Callable[..., LiveCheckReport]  # run_live_check's signature: (credentials, *, sender=..., on_step=...)

SECRET_RECOVERY_DAYS = 7  # Secrets Manager's shortest window is 7 days: a deleted address can still be restored
TAG_ACCOUNT = "relaydesk:account-id"
TAG_ADDRESS = "relaydesk:address"

logger = logging.getLogger(__name__)


# --- accounts -----------------------------------------------------------------------------------------------------

def create_account(stores: Stores, subdomain: str, name: str = "", kind: AccountKind | str = AccountKind.SANDBOX,
                   ) -> tuple[Account, SupportAddress]:
    """A new account and its system address (verified by construction, the default until another is verified)."""
    try:
        account = Account(account_id=new_id("A"), subdomain=subdomain, name=name, kind=AccountKind(kind))
    except ValidationError as error:
        raise ConfigurationError(f"{subdomain!r} is not a valid subdomain",
                                 action="Use one DNS label: lower-case letters, digits and hyphens.") from error
    email = system_address(account.subdomain, stores.settings.mail_domain)
    if stores.directory.get_address(email) is not None:
        raise ConflictError(f"{email} already exists", action="Pick another subdomain.")
    stores.directory.create_account(account)
    now = utcnow()
    system = SupportAddress(
        email=email, account_id=account.account_id, name=account.display_name, kind=AddressKind.SYSTEM,
        forwarding=Verification(status=VerificationStatus.VERIFIED, verified_at=now),
        outbound=Verification(status=VerificationStatus.VERIFIED, verified_at=now),
        is_default=True)
    return account, state.create(stores, state.Create(system))


def update_account_settings(stores: Stores, account_id: str, *, ccs_and_followers_enabled: bool | None = None,
                            include_attachments_in_email: bool | None = None,
                            notify_requester_on_solved: bool | None = None,
                            agent_from_name: str | None = None) -> Account:
    account = stores.directory.get_account(account_id)
    if ccs_and_followers_enabled is False and account.settings.ccs_and_followers_enabled:
        connected = [a.email for a in stores.directory.list_addresses(account_id)
                     if a.kind is AddressKind.SMTP_CONNECTOR]
        if connected:
            raise RuleViolation(
                "CCs and followers cannot be turned off while addresses use the SMTP connector: "
                f"{', '.join(connected)}",
                rule="ccs_and_followers_required",
                action="Delete those connector addresses first, or leave CCs and followers on.")
    changes: dict[str, Any] = {}
    if ccs_and_followers_enabled is not None:
        changes["ccs_and_followers_enabled"] = ccs_and_followers_enabled
    if include_attachments_in_email is not None:
        changes["include_attachments_in_email"] = include_attachments_in_email
    if notify_requester_on_solved is not None:
        changes["notify_requester_on_solved"] = notify_requester_on_solved
    if agent_from_name is not None:
        changes["agent_from_name"] = agent_from_name
    try:
        account.settings = AccountSettings.model_validate({**account.settings.model_dump(), **changes})
    except ValidationError as error:
        problem = error.errors()[0]
        raise RuleViolation(f"{problem['loc'][0]}: {problem['msg'].removeprefix('Value error, ')}",
                            rule="invalid_setting") from None
    stores.directory.put_account(account)
    return account


# --- adding addresses ---------------------------------------------------------------------------------------------

def secret_name(stores: Stores, account_id: str, email: str) -> str:
    """One secret per address: `<secret_prefix><account_id>/<email>`."""
    return f"{stores.settings.secret_prefix}{account_id}/{email.lower()}"


def _normalise(email: str) -> str:
    try:
        return SupportAddress.model_validate({"email": email, "account_id": "-"}).email
    except ValidationError as error:
        raise ConfigurationError(f"{email!r} is not an email address",
                                 action="Give the support address as name@domain.") from error


def _refuse_system_address(stores: Stores, email: str, account: Account) -> None:
    mail_domain = stores.settings.mail_domain.lower()
    if email == system_address(account.subdomain, mail_domain) or subdomain_of_system_address(email, mail_domain):
        raise RuleViolation(
            f"{email} is a Relaydesk system address: it can never be sent through a connector or added again",
            rule="system_address",
            action="Connect your own support address (for example support@yourcompany.com) instead.")
    if email.endswith("@" + mail_domain) or email.endswith("." + mail_domain):
        raise RuleViolation(f"{email} is in Relaydesk's mail domain; only your own domain's addresses can be added",
                            rule="system_address", action="Use an address in your own domain.")


def _refuse_in_peers(email: str, peers: Sequence[tuple[str, DirectoryStore]]) -> None:
    """The other environment's deployment (sandbox <-> production) must not have verified the address either."""
    for label, directory in peers:
        if directory.owner_of(email) is not None:
            raise RuleViolation(
                f"{email} is already a support address in the {label} environment; an address can belong to one "
                "account only, never to a sandbox and a production account",
                rule="address_in_use",
                action=f"Delete it in {label} first (`relaydesk --env {label} addresses delete {email}`).")


def _in_use(email: str) -> RuleViolation:
    # Names no account: whoever owns the address is none of the caller's business.
    return RuleViolation(
        f"{email} is already verified by another Relaydesk account; an address can belong to one account only",
        rule="address_in_use",
        action="If the address is yours (for example in your sandbox account), delete it there first; otherwise "
               "ask the owner of the mailbox which help desk it forwards to.")


def _refuse_existing(stores: Stores, email: str, account: Account, *, connecting: bool) -> None:
    existing = stores.directory.get_account_address(account.account_id, email)
    if existing is None:
        # Another account's claim blocks nothing until that account verifies the address (`take_ownership`).
        if stores.directory.owner_of(email) not in (None, account.account_id):
            raise _in_use(email)
        return
    if connecting and existing.kind is AddressKind.FORWARDING:
        raise RuleViolation(
            f"{email} is set up with standard forwarding; it cannot be switched to the SMTP connector in place",
            rule="forwarding_cannot_switch",
            action=f"Remove it (`relaydesk addresses delete {email}`), then connect it again with credentials.")
    if connecting and existing.kind is AddressKind.SMTP_CONNECTOR:
        raise ConflictError(f"{email} is already connected",
                            action=f"To change its credentials, run `relaydesk addresses rotate {email}`.")
    raise ConflictError(f"{email} is already a support address of this account")


# --- uniqueness, decided at verification ----------------------------------------------------------------------------

def ensure_can_own(stores: Stores, address: SupportAddress) -> None:
    """Refuse (`address_in_use`) when another account, here or in the other environment, has verified the address.
    Called before a forwarding test mail is sent, so none goes out for an address someone else owns."""
    if stores.directory.owner_of(address.email) not in (None, address.account_id):
        raise _in_use(address.email)
    try:
        _refuse_in_peers(address.email, stores.peers)
    except OtherEnvironmentUnreadable as error:
        # As when adding an address: an unreachable other stack must not stop this one (the API noted it then).
        logger.warning("uniqueness across environments not checked at verification: %s", error.message)


def take_ownership(stores: Stores, address: SupportAddress) -> None:
    """The first account to prove control of the mailbox (its forwarding verified) owns the address; every other
    account's verification of it fails from then on. Atomic: of two accounts verifying at once, one wins."""
    ensure_can_own(stores, address)
    try:
        stores.directory.claim_address(address.account_id, address.email)
    except ConflictError:
        raise _in_use(address.email) from None


def add_forwarding_address(stores: Stores, account_id: str, email: str, name: str = "", *,
                           kind: AddressKind | str = AddressKind.FORWARDING,
                           peers: Sequence[tuple[str, DirectoryStore]] = ()) -> SupportAddress:
    """Add an address reached by standard forwarding: the only creation path the HTTP API may use."""
    if AddressKind(kind) is not AddressKind.FORWARDING:
        raise RuleViolation(
            "SMTP connector addresses cannot be created through the API: only the admin path, which carries the "
            "credentials, creates them",
            rule="connector_requires_admin_path",
            action="Use `relaydesk addresses connect EMAIL --account ID ...` (credentials are read from stdin).")
    account = stores.directory.get_account(account_id)
    email = _normalise(email)
    _refuse_system_address(stores, email, account)
    _refuse_existing(stores, email, account, connecting=False)
    _refuse_in_peers(email, peers)
    address = SupportAddress(email=email, account_id=account_id, name=name or account.display_name,
                             kind=AddressKind.FORWARDING)
    return _create(stores, state.Create(address))


def _create(stores: Stores, transition: state.Create | state.Connect) -> SupportAddress:
    try:
        return state.create(stores, transition)
    except ConflictError as error:
        # Lost a race with another admin of the same account.
        raise ConflictError(f"{transition.address.email} is already a support address of this account") from error


def connect_address(stores: Stores, account_id: str, email: str, credentials: SmtpCredentials, name: str = "", *,
                    checker: Checker | None = None, on_step: Callable[..., None] | None = None,
                    peers: Sequence[tuple[str, DirectoryStore]] = (),
                    ) -> tuple[SupportAddress, LiveCheckReport]:
    """Rules, then a live check, then the secret, then the address in state `pending`. Nothing is saved on failure."""
    account, email = check_can_connect(stores, account_id, email, peers=peers)
    report = (checker or run_live_check)(credentials, sender=email, on_step=on_step)
    if not report.ok:
        raise report.to_error()
    secret_arn = write_connector_secret(stores, account_id, email, credentials)
    return create_connector_address(stores, account, email, credentials, secret_arn, name), report


def check_can_connect(stores: Stores, account_id: str, email: str, *,
                      peers: Sequence[tuple[str, DirectoryStore]] = ()) -> tuple[Account, str]:
    """Every rule a new connector address must pass (before credentials are tested or kept): the account and the
    normalised address, or the `RuleViolation` that says what to do."""
    account = stores.directory.get_account(account_id)
    email = _normalise(email)
    _refuse_system_address(stores, email, account)
    _refuse_existing(stores, email, account, connecting=True)
    _refuse_in_peers(email, peers)
    if not account.settings.ccs_and_followers_enabled:
        raise RuleViolation(
            "the SMTP connector requires the account's CCs and followers to be enabled",
            rule="ccs_and_followers_required",
            action=f"Run `relaydesk accounts settings {account_id} --ccs-and-followers on`, then connect again.")
    return account, email


def create_connector_address(stores: Stores, account: Account, email: str, credentials: SmtpCredentials,
                             secret_arn: str, name: str = "") -> SupportAddress:
    """The connector address, `pending` until outbound is verified, whose credentials are in `secret_arn`."""
    connector = Connector(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                          secret_arn=secret_arn)
    connector.take_sign_in(credentials)  # who signs in, never a secret
    address = SupportAddress(email=email, account_id=account.account_id, name=name or account.display_name,
                             kind=AddressKind.SMTP_CONNECTOR, connector=connector)
    try:
        address = _create(stores, state.Connect(address))
    except ConflictError:
        stores.secrets.schedule_deletion(secret_arn, SECRET_RECOVERY_DAYS)
        raise
    return address


def write_connector_secret(stores: Stores, account_id: str, email: str, credentials: SmtpCredentials) -> str:
    """The address's one secret with `credentials` as its current version; returns its id."""
    name = secret_name(stores, account_id, email)
    tags = {TAG_ACCOUNT: account_id, TAG_ADDRESS: email}
    try:
        return stores.secrets.create(name, credentials.to_secret_string(), tags)
    except ConflictError:
        # The secret of an earlier, deleted connection of this address still exists (recovery window): reuse it
        # with the new credentials as its current version.
        stores.secrets.restore(name)
        stores.secrets.put_version(name, credentials.to_secret_string(), ["AWSCURRENT"])
        return name


# --- changing addresses -------------------------------------------------------------------------------------------

def get_address(stores: Stores, account_id: str, email: str) -> SupportAddress:
    """The account's address. Another account's address is not found, with the same words as one that does not
    exist: an account never learns that an address is someone else's."""
    address = stores.directory.get_account_address(account_id, email.strip().lower())
    if address is None:
        raise NotFoundError(f"{email} is not a support address",
                            action="List the account's addresses with `relaydesk addresses list --account ID`.")
    return address


def locate_address(stores: Stores, email: str) -> SupportAddress:
    """The operator's lookup across every account (the CLI with AWS credentials, the operator API): the owner's
    record, or the one account's claim. Tenant paths never call it; they name their account and use `get_address`."""
    address = stores.directory.get_address(email.strip().lower())
    if address is not None:
        return address
    if len(stores.directory.list_claims(email.strip().lower())) > 1:
        raise NotFoundError(f"{email} is claimed by several accounts and verified by none",
                            action="Name the account: `--account ID`.")
    raise NotFoundError(f"{email} is not a support address",
                        action="List an account's addresses with `relaydesk addresses list --account ID`.")


def _save(stores: Stores, address: SupportAddress) -> SupportAddress:
    address.updated_at = utcnow()
    stores.directory.put_address(address)
    return address


def set_default(stores: Stores, account_id: str, email: str) -> SupportAddress:
    """Make the address the account's default; only when its forwarding and outbound are both verified."""
    address = get_address(stores, account_id, email)
    missing = [what for what, check in (("forwarding", address.forwarding), ("outbound", address.outbound))
               if check.status is not VerificationStatus.VERIFIED]
    if address.connector is not None and address.connector.state is not ConnectorState.ACTIVE:
        missing.append(f"the connector is {address.connector.state.value}")
    if missing:
        raise RuleViolation(
            f"{address.email} cannot become the default yet: not verified: {', '.join(missing)}",
            rule="default_requires_verification",
            action=f"Run `relaydesk addresses verify {address.email}` until both are verified; a default address "
                   "that does not work can lock you out of password resets.")
    for other in stores.directory.list_addresses(address.account_id):
        if other.is_default and other.email != address.email:
            other.is_default = False
            _save(stores, other)
    address.is_default = True
    return _save(stores, address)


def update_address(stores: Stores, account_id: str, email: str, *, name: str | None = None,
                   is_default: bool | None = None) -> SupportAddress:
    """The API's PUT: the name, and the default flag (true only when verified; false is refused, see below)."""
    address = get_address(stores, account_id, email)
    if is_default is False and address.is_default:
        raise RuleViolation(f"{address.email} is the default address; an account always has one",
                            rule="default_required", action="Make another verified address the default instead.")
    if name is not None:
        address.name = name
        address = _save(stores, address)
    if is_default:
        address = set_default(stores, account_id, address.email)
    return address


def connector_address(stores: Stores, account_id: str, email: str, *,
                      action: str = "Only connector addresses can be disabled, enabled or rotated.") -> SupportAddress:
    """The address, when it is connected to its own mail server; RuleViolation `not_a_connector` (saying `action`)
    otherwise."""
    address = get_address(stores, account_id, email)
    if address.kind is not AddressKind.SMTP_CONNECTOR or address.connector is None:
        raise RuleViolation(f"{address.email} does not use the SMTP connector", rule="not_a_connector", action=action)
    return address


def disable(stores: Stores, account_id: str, email: str) -> SupportAddress:
    """Stop the connector: tickets keep updating, notifications leave through the default outbound (SES); anything
    held behind a hold goes out that way too."""
    connector_address(stores, account_id, email)
    return state.change(stores, account_id, email, state.Disable())


def enable(stores: Stores, account_id: str, email: str) -> SupportAddress:
    """Turn the connector on again: `pending` until outbound is verified again (`relaydesk addresses verify`)."""
    connector_address(stores, account_id, email)
    return state.change(stores, account_id, email, state.Enable())


def delete_address(stores: Stores, account_id: str, email: str) -> SupportAddress:
    """Remove one address and schedule its secret's deletion (recoverable for SECRET_RECOVERY_DAYS days)."""
    address = get_address(stores, account_id, email)
    if address.kind is AddressKind.SYSTEM:
        raise RuleViolation(f"{address.email} is the account's system address and cannot be removed",
                            rule="system_address")
    if address.is_default:
        raise RuleViolation(f"{address.email} is the default address",
                            rule="default_required",
                            action="Make another verified address the default (`relaydesk addresses set-default`) "
                                   "before removing this one.")
    state.change(stores, account_id, address.email, state.Delete())
    if address.connector is not None:
        try:
            stores.secrets.schedule_deletion(address.connector.secret_arn, SECRET_RECOVERY_DAYS)
        except NotFoundError:
            pass  # already gone: the address is removed either way
    return address
