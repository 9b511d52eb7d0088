"""Credential rotation of a connector secret: the admin stages the new credentials, Secrets Manager's four steps test
them with a real SMTP AUTH and promote them; the current credentials stay live until then. The same for an OAuth 2.0
address's client secret (and for switching a password address to OAuth 2.0): the test is then a real token request
and AUTH XOAUTH2 (the live check's token and auth steps).

No one can invent a password on a customer's server, so `createSecret` never generates one: it keeps the version
`stage_rotation` put under the rotation's token, and refuses when nothing was staged. `setSecret` has nothing to do
(the customer's server owns the password; the admin changed it there). `testSecret` logs in to the smarthost with
the pending credentials; a failure leaves AWSCURRENT live, abandons the pending version and records why on the
address. `finishSecret` promotes AWSPENDING to AWSCURRENT (the old version becomes AWSPREVIOUS); the new credentials
take effect through `addresses/state.py` (a change of connector settings): a hold ends, the notifications it held
are released, and a last error about sending or an earlier rotation is cleared.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from relaydesk.addresses import lifecycle, state
from relaydesk.addresses.diagnosis import WHAT_TO_DO
from relaydesk.addresses.live_check import LiveCheckReport, run_live_check
from relaydesk.addresses.model import ErrorTopic, SupportAddress
from relaydesk.addresses.sign_in import PASSWORD_CLEARS
from relaydesk.credentials import AuthKind, SmtpCredentials, checked_credentials
from relaydesk.errors import NotFoundError, RotationRefusedError, SmtpDeliveryError
from relaydesk.store.ports import CURRENT, PENDING, Stores

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


# --- the admin path: `relaydesk addresses rotate` -------------------------------------------------------------------

WAITING = "waiting for the rotation function to test the new credentials ..."


class Outcome(StrEnum):
    PROMOTED = "promoted"  # the smarthost accepted the new credentials: they are AWSCURRENT
    FAILED = "failed"  # refused: the current credentials stay live, the address's last error says why
    RUNNING = "running"  # the rotation function has not finished yet (a deployed stack runs it asynchronously)


@dataclass(frozen=True)
class Rotation:
    email: str
    version_id: str
    outcome: Outcome
    error: str | None = None


def current_credentials(stores: Stores, account_id: str, email: str) -> SmtpCredentials:
    """The address's AWSCURRENT credentials (what the relay uses)."""
    address = _connector_address(stores, account_id, email)
    assert address.connector is not None
    return _credentials(stores.secrets.get(address.connector.secret_arn, CURRENT).value)


def replaced(current: SmtpCredentials, changes: Mapping[str, Any]) -> SmtpCredentials:
    """`current` with `changes` (SmtpCredentials fields); a switch to a password drops the OAuth 2.0 app's fields,
    a switch to OAuth 2.0 the password. ConfigurationError names the fields at fault, never their values."""
    fields = {**json.loads(current.to_secret_string()), **changes}
    if AuthKind(fields.get("auth_kind", AuthKind.PASSWORD)) is AuthKind.PASSWORD:
        fields.update(oauth_client_secret=None, oauth_tenant_id=None, oauth_client_id=None, oauth_token_url=None,
                      **PASSWORD_CLEARS)
    else:
        fields["password"] = ""
    return checked_credentials(fields)


def changed_credentials(current: SmtpCredentials, changes: Mapping[str, Any]) -> SmtpCredentials:
    """`current` with the fields of a form (the console's) that were filled in: a field left out or empty keeps its
    current value, so a host change keeps the password and a new password keeps the host."""
    return replaced(current, {key: value for key, value in changes.items() if value not in (None, "")})


