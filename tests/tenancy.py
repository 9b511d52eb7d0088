"""Test helper: the account that has an address, for tests written with a single account where the email alone says
which address is meant (domain functions always take the account)."""

from __future__ import annotations


def account_of(stores, email: str) -> str:
    address = stores.directory.get_address(email)
    assert address is not None, f"{email} is not a support address of any account"
    return address.account_id
