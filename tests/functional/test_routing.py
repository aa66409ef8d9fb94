"""Routing through EventBridge to SaaS tools: NotifyFunction, the template's rules, and the
offline stand-in for API destinations.

GIVEN a published finding whose command line carries Slack mentions and Jira markup, WHEN
NotifyFunction renders its notification onto the bus, THEN each destination's rule from
template.yaml (its own event pattern and input transformer, evaluated by moto's EventBridge, with
an SQS queue standing where the API destination would be) delivers exactly the pre-rendered body,
only at or above the destination's severity threshold; and the offline stand-in POSTs the same
bodies to loopback receivers with the connection's authentication header.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from handler_harness import REGION, Aws, context, load_handler, template_resources

from local.routing import (
    DESTINATIONS,
    LoopbackReceiver,
    OfflineRouting,
    Route,
    demo_routing,
    hostile_demo_finding,
    notification_event,
    routes,
)
from vigil_aws.finding_queue import BadMessage

pytestmark = pytest.mark.integration  # moto

ALL = ("slack", "jira", "servicenow", "splunk", "webhook")


def _rule_to_queue(aws: Aws, rule_id: str, threshold: str) -> str:
    """The template's rule on the test bus, its API destination replaced by an SQS queue (moto
    delivers no body to API destinations); pattern and input transformer as the template has them."""
    props = template_resources()[rule_id]["Properties"]
    [target] = props["Targets"]
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName=rule_id)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = rule_id.removesuffix("Rule")
    pattern = props["EventPattern"]["Fn::Sub"].replace("${" + name + "SeverityThreshold}", threshold)
    events.put_rule(Name=rule_id, EventBusName=aws.bus_name, EventPattern=pattern)
    events.put_targets(
        Rule=rule_id,
        EventBusName=aws.bus_name,
        Targets=[{"Id": "q", "Arn": arn, "InputTransformer": target["InputTransformer"]}],
    )
    return str(url)


@pytest.fixture
def notify(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler(
        "notify_function",
        {
            "POWERTOOLS_SERVICE_NAME": "NotifyFunction",
            "FINDINGS_BUS_NAME": aws.bus_name,
            "NOTIFY_DESTINATIONS": ",".join(ALL),
            "JIRA_PROJECT_KEY": "SEC",
            "JIRA_ISSUE_TYPE": "Task",
            "AWS_REGION": REGION,
        },
        monkeypatch,
    )


def _published(finding: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": "e1", "source": "vigil", "detail-type": "Vigil Finding", "detail": finding}


def test_each_rule_delivers_its_pre_rendered_body_at_or_above_its_threshold(aws: Aws, notify: Any) -> None:
    # GIVEN each destination's rule (thresholds: Slack 7, Splunk 1, others 5) and a Medium (5) finding
    thresholds = {
        "SlackRule": "7",
        "JiraRule": "5",
        "ServiceNowRule": "5",
        "SplunkRule": "1",
        "WebhookRule": "5",
    }
    queues = {rule: _rule_to_queue(aws, rule, t) for rule, t in thresholds.items()}
    finding = hostile_demo_finding()
    assert finding["severity"] == 5.0
    # WHEN NotifyFunction takes the published finding
    notify.handler(_published(finding), context("NotifyFunction"))
    # THEN the bus carries one notification, and every destination but Slack got exactly its body
    [notification] = [
        e for e in aws.drain(aws.bus_tap_url) if e["detail-type"] == "Vigil Finding Notification"
    ]
    got = {rule: aws.drain(url) for rule, url in queues.items()}
    assert got["SlackRule"] == []
    for rule, dest in (
        ("JiraRule", "jira"),
        ("ServiceNowRule", "servicenow"),
        ("SplunkRule", "splunk"),
        ("WebhookRule", "webhook"),
    ):
        assert got[rule] == [notification["detail"][dest]], rule
    description = got["JiraRule"][0]["fields"]["description"]
    assert r"\{code\}" in description and "{code}" not in description.replace(r"\{code\}", "")


def test_slack_gets_the_escaped_message_when_the_finding_is_severe_enough(aws: Aws, notify: Any) -> None:
    url = _rule_to_queue(aws, "SlackRule", "5")
    notify.handler(_published(hostile_demo_finding()), context("NotifyFunction"))
    [message] = aws.drain(url)
    assert "&lt;!channel&gt;" in message["text"] and "<!channel>" not in message["text"]
    assert "<@U123>" not in message["text"] and message["unfurl_links"] is False


def test_notify_refuses_an_event_that_is_not_a_published_finding(aws: Aws, notify: Any) -> None:
    with pytest.raises(BadMessage):
        notify.handler(
            {"source": "vigil", "detail-type": "Vigil Finding", "detail": {"id": "x"}},
            context("NotifyFunction"),
        )
    assert aws.drain(aws.bus_tap_url) == []


def test_the_template_routes_every_destination_with_retries_and_a_dead_letter_queue() -> None:
    res = template_resources()
    for dest, (rule_id, conn_id, _url_param) in DESTINATIONS.items():
        [target] = res[rule_id]["Properties"]["Targets"]
        assert target["InputTransformer"] == {
            "InputPathsMap": {"body": f"$.detail.{dest}"},
            "InputTemplate": "<body>",
        }
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"]["Arn"] == {
            "Fn::GetAtt": [f"{rule_id.removesuffix('Rule')}DeadLetterQueue", "Arn"]
        }
        assert (
            res[rule_id]["Condition"] == res[conn_id]["Condition"] == f"RouteTo{rule_id.removesuffix('Rule')}"
        )
    from samtranslator.yaml_helper import yaml_parse

    from local.routing import TEMPLATE

    parameters = yaml_parse(TEMPLATE.read_text())["Parameters"]
    for name in ("Slack", "Jira", "ServiceNow", "Splunk", "Webhook"):
        assert parameters[f"{name}SeverityThreshold"]["Type"] == "Number"
    for secret in (
        "SlackWebhookUrl",
        "JiraPassword",
        "ServiceNowPassword",
        "SplunkHecToken",
        "WebhookAuthHeaderValue",
    ):
        assert parameters[secret].get("NoEcho") is True, secret


def test_the_offline_stand_in_posts_the_same_bodies_to_loopback_with_the_connection_header() -> None:
    receivers = {d: LoopbackReceiver() for d in ALL}
    try:
        params = {
            "SlackWebhookUrl": receivers["slack"].url("/slack"),
            "SlackSeverityThreshold": "1",
            "JiraIssueUrl": receivers["jira"].url("/rest/api/2/issue"),
            "JiraUsername": "bot@example.com",
            "JiraPassword": "t0ken",
            "JiraSeverityThreshold": "1",
            "ServiceNowSeverityThreshold": "1",
            "ServiceNowIncidentUrl": receivers["servicenow"].url("/api/now/table/incident"),
            "SplunkHecUrl": receivers["splunk"].url("/services/collector/event"),
            "SplunkHecToken": "hec-token",
            "WebhookUrl": receivers["webhook"].url("/hook"),
            "WebhookAuthHeaderValue": "Bearer abc",
        }
        routing = OfflineRouting(routes(params))
        event = notification_event(hostile_demo_finding(), ALL)
        delivered = routing.deliver(event)
        assert sorted(d.destination for d in delivered) == sorted(ALL) and {d.status for d in delivered} == {
            200
        }
        for dest, receiver in receivers.items():
            [got] = receiver.received
            assert json.loads(got.body) == event["detail"][dest], dest
        jira_auth = receivers["jira"].received[0].headers["Authorization"]
        assert base64.b64decode(jira_auth.removeprefix("Basic ")) == b"bot@example.com:t0ken"
        assert receivers["splunk"].received[0].headers["Authorization"] == "Splunk hec-token"
        assert receivers["webhook"].received[0].headers["Authorization"] == "Bearer abc"
    finally:
        for r in receivers.values():
            r.close()


def test_the_offline_stand_in_never_leaves_loopback() -> None:
    route = Route(
        "webhook",
        "http://198.51.100.1/hook",
        {"source": ["vigil"]},
        {"InputPathsMap": {"b": "$.detail"}, "InputTemplate": "<b>"},
        {},
    )
    with pytest.raises(ValueError, match="loopback"):
        OfflineRouting([route]).deliver(
            {"source": "vigil", "detail-type": "x", "detail": {"a": 1}, "time": "t"}
        )


def test_demo_routing_prints_the_slack_message_and_jira_issue_as_delivered() -> None:
    lines: list[str] = []
    deliveries = demo_routing(out=lines.append)
    text = "\n".join(lines)
    assert {d.destination for d in deliveries} == {"slack", "jira"}
    assert "--- Slack message" in text and "--- Jira issue" in text
    slack, jira = text.split("--- Jira issue", 1)
    assert "&lt;!channel&gt;" in slack and r"\{code\}" in jira
    assert "<!channel>" not in text and "{code}" not in jira.replace(r"\{code\}", "")


def test_a_notification_too_big_for_eventbridge_drops_the_embedded_finding_not_the_event() -> None:
    from vigil_aws.notify import MAX_EVENT_BYTES, Notifier, NotifySettings

    finding = hostile_demo_finding()
    finding["service"]["runtimeDetails"]["process"]["lineage"] = [{"executablePath": "/x" * 2000}] * 100
    entry = Notifier(NotifySettings("bus", ALL, "SEC", "Task", "")).entry(finding)
    detail = json.loads(entry["Detail"])
    assert len(entry["Detail"]) < MAX_EVENT_BYTES
    assert detail["splunk"]["truncated"] is True and "event" not in detail["splunk"]
    assert detail["webhook"]["truncated"] is True and "finding" not in detail["webhook"]
    assert detail["slack"]["text"] and detail["jira"]["fields"]["summary"]
