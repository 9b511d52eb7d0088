"""The tenant boundary, proven route by route against the HTTP APIs as the local stack serves them (HTTPS on loopback,
API Gateway's authorizers, the real handlers, moto's Cognito and Secrets Manager):

    two tenants x every route of template.yaml (support addresses and tickets) x (own resource as an agent, own
    resource as an admin, other tenant's resource, other tenant's resource under one's own account, no token,
    expired token, a user in no group, operator IAM)

and, on the operator API, every route x (tenant token, no credentials, operator IAM). The counts are printed
(`pytest -s tests/e2e/test_tenant_matrix.py`), with each route's answers to an agent and to an admin side by side; the
test asserts 0 cross-tenant successes, 0 secrets in any response, that agents may use exactly the routes of the agent
role (every ticket route) and admins every route, and that each tenant's addresses, names, secrets and tickets are
untouched by the other."""

from __future__ import annotations

import base64
import itertools
import json
import ssl
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import boto3
import jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.credentials import SmtpCredentials
from relaydesk.ids import new_id
from relaydesk.tickets.model import Comment, Ticket

from local.aws_resources import http_api_routes
from local.moto_stack import FAKE_CREDENTIALS, REGION
from local.stack import LocalStack
from local.tenants import User, add_tenant, add_user
from tests.e2e import console_cells

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
TENANTS = (("acme", "Acme Corp"), ("globex", "Globex Industries"))
CASES = ("own, as agent", "own, as admin", "other tenant's", "other's in own path", "no token", "expired token",
         "no role", "operator IAM")
OWN = {"own, as agent": "agent", "own, as admin": "admin"}
EXPECTED = {"other tenant's": {404}, "other's in own path": {404}, "no token": {401}, "expired token": {401},
            "no role": {403}, "operator IAM": {401}}
CROSS_TENANT = ("other tenant's", "other's in own path")
ATTACK = "IT Security - action required"  # what an attacker writes: found nowhere afterwards
ATTACKER_CC = "evil@attacker.example"


def passing(credentials, **_):
    steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "greeting", "starttls", "certificate", "auth")]
    return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode, steps=steps)


@dataclass
class Tenant:
    subdomain: str
    name: str
    account_id: str
    domain: str
    admin: User
    agent: User
    nobody: User  # signed in, in no group
    smtp_password: str
    ticket_id: str = ""  # a ticket of the account, with Jane as requester and Carol as CC
    tokens: dict[str, str] = field(default_factory=dict)  # role -> ID token
    console_tokens: dict[str, str] = field(default_factory=dict)  # role -> ID token of the console's app client
    job_id: str = ""
    refresh_tokens: list[str] = field(default_factory=list)
    expired: str = ""
    secret_arns: dict[str, str] = field(default_factory=dict)  # address -> its connector secret's ARN
    counter: itertools.count = field(default_factory=itertools.count)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}@{self.domain}"


@dataclass
class Reply:
    status: int
    text: str


