"""Connecting an address in two halves, for the console's wizard: the request stages the credentials, a job tests
them and creates the address. The CLI does both in one process (`lifecycle.connect_address`); a browser cannot
wait in one HTTP request for a live check that may take longer than API Gateway allows.

Credentials are never carried by the job: `stage` writes them to the address's own secret (the only place
credentials live), and `complete` reads them from there. A failed check schedules the secret's deletion (restored
and overwritten by the next attempt), so no rejected credentials stay live; nothing else was saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError

from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import LiveCheckReport, StepListener, run_live_check
from relaydesk.addresses.model import SupportAddress
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import NotFoundError, RotationRefusedError
from relaydesk.store.ports import DirectoryStore
from relaydesk.wiring import Stores

Checker = Callable[..., LiveCheckReport]


def stage(stores: Stores, account_id: str, email: str, credentials: SmtpCredentials, *,
          peers: Sequence[tuple[str, DirectoryStore]] = ()) -> str:
    """Every rule first (a refused address stores nothing), then the credentials as the address's secret; returns
    the normalised address."""
    _, email = lifecycle.check_can_connect(stores, account_id, email, peers=peers)
    lifecycle.write_connector_secret(stores, account_id, email, credentials)
    return email


def complete(stores: Stores, account_id: str, email: str, name: str = "", *, checker: Checker | None = None,
             on_step: StepListener | None = None) -> tuple[SupportAddress | None, LiveCheckReport]:
    """The live check of the staged credentials; when it passes, the connector address (pending). The rules are
    checked again: the account may have changed since the credentials were staged."""
    account, email = lifecycle.check_can_connect(stores, account_id, email, peers=stores.peers)
    secret_id = lifecycle.secret_name(stores, account_id, email)
    credentials = staged_credentials(stores, secret_id)
    report = (checker or run_live_check)(credentials, sender=email, on_step=on_step)
    if not report.ok:
        stores.secrets.schedule_deletion(secret_id, lifecycle.SECRET_RECOVERY_DAYS)
        return None, report
    return lifecycle.create_connector_address(stores, account, email, credentials, secret_id, name), report


def staged_credentials(stores: Stores, secret_id: str) -> SmtpCredentials:
    try:
        return SmtpCredentials.model_validate_json(stores.secrets.get(secret_id).value)
    except NotFoundError:
        raise NotFoundError("the credentials to check are gone (the secret was deleted meanwhile)",
                            action="Enter the credentials again.") from None
    except ValidationError:
        # pydantic's message would quote the input, i.e. the secret: name the problem only.
        raise RotationRefusedError("the staged credentials are not valid connector credentials",
                                   action="Enter the credentials again.") from None
