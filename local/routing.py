"""Offline stand-in for the routing API destinations: loopback receivers + the template's own rules.

moto gap (tests/integration/test_moto_gaps.py pins it): moto models neither
``AWS::Events::Connection`` nor ``AWS::Events::ApiDestination`` in CloudFormation, and its
``put_targets`` delivery to an API destination sends the request *without a body* (only when
``MOTO_EVENTS_INVOKE_HTTP`` is on). So the offline stack cannot show what Slack or Jira would get.

This module stands in for that last hop, and nothing else: the notification event is the one
NotifyFunction's code builds (vigil_aws.notify.Notifier), the rules' event patterns and input
transformers are read from template.yaml (with the stack's parameters), they are evaluated by
moto's own EventBridge implementations (``EventPattern.matches_event``,
``EventTemplateParser.parse``), and the result is POSTed over HTTP to a receiver on 127.0.0.1 with
the connection's header, the way an API destination would. Only loopback URLs are ever contacted.

``demo_routing()`` is what ``make demo`` calls: it prints the Slack message and the Jira issue
body exactly as the receivers got them, for the demo's findings plus one whose command line
carries ``<!channel>`` and ``{code}``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"

# destination -> (rule, connection, URL parameter): the template's logical ids
DESTINATIONS: Final[dict[str, tuple[str, str, str]]] = {
    "slack": ("SlackRule", "SlackConnection", "SlackWebhookUrl"),
    "jira": ("JiraRule", "JiraConnection", "JiraIssueUrl"),
    "servicenow": ("ServiceNowRule", "ServiceNowConnection", "ServiceNowIncidentUrl"),
    "splunk": ("SplunkRule", "SplunkConnection", "SplunkHecUrl"),
    "webhook": ("WebhookRule", "WebhookConnection", "WebhookUrl"),
}


@dataclass(frozen=True)
class Route:
    destination: str
    url: str
    pattern: dict[str, Any]
    transformer: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Delivery:
    destination: str
    url: str
    status: int
    body: bytes


class LoopbackReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that records every POST and answers 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                body = self.rfile.read(length)
                with lock:
                    received.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="loopback-receiver", daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    out = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    return out | given


def _resolve(node: Any, params: dict[str, str]) -> Any:
    """Ref / Sub of parameters (all the routing resources use)."""
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return params[node["Ref"]]
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        text = node["Fn::Sub"]
        for k, v in params.items():
            text = text.replace("${" + k + "}", v)
        return text
    return node


def routes(parameters: dict[str, str], template_path: Path = TEMPLATE) -> list[Route]:
    """The enabled routing rules of template.yaml under these parameters (URL parameter set)."""
    from samtranslator.yaml_helper import yaml_parse

    template = dict(yaml_parse(template_path.read_text()))
    params = _parameters(template, parameters)
    res = template["Resources"]
    out = []
    for dest, (rule_id, conn_id, url_param) in DESTINATIONS.items():
        url = params.get(url_param, "")
        if not url:
            continue
        rule = res[rule_id]["Properties"]
        [target] = rule["Targets"]
        auth = res[conn_id]["Properties"]
        headers = {
            str(k): str(v) for k, v in target.get("HttpParameters", {}).get("HeaderParameters", {}).items()
        }
        if auth["AuthorizationType"] == "API_KEY":
            a = auth["AuthParameters"]["ApiKeyAuthParameters"]
            headers[str(_resolve(a["ApiKeyName"], params))] = str(_resolve(a["ApiKeyValue"], params))
        elif auth["AuthorizationType"] == "BASIC":
            b = auth["AuthParameters"]["BasicAuthParameters"]
            user, password = _resolve(b["Username"], params), _resolve(b["Password"], params)
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        pattern = json.loads(_resolve(rule["EventPattern"], params))
        out.append(Route(dest, url, pattern, target["InputTransformer"], headers))
    return out


def _loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise ValueError(f"the offline stand-in only delivers to loopback, not {url!r}")


def body_for(route: Route, event: dict[str, Any]) -> Any | None:
    """What the rule would send for this event (None when its pattern does not match), computed by
    moto's own EventBridge pattern matcher and input transformer."""
    from moto.events.models import EventPattern
    from moto.events.utils import EventTemplateParser

    if not EventPattern.load(json.dumps(route.pattern)).matches_event(event):
        return None
    internal = {"ingestion-time": event.get("time", ""), **event}  # moto's events carry it
    return EventTemplateParser.parse(
        input_template=route.transformer["InputTemplate"],
        input_paths_map=route.transformer["InputPathsMap"],
        event=internal,
    )


