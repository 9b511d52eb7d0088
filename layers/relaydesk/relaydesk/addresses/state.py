"""The one writer of a support address's state: its connector state, its forwarding and outbound verification, its
hold, its last error and its connector settings change only through the transitions here, each checked against
`TRANSITIONS` (from which phase to which). Nothing else writes those fields.

`apply` is the transition itself, a pure function: (address, transition, time) -> the next address and the effects
it implies; it records the event with its time on the address, and clears the last error when the transition
fixes what the error is about. `change` is its shell: it reads the address, applies, writes (or deletes) it, then
runs the effects (releasing the notifications held behind a hold). A transition that changes nothing writes
nothing. A transition the table does not allow raises `TransitionRefused`, naming the address's phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

from relaydesk.addresses.model import (
    AddressEvent,
    ConnectorState,
    ErrorTopic,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.clock import utcnow
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import NotFoundError, TransitionRefused
from relaydesk.store.ports import Stores

MAX_EVENTS = 20  # the latest transitions kept on the address: enough to tell a story, bounded for the item size


class Phase(StrEnum):
    """Where an address is in its life: its connector's state, or what it is without one."""

    NEW = "new"  # not stored yet
    FORWARDING = "forwarding"  # no connector: a forwarding address or the system address
    PENDING = ConnectorState.PENDING.value
    ACTIVE = ConnectorState.ACTIVE.value
    DISABLED = ConnectorState.DISABLED.value
    AUTH_FAILED = ConnectorState.AUTH_FAILED.value
    TLS_FAILED = ConnectorState.TLS_FAILED.value
    DELETED = "deleted"


# A held address goes back to work: active when its outbound is verified, else pending (as it was before the hold).
BACK_TO_WORK = "back to work"


class Direction(StrEnum):
    FORWARDING = "forwarding"
    OUTBOUND = "outbound"


class HoldReason(StrEnum):
    CREDENTIALS = "credentials"  # the smarthost refused the credentials (or offers no usable AUTH): auth_failed
    TLS = "tls"  # no STARTTLS, or a certificate that does not verify: tls_failed


class Effect(StrEnum):
    RELEASE_HELD = "release_held"  # every notification parked behind the hold goes back to the queue


# --- the transitions ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Create:
    """A forwarding (or system) address is stored."""

    address: SupportAddress
    name = "create"


@dataclass(frozen=True)
class Connect:
    """A connector address is stored, its connector `pending` until outbound is verified."""

    address: SupportAddress
    name = "connect"


@dataclass(frozen=True)
class StartVerification:
    """A test mail with `token` is on its way (forwarding) or queued for the connector (outbound)."""

    direction: Direction
    token: str

    @property
    def name(self) -> str:
        return f"verify_{self.direction.value}"


@dataclass(frozen=True)
class VerificationPassed:
    """The test mail came back. Outbound: the connector is active, a hold ends (this is "activate")."""

    direction: Direction
    at: datetime | None = None

    @property
    def name(self) -> str:
        return "activate" if self.direction is Direction.OUTBOUND else "forwarding_verified"


@dataclass(frozen=True)
class VerificationFailed:
    """The test failed (refused, too many hops, timed out). `token`: only when it is still that verification's."""

    direction: Direction
    error: str
    token: str | None = None

    @property
    def name(self) -> str:
        return f"{self.direction.value}_failed"


@dataclass(frozen=True)
class Hold:
    """The smarthost cannot be used until something is fixed: notifications are parked, not retried hot."""

    reason: HoldReason
    explanation: str  # the server's reply and what to do (no secret in it)
    version_id: str | None = None  # credentials: the secret version refused

    @property
    def name(self) -> str:
        return f"hold_{self.reason.value}"


@dataclass(frozen=True)
class Release:
    """The connector works (again): a delivery or a login succeeded with `version_id`. A hold ends."""

    version_id: str | None = None
    why: str = "the smarthost accepted the connection"
    name = "release"


@dataclass(frozen=True)
class NoteError:
    text: str
    about: ErrorTopic = ErrorTopic.SENDING
    name = "note_error"


@dataclass(frozen=True)
class ClearError:
    about: frozenset[ErrorTopic]
    name = "clear_error"


@dataclass(frozen=True)
class Disable:
    name = "disable"


@dataclass(frozen=True)
class Enable:
    name = "enable"


@dataclass(frozen=True)
class Delete:
    name = "delete"


