"""`relaydesk dkim ...` and `relaydesk dns check` as an admin runs them, against the memory stores."""

from __future__ import annotations

import io
import json
import re

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import AddressKind, Connector, ConnectorState, SupportAddress
from relaydesk.cli import context, main
from relaydesk.cli import dkim as dkim_cli
from relaydesk.cli import dns as dns_cli
from relaydesk.cli.output import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_RULE
from relaydesk.dkim.domains import load
from relaydesk.dkim.records import key_record
from relaydesk.outbound import dkim as outbound_dkim

from tests.dkim_helpers import notification, verify_all


class Zone:
    """The customer's DNS: a dict of TXT records the test 'publishes' into, used as the CLI's resolver."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}

    def __call__(self, name: str, rdtype: str) -> list[str]:
        return list(self.txt.get(name, [])) if rdtype == "TXT" else []

    def publish_printed(self, output: str) -> None:
        """What an admin does with `dkim setup`'s output: each zone-file line becomes a record."""
        for line in output.splitlines():
            if " IN TXT " in line:
                name, _, strings = line.partition(". IN TXT ")
                self.txt[name] = ["".join(re.findall(r'"([^"]*)"', strings))]

    def dnsfunc(self, name, timeout=5):
        name = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
        found = self.txt.get(name)
        return found[0].encode() if found else None


@pytest.fixture
def zone(monkeypatch):
    zone = Zone()
    monkeypatch.setattr(dkim_cli, "resolver_factory", lambda: zone)
    monkeypatch.setattr(dns_cli, "resolver_factory", lambda: zone)
    return zone


@pytest.fixture
def cli(memory_stores, monkeypatch, capsys, zone):
    monkeypatch.setattr(context, "load_stores", lambda args: memory_stores)
    memory_stores.directory.create_account(Account(account_id="acc_1", subdomain="acme"))
    memory_stores.directory.create_address(SupportAddress(
        email="support@acme.test", account_id="acc_1", kind=AddressKind.SMTP_CONNECTOR,
        connector=Connector(host="smtp.office365.com", secret_arn="relaydesk/connector/support@acme.test",
                            state=ConnectorState.ACTIVE)))
    outbound_dkim.clear_cache()

    def run(*argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    run.stores = memory_stores
    return run


def address(cli) -> SupportAddress:
    return cli.stores.directory.get_address("support@acme.test")


def test_setup_prints_exactly_the_txt_records_to_publish_and_leaves_signing_off(cli):
    code, out, err = cli("dkim", "setup", "acme.test")

    assert code == EXIT_OK
    keyring = load(cli.stores, "acme.test")
    for key in keyring.generations[0].keys:
        record = key_record(key, "acme.test")
        assert f"{record.name}  TXT" in out
        assert " ".join(f'"{s}"' for s in record.strings) in out
    assert "relaydesk/dkim/acme.test" in err
    assert address(cli).dkim.enabled is False
    assert address(cli).dkim.selectors == keyring.generations[0].selectors
    assert address(cli).dkim.secret_arn == "relaydesk/dkim/acme.test"


def test_setup_twice_is_a_conflict_and_keeps_the_first_keys(cli):
    cli("dkim", "setup", "acme.test")
    first = load(cli.stores, "acme.test").generations[0].selectors

    code, _, err = cli("dkim", "setup", "acme.test")

    assert code != EXIT_OK and "has DKIM keys already" in err
    assert load(cli.stores, "acme.test").generations[0].selectors == first


def test_setup_refuses_relaydesks_own_mail_domain(cli):
    code, _, err = cli("dkim", "setup", "acme.mail.relaydesk.test")

    assert code == EXIT_RULE and "Relaydesk's own mail domain" in err


def test_enable_refuses_while_the_records_are_not_published_and_says_what_to_publish(cli, zone):
    cli("dkim", "setup", "acme.test")

    code, _, err = cli("dkim", "enable", "acme.test")

    assert code == EXIT_RULE and "._domainkey.acme.test" in err
    assert address(cli).dkim.enabled is False


def test_publish_then_enable_signs_every_notification_and_disable_stops_it(cli, zone):
    _, out, _ = cli("dkim", "setup", "acme.test")
    zone.publish_printed(out)

    assert cli("dkim", "enable", "acme.test")[0] == EXIT_OK
    signer = outbound_dkim.signer_for(address(cli), cli.stores.secrets)
    assert verify_all(signer.sign(notification()), zone.dnsfunc) == [True, True]

    assert cli("dkim", "disable", "acme.test")[0] == EXIT_OK
    assert outbound_dkim.signer_for(address(cli), cli.stores.secrets) is None


def test_enable_without_keys_says_to_run_setup(cli):
    code, _, err = cli("dkim", "enable", "acme.test", "--skip-dns-check")

    assert code == EXIT_NOT_FOUND and "relaydesk dkim setup" in err


def test_rotate_prints_the_new_records_and_show_lists_both_generations_with_their_states(cli):
    cli("dkim", "setup", "acme.test")

    code, out, _ = cli("dkim", "rotate", "acme.test", "--overlap-hours", "24")
    assert code == EXIT_OK
    new = load(cli.stores, "acme.test").generations[1]
    assert all(f"{s}._domainkey.acme.test  TXT" in out for s in new.selectors)

    code, out, _ = cli("dkim", "show", "acme.test", "--json")
    view = json.loads(out)
    assert [g["state"] for g in view["generations"]] == ["active", "publishing"]
    assert view["generations"][1]["selectors"] == new.selectors


def test_no_private_key_is_ever_printed(cli, zone):
    outputs = []
    for argv in (("dkim", "setup", "acme.test"), ("dkim", "show", "acme.test"),
                 ("dkim", "show", "acme.test", "--json"), ("dkim", "rotate", "acme.test"),
                 ("dkim", "enable", "acme.test", "--skip-dns-check"), ("dns", "check", "acme.test", "--json")):
        outputs.extend(cli(*argv)[1:])
    printed = "\n".join(outputs)

    for generation in load(cli.stores, "acme.test").generations:
        for key in generation.keys:
            secret = key.private_text()
            assert secret not in printed
            assert all(line not in printed for line in secret.splitlines()[-8:-2])
            assert "PRIVATE KEY" not in printed


def test_dns_check_of_a_ready_domain_exits_zero(cli, zone):
    _, out, _ = cli("dkim", "setup", "acme.test")
    zone.publish_printed(out)
    zone.txt["acme.test"] = ["v=spf1 include:spf.protection.outlook.com -all"]
    zone.txt["_dmarc.acme.test"] = ["v=DMARC1; p=quarantine"]

    code, out, _ = cli("dns", "check", "acme.test")

    assert code == EXIT_OK, out
    assert "acme.test: ready" in out


def test_dns_check_lists_each_problem_with_its_fix_and_exits_non_zero(cli, zone):
    cli("dkim", "setup", "acme.test")

    code, out, _ = cli("dns", "check", "acme.test", "--json")

    assert code == EXIT_ERROR
    report = json.loads(out)
    assert report["result"] == "fail"
    failures = [f for f in report["findings"] if f["status"] == "fail"]
    assert {f["check"] for f in failures} == {"spf", "dkim"}
    assert all(f["fix"] for f in failures)