class World:
    def __init__(self, stack: LocalStack) -> None:
        from relaydesk.wiring import aws_stores

        self.stack = stack
        self.stores = aws_stores()
        self.cognito = boto3.client("cognito-idp")
        self.secrets = boto3.client("secretsmanager")
        self.pool = stack.env["RELAYDESK_USER_POOL_ID"]
        self.client_id = stack.env["RELAYDESK_CLI_CLIENT_ID"]
        self.tls = ssl.create_default_context(cafile=str(stack.ca.pem_path))
        self.tenants = [self._tenant(sub, name) for sub, name in TENANTS]

    # -- setup -------------------------------------------------------------------------------------------------------
    def _tenant(self, subdomain: str, name: str) -> Tenant:
        domain = f"{subdomain}.example"
        account, admin = add_tenant(self.stores, self.cognito, self.pool, subdomain, name, domain=domain)
        tenant = Tenant(subdomain, name, account.account_id, domain, admin,
                        add_user(self.cognito, self.pool, account.account_id, f"agent@{domain}", "agent"),
                        add_user(self.cognito, self.pool, account.account_id, f"nobody@{domain}", None),
                        smtp_password=f"smtp-{subdomain}-S3cret!")
        lifecycle.add_forwarding_address(self.stores, tenant.account_id, f"help@{domain}", f"{name} Help")
        self.connect(tenant, f"support@{domain}")
        tenant.ticket_id = new_id("T")
        self.stores.tickets.create_ticket(Ticket(
            ticket_id=tenant.ticket_id, account_id=tenant.account_id, support_address=f"help@{domain}",
            subject=f"{name}: printer jammed", requester="jane@example.net", ccs=["carol@example.org"],
            comments=[Comment(comment_id=new_id("C"), author="jane@example.net", body="The printer shows E-52.")]))
        for role, user in (("admin", tenant.admin), ("agent", tenant.agent), ("nobody", tenant.nobody)):
            result = self.cognito.initiate_auth(ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={
                "USERNAME": user.username, "PASSWORD": user.password})["AuthenticationResult"]
            tenant.tokens[role] = result["IdToken"]
            tenant.refresh_tokens.append(result["RefreshToken"])
        tenant.expired = expired_copy(tenant.tokens["admin"])
        return tenant

    def connect(self, tenant: Tenant, email: str) -> None:
        credentials = SmtpCredentials(host=f"smtp.{tenant.domain}", username=email, password=tenant.smtp_password)
        address, _ = lifecycle.connect_address(self.stores, tenant.account_id, email, credentials, checker=passing)
        tenant.secret_arns[email] = address.connector.secret_arn

    def secret_values(self) -> list[str]:
        values = []
        for tenant in self.tenants:
            values += [tenant.smtp_password, tenant.admin.password, tenant.agent.password, tenant.nobody.password,
                       tenant.expired, *tenant.tokens.values(), *tenant.refresh_tokens, *tenant.secret_arns.values()]
        return [*values, "arn:aws:secretsmanager", FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] + '"']

    # -- requests ----------------------------------------------------------------------------------------------------
    def call(self, base: str, method: str, path: str, *, token: str | None = None, sign: bool = False,
             body: dict | None = None) -> Reply:
        url = base.rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if sign:
            request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
            SigV4Auth(Credentials(FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
                      "execute-api", REGION).add_auth(request)
            headers = dict(request.headers.items())
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (https, loopback)
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=30) as response:  # noqa: S310
                return Reply(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read().decode())