@dataclass(frozen=True)
class ChangeSettings:
    """New connector settings or credentials took effect (a settings change or a rotation, each after a live check
    with them passed): where and how to submit and who signs in, from `credentials` (never a secret of it is kept
    on the address), and the secret version that holds them. A hold ends."""

    credentials: SmtpCredentials
    version_id: str
    why: str = "connector settings changed"
    name = "change_settings"


Transition: TypeAlias = (Create | Connect | StartVerification | VerificationPassed | VerificationFailed | Hold | Release
                         | NoteError | ClearError | Disable | Enable | Delete | ChangeSettings)

# --- the table: for each transition, the phases it may start from and where each leads ----------------------------

_STORED = (Phase.FORWARDING, Phase.PENDING, Phase.ACTIVE, Phase.DISABLED, Phase.AUTH_FAILED, Phase.TLS_FAILED)
_HELD = (Phase.AUTH_FAILED, Phase.TLS_FAILED)
_SENDING = (Phase.PENDING, Phase.ACTIVE, *_HELD)  # a connector that is on


def _stay(phases: tuple[Phase, ...]) -> dict[Phase, Phase | str]:
    return {phase: phase for phase in phases}


TRANSITIONS: Mapping[str, Mapping[Phase, Phase | str]] = {
    "create": {Phase.NEW: Phase.FORWARDING},
    "connect": {Phase.NEW: Phase.PENDING},
    "verify_forwarding": _stay(_STORED),
    "forwarding_verified": _stay(_STORED),
    "forwarding_failed": _stay(_STORED),
    "verify_outbound": _stay((Phase.FORWARDING, *_SENDING)),  # a disabled connector is enabled first
    "activate": {Phase.FORWARDING: Phase.FORWARDING, Phase.PENDING: Phase.ACTIVE, Phase.ACTIVE: Phase.ACTIVE,
                 Phase.AUTH_FAILED: Phase.ACTIVE, Phase.TLS_FAILED: Phase.ACTIVE, Phase.DISABLED: Phase.DISABLED},
    "outbound_failed": _stay(_STORED),
    "hold_credentials": {phase: Phase.AUTH_FAILED for phase in _SENDING},
    "hold_tls": {phase: Phase.TLS_FAILED for phase in _SENDING},
    "release": {Phase.PENDING: Phase.PENDING, Phase.ACTIVE: Phase.ACTIVE, **dict.fromkeys(_HELD, BACK_TO_WORK)},
    "note_error": _stay(_STORED),
    "clear_error": _stay(_STORED),
    "disable": {phase: Phase.DISABLED for phase in _SENDING},
    "enable": {Phase.DISABLED: Phase.PENDING},
    "delete": {phase: Phase.DELETED for phase in _STORED},
    "change_settings": {Phase.PENDING: Phase.PENDING, Phase.ACTIVE: Phase.ACTIVE, Phase.DISABLED: Phase.DISABLED,
                        **dict.fromkeys(_HELD, BACK_TO_WORK)},
}

# What each refusal tells the admin to do instead.
_INSTEAD = {
    "connect": "To change its credentials, run `relaydesk addresses rotate {email}`; its smarthost, "
               "`relaydesk addresses set {email}`.",
    "create": "It exists already.",
    "verify_outbound": "Run `relaydesk addresses enable {email}` first.",
    "enable": "It is not disabled: nothing to enable.",
    "disable": "Only a connector that is on can be disabled.",
    "change_settings": "Only connector addresses have connector settings.",
    "release": "Only a connector that is on can be released.",
}
RELEASING = frozenset({"activate", "release", "change_settings", "disable", "enable", "delete"})
_FIXES = {  # what each transition fixes: the last error about these goes
    "forwarding_verified": frozenset({ErrorTopic.FORWARDING}),
    "activate": frozenset({ErrorTopic.SENDING, ErrorTopic.ROTATION}),
    "release": frozenset({ErrorTopic.SENDING, ErrorTopic.ROTATION}),
    "change_settings": frozenset({ErrorTopic.SENDING, ErrorTopic.ROTATION}),
    "enable": frozenset(ErrorTopic),
}


def phase_of(address: SupportAddress | None) -> Phase:
    if address is None:
        return Phase.NEW
    if address.connector is None:
        return Phase.FORWARDING
    return Phase(address.connector.state.value)


def is_held(address: SupportAddress | None) -> bool:
    return bool(address and address.connector and address.connector.state.held)


