"""Every mail of the project's corpus still becomes exactly what it became before (tests/unit/inbound/pinned.py)."""

from __future__ import annotations

import json

import pytest

from .pinned import PINNED, corpus_cases, fingerprint

PIN = json.loads(PINNED.read_text())
CASES = corpus_cases()


def test_every_corpus_mail_is_pinned():
    assert sorted(PIN) == sorted(name for name, _, _ in CASES)


@pytest.mark.parametrize(("name", "raw", "receipt"), CASES, ids=[name for name, _, _ in CASES])
def test_a_corpus_mail_still_ends_as_it_did(name, raw, receipt):
    assert fingerprint(raw, receipt) == PIN[name]
