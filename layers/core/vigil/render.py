"""Notification bodies for the routing destinations, rendered so attacker-controlled strings stay inert.

EventBridge input transformers cannot escape a string for Slack or Jira (they paste it as is),
so the escaping happens here, before the event reaches the rules: NotifyFunction puts a
``Vigil Finding Notification`` event whose detail carries one ready body per destination
(``slack``, ``jira``, ``servicenow``, ``splunk``, ``webhook``), and each rule's input transformer
places that whole object (``"<body>"``): a JSON object is serialised by EventBridge, never spliced
into a string, so it stays valid JSON whatever it holds.

Whoever owns an instance writes its command lines, paths, domains and tags. For each destination:

- everywhere: control characters, bidi overrides/isolates and line separators become visible
  escapes (``\\x1b``, ``\\u202e``); every value is cut to a bound with an ellipsis; URLs in
  instance-written values are defanged (``hxxp://``), as IOC-sharing tools do, so no
  attacker-chosen link becomes clickable;
- Slack (mrkdwn): ``&``, ``<``, ``>`` escaped as ``&amp;`` ``&lt;`` ``&gt;`` (so ``<!channel>``,
  ``<@U123>`` and ``<url|text>`` are shown, never acted on); the message never sets
  ``link_names``; command lines sit in a code block whose fence a backtick cannot close (backticks
  are shown as U+02CB);
- Jira (REST API v2 wiki markup): every markup character (``{ } [ ] * _ - + ^ ~ | ! # ? ( ) \\``)
  is backslash-escaped, so ``{code}``, ``[x|http://evil]``, ``[~user]`` and ``!image!`` are text;
  the summary (plain text, one line) is cut to Jira's 255;
- ServiceNow, Splunk HEC, generic webhook: JSON built here (never by string pasting), plain text.

Pure: no clock, no AWS; the values come from the finding.
"""

from __future__ import annotations

import re
from typing import Any, Final

from vigil import severity as sev

DESTINATIONS: Final = ("slack", "jira", "servicenow", "splunk", "webhook")
NOTIFICATION_DETAIL_TYPE: Final = "Vigil Finding Notification"

FIELD_MAX: Final = 300  # one instance-written value (path, domain, tag, user)
CMD_MAX: Final = 1000  # one command line
SLACK_TEXT_MAX: Final = 3000
JIRA_SUMMARY_MAX: Final = 255
JIRA_DESCRIPTION_MAX: Final = 8000
SERVICENOW_SHORT_MAX: Final = 160

_CONTROL: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]"
)
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JIRA_SPECIAL: Final = re.compile(r"([\\{}\[\]*_\-+^~|!#?()])")


