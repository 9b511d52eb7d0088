"""Credential rotation of a connector secret: the admin stages the new credentials, Secrets Manager's four steps test
them with a real SMTP AUTH and promote them; the current credentials stay live until then. The same for an OAuth 2.0
address's client secret (and for switching a password address to OAuth 2.0): the test is then a real token request
and AUTH XOAUTH2 (the live check's token and auth steps).

No one can invent a password on a customer's server, so `createSecret` never generates one: it keeps the version
`stage_rotation` put under the rotation's token, and refuses when nothing was staged. `setSecret` has nothing to do
(the customer's server owns the password; the admin changed it there). `testSecret` logs in to the smarthost with
the pending credentials; a failure leaves AWSCURRENT live, abandons the pending version and records why on the
address. `finishSecret` promotes AWSPENDING to AWSCURRENT (the old version becomes AWSPREVIOUS), clears an
`auth_failed` hold and releases the notifications the relay held for the address.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from enum import StrEnum

from pydantic import ValidationError

from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import LiveCheckReport, run_live_check
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress, VerificationStatus
from relaydesk.clock import utcnow
from relaydesk.credentials import AuthKind, SmtpCredentials, checked_credentials
from relaydesk.errors import (
    NotFoundError,
    RotationRefusedError,
    RuleViolation,
    SmtpDeliveryError,
)
from relaydesk.store.ports import CURRENT, PENDING
from relaydesk.wiring import Stores

Starter = Callable[[str, str], None]  # (secret id, token): begins the four steps for the staged version
Checker = Callable[..., LiveCheckReport]  # run_live_check's signature

# arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 random characters Secrets Manager appends>
_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


class Step(StrEnum):
    """The `Step` of a Secrets Manager rotation event, in the order Secrets Manager runs them."""

    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


# --- staging (the admin path: `relaydesk addresses rotate`) ---------------------------------------------------------

def stage_rotation(stores: Stores, account_id: str, email: str, new_credentials: SmtpCredentials, *,
                   start: Starter | None = None) -> str:
    """Stage `new_credentials` as AWSPENDING under a fresh token and start the rotation; returns the token.

    `start` defaults to RotateSecret with the stack's rotation function, or, where none is configured (the local
    stack), to running the four steps in this process."""
    address = _connector_address(stores, account_id, email)
    assert address.connector is not None
    token = str(uuid.uuid4())  # Secrets Manager's ClientRequestToken: 32-64 characters, becomes the VersionId
    stores.secrets.put_version(address.connector.secret_arn, new_credentials.to_secret_string(), [PENDING],
                               token=token)
    (start or default_starter(stores))(address.connector.secret_arn, token)
    return token


def default_starter(stores: Stores, *, checker: Checker = run_live_check) -> Starter:
    arn = stores.settings.rotation_function_arn
    if arn:
        return lambda secret_id, token: stores.secrets.start_rotation(secret_id, token, arn)
    return lambda secret_id, token: rotate_in_process(stores, secret_id, token, checker=checker)


def rotate_in_process(stores: Stores, secret_id: str, token: str, *, checker: Checker = run_live_check) -> None:
    """The four steps in order, as Secrets Manager would invoke them; stops at the first failure."""
    for step in Step:
        run_step(stores, secret_id, token, step, checker=checker)


def rotation_outcome(stores: Stores, secret_id: str, token: str) -> str:
    """promoted (the version is AWSCURRENT), failed (it is no longer pending: the test refused it) or running."""
    stages = stores.secrets.describe_stages(secret_id).get(token, [])
    if CURRENT in stages:
        return "promoted"
    return "running" if PENDING in stages else "failed"


def wait_for_rotation(stores: Stores, secret_id: str, token: str, *, timeout: float, poll: float,
                      on_wait: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> str:
    """The outcome, waiting up to `timeout` seconds: in a deployed stack the rotation function runs asynchronously."""
    deadline = clock() + timeout
    while True:
        outcome = rotation_outcome(stores, secret_id, token)
        if outcome != "running" or clock() >= deadline:
            return outcome
        if on_wait is not None:
            on_wait()
        sleep(poll)


# --- the rotation function's steps ----------------------------------------------------------------------------------

def run_step(stores: Stores, secret_id: str, token: str, step: Step | str, *,
             checker: Checker = run_live_check) -> str:
    """One step of the rotation event `{"SecretId", "ClientRequestToken", "Step"}`; returns what was done."""
    step = _step(step)
    versions = stores.secrets.describe_stages(secret_id)
    if CURRENT in versions.get(token, []):
        return "already current"  # a retried step after a finished rotation: nothing left to do
    if step is Step.CREATE:
        return create_secret(stores, secret_id, token)
    if PENDING not in versions.get(token, []):
        raise RotationRefusedError(f"version {token} of the connector secret is not pending rotation; nothing changed")
    if step is Step.SET:
        return set_secret(stores, secret_id, token)
    if step is Step.TEST:
        return test_secret(stores, secret_id, token, checker=checker)
    return finish_secret(stores, secret_id, token)


def _step(step: Step | str) -> Step:
    try:
        return Step(step)
    except ValueError:
        raise RotationRefusedError(f"unknown rotation step {step!r}; expected one of "
                                   f"{', '.join(s.value for s in Step)}") from None


def create_secret(stores: Stores, secret_id: str, token: str) -> str:
    """Keep the version staged under `token`; with nothing staged, refuse and leave the secret as it was."""
    address_for_secret(stores, secret_id)  # a secret of no support address is never rotated
    try:
        staged = stores.secrets.get(secret_id, PENDING)
    except NotFoundError:
        staged = None
    if staged is None or staged.version_id != token:
        _unstage(stores, secret_id, token)
        raise RotationRefusedError(
            "nothing was staged for this rotation: Relaydesk cannot invent a password on the customer's mail "
            "server; the current credentials stay live")
    _credentials(staged.value)  # a staged value that is not connector credentials is refused here, not at finish
    return "kept the staged version"


def set_secret(stores: Stores, secret_id: str, token: str) -> str:
    """Nothing to do: the customer's server owns the password (its Entra ID app the client secret), and the admin
    already changed it there."""
    return "nothing to set: the customer's mail server owns the password"


def test_secret(stores: Stores, secret_id: str, token: str, *, checker: Checker = run_live_check) -> str:
    """A real SMTP AUTH (and MAIL FROM as the address) against the smarthost with the pending credentials; for
    oauth2, a new access token from the pending client secret first (the live check never reuses a cached one)."""
    address = address_for_secret(stores, secret_id)
    staged = stores.secrets.get(secret_id, PENDING)
    if staged.version_id != token:
        raise RotationRefusedError(f"version {token} is no longer the pending one; nothing changed")
    report = checker(_credentials(staged.value), sender=address.email)
    if report.ok:
        return "the smarthost accepted the pending credentials"
    error = report.to_error()
    address.last_error = _reason(report, error)
    _save(stores, address)
    # The pending version failed: take it out of the rotation so the relay stops trying it and a new `rotate`
    # starts clean. AWSCURRENT was never touched.
    _unstage(stores, secret_id, token)
    error.message = f"credential rotation failed, the current credentials stay live: {error.message}"
    error.args = (error.message,)
    raise error


def finish_secret(stores: Stores, secret_id: str, token: str) -> str:
    """Promote AWSPENDING to AWSCURRENT (AWSPREVIOUS kept), then bring the address back to work."""
    address = address_for_secret(stores, secret_id)
    assert address.connector is not None
    versions = stores.secrets.describe_stages(secret_id)
    current = next((version for version, stages in versions.items() if CURRENT in stages), None)
    if current != token:
        stores.secrets.move_stage(secret_id, CURRENT, to_version=token, from_version=current)
    stores.secrets.move_stage(secret_id, PENDING, to_version=None, from_version=token)
    credentials = _credentials(stores.secrets.get(secret_id, CURRENT).value)
    connector = address.connector
    connector.host, connector.port, connector.tls_mode = credentials.host, credentials.port, credentials.tls_mode
    connector.take_sign_in(credentials)
    connector.credentials_version = token
    if connector.state is ConnectorState.AUTH_FAILED:
        verified = address.outbound.status is VerificationStatus.VERIFIED
        connector.state = ConnectorState.ACTIVE if verified else ConnectorState.PENDING
    connector.held_since = None
    connector.held_version = None
    address.last_error = None
    _save(stores, address)
    lifecycle.release_held_notifications(stores, address.account_id, address.email)
    return "promoted the pending version to AWSCURRENT"


# --- helpers --------------------------------------------------------------------------------------------------------

def secret_name_of(secret_id: str) -> str:
    """The secret's name from its ARN (Secrets Manager passes the ARN) or the name itself."""
    match = _SECRET_ARN.match(secret_id)
    return match.group("name") if match else secret_id


