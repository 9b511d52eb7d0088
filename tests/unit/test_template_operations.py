"""What an operator checks in template.yaml's operations section: every alarm reaches someone, every dead-letter
queue has an alarm, the dashboard shows metrics the code really emits, the stack keeps its data on `sam delete`,
and the functions run on arm64 with a timeout each."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from relaydesk.inbound.outcome import Outcome as InboundOutcome
from relaydesk.outbound.policy import Outcome as DeliveryOutcome

from local.aws_resources import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STATEFUL = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::KMS::Key",
            "AWS::SecretsManager::Secret")


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_template(TEMPLATE)["Resources"]


def of_type(resources: dict, kind: str) -> dict:
    return {name: res for name, res in resources.items() if res["Type"] == kind}


def test_every_alarm_notifies_the_operator_topic_when_it_fires_and_when_it_clears(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")

    assert len(alarms) >= 17
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "OperatorTopic"}], name
        assert alarm["Properties"]["OKActions"] == [{"Ref": "OperatorTopic"}], name
        assert alarm["Properties"]["AlarmDescription"], name
    subscription = resources["OperatorEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def _alarmed(resources: dict, namespace: str, metric: str) -> list[dict]:
    return [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric]


def test_every_dead_letter_queue_has_a_depth_alarm(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    dead_letter = {name for name in queues if name.endswith("Dlq")}
    referenced = set(re.findall(r"'(\w+Dlq)'", str({k: v for k, v in resources.items() if k not in queues})))

    watched = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
               for a in _alarmed(resources, "AWS/SQS", "ApproximateNumberOfMessagesVisible")}
    assert dead_letter == referenced | {"NotificationsDlq"} == watched


@pytest.mark.parametrize("function", ["RelayFunction", "InboundFunction"])
def test_the_relay_and_inbound_alarm_on_errors_and_throttles(resources, function):
    for metric in ("Errors", "Throttles"):
        assert any(a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
                   for a in _alarmed(resources, "AWS/Lambda", metric)), metric


def test_queue_age_holds_and_auth_failures_and_ses_are_alarmed(resources):
    (age,) = _alarmed(resources, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert age["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["NotificationsQueue", "QueueName"]}
    retries = [2, 6, 18, 54]  # relaydesk.outbound.policy.retry_delay, minutes after attempts 1 to 4
    assert age["Threshold"] > sum(retries) * 60
    for metric in (DeliveryOutcome.HELD.value, DeliveryOutcome.AUTH_FAILED.value, "ses_sending_paused"):
        (alarm,) = _alarmed(resources, "Relaydesk", metric)
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "relaydesk-relay"}]
    assert _alarmed(resources, "AWS/SES", "Reputation.BounceRate")[0]["Threshold"] == 0.05
    assert _alarmed(resources, "AWS/SES", "Reputation.ComplaintRate")[0]["Threshold"] == 0.001
    assert _alarmed(resources, "AWS/ApiGateway", "5xx")[0]["Dimensions"][0]["Value"] == {"Ref": "AddressesApi"}
    rate = resources["AttachmentLinks4xxRateAlarm"]["Properties"]["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in rate if "MetricStat" in m} == {
        "Url4xxCount", "UrlRequestCount"}


def test_the_dashboard_shows_metrics_the_code_emits(resources):
    body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    titles = {w["properties"]["title"] for w in widgets}
    named = set()
    for widget in widgets:
        previous: list = []
        for metric in widget["properties"]["metrics"]:  # "." repeats the previous metric's value at that place
            metric = [previous[i] if value == "." else value for i, value in enumerate(metric)]
            named.add((metric[0], metric[1]))
            previous = metric

    assert {"Deliveries by outcome", "Delivery latency per notification (ms)", "Addresses on hold",
            "Inbound outcomes"} <= titles
    assert any("oldest message" in title for title in titles)
    relay = (ROOT / "functions/relay/app.py").read_text()
    assert "add_metric(name=outcome" in relay and 'name="latency"' in relay
    assert {("Relaydesk", o.value) for o in DeliveryOutcome} <= named
    assert {("Relaydesk", f"Inbound_{o.value}") for o in InboundOutcome} <= named
    assert 'name=f"Inbound_{result.outcome.value}"' in (ROOT / "functions/inbound/app.py").read_text()
    assert 'name="held_addresses"' in (ROOT / "functions/hold_alerts/app.py").read_text()
    assert 'name="suppressed"' in (ROOT / "functions/ses_feedback/app.py").read_text()
    latency = next(w for w in widgets if "latency" in w["properties"]["title"])["properties"]["metrics"]
    assert [m[-1]["stat"] for m in latency] == ["p50", "p99"]


def test_a_production_stack_never_loses_data_on_sam_delete(resources):
    for name, resource in resources.items():
        if resource["Type"] in STATEFUL:
            assert resource.get("DeletionPolicy") in ("Retain", "Delete"), name  # chosen, not defaulted
            assert resource.get("UpdateReplacePolicy") == resource["DeletionPolicy"], name
    kept = {name for name, r in resources.items() if r.get("DeletionPolicy") == "Retain"}
    assert {"TicketsTable", "DirectoryTable", "RawMailBucket", "DataKey"} <= kept
    assert {name for name in resources if name.endswith("Dlq")} <= kept
    assert set(of_type(resources, "AWS::Logs::LogGroup")) <= kept


def test_every_function_runs_on_arm64_with_a_timeout_of_its_own(resources):
    template = load_template(TEMPLATE)
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    layer = resources["RelaydeskLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    for name, function in of_type(resources, "AWS::Serverless::Function").items():
        assert "Architectures" not in function["Properties"], name
        assert 1 <= function["Properties"]["Timeout"] <= 300, name


def test_the_relay_mapping_caps_its_concurrency(resources):
    (mapping,) = [m["Properties"] for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": "RelayFunction"}]

    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "RelayMaxConcurrency"}}
    assert load_template(TEMPLATE)["Parameters"]["RelayMaxConcurrency"]["MinValue"] == 2  # Lambda's minimum


def test_hold_alerts_read_address_changes_and_keep_what_failed(resources):
    mapping = resources["HoldAlertsStreamMapping"]["Properties"]

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["DirectoryTable", "StreamArn"]}
    assert json.loads(mapping["FilterCriteria"]["Filters"][0]["Pattern"])["dynamodb"]["Keys"]["pk"] == {
        "S": [{"prefix": "ADDRESS#"}]}
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["HoldAlertsDlq", "Arn"]}
    assert resources["DirectoryTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}
    schedules = {e["Properties"]["Input"] for e in resources["HoldAlertsFunction"]["Properties"]["Events"].values()}
    assert schedules == {'{"run": "remind"}', '{"run": "sweep"}'}


def test_ses_bounces_and_complaints_reach_the_feedback_function(resources):
    destination = resources["OutboundFeedbackDestination"]["Properties"]

    assert destination["ConfigurationSetName"] == {"Ref": "OutboundConfigurationSet"}
    assert set(destination["EventDestination"]["MatchingEventTypes"]) == {"bounce", "complaint"}
    assert destination["EventDestination"]["SnsDestination"]["TopicARN"] == {"Ref": "SesFeedbackTopic"}
    (event,) = resources["SesFeedbackFunction"]["Properties"]["Events"].values()
    assert event == {"Type": "SNS", "Properties": {"Topic": {"Ref": "SesFeedbackTopic"}}}
    variables = load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["RELAYDESK_SES_CONFIGURATION_SET"] == {"Ref": "OutboundConfigurationSet"}


def test_fixed_outbound_addresses_are_optional_and_put_the_smarthost_clients_behind_them(resources):
    # every function that opens connections to a customer's smarthost: the relay, rotation's test and the console's
    # live check (a customer who allow-lists the addresses must not see the wizard fail where the relay would pass)
    for name in ("RelayFunction", "RotationFunction", "ConsoleJobsFunction"):
        condition, in_vpc, outside = resources[name]["Properties"]["VpcConfig"]["Fn::If"]
        assert (condition, outside) == ("HasStaticEgress", {"Ref": "AWS::NoValue"})
        assert in_vpc["SecurityGroupIds"] == [{"Ref": "EgressSecurityGroup"}]
    egress = {name for name, r in resources.items() if name.startswith("Egress")}
    assert all(resources[name].get("Condition") in ("HasStaticEgress", "HasTwoEgressZones") for name in egress)
    assert "Ingress" not in str(resources["EgressSecurityGroup"]["Properties"])
    assert load_template(TEMPLATE)["Parameters"]["StaticEgressZones"]["Default"] == 0
