"""The whole system on one machine, as one context manager: moto with template.yaml's resources, SES receiving
(inbound MX -> S3 -> inbound function), the SQS event source (-> relay function), the directory table's change
stream and the schedules (-> hold alerts function), SES sending, acme.test's own mail server with its server-level
forward, and a DNS server for acme.test. Everything binds to 127.0.0.1 on ephemeral ports and stops on exit.

    with LocalStack(state_dir) as stack:
        stack.customer.submission.port, stack.customer.mx.port, stack.inbound_mx.port, stack.env, stack.journal
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from local import lambdas
from local.authorizers import IamAuthorizer, IamCaller, JwtAuthorizer
from local.aws_resources import (
    function_names,
    function_settings,
    http_api_cors,
    http_api_routes,
    load_template,
    physical_name,
    receipt_s3_prefix,
    schedules,
    stream_mappings,
)
from local.ca import LocalCA
from local.cognito_front import CognitoFront
from local.console_site import LocalConsoleSite
from local.customer_mail import CustomerMailServer
from local.dns_server import LocalDns, seed_records
from local.http_api import LocalHttpApi
from local.journal import Journal
from local.lambda_invoke import LocalLambda
from local.mailbox import Mailboxes
from local.moto_stack import FAKE_CREDENTIALS, REGION, TEMPLATE, MotoStack
from local.schedules import Schedules
from local.ses_receiving import InboundMx, recipient_matcher
from local.ses_sending import SesSending
from local.sqs_events import SqsEventSource
from local.streams import DynamoDbStreamSource

ROOT = Path(__file__).resolve().parents[1]
# `make up` and `make demo` each have their own folder: the demo never replaces the CA, mailboxes or env file of a
# running `make up`.
STATE_ROOT = ROOT / "local" / ".state"
DEFAULT_STATE_DIR = STATE_ROOT / "up"
DEMO_STATE_DIR = STATE_ROOT / "demo"
CUSTOMER_DOMAIN = "acme.test"
# The functions the local stack runs: what SES receiving, the event source mappings and the schedules invoke.
LOCAL_FUNCTIONS = ("inbound", "relay", "hold_alerts", "tenant_api", "addresses_api")


def relay_batch_size(template_path: Path) -> int:
    """BatchSize of the event source mapping on the notifications queue (template.yaml)."""
    for resource in load_template(template_path)["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventSourceMapping" and "RelayFunction" in json.dumps(
                props.get("FunctionName")):
            return int(props.get("BatchSize", 10))
    return 10


def state_dir_from_env(default: Path = DEFAULT_STATE_DIR) -> Path:
    return Path(os.environ.get("RELAYDESK_LOCAL_STATE") or default)


class LocalStack:
    """Start with `with LocalStack(...) as stack:`; every server, thread and environment change is undone on exit."""

    def __init__(self, state_dir: str | Path | None = None, *, customer_domain: str = CUSTOMER_DOMAIN,
                 customer_users: dict[str, str] | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir else state_dir_from_env()
        self.customer_domain = customer_domain
        self._customer_users = dict(customer_users or {})
        self.journal = Journal()
        self._started: list = []

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        for stale in ("mailboxes", "ca", "passwords", "dns"):  # a fresh run starts from nothing of the last one
            shutil.rmtree(self.state_dir / stale, ignore_errors=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ca = LocalCA(self.state_dir / "ca")
        self.mailboxes = Mailboxes(self.state_dir / "mailboxes")
        self.dns = self._keep(LocalDns(self.state_dir / "dns" / "zone.json",
                                       seed=seed_records(self.customer_domain)).start())

        self.moto = self._keep(MotoStack(self.state_dir, extra_env={
            "RELAYDESK_DNS_RESOLVER": self.dns.address}).start())
        self.env = self.moto.env
        self.mail_domain = self.env["RELAYDESK_MAIL_DOMAIN"]
        session = self.moto.session()
        self._s3 = session.client("s3")
        self._sqs = session.client("sqs")
        lambdas.unload_all()  # handlers load against this stack's environment
        self._start_console_services(session)
        self._load_handlers()
        functions = function_settings(TEMPLATE)

        stack_name = "relaydesk-local"
        self.inbound_mx = self._keep(InboundMx(
            self.ca, mail_domain=self.mail_domain, put_raw=self._put_raw,
            invoke=lambda event: lambdas.invoke("inbound", event),  # Timeout, MemorySize: template.yaml's
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{stack_name}-inbound-function",
            on_invoked=self._inbound_done, on_failure=self._inbound_failed,
            key_prefix=receipt_s3_prefix(TEMPLATE),
            max_retry_attempts=functions.get("inbound", {}).get("MaximumRetryAttempts", 2)).start())
        self.customer = self._keep(CustomerMailServer(
            self.ca, self.mailboxes, domain=self.customer_domain, users=self._customer_users,
            next_hop=self.next_hop, on_forwarded=self._forwarded).start())
        self.ses_sending = self._keep(SesSending(
            self.ca, self.mailboxes, self.next_hop,
            on_delivered=lambda ses_id, rcpt, where: self.journal.record("ses", id=ses_id, rcpt=rcpt,
                                                                          where=where)).start())
        self._start_http_apis()
        self.relay_source = self._keep(SqsEventSource(
            self._sqs, self.env["RELAYDESK_NOTIFICATIONS_QUEUE_URL"],
            invoke=lambda event: lambdas.invoke("relay", event), on_batch=self._relay_done,
            batch_size=relay_batch_size(TEMPLATE)).start())
        for mapping in stream_mappings(TEMPLATE):
            self._keep(self._stream_source(session, mapping).start())
        self._keep(Schedules(schedules(TEMPLATE), invoke=self._scheduled).start())
        self._write_endpoints()

    def _start_http_apis(self) -> None:
        """template.yaml's HTTP APIs on loopback, each behind its own authorizer: the tenant API (Cognito JWT, the
        pool's keys served by moto) and the operator API (SigV4 with the local stack's credentials)."""
        routes = http_api_routes(TEMPLATE)
        self.http_apis: dict[str, LocalHttpApi] = {}
        for name, auth in self.moto.http_api_auth.items():
            self.http_apis[name] = self._keep(LocalHttpApi(
                self.ca, name=name, routes=routes.get(name, []), authorize=self._authorizer(auth),
                invoke=lambda function, event: lambdas.invoke(function, event), cors=self._cors(name)).start())
        self.tenant_api = self.http_apis["TenantApi"]
        self._publish_console()
        self.operator_api = self.http_apis["AddressesApi"]
        self.moto.add_env({"RELAYDESK_TENANT_API_URL": self.tenant_api.url,
                           "RELAYDESK_OPERATOR_API_URL": self.operator_api.url,
                           "RELAYDESK_API_CA_BUNDLE": str(self.ca.pem_path)})

    def _start_console_services(self, session) -> None:
        """What the admin console needs besides the APIs: Cognito's public endpoint (CORS, the SRP password check),
        Lambda's Invoke API (the tenant API starts the console's jobs asynchronously) and the console's site."""
        self.cognito_front = self._keep(CognitoFront(self.ca, moto_endpoint=self.moto.endpoint).start())
        self.lambda_api = self._keep(LocalLambda(function_names(TEMPLATE)).start())
        self.moto.add_env({"AWS_ENDPOINT_URL_LAMBDA": self.lambda_api.url})
        self.console = self._keep(LocalConsoleSite(self.ca, session.client("s3"), physical_name("ConsoleBucket"),
                                                   template_path=TEMPLATE).start())
        self.moto.add_env({"RELAYDESK_CONSOLE_URL": self.console.url})  # hold alerts link to this console

    def _cors(self, api: str) -> dict | None:
        """The API's CorsConfiguration, its origin the local console's (in AWS: the CloudFront distribution)."""
        cors = http_api_cors(TEMPLATE).get(api)
        return {**cors, "AllowOrigins": [self.console.origin]} if cors else None

    def _publish_console(self) -> None:
        self.console.publish({"region": REGION, "userPoolId": self.env["RELAYDESK_USER_POOL_ID"],
                              "clientId": self.env["RELAYDESK_CONSOLE_CLIENT_ID"], "apiUrl": self.tenant_api.url,
                              "cognitoEndpoint": self.cognito_front.url, "uploadsUrl": self.moto.endpoint,
                              "environment": "local"})

    def _authorizer(self, auth: dict):
        default = auth.get("DefaultAuthorizer")
        if default == "AWS_IAM":
            key, secret = FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
            operator = IamCaller(access_key=key, account_id="123456789012",
                                 user_arn="arn:aws:iam::123456789012:user/relaydesk-operator")
            return IamAuthorizer({key: (secret, operator)}, region=REGION).authorize
        config = auth["Authorizers"][default]["JwtConfiguration"]
        pool_id = config["issuer"].rstrip("/").rsplit("/", 1)[1]
        self.jwt_authorizer = JwtAuthorizer(issuer=config["issuer"], audience=config["audience"],
                                            jwks_url=f"{self.moto.endpoint}/{pool_id}/.well-known/jwks.json")
        return lambda method, url, headers, body: self.jwt_authorizer.authorize(headers)

    def _keep(self, part):
        self._started.append(part)
        return part

    def stop(self) -> None:
        while self._started:
            part = self._started.pop()
            part.stop()
        lambdas.unload_all()

    # -- wiring ------------------------------------------------------------------------------------------------
    def _stream_source(self, session, mapping: dict) -> DynamoDbStreamSource:
        failure_url = session.client("sqs").get_queue_url(QueueName=mapping["on_failure_queue"])["QueueUrl"] \
            if mapping["on_failure_queue"] else None
        name = mapping["function"]
        return DynamoDbStreamSource(
            session, mapping["table"], invoke=lambda event: lambdas.invoke(name, event),
            batch_size=mapping["batch_size"], filters=mapping["filters"], max_retries=mapping["max_retries"],
            on_failure_queue_url=failure_url,
            on_batch=lambda event, response, error: self.journal.record(
                name, records=len(event["Records"]), response=response, error=repr(error) if error else None))

    def _scheduled(self, name: str, event: dict) -> None:
        response = lambdas.invoke(name, event)
        self.journal.record(name, scheduled=event, response=response)

    def _load_handlers(self) -> None:
        for name in LOCAL_FUNCTIONS:
            try:
                lambdas.load(name)
            except lambdas.FunctionNotFound:
                self.journal.record("missing_function", name=name)

    def client_tls(self):
        """A verified client TLS context trusting this stack's CA (what a sender to our MXs uses)."""
        from relaydesk.outbound.tls import client_tls_context

        return client_tls_context(self.ca.pem)

    def next_hop(self, domain: str) -> tuple[str, int] | None:
        """The MX lookup of this little internet: the mail domain -> SES receiving, acme.test -> its server."""
        if recipient_matcher(self.mail_domain)(f"x@{domain}"):
            return (self.inbound_mx.host, self.inbound_mx.port)
        if domain.lower() == self.customer_domain:
            return (self.customer.mx.host, self.customer.mx.port)
        return None

    def _put_raw(self, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self.env["RELAYDESK_RAW_MAIL_BUCKET"], Key=key, Body=data)

    def _inbound_done(self, message_id: str, result, error: BaseException | None) -> None:
        self.journal.record("inbound", message_id=message_id, result=result,
                            error=repr(error) if error else None)

    def _inbound_failed(self, record: dict) -> None:
        queue_url = self.env.get("RELAYDESK_INBOUND_DLQ_URL")
        if queue_url:
            self._sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
        self.journal.record("inbound_failed", record=record)

    def _relay_done(self, event: dict, response, error: BaseException | None) -> None:
        bodies = [json.loads(r["body"]) for r in event["Records"]]
        self.journal.record("relay", notification_ids=[b.get("notification_id") for b in bodies],
                            response=response, error=repr(error) if error else None)

    def _forwarded(self, address: str, target: str, data: bytes) -> None:
        self.journal.record("forwarded", address=address, target=target, size=len(data))

    def _write_endpoints(self) -> None:
        endpoints = {
            "inbound_mx": f"{self.inbound_mx.host}:{self.inbound_mx.port}",
            "customer_mx": f"{self.customer.mx.host}:{self.customer.mx.port}",
            "customer_submission": f"{self.customer.submission.host}:{self.customer.submission.port}",
            "moto": self.moto.endpoint, "ca_bundle": str(self.ca.pem_path),
            "tenant_api": self.tenant_api.url, "operator_api": self.operator_api.url,
            "console": self.console.url, "cognito": self.cognito_front.url,
            "mailboxes": str(self.mailboxes.root), "env_file": str(self.state_dir / "env.sh"),
            "dns": self.dns.address,
        }
        self.endpoints = endpoints
        (self.state_dir / "endpoints.json").write_text(json.dumps(endpoints, indent=2) + "\n")