def rotate(stores: Stores, account_id: str, email: str, new_credentials: SmtpCredentials, *,
           start: Starter | None = None,
           timeout: float = 120.0, poll: float = 2.0, on_wait: Callable[[str], None] | None = None,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Rotation:
    """Stage `new_credentials`, start the rotation and wait up to `timeout` for its outcome. Where the rotation runs
    in this process (no rotation function configured), a refusal raises the live check's error instead."""
    token = stage_rotation(stores, account_id, email, new_credentials, start=start)
    address = _connector_address(stores, account_id, email)
    assert address.connector is not None
    outcome = wait_for_rotation(stores, address.connector.secret_arn, token, timeout=timeout, poll=poll,
                                on_wait=on_wait and (lambda: on_wait(WAITING)), sleep=sleep, clock=clock)
    if outcome is Outcome.FAILED:  # testSecret took it out of the rotation: refused
        error = lifecycle.get_address(stores, account_id, email).last_error
        return Rotation(address.email, token, outcome, error or "the rotation function refused the new credentials")
    return Rotation(address.email, token, outcome)


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


def rotation_outcome(stores: Stores, secret_id: str, token: str) -> Outcome:
    """promoted (the version is AWSCURRENT), failed (it is no longer pending: the test refused it) or running."""
    stages = stores.secrets.describe_stages(secret_id).get(token, [])
    if CURRENT in stages:
        return Outcome.PROMOTED
    return Outcome.RUNNING if PENDING in stages else Outcome.FAILED


def wait_for_rotation(stores: Stores, secret_id: str, token: str, *, timeout: float, poll: float,
                      on_wait: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> Outcome:
    """The outcome, waiting up to `timeout` seconds: in a deployed stack the rotation function runs asynchronously."""
    deadline = clock() + timeout
    while True:
        outcome = rotation_outcome(stores, secret_id, token)
        if outcome is not Outcome.RUNNING or clock() >= deadline:
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
    except ValueError as error:
        raise RotationRefusedError(f"unknown rotation step {step!r}; expected one of "
                                   f"{', '.join(s.value for s in Step)}") from error


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
    error = report.to_error("credential rotation failed, the current credentials stay live")
    state.change(stores, address.account_id, address.email,
                 state.NoteError(_reason(report, error), about=ErrorTopic.ROTATION))
    # The pending version failed: take it out of the rotation so the relay stops trying it and a new `rotate`
    # starts clean. AWSCURRENT was never touched.
    _unstage(stores, secret_id, token)
    raise error from report.error


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
    # The new credentials passed testSecret: they take effect, a hold ends and what it held is released.
    state.change(stores, address.account_id, address.email,
                 state.ChangeSettings(credentials, version_id=token, why="credentials rotated"))
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
    return lifecycle.connector_address(stores, account_id, email,
                                       action="Only connector addresses have credentials to rotate.")


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
    """What the address shows: the failed step, the server's reply, then the fix after "What to do:" (where the
    console's explanation splits it off); the live check scrubbed the password."""
    step = report.failed_step
    parts = [f"credential rotation failed at {step.name if step else 'the live check'}",
             report.summary or error.message]
    if step is not None and (step.smtp_code or step.detail):
        parts.append(f"the server replied: {' '.join(str(p) for p in (step.smtp_code, step.detail) if p)}")
    said = "; ".join(parts) + "; the previous credentials stay live"
    return f"{said}. {WHAT_TO_DO} {report.fix}" if report.fix else said


def stage_change(stores: Stores, account_id: str, email: str, changes: Mapping[str, Any],
                 sign_in: Mapping[str, Any] | None = None) -> str:
    """Stage the address's credentials with a form's `changes` (filled-in fields only, `changed_credentials`) as
    AWSPENDING, without starting the rotation (the caller starts it: the console's rotate job); returns the version's
    token. `sign_in` holds the fields of new sign-in material (`addresses/sign_in.py`: a client secret, a certificate,
    a service account's key) taken as they are, the fields they clear included."""
    current = current_credentials(stores, account_id, email)
    given = {key: value for key, value in changes.items() if value not in (None, "")}
    return stage_rotation(stores, account_id, email, replaced(current, {**given, **(sign_in or {})}),
                          start=lambda secret_id, token: None)