def address_for_secret(stores: Stores, secret_id: str) -> SupportAddress:
    """The connector address a secret belongs to: its name is `<secret_prefix><account_id>/<email>`."""
    name = secret_name_of(secret_id)
    prefix = stores.settings.secret_prefix
    account_id, _, email = name[len(prefix):].partition("/") if name.startswith(prefix) else ("", "", "")
    address = stores.directory.get_account_address(account_id, email) if email and account_id else None
    if (address is None or address.connector is None
            or secret_name_of(address.connector.secret_arn) != name):
        raise NotFoundError(f"the secret {name!r} belongs to no connected support address; nothing changed",
                            action="Rotate only secrets created by `relaydesk addresses connect`.")
    return address


def _connector_address(stores: Stores, account_id: str, email: str) -> SupportAddress:
    address = lifecycle.get_address(stores, account_id, email)
    if address.kind is not AddressKind.SMTP_CONNECTOR or address.connector is None:
        raise RuleViolation(f"{address.email} does not use the SMTP connector", rule="not_a_connector",
                            action="Only connector addresses have credentials to rotate.")
    return address


def _credentials(value: str) -> SmtpCredentials:
    try:
        return SmtpCredentials.model_validate_json(value)
    except ValidationError:
        # pydantic's message would quote the input, i.e. the secret: name the problem only.
        raise RotationRefusedError("the staged version is not valid connector credentials; nothing changed") from None