def outbound_proven(address: SupportAddress) -> bool:
    """Its outbound was verified (and not reset by `enable` since): a held connector goes back to `active`, and what
    it holds keeps the connector's route, even while the outbound is being verified again."""
    return address.outbound.status is VerificationStatus.VERIFIED or address.outbound.verified_at is not None


@dataclass(frozen=True)
class Applied:
    address: SupportAddress
    phase: Phase
    effects: tuple[Effect, ...] = ()
    changed: bool = True


def apply(address: SupportAddress | None, transition: Transition, now: datetime) -> Applied:
    """The next address (a copy; `address` is left as it was) after `transition`, or TransitionRefused."""
    phase = phase_of(address)
    allowed = TRANSITIONS[transition.name]
    if phase not in allowed:
        raise _refused(address, transition, phase)
    target = allowed[phase]
    if isinstance(transition, Create | Connect):
        after = transition.address.model_copy(deep=True)
    else:
        assert address is not None
        after = address.model_copy(deep=True)
    detail = _write(after, transition, now)
    if target == BACK_TO_WORK:
        target = Phase.ACTIVE if outbound_proven(after) else Phase.PENDING
    assert isinstance(target, Phase)
    if after.connector is not None and target not in (Phase.FORWARDING, Phase.DELETED):
        after.connector.state = ConnectorState(target.value)
        if not after.connector.state.held:
            after.connector.held_since = after.connector.held_version = None
    fixed = _FIXES.get(transition.name, frozenset())
    if after.last_error and (after.last_error_about in fixed or (fixed and after.last_error_about is None)):
        after.last_error, after.last_error_about = None, None
    # Every transition that ends or moots a hold sends what it holds, whatever the phase it starts from: notifications
    # left parked by an earlier release that was killed half-way go with the next one.
    effects = (Effect.RELEASE_HELD,) if transition.name in RELEASING and target not in _HELD else ()
    if address is not None and target is phase and _same(address, after):
        return Applied(address, phase, (), changed=False)
    after.events = [*after.events, AddressEvent(at=now, transition=transition.name, detail=detail)][-MAX_EVENTS:]
    after.updated_at = now
    return Applied(after, target, effects)


def _write(after: SupportAddress, transition: Transition, now: datetime) -> str:
    """The transition's own fields; returns the event's detail (never a secret: none is ever given here)."""
    connector = after.connector
    match transition:
        case Create() | Connect():
            if (after.connector is not None) != isinstance(transition, Connect):
                raise ValueError("a connector address is connected, any other address created")
            after.created_at = after.updated_at = now
            if connector is not None:
                connector.state = ConnectorState.PENDING
            return after.connector.host if after.connector else after.kind.value
        case StartVerification(direction=direction, token=token):
            # `verified_at` stays: a connector verified before keeps working (and held mail keeps its route) while
            # it is tested again.
            verified_at = _verification(after, direction).verified_at
            _set_verification(after, direction, Verification(status=VerificationStatus.PENDING, token=token,
                                                             started_at=now, verified_at=verified_at))
            return ""
        case VerificationPassed(direction=direction, at=at):
            check = _verification(after, direction)
            check.status, check.verified_at, check.error = VerificationStatus.VERIFIED, at or now, None
            return ""
        case VerificationFailed(direction=direction, error=error, token=token):
            check = _verification(after, direction)
            if token is not None and check.token != token:
                return ""  # a test mail of an earlier verification: this one's outcome is not its to tell
            check.status, check.error = VerificationStatus.FAILED, error
            about = ErrorTopic.FORWARDING if direction is Direction.FORWARDING else ErrorTopic.SENDING
            after.last_error, after.last_error_about = f"{direction.value} verification failed: {error}", about
            return error
        case Hold(explanation=explanation, version_id=version_id):
            assert connector is not None
            connector.held_since = connector.held_since or now
            connector.held_version = version_id
            after.last_error, after.last_error_about = explanation, ErrorTopic.SENDING
            return explanation
        case Release(version_id=version_id, why=why):
            assert connector is not None
            if version_id is not None:
                connector.credentials_version = version_id
            return why
        case NoteError(text=text, about=about):
            after.last_error, after.last_error_about = text, about
            return text
        case ClearError(about=about):
            if after.last_error_about in about or after.last_error_about is None:
                after.last_error, after.last_error_about = None, None
            return ""
        case Disable() | Delete():
            return ""
        case Enable():
            after.outbound = Verification()  # verified again through the connector before it is active
            return ""
        case ChangeSettings(credentials=new, version_id=version_id, why=why):
            assert connector is not None
            connector.host, connector.port, connector.tls_mode = new.host, new.port, new.tls_mode
            connector.take_sign_in(new)
            connector.credentials_version = version_id
            return f"{why}: {new.host}:{new.port} {new.tls_mode.value}"
    raise AssertionError(f"unknown transition {transition!r}")