def expired_copy(id_token: str) -> str:
    """The same claims, signed by the same key of the pool (moto's), with an `exp` an hour ago."""
    from moto.utilities.utils import load_resource

    private = load_resource("cognitoidp/resources/jwks-private.json")  # the key moto signs every pool's tokens with
    claims = jwt.decode(id_token, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 3600
    key = jwt.PyJWK(private).key
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": jwt.get_unverified_header(id_token)["kid"]})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("matrix")) as stack, pytest.MonkeyPatch.context() as monkeypatch:
        world = World(stack)
        for tenant in world.tenants:
            console_cells.prepare(world, tenant, monkeypatch)
        yield world


def ticket_body(method: str, template: str, owner: Tenant, attacking: bool) -> dict | None:
    """What each ticket route is sent: an agent's ordinary work on its own ticket, or an attacker's on another's."""
    if method in ("GET", "DELETE"):
        return None
    if template.endswith(("/replies", "/notes")):
        return {"body": ATTACK if attacking else "We are on it."}
    if template.endswith("/status"):
        return {"status": "solved" if attacking else "pending"}
    if template.endswith("/assignee"):
        return {"assignee": owner.agent.username}
    if template.endswith("/ccs"):
        return {"addresses": [ATTACKER_CC if attacking else "dave@example.org"]}
    if template.endswith("/followers"):
        return {"addresses": [owner.agent.username]}
    if template.endswith("/uploads"):
        return {"filename": "quote.pdf", "content_type": "application/pdf", "size": 1024}
    raise AssertionError(f"no body for {method} {template}: add the new ticket route here")


def needed_roles() -> dict[tuple[str, str], str]:
    """(method, path template) -> the role the tenant route table asks for."""
    table = build_tenant_api(lambda account_id: None).table
    return {(rule.method, rule.openapi_path): rule.role.label for rule in table.rules}


def tenant_request(world: World, actor: Tenant, victim: Tenant, method: str, template: str, case: str, role: str):
    """The path, body and token of one cell of the matrix."""
    if console_cells.is_console_route(template):
        return console_cells.tenant_request(world, actor, victim, method, template, case, role)
    account = victim.account_id if case == "other tenant's" else actor.account_id
    own = case in OWN
    owner = actor if own else victim
    allowed = own and (OWN[case] == "admin" or role == "agent")
    path = template.replace("{account_id}", quote(account, safe=""))
    if "/tickets" in template:
        address = owner.agent.username if "/followers/" in template else "carol@example.org"
        path = path.replace("{ticket_id}", owner.ticket_id).replace("{address}", quote(address, safe=""))
        body = ticket_body(method, template, owner, attacking=not own)
    else:
        if method == "DELETE" and allowed:
            email = owner.fresh("leaving")
            world.connect(owner, email)  # deleting a connector address schedules its secret's deletion (ABAC path)
        elif method == "POST":
            email = owner.fresh("new")
        else:
            email = f"help@{owner.domain}"
        path = path.replace("{id}", quote(email, safe=""))
        # Renaming one's own address keeps its name (the check at the end compares it); another's, as an attacker.
        name = f"{owner.name} Help" if own else ATTACK
        body = {"email": email} if method == "POST" else {"name": name} if method == "PUT" else None
    token = {"own, as agent": actor.tokens["agent"], "own, as admin": actor.tokens["admin"],
             "other tenant's": actor.tokens["admin"], "other's in own path": actor.tokens["admin"],
             "expired token": actor.expired, "no role": actor.tokens["nobody"]}.get(case)
    return path, body, token


def test_two_tenants_every_route_every_identity(world):
    tenant_routes = http_api_routes(TEMPLATE)["TenantApi"]
    roles = needed_roles()
    assert {(method, path) for method, path, _ in tenant_routes} == set(roles)  # template and route table agree
    counts: dict[str, Counter] = {case: Counter() for case in CASES}
    by_role: dict[tuple[str, str], dict[str, set[int]]] = {}  # route -> role -> statuses of its own resource
    unexpected, leaks, successes_across = [], [], 0
    secrets = world.secret_values()
    for actor, victim in itertools.permutations(world.tenants, 2):
        # (the victim's ticket id is not among them: a request under one's own path sends it, a 404 may repeat it)
        foreign = (victim.account_id, victim.name, victim.subdomain + ".mail", f"{victim.name} Help",
                   f"{victim.name}: printer jammed", "The printer shows E-52.")
        for method, template, _ in tenant_routes:
            role = roles[(method, template)]
            for case in CASES:
                if case == "other's in own path" and not console_cells.names_a_resource(template):
                    continue
                path, body, token = tenant_request(world, actor, victim, method, template, case, role)
                reply = world.call(world.stack.tenant_api.url, method, path, token=token, body=body,
                                   sign=case == "operator IAM")
                counts[case][reply.status] += 1
                ok = 200 <= reply.status < 300
                if case in CROSS_TENANT and ok:
                    successes_across += 1
                if case in OWN:
                    by_role.setdefault((method, template), {}).setdefault(OWN[case], set()).add(reply.status)
                    may = OWN[case] == "admin" or role == "agent"
                    if ok != may or (not may and reply.status != 403):
                        unexpected.append((case, method, path, reply.status, reply.text[:200]))
                elif reply.status not in EXPECTED[case]:
                    unexpected.append((case, method, path, reply.status, reply.text[:200]))
                if any(secret in reply.text for secret in secrets):
                    leaks.append((case, method, path))
                if case not in OWN and any(name in reply.text for name in foreign):
                    leaks.append((case, method, path, "names the other tenant"))

    operator_counts = operator_rows(world, secrets, leaks, unexpected)
    print_counts(counts, operator_counts, successes_across, leaks)
    print_roles(by_role, roles)
    assert successes_across == 0
    assert leaks == []
    assert unexpected == []
    for tenant in world.tenants:
        assert_untouched(world, tenant)


def operator_rows(world: World, secrets: list[str], leaks: list, unexpected: list) -> dict[str, Counter]:
    """The operator API (IAM, across accounts by design): a tenant's token never gets through."""
    counts: dict[str, Counter] = {case: Counter() for case in ("tenant admin token", "no credentials", "operator IAM")}
    acme = world.tenants[0]
    for method, template, _ in http_api_routes(TEMPLATE)["AddressesApi"]:
        for case in counts:
            email = acme.fresh("operator") if method in ("POST", "DELETE") else f"help@{acme.domain}"
            if method == "DELETE" and case == "operator IAM":
                lifecycle.add_forwarding_address(world.stores, acme.account_id, email)
            path = template.replace("{id}", quote(email, safe=""))
            path += f"?account_id={acme.account_id}" if (method, template) == ("GET", "/support_addresses") else ""
            body = {"account_id": acme.account_id, "email": email} if method == "POST" else \
                {"name": f"{acme.name} Help"} if method == "PUT" else None
            reply = world.call(world.stack.operator_api.url, method, path, body=body,
                               token=acme.tokens["admin"] if case == "tenant admin token" else None,
                               sign=case == "operator IAM")
            counts[case][reply.status] += 1
            expected_ok = case == "operator IAM"
            if (200 <= reply.status < 300) != expected_ok or (not expected_ok and reply.status != 403):
                unexpected.append(("operator API", case, method, path, reply.status, reply.text[:200]))
            if any(secret in reply.text for secret in secrets):
                leaks.append(("operator API", case, method, path))
    return counts


def assert_untouched(world: World, tenant: Tenant) -> None:
    """What the other tenant tried left nothing changed: names, addresses, the connector's secret and the ticket (no
    comment, CC, status, assignee or mail of the attacker's)."""
    ticket = world.stores.tickets.get_ticket(tenant.ticket_id)
    assert all(ATTACK not in comment.body for comment in ticket.comments)
    assert {c.agent.email for c in ticket.comments if c.agent} <= {tenant.agent.username, tenant.admin.username}
    assert ATTACKER_CC not in ticket.ccs and ticket.status.value == "pending"
    assert ticket.assignee is not None and ticket.assignee.email == tenant.agent.username
    recipients = {r for record in ticket.notifications for r in record.recipients}
    assert recipients <= {"jane@example.net", "carol@example.org", "dave@example.org", tenant.agent.username}
    help_address = world.stores.directory.get_account_address(tenant.account_id, f"help@{tenant.domain}")
    assert help_address is not None and help_address.name == f"{tenant.name} Help"
    connector = world.stores.directory.get_account_address(tenant.account_id, f"support@{tenant.domain}")
    assert connector is not None and connector.connector.secret_arn == tenant.secret_arns[f"support@{tenant.domain}"]
    limits = connector.connector.limits  # lowered by its own admin (then reset), never by the other tenant
    assert limits is None or limits.messages_per_minute == console_cells.OWN_LIMIT
    for email, arn in tenant.secret_arns.items():
        described = world.secrets.describe_secret(SecretId=arn)
        deleted_by_its_admin = email.startswith("leaving-")
        assert ("DeletedDate" in described) == deleted_by_its_admin, email
        tags = {t["Key"]: t["Value"] for t in described["Tags"]}
        assert tags["relaydesk:account-id"] == tenant.account_id


def print_counts(counts: dict[str, Counter], operator: dict[str, Counter], successes_across: int,
                 leaks: list) -> None:
    lines = ["", "tenant API: responses by case and status (2 tenants x every route)"]
    for case, statuses in counts.items():
        lines.append(f"  {case:<22} {sum(statuses.values()):>4} requests  " +
                     "  ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    lines.append("operator API (IAM, across accounts by design): responses by case and status")
    for case, statuses in operator.items():
        lines.append(f"  {case:<22} {sum(statuses.values()):>4} requests  " +
                     "  ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    lines.append(f"cross-tenant successes: {successes_across}; responses with a secret or another tenant's "
                 f"name: {len(leaks)}")
    print("\n".join(lines))


def print_roles(by_role: dict[tuple[str, str], dict[str, set[int]]], roles: dict[tuple[str, str], str]) -> None:
    """Each route's answers to an agent and to an admin of the account, on its own resource."""
    lines = ["tenant API: the same own resource, as an agent and as an admin", f"  {'route':<70} {'role':<6} "
             f"{'agent':<9} admin"]
    for (method, template), answers in by_role.items():
        shown = {role: "/".join(str(s) for s in sorted(statuses)) for role, statuses in answers.items()}
        differs = "  <- differ" if shown["agent"] != shown["admin"] else ""
        lines.append(f"  {method + ' ' + template:<70} {roles[(method, template)]:<6} {shown['agent']:<9} "
                     f"{shown['admin']}{differs}")
    print("\n".join(lines))


def test_a_token_signed_by_another_key_or_for_another_client_is_refused(world):
    acme = world.tenants[0]
    from cryptography.hazmat.primitives.asymmetric import rsa

    claims = jwt.decode(acme.tokens["admin"], options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256",
                        headers={"kid": jwt.get_unverified_header(acme.tokens["admin"])["kid"]})
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + "." + \
        acme.tokens["admin"].split(".")[1] + "."
    path = f"/accounts/{acme.account_id}/support_addresses"

    for token in (forged, unsigned, acme.tokens["admin"][:-4] + "AAAA"):
        assert world.call(world.stack.tenant_api.url, "GET", path, token=token).status == 401
    assert world.call(world.stack.tenant_api.url, "GET", path, token=acme.tokens["admin"]).status == 200
