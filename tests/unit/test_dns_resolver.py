"""The real resolver's mapping of dnspython's answers: joined TXT strings, no record as [], no answer as an error."""

from __future__ import annotations

import dns.exception
import dns.name
import dns.resolver
import dns.rrset
import pytest
from relaydesk.dkim.resolver import dns_resolver
from relaydesk.errors import DnsLookupError


def answer_with(name: str, *texts: str) -> dns.rrset.RRset:
    """What the resolver iterates: the answer's TXT records (an RRset), each with its character-strings."""
    return dns.rrset.from_text(dns.name.from_text(name), 300, "IN", "TXT", *texts)


@pytest.fixture
def answers(monkeypatch):
    table: dict[str, object] = {}

    def resolve(self, name, rdtype, *args, **kwargs):
        outcome = table[name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    return table


def test_a_txt_record_split_into_strings_comes_back_joined(answers):
    answers["sel._domainkey.acme.test"] = answer_with("sel._domainkey.acme.test", '"v=DKIM1; k=rsa; " "p=ABC"')

    assert dns_resolver()("sel._domainkey.acme.test", "TXT") == ["v=DKIM1; k=rsa; p=ABC"]


@pytest.mark.parametrize("missing", [dns.resolver.NXDOMAIN(), dns.resolver.NoAnswer()])
def test_no_such_record_is_an_empty_list(answers, missing):
    answers["_dmarc.acme.test"] = missing

    assert dns_resolver()("_dmarc.acme.test", "TXT") == []


@pytest.mark.parametrize("failure", [dns.exception.Timeout(), dns.resolver.NoNameservers()])
def test_no_answer_at_all_is_a_lookup_error_not_a_missing_record(answers, failure):
    answers["acme.test"] = failure

    with pytest.raises(DnsLookupError) as raised:
        dns_resolver()("acme.test", "TXT")

    assert "acme.test" in raised.value.message and raised.value.action