def _verification(address: SupportAddress, direction: Direction) -> Verification:
    return address.forwarding if direction is Direction.FORWARDING else address.outbound


def _set_verification(address: SupportAddress, direction: Direction, check: Verification) -> None:
    if direction is Direction.FORWARDING:
        address.forwarding = check
    else:
        address.outbound = check


def _same(before: SupportAddress, after: SupportAddress) -> bool:
    skip = {"events", "updated_at"}
    return before.model_dump(exclude=skip) == after.model_dump(exclude=skip)


def _refused(address: SupportAddress | None, transition: Transition, phase: Phase) -> TransitionRefused:
    email = address.email if address is not None else getattr(getattr(transition, "address", None), "email", "")
    where = {Phase.NEW: "not a support address yet", Phase.FORWARDING: "not connected to a smarthost",
             Phase.DELETED: "deleted"}.get(phase, f"a connector in state {phase.value}")
    action = _INSTEAD.get(transition.name, "Check it with `relaydesk addresses show {email}`.").format(email=email)
    return TransitionRefused(f"{email}: cannot {transition.name.replace('_', ' ')}: it is {where}",
                             transition=transition.name, phase=phase.value, action=action)


# --- the shell: read, apply, write, run the effects ----------------------------------------------------------------

def create(stores: Stores, transition: Create | Connect, *, now: datetime | None = None) -> SupportAddress:
    """Store a new address (ConflictError when the account has it already, as the directory says)."""
    applied = apply(None, transition, now or utcnow())
    stores.directory.create_address(applied.address)
    return applied.address


def change(stores: Stores, account_id: str, email: str, transition: Transition, *,
           now: datetime | None = None) -> SupportAddress:
    """Apply `transition` to the account's record of the address and write the outcome; NotFoundError (another
    account's record is not found either), TransitionRefused."""
    return _commit(stores, account_id, email, transition, now)[0]


def release(stores: Stores, account_id: str, email: str, *, now: datetime | None = None) -> int:
    """An admin's release after a fix made outside Relaydesk (the console's button): the hold ends, so the next
    delivery tries the current credentials once more, and every notification the account parked for the address
    goes to the queue again, those a release killed half-way left behind too; returns how many. TransitionRefused
    unless the address's connector is on."""
    address, released = _commit(stores, account_id, email, Release(why="released by an admin"), now)
    return released + release_held(stores, account_id, address.email)


def _commit(stores: Stores, account_id: str, email: str, transition: Transition,
            now: datetime | None) -> tuple[SupportAddress, int]:
    address = stores.directory.get_account_address(account_id, email.strip().lower())
    if address is None:
        raise NotFoundError(f"{email} is not a support address",
                            action="List the account's addresses with `relaydesk addresses list --account ID`.")
    applied = apply(address, transition, now or utcnow())
    if not applied.changed:
        return address, 0
    # The state first, then the effects: a release that is killed half-way leaves notifications parked behind an
    # address that is no longer held, and the next releasing transition (a verify, a rotation, a settings change)
    # sends them; the other order could let the relay park them again behind a hold about to end.
    if applied.phase is Phase.DELETED:
        stores.directory.delete_address(account_id, address.email)
    else:
        stores.directory.put_address(applied.address)
    released = release_held(stores, account_id, address.email) if Effect.RELEASE_HELD in applied.effects else 0
    return applied.address, released


def release_held(stores: Stores, account_id: str, email: str) -> int:
    """Send every notification the account parked for the address to the queue again; returns how many. Each is
    queued before it is unparked: a crash in between leaves a duplicate that the relay's idempotency turns into one
    SMTP transaction, never a loss. Another account's record of the same address has its own hold."""
    if stores.held is None:
        return 0
    released = 0
    for notification in stores.held.list(email):
        if notification.account_id != account_id:
            continue
        stores.queue.send(notification)
        stores.held.remove(email, notification.notification_id)
        released += 1
    return released
