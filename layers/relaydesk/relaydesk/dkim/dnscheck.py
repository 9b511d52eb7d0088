"""`relaydesk dns check DOMAIN`: SPF, the DKIM records against our keys, DMARC policy and alignment — each problem
with the record that fixes it. Pure logic over an injectable resolver, so that tests run offline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from relaydesk.dkim.keyring import Keyring, KeyState
from relaydesk.dkim.records import key_record
from relaydesk.dkim.resolver import Resolver

SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: more DNS-querying terms than this is a permerror
SPF_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})  # the terms that query DNS
# Where each provider's submission servers send from, as their SPF documentation names it.
PROVIDER_SPF = (
    (("outlook.com", "office365.com"), "spf.protection.outlook.com", "Microsoft 365"),
    (("gmail.com", "google.com", "googlemail.com"), "_spf.google.com", "Google Workspace"),
    (("amazonaws.com",), "amazonses.com", "Amazon SES"),
)


class Status(StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str  # spf | dkim | dmarc
    status: Status
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Provider:
    name: str
    spf_include: str | None  # None: a server of the customer's own whose addresses we cannot know


def provider_for(host: str) -> Provider:
    host = host.lower().rstrip(".")
    for suffixes, include, name in PROVIDER_SPF:
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return Provider(name, include)
    return Provider(host, None)


def check_domain(domain: str, *, resolver: Resolver, keyring: Keyring | None, now: datetime,
                 smarthosts: Sequence[str] = ()) -> list[Finding]:
    domain = domain.strip().lower().rstrip(".")
    return (check_spf(domain, resolver, [provider_for(h) for h in dict.fromkeys(smarthosts)])
            + check_dkim(domain, resolver, keyring, now)
            + check_dmarc(domain, resolver, signing=keyring is not None))


# --- SPF ---------------------------------------------------------------------------------------------------------

def _spf_records(name: str, resolver: Resolver) -> list[str]:
    return [r for r in resolver(name, "TXT") if r.lower().split(" ", 1)[0] == "v=spf1"]


def _spf_walk(name: str, resolver: Resolver, seen: set[str]) -> tuple[set[str], int]:
    """Every domain reachable by include:/redirect= from `name`, and the DNS-querying terms counted on the way."""
    reached, lookups = set(), 0
    records = _spf_records(name, resolver)
    if len(records) != 1:
        return reached, lookups
    for term in records[0].split()[1:]:
        bare = term.lstrip("+-~?").lower()
        if bare.split(":")[0].split("/")[0].split("=")[0] in SPF_LOOKUP_TERMS:
            lookups += 1
        target = bare.partition(":")[2] if bare.startswith("include:") else (
            bare.partition("=")[2] if bare.startswith("redirect=") else "")
        if target and target not in seen and lookups <= SPF_LOOKUP_LIMIT:
            seen.add(target)
            reached.add(target)
            deeper, more = _spf_walk(target, resolver, seen)
            reached |= deeper
            lookups += more
    return reached, lookups


def check_spf(domain: str, resolver: Resolver, providers: Sequence[Provider]) -> list[Finding]:
    includes = [p.spf_include for p in providers if p.spf_include]
    suggested = " ".join(f"include:{i}" for i in includes) or "mx"
    publish = f'Publish TXT at {domain}: "v=spf1 {suggested} ~all"'
    records = _spf_records(domain, resolver)
    if not records:
        return [Finding("spf", Status.FAIL, f"{domain} has no SPF record: receivers cannot tell which servers may "
                        "send as it", publish)]
    if len(records) > 1:
        return [Finding("spf", Status.FAIL, f"{domain} has {len(records)} SPF records: receivers treat that as an "
                        "error (RFC 7208 §4.5)", "Merge them into one TXT record starting with v=spf1.")]
    record = records[0]
    findings = [Finding("spf", Status.OK, f"SPF record found: {record}")]
    terms = record.lower().split()
    if "+all" in terms or "all" in terms:
        findings.append(Finding("spf", Status.FAIL, "the SPF record ends in +all: any server may send as "
                                f"{domain}", "End the record with ~all (or -all) instead."))
    reached, lookups = _spf_walk(domain, resolver, {domain})
    if lookups > SPF_LOOKUP_LIMIT:
        findings.append(Finding("spf", Status.FAIL, f"the SPF record needs {lookups} DNS lookups; receivers stop at "
                                f"{SPF_LOOKUP_LIMIT} and fail it (RFC 7208 §4.6.4)",
                                "Remove include:s you no longer send through, or flatten them to ip4:/ip6: terms."))
    for provider in providers:
        if provider.spf_include is None:
            findings.append(Finding(
                "spf", Status.WARN, f"cannot tell from DNS whether SPF authorizes your own server {provider.name}",
                f"Make sure the SPF record of {domain} covers the addresses {provider.name} sends from "
                f"(ip4:/ip6:, a:{provider.name} or mx)."))
        elif provider.spf_include in reached:
            findings.append(Finding("spf", Status.OK, f"SPF authorizes {provider.name} "
                                    f"(include:{provider.spf_include}), where notifications leave from"))
        else:
            findings.append(Finding(
                "spf", Status.FAIL, f"SPF does not authorize {provider.name}, the server notifications leave from",
                f"Add include:{provider.spf_include} to the SPF record of {domain}, before its all term."))
    findings.append(Finding("spf", Status.INFO, "Relaydesk needs no entry in your SPF: notifications leave through "
                            "your server; fallback mail comes from your account's system address"))
    return findings


# --- DKIM --------------------------------------------------------------------------------------------------------

def _tags(value: str) -> dict[str, str]:
    tags = {}
    for part in value.split(";"):
        name, sep, tag_value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(tag_value.split())
    return tags


def check_dkim(domain: str, resolver: Resolver, keyring: Keyring | None, now: datetime) -> list[Finding]:
    if keyring is None:
        return [Finding("dkim", Status.FAIL, f"Relaydesk has no DKIM keys for {domain}: notifications are not "
                        "signed with your domain", f"Run `relaydesk dkim setup {domain}` and publish what it prints.")]
    findings = []
    for generation in keyring.generations:
        state = keyring.state(generation, now)
        for key in generation.keys:
            record = key_record(key, domain)
            found = [r for r in resolver(record.name, "TXT") if "p=" in r]
            findings.append(_key_finding(record, found, key.public_key, key.algorithm.key_type, state,
                                         generation.active_from))
    return findings


def _key_finding(record, found: list[str], public_key: str, key_type: str, state: KeyState,
                 active_from: datetime) -> Finding:
    where = f"{record.name} ({state.value})"
    publish = f"Publish TXT at {record.name}: {' '.join(repr(s) for s in record.strings)}".replace("'", '"')
    if state is KeyState.RETIRED:
        if found:
            return Finding("dkim", Status.INFO, f"{record.name} is retired and nothing signs with it any more",
                           f"You may delete the TXT record at {record.name}.")
        return Finding("dkim", Status.OK, f"{record.name} is retired and no longer published")
    if not found:
        if state is KeyState.PUBLISHING:
            return Finding("dkim", Status.WARN, f"{where}: not published yet; Relaydesk signs with it from "
                           f"{active_from:%Y-%m-%d %H:%M} UTC", publish + " before then.")
        return Finding("dkim", Status.FAIL, f"{where}: no record; receivers cannot verify our signatures", publish)
    if len(found) > 1:
        return Finding("dkim", Status.FAIL, f"{where}: {len(found)} key records; receivers may read either",
                       f"Keep one TXT record at {record.name}. " + publish)
    tags = _tags(found[0])
    if tags.get("p") != public_key or tags.get("k", "rsa") != key_type:
        return Finding("dkim", Status.FAIL, f"{where}: the published key is not Relaydesk's key for this selector",
                       f"Replace the TXT record at {record.name}. " + publish)
    return Finding("dkim", Status.OK, f"{where}: published and matches Relaydesk's {key_type} key")


# --- DMARC -------------------------------------------------------------------------------------------------------

def _dmarc_records(name: str, resolver: Resolver) -> list[str]:
    return [r for r in resolver(f"_dmarc.{name}", "TXT") if r.replace(" ", "").lower().startswith("v=dmarc1")]


def check_dmarc(domain: str, resolver: Resolver, *, signing: bool) -> list[Finding]:
    publish = (f'Publish TXT at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}", read the '
               "reports, then move to p=quarantine.")
    records, source = _dmarc_records(domain, resolver), domain
    organizational = ".".join(domain.split(".")[-2:])  # no public-suffix list: right for example.com-style names
    if not records and organizational != domain:
        records, source = _dmarc_records(organizational, resolver), organizational
    if not records:
        return [Finding("dmarc", Status.WARN, f"{domain} has no DMARC policy: receivers decide alone what to do with "
                        "mail that fails SPF and DKIM", publish)]
    if len(records) > 1:
        return [Finding("dmarc", Status.FAIL, f"_dmarc.{source} has {len(records)} DMARC records: receivers ignore "
                        "them all (RFC 7489 §6.6.3)", "Keep exactly one v=DMARC1 record.")]
    tags = _tags(records[0])
    policy = tags.get("sp", tags.get("p", "")) if source != domain else tags.get("p", "")
    inherited = f" (inherited from {source})" if source != domain else ""
    findings = []
    if policy in ("quarantine", "reject"):
        findings.append(Finding("dmarc", Status.OK, f"DMARC policy p={policy}{inherited}"))
    elif policy == "none":
        findings.append(Finding("dmarc", Status.INFO, f"DMARC policy p=none{inherited}: monitoring only",
                                "Once the reports show our DKIM passing, move to p=quarantine."))
    else:
        findings.append(Finding("dmarc", Status.FAIL, f"DMARC record without a valid p= tag{inherited}: "
                                f"{records[0]}", publish))
    if tags.get("pct", "100") != "100":
        findings.append(Finding("dmarc", Status.INFO, f"the policy applies to {tags['pct']}% of failing mail"))
    mode = "strict" if tags.get("adkim", "r") == "s" else "relaxed"
    if signing:
        findings.append(Finding("dmarc", Status.OK, f"DKIM alignment ({mode}): Relaydesk signs with d={domain}, "
                                "the domain of the From address, so a valid signature passes DMARC"))
    else:
        findings.append(Finding("dmarc", Status.WARN, "no DKIM signature of yours to align: DMARC rests on SPF "
                                "alignment alone, which forwarding breaks",
                                f"Run `relaydesk dkim setup {domain}` and `relaydesk dkim enable {domain}`."))
    return findings


def worst(findings: Sequence[Finding]) -> Status:
    order = [Status.OK, Status.INFO, Status.WARN, Status.FAIL]
    return max((f.status for f in findings), key=order.index, default=Status.OK)
