"""`dns check` logic over an offline resolver: what an admin reads for each state of the customer's DNS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from relaydesk.dkim.dnscheck import Status, check_dkim, check_dmarc, check_domain, check_spf, provider_for, worst
from relaydesk.dkim.records import key_record

from tests.dkim_helpers import EPOCH, keyring_for

M365 = "smtp.office365.com"


class FakeDns:
    """A zone as a dict: name -> list of TXT values; records every question asked."""

    def __init__(self, zone: dict[str, list[str]] | None = None) -> None:
        self.zone = dict(zone or {})
        self.asked: list[tuple[str, str]] = []

    def __call__(self, name: str, rdtype: str) -> list[str]:
        self.asked.append((name, rdtype))
        return list(self.zone.get(name.rstrip("."), [])) if rdtype == "TXT" else []

    def publish(self, keyring, at=EPOCH) -> FakeDns:
        for generation, _ in keyring.published(at):
            for key in generation.keys:
                record = key_record(key, keyring.domain)
                self.zone[record.name] = ["".join(record.strings)]
        return self


def by(findings, check, status=None):
    return [f for f in findings if f.check == check and (status is None or f.status is status)]


def test_a_domain_with_everything_published_is_ready():
    keyring = keyring_for("acme.test")
    dns = FakeDns({"acme.test": ["v=spf1 include:spf.protection.outlook.com -all"],
                   "spf.protection.outlook.com": ["v=spf1 ip4:40.92.0.0/15 -all"],
                   "_dmarc.acme.test": ["v=DMARC1; p=quarantine; rua=mailto:d@acme.test"]}).publish(keyring)

    findings = check_domain("acme.test", resolver=dns, keyring=keyring, now=EPOCH, smarthosts=[M365])

    assert worst(findings) in (Status.OK, Status.INFO)
    assert by(findings, "spf", Status.OK)[1].message.startswith("SPF authorizes Microsoft 365")
    assert len(by(findings, "dkim", Status.OK)) == 2


def test_missing_spf_is_a_failure_whose_fix_is_the_record_with_the_providers_include():
    [finding] = check_spf("acme.test", FakeDns(), [provider_for(M365)])

    assert finding.status is Status.FAIL
    assert 'TXT at acme.test: "v=spf1 include:spf.protection.outlook.com ~all"' in finding.fix


def test_spf_without_the_providers_include_says_which_include_to_add():
    dns = FakeDns({"acme.test": ["v=spf1 include:_spf.google.com ~all"], "_spf.google.com": ["v=spf1 ~all"]})

    findings = check_spf("acme.test", dns, [provider_for(M365)])

    [failure] = by(findings, "spf", Status.FAIL)
    assert "does not authorize Microsoft 365" in failure.message
    assert "include:spf.protection.outlook.com" in failure.fix


def test_the_providers_include_is_found_through_nested_includes():
    dns = FakeDns({"acme.test": ["v=spf1 include:_spf.acme.test ~all"],
                   "_spf.acme.test": ["v=spf1 include:spf.protection.outlook.com ~all"]})

    assert not by(check_spf("acme.test", dns, [provider_for(M365)]), "spf", Status.FAIL)


def test_two_spf_records_and_plus_all_and_too_many_lookups_are_failures():
    two = FakeDns({"acme.test": ["v=spf1 mx ~all", "v=spf1 a ~all"]})
    plus_all = FakeDns({"acme.test": ["v=spf1 mx +all"]})
    chain = {f"s{i}.acme.test": [f"v=spf1 include:s{i + 1}.acme.test a mx ~all"] for i in range(8)}
    too_many = FakeDns({"acme.test": ["v=spf1 include:s0.acme.test ~all"], **chain})

    assert "2 SPF records" in check_spf("acme.test", two, [])[0].message
    assert any("+all" in f.message for f in by(check_spf("acme.test", plus_all, []), "spf", Status.FAIL))
    assert any("DNS lookups" in f.message for f in by(check_spf("acme.test", too_many, []), "spf", Status.FAIL))


def test_a_generic_smarthost_is_a_warning_to_check_by_hand():
    dns = FakeDns({"acme.test": ["v=spf1 mx ~all"]})

    [warning] = by(check_spf("acme.test", dns, [provider_for("mail.acme.test")]), "spf", Status.WARN)

    assert "mail.acme.test" in warning.fix


def test_dkim_record_missing_is_a_failure_with_the_exact_record_to_publish():
    keyring = keyring_for("acme.test")
    rsa_key = keyring.generations[0].keys[0]
    record = key_record(rsa_key, "acme.test")

    findings = check_dkim("acme.test", FakeDns(), keyring, EPOCH)

    assert [f.status for f in findings] == [Status.FAIL, Status.FAIL]
    assert record.name in findings[0].fix and f'"{record.strings[0]}"' in findings[0].fix


def test_dkim_record_with_another_key_is_a_failure():
    keyring = keyring_for("acme.test")
    other = keyring_for("other.test")
    dns = FakeDns().publish(keyring)
    rsa_name = key_record(keyring.generations[0].keys[0], "acme.test").name
    dns.zone[rsa_name] = [f"v=DKIM1; k=rsa; p={other.generations[0].keys[0].public_key}"]

    findings = check_dkim("acme.test", dns, keyring, EPOCH)

    assert findings[0].status is Status.FAIL and "not Relaydesk's key" in findings[0].message
    assert findings[1].status is Status.OK


def test_a_record_split_into_strings_with_spaces_still_matches():
    keyring = keyring_for("acme.test")
    dns = FakeDns().publish(keyring)
    for name, values in dns.zone.items():
        dns.zone[name] = [values[0].replace("p=", "p= ")]

    assert all(f.status is Status.OK for f in check_dkim("acme.test", dns, keyring, EPOCH))


def test_during_a_rotation_the_new_unpublished_keys_are_a_warning_with_the_deadline():
    keyring = keyring_for("acme.test")
    dns = FakeDns().publish(keyring)
    rotated = EPOCH + timedelta(days=30)
    keyring.add_generation(rotated, overlap=timedelta(hours=48))

    findings = check_dkim("acme.test", dns, keyring, rotated)

    assert [f.status for f in findings] == [Status.OK, Status.OK, Status.WARN, Status.WARN]
    assert "2026-02-02" in findings[2].message  # signs from rotated + 48 h


def test_retired_keys_still_published_may_be_deleted():
    keyring = keyring_for("acme.test")
    dns = FakeDns().publish(keyring)
    keyring.add_generation(EPOCH + timedelta(days=30), overlap=timedelta(hours=1))
    dns.publish(keyring, at=EPOCH + timedelta(days=31))

    findings = check_dkim("acme.test", dns, keyring, EPOCH + timedelta(days=31))

    assert [f.status for f in findings[:2]] == [Status.INFO, Status.INFO]
    assert "You may delete" in findings[0].fix


def test_no_keys_at_all_says_to_run_setup():
    [finding] = check_dkim("acme.test", FakeDns(), None, EPOCH)

    assert finding.status is Status.FAIL and "relaydesk dkim setup acme.test" in finding.fix


@pytest.mark.parametrize(("record", "status"), [("v=DMARC1; p=reject", Status.OK),
                                                 ("v=DMARC1; p=quarantine; pct=50", Status.OK),
                                                 ("v=DMARC1; p=none; rua=mailto:x@acme.test", Status.INFO),
                                                 ("v=DMARC1; rua=mailto:x@acme.test", Status.FAIL)])
def test_dmarc_policy_is_read_and_alignment_reported(record, status):
    findings = check_dmarc("acme.test", FakeDns({"_dmarc.acme.test": [record]}), signing=True)

    assert findings[0].status is status
    assert "d=acme.test" in findings[-1].message and findings[-1].status is Status.OK


def test_no_dmarc_is_a_warning_with_a_starter_record():
    [finding] = check_dmarc("acme.test", FakeDns(), signing=True)

    assert finding.status is Status.WARN and '"v=DMARC1; p=none; rua=mailto:' in finding.fix


def test_a_subdomain_inherits_the_organizational_dmarc_policy_and_its_sp():
    dns = FakeDns({"_dmarc.acme.test": ["v=DMARC1; p=reject; sp=none"]})

    findings = check_dmarc("help.acme.test", dns, signing=True)

    assert findings[0].status is Status.INFO and "inherited from acme.test" in findings[0].message


def test_dmarc_without_our_signature_warns_that_forwarding_breaks_spf_alignment():
    findings = check_dmarc("acme.test", FakeDns({"_dmarc.acme.test": ["v=DMARC1; p=reject"]}), signing=False)

    assert findings[-1].status is Status.WARN and "dkim enable" in findings[-1].fix


def test_the_check_asks_only_its_resolver():
    dns = FakeDns()

    check_domain("acme.test", resolver=dns, keyring=keyring_for("acme.test"), now=EPOCH, smarthosts=[M365])

    assert ("acme.test", "TXT") in dns.asked and ("_dmarc.acme.test", "TXT") in dns.asked