def _unstage(stores: Stores, secret_id: str, token: str) -> None:
    if PENDING in stores.secrets.describe_stages(secret_id).get(token, []):
        stores.secrets.move_stage(secret_id, PENDING, to_version=None, from_version=token)


def _reason(report: LiveCheckReport, error: SmtpDeliveryError) -> str:
    """What the address shows: the failed step, the server's reply, the fix; the live check scrubbed the password."""
    step = report.failed_step
    parts = [f"credential rotation failed at {step.name if step else 'the live check'}",
             report.summary or error.message]
    if step is not None and (step.smtp_code or step.detail):
        parts.append(f"the server replied: {' '.join(str(p) for p in (step.smtp_code, step.detail) if p)}")
    if report.fix:
        parts.append(report.fix)
    return "; ".join(parts) + "; the previous credentials stay live"


def _save(stores: Stores, address: SupportAddress) -> None:
    address.updated_at = utcnow()
    stores.directory.put_address(address)


# --- new settings from a form (the console): what changes, the rest kept ------------------------------------------

def changed_credentials(current: SmtpCredentials, changes: dict) -> SmtpCredentials:
    """`current` with `changes` applied (host, port, tls_mode, username, ca_bundle_pem, auth_kind, password, oauth_*):
    a field left out or empty keeps its current value, so a host change keeps the password and a new password keeps
    the host. Switching the sign-in kind clears the other kind's fields. A ConfigurationError names the invalid
    fields, never a value."""
    given = {key: value for key, value in changes.items() if value not in (None, "")}
    fields = json.loads(current.to_secret_string())
    kind = AuthKind(given.get("auth_kind", current.auth_kind))
    if kind is not current.auth_kind:
        for name in ("password", "oauth_client_secret", "oauth_tenant_id", "oauth_client_id", "oauth_token_url"):
            fields[name] = "" if name == "password" else None
    fields.update(given)
    fields["auth_kind"] = kind
    return checked_credentials(fields)


def stage_change(stores: Stores, account_id: str, email: str, changes: dict) -> str:
    """Stage the address's credentials with `changes` as AWSPENDING, without starting the rotation (the caller
    starts it: the console's rotate job); returns the version's token."""
    address = _connector_address(stores, account_id, email)
    assert address.connector is not None
    current = _credentials(stores.secrets.get(address.connector.secret_arn, CURRENT).value)
    return stage_rotation(stores, account_id, address.email, changed_credentials(current, changes),
                          start=lambda secret_id, token: None)
