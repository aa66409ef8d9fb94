"""Routing bodies (vigil/render.py): attacker-controlled strings reach Slack, Jira, ServiceNow,
Splunk and webhooks as text, never as mentions, links, markup or broken JSON.

GIVEN a finding whose command line, process path, tags and domain were written by whoever owns
the instance (mentions, wiki markup, links, control characters, bidi overrides, huge strings),
WHEN each destination's body is rendered, THEN nothing in it can act on the destination.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from vigil import sample as s
from vigil.detection import Context
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.render import (
    CMD_MAX,
    DESTINATIONS,
    JIRA_SUMMARY_MAX,
    SLACK_TEXT_MAX,
    inert,
    jira_escape,
    jira_issue,
    notification_detail,
    servicenow_incident,
    slack_escape,
    slack_message,
    splunk_event,
    webhook_payload,
)
from vigil.state import InMemoryState

HOSTILE_ARGS = (
    "<!channel>",
    "<@U123>",
    "<!here|x>",
    "{code}",
    "[x|http://evil]",
    "[~admin]",
    "!http://evil/i.png!",
)


def _hostile_finding() -> dict:  # type: ignore[type-arg]
    """A real finding (crontab from a file) whose command line carries the hostile strings."""
    engine = Engine(all_detections(), intel=builtin_intel())
    state = InMemoryState()
    event = s.exec_(s.proc("/usr/bin/crontab", "/tmp/.c", *HOSTILE_ARGS))
    run = engine.run([event], state)
    ctx = Context(state=state, intel=engine.intel)
    [o] = [o for o in occurrences(run.matches, ctx, account_id="123456789012", region="us-east-1")]
    assert "<!channel>" in o.finding["service"]["runtimeDetails"]["context"]["commandLineExample"]
    return o.finding  # type: ignore[no-any-return]


def _with(f: dict, cmd: str) -> dict:  # type: ignore[type-arg]
    f = copy.deepcopy(f)
    f["service"]["runtimeDetails"]["context"]["commandLineExample"] = cmd
    return f


SLACK_LIVE = re.compile(r"<[!@#]|<https?:|<mailto:|\|[^>]*>")  # what Slack would act on


def test_slack_shows_mentions_and_links_as_text() -> None:
    msg = slack_message(_hostile_finding())
    text = msg["text"]
    assert "&lt;!channel&gt;" in text and "&lt;@U123&gt;" in text and "&lt;!here|x&gt;" in text
    assert "<" not in text and ">" not in text and not SLACK_LIVE.search(text)
    assert "http://" not in text and "hxxp://evil" in text
    assert msg.get("link_names") in (None, False, 0) and msg["unfurl_links"] is False
    # the command line is in a code block a backtick cannot close
    evil = slack_message(_with(_hostile_finding(), "a```b <!channel>"))["text"]
    assert evil.count("```") == 2 and "ˋˋˋ" in evil


def test_slack_escapes_ampersand_first() -> None:
    assert slack_escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"


def test_jira_description_escapes_every_markup_character() -> None:
    issue = jira_issue(_hostile_finding(), "SEC", "Task")
    desc = issue["fields"]["description"]
    cmd_line = desc.split("*Command line:*\n", 1)[1]
    for raw in (r"\{code", r"\[x\|", r"\[~admin", r"!hxxp"):
        assert not re.search(r"(?<!\\)" + raw, cmd_line), raw
    assert r"\{code\}" in cmd_line and r"\[x\|hxxp://evil\]" in cmd_line and r"\[\~admin\]" in cmd_line
    # unescaped markup characters only where Vigil wrote them (the table and the bold labels)
    stripped = re.sub(r"\\[\\{}\[\]*_\-+^~|!#?()]", "", cmd_line)
    assert not re.search(r"[{}\[\]*_+^~|!#?()]", stripped), stripped
    assert issue["fields"]["project"] == {"key": "SEC"} and issue["fields"]["issuetype"] == {"name": "Task"}


def test_jira_escape_round_trip_is_one_backslash_per_markup_char() -> None:
    assert jira_escape("a\\b{c}") == "a\\\\b\\{c\\}"


@pytest.mark.parametrize(
    "payload",
    [
        "\x1b[31mred\x07",
        "line1\nline2\r\u2028\u2029",
        "\u202eevil\u2066",
        "zero\u200bwidth\ufeff",
        "\ud800lone",
    ],
)
def test_control_bidi_and_separators_become_visible_escapes(payload: str) -> None:
    f = _with(_hostile_finding(), payload)
    bodies = [slack_message(f)["text"], jira_issue(f, "SEC", "Task")["fields"]["description"]]
    bodies.append(servicenow_incident(f)["description"])
    for body in bodies:
        cmd = body.split("Command line:", 1)[1]
        assert not re.search(
            "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b\ufeff\ud800-\udfff]",
            cmd,
        )
        assert "\\x1b" in cmd or "\\n" in cmd or "\\u202e" in cmd or "\\u200b" in cmd or "\\ud800" in cmd


def test_very_long_values_are_bounded() -> None:
    f = _with(_hostile_finding(), "A" * 100_000)
    f["title"] = "T" * 10_000
    assert len(slack_message(f)["text"]) <= SLACK_TEXT_MAX
    issue = jira_issue(f, "SEC", "Task")["fields"]
    assert len(issue["summary"]) <= JIRA_SUMMARY_MAX and "\n" not in issue["summary"]
    assert len(servicenow_incident(f)["short_description"]) <= 160
    assert len(inert("A" * 5000, CMD_MAX)) == CMD_MAX


def test_json_destinations_carry_the_finding_as_data() -> None:
    f = _with(_hostile_finding(), '"},"evil":{"x":"')
    for body in (splunk_event(f, index="sec"), webhook_payload(f), servicenow_incident(f)):
        text = json.dumps(body)
        assert "evil" not in json.loads(text) and json.loads(text) == body
    assert splunk_event(f, index="sec")["event"] == f and splunk_event(f)["host"] == s.INSTANCE


def test_the_notification_detail_carries_what_rules_filter_on_and_one_body_per_destination() -> None:
    f = _hostile_finding()
    detail = notification_detail(f, jira_project_key="OPS")
    assert set(detail) == {
        "id",
        "type",
        "severity",
        "severityLabel",
        "accountId",
        "region",
        "destinations",
        *DESTINATIONS,
    }
    assert isinstance(detail["severity"], float) and detail["id"] == f["id"]
    assert detail["jira"]["fields"]["project"] == {"key": "OPS"}
    one = notification_detail(f, ("slack",))
    assert one["destinations"] == ["slack"] and "jira" not in one and "slack" in one
    with pytest.raises(ValueError):
        notification_detail(f, ("pagerduty",))
