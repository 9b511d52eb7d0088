"""Forwarding verification through the real default outbound adapter (SES in moto) and the CLI's verify timeout."""

from __future__ import annotations

import io
import json

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from relaydesk.addresses import lifecycle, verification
from relaydesk.addresses.model import VerificationStatus
from relaydesk.cli import main
from relaydesk.markers import VERIFICATION_HEADER, verification_marker

from tests.tenancy import account_of


@pytest.fixture
def forwarding_address(aws_stack):
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme")
    lifecycle.add_forwarding_address(aws_stack, account.account_id, "support@acme.test")
    return aws_stack


def sent_by_ses() -> list:
    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages


def test_forwarding_test_mail_leaves_through_ses_with_the_token(forwarding_address):
    address = verification.start_forwarding(forwarding_address, account_of(forwarding_address, "support@acme.test"),
                                            "support@acme.test")

    assert address.forwarding.status is VerificationStatus.PENDING
    [sent] = sent_by_ses()
    assert "support@acme.test" in sent.destinations
    assert f"{VERIFICATION_HEADER}: {address.forwarding.token}" in sent.raw_data
    assert verification_marker(address.forwarding.token) in sent.raw_data
    assert sent.source.endswith("@" + forwarding_address.settings.mail_domain)


def test_cli_verify_times_out_with_hints_and_can_run_again(forwarding_address, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["addresses", "verify", "support@acme.test", "--timeout", "0.3", "--poll", "0.1", "--json"])
    out, err = capsys.readouterr()

    assert code == 8
    data = json.loads(out)
    assert data["forwarding"]["status"] == "failed" and "server level" in data["forwarding"]["error"]
    assert "run `relaydesk addresses verify support@acme.test` again" in err

    # run again: a new test mail with a new token goes out (the old token no longer counts)
    token_before = data["forwarding"]["token"]
    code = main(["addresses", "verify", "support@acme.test", "--timeout", "0.05", "--poll", "0.01", "--json"])
    retry = json.loads(capsys.readouterr()[0])
    assert retry["forwarding"]["token"] != token_before
    assert len(sent_by_ses()) == 2