def _escape_one(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(value: Any, limit: int = FIELD_MAX) -> str:
    """Any value as one line of visible, bounded, defanged text."""
    text = _CONTROL.sub(_escape_one, value if isinstance(value, str) else str(value))
    text = re.sub(r"(?i)\bhttp(s?)(?=://)", lambda m: "hxxp" + m.group(1), text)
    text = re.sub(r"(?i)\bftp(?=://)", "fxp", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def slack_escape(text: str) -> str:
    """Slack's three control characters (mrkdwn and plain text alike)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def jira_escape(text: str) -> str:
    """Jira wiki markup: a backslash before every markup character."""
    return _JIRA_SPECIAL.sub(r"\\\1", text)


def _facts(finding: dict[str, Any]) -> dict[str, Any]:
    """The instance-written and Vigil-written values a notification shows (raw, not yet inert)."""
    svc = finding.get("service") or {}
    runtime = svc.get("runtimeDetails") or {}
    process = runtime.get("process") or {}
    context = runtime.get("context") or {}
    action = svc.get("action") or {}
    details = (finding.get("resource") or {}).get("instanceDetails") or {}
    remote = ""
    if dns := action.get("dnsRequestAction"):
        remote = str(dns.get("domain") or "")
    elif net := action.get("networkConnectionAction"):
        ip = net.get("remoteIpDetails") or {}
        port = (net.get("remotePortDetails") or {}).get("port")
        remote = f"{ip.get('ipAddressV4') or ip.get('ipAddressV6') or ''}{f':{port}' if port else ''}"
    severity = float(finding.get("severity") or 0)
    label: str
    try:
        label = sev.label(severity)
    except ValueError:
        label = "Unknown"
    return {
        "id": str(finding.get("id") or ""),
        "type": str(finding.get("type") or ""),
        "title": str(finding.get("title") or ""),
        "severity": severity,
        "label": label,
        "account": str(finding.get("accountId") or ""),
        "region": str(finding.get("region") or ""),
        "instance": str(details.get("instanceId") or ""),
        "process": str(process.get("executablePath") or process.get("name") or ""),
        "user": str(process.get("user") or process.get("userId") or ""),
        "cmd": str(context.get("commandLineExample") or ""),
        "remote": remote,
        "count": svc.get("count") or 1,
        "first": str(svc.get("eventFirstSeen") or ""),
        "last": str(svc.get("eventLastSeen") or ""),
    }


def _rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Severity", f"{f['label']} ({f['severity']:g})"),
        ("Type", inert(f["type"])),
        ("Instance", inert(f["instance"])),
        ("Account / region", f"{inert(f['account'], 20)} / {inert(f['region'], 30)}"),
        ("Process", inert(f["process"])),
    ]
    if f["user"]:
        rows.append(("User", inert(f["user"], 64)))
    if f["remote"]:
        rows.append(("Remote", inert(f["remote"])))
    rows += [("Count", inert(f["count"], 20)), ("Seen", f"{inert(f['first'], 30)} .. {inert(f['last'], 30)}")]
    rows.append(("Finding id", inert(f["id"], 64)))
    return rows


def slack_message(finding: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: mrkdwn text, no mentions, no links, no unfurling."""
    f = _facts(finding)
    lines = [f"*{slack_escape(inert(f['title']))}*"]
    lines += [f"*{k}:* {slack_escape(v)}" for k, v in _rows(f)]
    if f["cmd"]:
        cmd = slack_escape(inert(f["cmd"], CMD_MAX)).replace("`", "\u02cb")
        lines.append(f"*Command line:*\n```{cmd}```")
    text = "\n".join(lines)
    if len(text) > SLACK_TEXT_MAX:
        text = text[: SLACK_TEXT_MAX - 1] + "…"
    return {"text": text, "mrkdwn": True, "unfurl_links": False, "unfurl_media": False}


def jira_issue(finding: dict[str, Any], project_key: str, issue_type: str) -> dict[str, Any]:
    """A Jira REST API v2 create-issue body (``POST /rest/api/2/issue``), description in wiki markup."""
    f = _facts(finding)
    summary = inert(f"[Vigil {f['label']}] {f['title']}", JIRA_SUMMARY_MAX)
    lines = [f"*{jira_escape(inert(f['title']))}*", ""]
    lines += [f"||{k}|{jira_escape(v)}|" for k, v in _rows(f)]
    if f["cmd"]:
        lines += ["", "*Command line:*", jira_escape(inert(f["cmd"], CMD_MAX))]
    description = "\n".join(lines)
    if len(description) > JIRA_DESCRIPTION_MAX:
        description = description[: JIRA_DESCRIPTION_MAX - 1] + "…"
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", f["type"])[:255] or "vigil"
    return {
        "fields": {
            "project": {"key": project_key},
            "issuetype": {"name": issue_type},
            "summary": summary,
            "description": description,
            "labels": ["vigil", label],
        }
    }


def servicenow_incident(finding: dict[str, Any]) -> dict[str, Any]:
    """A ServiceNow Table API incident (``POST /api/now/table/incident``), plain text."""
    f = _facts(finding)
    urgency = "1" if f["severity"] >= 7 else "2" if f["severity"] >= 4 else "3"
    body = [f"{k}: {v}" for k, v in _rows(f)]
    if f["cmd"]:
        body.append(f"Command line: {inert(f['cmd'], CMD_MAX)}")
    return {
        "short_description": inert(f"[Vigil {f['label']}] {f['title']}", SERVICENOW_SHORT_MAX),
        "description": "\n".join(body),
        "urgency": urgency,
        "impact": urgency,
        "category": "security",
        "correlation_id": inert(f["id"], 64),
        "correlation_display": "Vigil",
    }


def splunk_event(
    finding: dict[str, Any], *, index: str = "", sourcetype: str = "vigil:finding"
) -> dict[str, Any]:
    """A Splunk HTTP Event Collector event (``POST /services/collector/event``): the finding as JSON."""
    f = _facts(finding)
    event: dict[str, Any] = {
        "source": "vigil",
        "sourcetype": sourcetype,
        "host": inert(f["instance"], 64) or "unknown",
        "event": finding,
    }
    if index:
        event["index"] = index
    return event


def webhook_payload(finding: dict[str, Any]) -> dict[str, Any]:
    """A generic JSON webhook: a short summary plus the finding (JSON, nothing to interpret)."""
    f = _facts(finding)
    return {
        "source": "vigil",
        "id": f["id"],
        "type": f["type"],
        "severity": f["severity"],
        "severityLabel": f["label"],
        "title": f["title"],
        "finding": finding,
    }


def notification_detail(
    finding: dict[str, Any],
    destinations: tuple[str, ...] = DESTINATIONS,
    *,
    jira_project_key: str = "SEC",
    jira_issue_type: str = "Task",
    splunk_index: str = "",
) -> dict[str, Any]:
    """The ``Vigil Finding Notification`` detail: what the rules filter on (severity, type) and one
    ready body per requested destination."""
    f = _facts(finding)
    detail: dict[str, Any] = {
        "id": f["id"],
        "type": f["type"],
        "severity": f["severity"],
        "severityLabel": f["label"],
        "accountId": f["account"],
        "region": f["region"],
        # the rules match on this leaf ("exists" does not match an object such as detail.slack)
        "destinations": list(destinations),
    }
    render = {
        "slack": lambda: slack_message(finding),
        "jira": lambda: jira_issue(finding, jira_project_key, jira_issue_type),
        "servicenow": lambda: servicenow_incident(finding),
        "splunk": lambda: splunk_event(finding, index=splunk_index),
        "webhook": lambda: webhook_payload(finding),
    }
    for name in destinations:
        if name not in render:
            raise ValueError(f"unknown destination {name!r}; known: {', '.join(DESTINATIONS)}")
        detail[name] = render[name]()
    return detail
