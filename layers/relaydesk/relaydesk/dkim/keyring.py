"""A domain's DKIM keys as generations (one RSA and one Ed25519 selector each) and the rotation state machine.

A generation's state is a function of its timestamps and the clock, so the relay never writes it:
publishing (records shown, not signing until `active_from`) -> active (the newest generation past `active_from`
signs) -> retiring (superseded; its DNS record stays until `retire_at` so that mail in flight still verifies) ->
retired (the private key is dropped at the next write; the customer may delete the DNS record).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, SecretStr

from relaydesk.dkim.keys import Algorithm, generate_private_key, public_key_value

DEFAULT_OVERLAP = timedelta(hours=48)  # past the longest TXT TTL a resolver honours in practice (RFC 2181 §8)
SIGNING_ALGORITHMS = (Algorithm.RSA_SHA256, Algorithm.ED25519_SHA256)  # RSA first: the signature most verifiers read
SELECTOR_SUFFIX = {Algorithm.RSA_SHA256: "rsa", Algorithm.ED25519_SHA256: "ed"}


class KeyState(StrEnum):
    PUBLISHING = "publishing"
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"


class DkimKey(BaseModel):
    selector: str
    algorithm: Algorithm
    public_key: str  # the DNS `p=` value
    private_key: SecretStr | None = None  # None once retired: nothing left to leak

    def private_text(self) -> str:
        if self.private_key is None:
            raise ValueError(f"the key of selector {self.selector} was retired")
        return self.private_key.get_secret_value()


class Generation(BaseModel):
    created_at: datetime
    active_from: datetime
    retire_at: datetime | None = None
    keys: list[DkimKey]

    def key(self, algorithm: Algorithm) -> DkimKey | None:
        return next((k for k in self.keys if k.algorithm is algorithm), None)

    @property
    def selectors(self) -> list[str]:
        return [k.selector for k in self.keys]


class Keyring(BaseModel):
    """Every generation of one domain's keys, oldest first. Lives whole in the domain's secret."""

    domain: str
    generations: list[Generation] = Field(default_factory=list)

    # --- reading --------------------------------------------------------------------------------------------------
    def signing_generation(self, now: datetime) -> Generation | None:
        live = [g for g in self.generations if g.active_from <= now and not _retired(g, now)]
        return max(live, key=lambda g: g.active_from, default=None)

    def state(self, generation: Generation, now: datetime) -> KeyState:
        if _retired(generation, now):
            return KeyState.RETIRED
        if now < generation.active_from:
            return KeyState.PUBLISHING
        return KeyState.ACTIVE if generation is self.signing_generation(now) else KeyState.RETIRING

    def published(self, now: datetime) -> list[tuple[Generation, KeyState]]:
        """Generations whose DNS records must exist now (everything but retired), with their state."""
        return [(g, s) for g in self.generations if (s := self.state(g, now)) is not KeyState.RETIRED]

    # --- changing -------------------------------------------------------------------------------------------------
    def add_generation(self, now: datetime, *, overlap: timedelta) -> Generation:
        """New keys that sign from `now + overlap`; the generation signing now retires one overlap after that."""
        active_from = now + overlap
        for generation in self.generations:
            state = self.state(generation, now)
            if state is KeyState.PUBLISHING:
                generation.retire_at = now  # never signed anything: superseded at once
            elif state is KeyState.ACTIVE or (state is KeyState.RETIRING and generation.retire_at is None):
                generation.retire_at = active_from + overlap
        generation = Generation(created_at=now, active_from=active_from,
                                keys=[_new_key(self._selector_base(now), a) for a in SIGNING_ALGORITHMS])
        self.generations.append(generation)
        self.drop_retired_keys(now)
        return generation

    def drop_retired_keys(self, now: datetime) -> None:
        for generation in self.generations:
            if _retired(generation, now):
                for key in generation.keys:
                    key.private_key = None

    def _selector_base(self, now: datetime) -> str:
        taken = {s for g in self.generations for s in g.selectors}
        index = 1
        while any(s.startswith(f"rd{now:%Y%m%d}-{index}-") for s in taken):
            index += 1
        return f"rd{now:%Y%m%d}-{index}"

    # --- the secret's JSON ----------------------------------------------------------------------------------------
    def to_secret(self) -> str:
        data = self.model_dump(mode="json")
        for g_data, generation in zip(data["generations"], self.generations, strict=True):
            for k_data, key in zip(g_data["keys"], generation.keys, strict=True):
                k_data["private_key"] = key.private_key.get_secret_value() if key.private_key else None
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_secret(cls, text: str) -> Keyring:
        return cls.model_validate_json(text)


def new_keyring(domain: str, now: datetime) -> Keyring:
    """The first generation signs at once: nothing is signed before `dkim enable`, which comes after publishing."""
    keyring = Keyring(domain=domain.lower())
    keyring.add_generation(now, overlap=timedelta(0))
    return keyring


def _retired(generation: Generation, now: datetime) -> bool:
    return generation.retire_at is not None and generation.retire_at <= now


def _new_key(base: str, algorithm: Algorithm) -> DkimKey:
    private = generate_private_key(algorithm)
    return DkimKey(selector=f"{base}-{SELECTOR_SUFFIX[algorithm]}", algorithm=algorithm,
                   public_key=public_key_value(algorithm, private), private_key=SecretStr(private))