@dataclass
class OfflineRouting:
    """Delivers notification events through the template's routes to loopback URLs."""

    routes: list[Route]
    deliveries: list[Delivery] = field(default_factory=list)

    def deliver(self, event: dict[str, Any]) -> list[Delivery]:
        done = []
        for route in self.routes:
            body = body_for(route, event)
            if body is None:
                continue
            _loopback_only(route.url)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            req = urllib.request.Request(route.url, data=data, method="POST", headers=route.headers)
            with urllib.request.urlopen(req, timeout=5) as resp:  # loopback only (checked above)
                done.append(Delivery(route.destination, route.url, resp.status, data))
        self.deliveries += done
        return done


def notification_event(
    finding: dict[str, Any], destinations: Iterable[str], **settings: str
) -> dict[str, Any]:
    """The EventBridge event NotifyFunction puts on the bus for this finding (its own code)."""
    from vigil_aws.notify import Notifier, NotifySettings

    notifier = Notifier(
        NotifySettings(
            bus_name="offline",
            destinations=tuple(destinations),
            jira_project_key=settings.get("jira_project_key", "SEC"),
            jira_issue_type=settings.get("jira_issue_type", "Task"),
            splunk_index=settings.get("splunk_index", ""),
        )
    )
    entry = notifier.entry(finding)
    return {
        "version": "0",
        "id": "offline",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": str(finding.get("accountId", "")),
        "time": str(finding.get("updatedAt", "")),
        "region": str(finding.get("region", "")),
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


def hostile_demo_finding(account_id: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:
    """A real finding (crontab installed from a file) whose command line carries Slack mentions and
    Jira markup, produced by the detections from one process event."""
    from vigil import sample as s
    from vigil.detection import Context
    from vigil.engine import Engine
    from vigil.findings import occurrences
    from vigil.intel.builtin import builtin_intel
    from vigil.registry import all_detections
    from vigil.state import InMemoryState

    engine = Engine(all_detections(), intel=builtin_intel())
    state = InMemoryState()
    event = s.exec_(
        s.proc("/usr/bin/crontab", "/tmp/.c", "<!channel>", "<@U123>", "{code}", "[x|http://evil]")
    )
    run = engine.run([event], state)
    [o] = occurrences(
        run.matches, Context(state=state, intel=engine.intel), account_id=account_id, region=region
    )
    return o.finding


def demo_routing(
    findings: Iterable[dict[str, Any]] = (), out: Callable[[str], None] = print, hostile: bool = True
) -> list[Delivery]:
    """Route the findings (plus the hostile one) to loopback Slack and Jira receivers through the
    template's rules, and print the Slack message text and the Jira issue body as delivered."""
    slack, jira = LoopbackReceiver(), LoopbackReceiver()
    try:
        params = {
            "SlackWebhookUrl": slack.url("/services/T000/B000/offline"),
            "SlackSeverityThreshold": "1",
            "JiraIssueUrl": jira.url("/rest/api/2/issue"),
            "JiraUsername": "vigil@example.com",
            "JiraPassword": "offline-token",
            "JiraSeverityThreshold": "1",
        }
        routing = OfflineRouting(routes(params))
        todo = list(findings) + ([hostile_demo_finding()] if hostile else [])
        for finding in todo:
            routing.deliver(notification_event(finding, ("slack", "jira")))
        for got in slack.received:
            out("--- Slack message (POST " + got.path + ", as delivered) ---")
            out(json.loads(got.body)["text"])
        for got in jira.received:
            fields = json.loads(got.body)["fields"]
            out("--- Jira issue (POST " + got.path + ", as delivered) ---")
            out("summary: " + fields["summary"])
            out(fields["description"])
        return routing.deliveries
    finally:
        slack.close()
        jira.close()


if __name__ == "__main__":
    demo_routing()
