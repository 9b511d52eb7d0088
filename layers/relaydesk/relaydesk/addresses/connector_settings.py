"""Changing a connected address's smarthost (host, port, TLS mode, CA bundle) without deleting it: the new settings
pass a live check with the address's current credentials first, then become the secret's new AWSCURRENT version
and take effect through `addresses/state.py` (a change of connector settings): a hold ends and what it held is
released. On any failure nothing changes. The CLI (`relaydesk addresses set`) calls it; the console stages the same
change as a rotation instead (`rotation.stage_change`: a job that may outlast an HTTP request), which ends in the
same transition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relaydesk.addresses import lifecycle, rotation, state
from relaydesk.addresses.live_check import LiveCheckReport, run_live_check
from relaydesk.addresses.model import SupportAddress
from relaydesk.credentials import TlsMode
from relaydesk.errors import ConfigurationError, ConflictError, RuleViolation
from relaydesk.store.ports import CURRENT, PENDING, Stores

Checker = Callable[..., LiveCheckReport]  # run_live_check's signature


def change_settings(stores: Stores, account_id: str, email: str, *, host: str | None = None, port: int | None = None,
                    tls_mode: TlsMode | str | None = None, ca_bundle_pem: str | None = None,
                    checker: Checker | None = None, on_step: Callable[..., None] | None = None,
                    ) -> tuple[SupportAddress, LiveCheckReport]:
    """New smarthost settings for a connected address, live-checked (TLS, AUTH, MAIL FROM as the address) before
    they take effect. ConfigurationError when nothing changes; ConflictError while a rotation is under way; the
    live check's typed error (nothing saved) when the smarthost does not take them."""
    address = lifecycle.get_address(stores, account_id, email)
    if address.connector is None:
        raise RuleViolation(f"{address.email} does not use the SMTP connector", rule="not_a_connector",
                            action=f"Connect it with `relaydesk addresses connect {address.email} ...` instead.")
    current = rotation.current_credentials(stores, account_id, address.email)
    secret_id = address.connector.secret_arn
    if any(PENDING in stages for stages in stores.secrets.describe_stages(secret_id).values()):
        raise ConflictError(f"a credential rotation of {address.email} is under way",
                            action="Let it finish (or fail) first, then change the settings.")
    changes: dict[str, Any] = {name: value for name, value in (
        ("host", host), ("port", port), ("tls_mode", TlsMode(tls_mode) if tls_mode else None),
        ("ca_bundle_pem", ca_bundle_pem)) if value is not None}
    new = rotation.replaced(current, changes)
    if new == current:
        raise ConfigurationError(f"{address.email} already uses these settings",
                                 action="Give a new --host, --port, --tls or --ca-bundle.")
    report = (checker or run_live_check)(new, sender=address.email, on_step=on_step)
    if not report.ok:
        error = report.to_error("the new settings were not saved; the current ones stay")
        raise error from report.error
    version_id = stores.secrets.put_version(secret_id, new.to_secret_string(), [CURRENT])
    changed = state.change(stores, account_id, address.email, state.ChangeSettings(new, version_id=version_id))
    return changed, report
