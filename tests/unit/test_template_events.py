"""The sample events under events/ (for `sam local invoke -e`) have the shapes AWS sends and our models read."""

from __future__ import annotations

import hashlib
import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, SESEvent, SQSEvent
from aws_lambda_powertools.utilities.data_classes.secrets_manager_event import SecretsManagerEvent
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model, SesModel, SqsModel
from relaydesk.notification import Notification

from local.aws_resources import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_inbound_sample_is_an_ses_receipt_with_every_verdict_and_an_async_lambda_action():
    event = _event("inbound_ses.json")
    SesModel.model_validate(event)
    record = next(iter(SESEvent(event).records)).ses

    assert record.receipt.action.get_type == "Lambda"
    assert record.receipt.action.invocation_type == "Event"
    for verdict in (record.receipt.spam_verdict, record.receipt.virus_verdict, record.receipt.spf_verdict,
                    record.receipt.dkim_verdict, record.receipt.dmarc_verdict):
        assert verdict.status == "PASS"
    assert record.mail.destination == record.receipt.recipients == ["support@acme.mail.relaydesk.test"]


def test_inbound_sample_describes_the_sample_message_it_stands_for():
    record = next(iter(SESEvent(_event("inbound_ses.json")).records)).ses
    raw = (EVENTS / "mail/new_request_forwarded_by_m365.eml").read_bytes()
    message = BytesParser(policy=policy.default).parsebytes(raw)

    assert record.mail.common_headers.message_id == message["Message-ID"]
    assert record.mail.common_headers.subject == message["Subject"]
    assert [header.name for header in record.mail.headers] == list(message.keys())


def test_relay_sample_is_an_sqs_batch_of_notifications_with_real_checksums():
    event = _event("relay_sqs.json")
    SqsModel.model_validate(event)
    records = list(SQSEvent(event).records)

    assert 1 < len(records) <= 10  # the event source mapping's batch size
    for record in records:
        notification = Notification.model_validate_json(record.body)
        assert record.message_attributes["notification_id"].string_value == notification.notification_id
        assert record.md5_of_body == hashlib.md5(record.body.encode()).hexdigest()  # noqa: S324  # SQS's checksum
        assert record.attributes.approximate_receive_count == "1"
    assert len({record.message_id for record in records}) == len(records)


def test_rotation_samples_cover_the_four_steps_on_a_connector_secret():
    prefix = load_template(ROOT / "template.yaml")["Mappings"]["Secrets"]["Prefix"]["Connector"]
    events = [SecretsManagerEvent(_event(path.name)) for path in sorted(EVENTS.glob("rotation_*.json"))]

    assert {event.step for event in events} == {"createSecret", "setSecret", "testSecret", "finishSecret"}
    for event in events:
        assert f":secret:{prefix}" in event.secret_id
        assert event.client_request_token


def test_api_samples_cover_every_route_of_the_template_and_carry_iam_identity():
    function = load_template(ROOT / "template.yaml")["Resources"]["AddressesApiFunction"]
    routes = {f'{e["Properties"]["Method"]} {e["Properties"]["Path"]}'
              for e in function["Properties"]["Events"].values()}
    events = [_event(path.name) for path in sorted(EVENTS.glob("addresses_api_*.json"))]

    for event in events:
        APIGatewayProxyEventV2Model.model_validate(event)
        assert APIGatewayProxyEventV2(event).request_context.authorizer.iam.user_arn
    assert {event["routeKey"] for event in events} == routes


@pytest.mark.parametrize("path", sorted((EVENTS / "mail").glob("*.eml")), ids=lambda path: path.name)
def test_sample_mail_is_a_well_formed_message(path: Path):
    raw = path.read_bytes()
    message = BytesParser(policy=policy.default).parsebytes(raw)

    assert b"\n" not in raw.replace(b"\r\n", b"")  # SMTP line endings, as SES stores it
    assert message["From"] and message["Message-ID"] and message["Subject"]
    assert not message.defects
    assert message.get_body(preferencelist=("plain",)).get_content().strip()
