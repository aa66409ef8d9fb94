"""`vigil console`: the JSON API and its security, in-process (``App.handle``) against moto.

GIVEN the stack's tables and bus created from template.yaml in moto, a Triage state machine, and a
finding whose command line is markup, WHEN the console's API is called as the page calls it, THEN
it reads and acts through the same adapters as the CLI; and a request without the token, from
another Host, or a change without the CSRF header is refused with 403.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from handler_harness import REGION, _create_table, template_resources
from moto import mock_aws

from vigil.registry import all_detections
from vigil.sample_findings import sample_findings
from vigil_aws import clients
from vigil_aws.findings_store import FindingsStore
from vigil_cli.stack import Target
from vigil_console.app import App, Response
from vigil_console.backend import Backend
from vigil_console.security import CSP, Guard

XSS = "<img src=x onerror=alert(1)>"
PORT = 8765
HOST = f"127.0.0.1:{PORT}"
TRIAGE_DEF = {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}


@dataclass
class Console:
    app: App
    guard: Guard
    xss_id: str
    table: str

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Response:
        h = {"Host": HOST, "Cookie": f"{self.guard.cookie_name}={self.guard.token}"}
        if method != "GET":
            h |= {"X-Vigil-CSRF": self.guard.csrf_token, "Content-Type": "application/json"}
        for k, v in headers.items():
            key = k.replace("_", "-")
            if v is None:
                h.pop(key, None)
            else:
                h[key] = v
        data = b"" if body is None else json.dumps(body).encode()
        return self.app.handle(method, path, h, data)


def _xss_finding() -> Any:
    det = next(d for d in all_detections() if d.meta.type == "Execution:Runtime/ReverseShell")
    occ = sample_findings([det], account_id="123456789012", region=REGION, now_ns=time.time_ns())[0]
    doc = json.loads(json.dumps(occ.finding))
    doc["title"] = XSS
    doc["service"]["additionalInfo"]["value"] = json.dumps({"maturity": "stable"})  # not a sample
    doc["service"]["runtimeDetails"]["context"]["commandLineExample"] = XSS
    doc["resource"]["instanceDetails"]["tags"] = [{"key": "Name", "value": "<script>alert(2)</script>"}]
    return type(occ)(doc, 1, occ.first_seen_ns, occ.last_seen_ns, 7, 7, False, ((7, occ.first_seen_ns),))


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    clients.reset()
    with mock_aws():
        res = template_resources()
        ddb = boto3.client("dynamodb", region_name=REGION)
        for logical in ("FindingsTable", "FiltersTable", "CoverageTable"):
            _create_table(ddb, logical, res[logical]["Properties"])
        bus = boto3.client("events", region_name=REGION).create_event_bus(Name="vigil-findings")
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        triage = sfn.create_state_machine(name="Triage", definition=json.dumps(TRIAGE_DEF), roleArn=role)
        occ = _xss_finding()
        applied = FindingsStore("FindingsTable").apply([occ], 90)
        assert applied.applied == 1
        target = Target(
            REGION,
            None,
            {
                "FindingsTableName": "FindingsTable",
                "FiltersTableName": "FiltersTable",
                "CoverageTableName": "CoverageTable",
                "FindingsBusName": "vigil-findings",
                "FindingsBusArn": bus["EventBusArn"],
                "TriageStateMachineArn": triage["stateMachineArn"],
            },
            offline=True,
        )
        guard = Guard(PORT)
        yield Console(App(Backend(target), guard, stack_label="test"), guard, occ.id, "FindingsTable")
    clients.reset()


# -- security ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/findings", "/api/findings", "/api/session", "/static/console.js"])
def test_no_token_is_refused(console: Console, path: str) -> None:
    r = console.call("GET", path, Cookie=None)
    assert r.status == 403
    assert r.json() == {"ok": False, "error": r.json()["error"], "status": 403}
    assert b"csrf" not in r.body


def test_wrong_token_is_refused(console: Console) -> None:
    wrong = console.guard.token[:-1] + ("A" if console.guard.token[-1] != "A" else "B")
    assert console.call("GET", "/api/findings", Cookie=f"{console.guard.cookie_name}={wrong}").status == 403
    assert console.call("GET", f"/api/findings?token={wrong}", Cookie=None).status == 403
    assert console.call("GET", "/api/findings", Cookie=None, Authorization=f"Bearer {wrong}").status == 403


def test_query_token_is_exchanged_for_a_cookie_and_dropped_from_the_url(console: Console) -> None:
    r = console.call("GET", f"/findings?token={console.guard.token}&sort=severity", Cookie=None)
    assert r.status == 303
    headers = dict(r.headers)
    assert headers["Location"] == "/findings?sort=severity"
    assert console.guard.token in headers["Set-Cookie"]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    r = console.call("GET", "/api/session", Cookie=headers["Set-Cookie"].split(";", 1)[0])
    assert r.status == 200 and r.json()["csrf"] == console.guard.csrf_token


def test_foreign_host_is_refused_even_with_the_token(console: Console) -> None:
    # DNS rebinding: attacker.example resolved to 127.0.0.1 still sends its own name as Host
    assert console.call("GET", "/api/findings", Host="attacker.example:8765").status == 403
    assert console.call("GET", "/api/findings", Host=None).status == 403
    assert console.call("GET", "/api/findings", Host="localhost:8765").status == 200


def test_change_without_csrf_header_is_refused(console: Console) -> None:
    body = {"ids": [console.xss_id]}
    r = console.call("POST", "/api/findings/archive", body, X_Vigil_CSRF=None)
    assert r.status == 403 and "CSRF" in r.json()["error"]
    r = console.call("POST", "/api/findings/archive", body, X_Vigil_CSRF="0" * 64)
    assert r.status == 403
    assert console.call("POST", "/api/findings/archive", body, Sec_Fetch_Site="cross-site").status == 403
    assert console.call("POST", "/api/findings/archive", body, Origin="http://attacker.example").status == 403
    # a form post (text/plain) cannot carry a change, even with the header
    assert console.call("POST", "/api/findings/archive", body, Content_Type="text/plain").status == 403
    assert console.call("DELETE", "/api/rules/anything", X_Vigil_CSRF=None).status == 403
    # nothing was archived by any of them
    f = console.call("GET", f"/api/findings/{console.xss_id}").json()
    assert f["row"]["archived"] is False


def test_every_response_carries_a_strict_csp(console: Console) -> None:
    for r in (
        console.call("GET", "/findings"),
        console.call("GET", "/api/findings"),
        console.call("GET", "/x", Cookie=None),
    ):
        h = dict(r.headers)
        assert h["Content-Security-Policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"


def test_page_and_assets_have_no_inline_script_and_no_network_origin(console: Console) -> None:
    page = console.call("GET", "/findings")
    assert page.status == 200 and page.content_type.startswith("text/html")
    html = page.body.decode()
    assert '<script src="/static/console.js"' in html
    assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html
    js = console.call("GET", "/static/console.js").body.decode()
    for asset in (html, js, console.call("GET", "/static/console.css").body.decode()):
        # the only absolute URL is the SVG namespace name, an identifier never fetched
        assert set(re.findall(r"https?://[^\s\"')]*", asset)) <= {"http://www.w3.org/2000/svg"}
        assert "@import" not in asset and "url(" not in asset
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
    assert console.call("GET", "/static/../app.py").status == 404


def test_xss_strings_leave_the_api_as_inert_json(console: Console) -> None:
    r = console.call("GET", f"/api/findings/{console.xss_id}")
    assert r.status == 200
    assert b"<" not in r.body  # every "<" is \u003c: no markup, whatever reads the body
    f = r.json()["finding"]
    assert f["service"]["runtimeDetails"]["context"]["commandLineExample"] == XSS  # the value is intact
    listed = console.call("GET", "/api/findings").json()["items"]
    assert [x["title"] for x in listed] == [XSS]


# -- the API -----------------------------------------------------------------------------------
def test_filter_sort_and_page_findings(console: Console) -> None:
    assert console.call("POST", "/api/findings/samples", {}).status == 200
    all_ = console.call("GET", "/api/findings?size=100").json()
    n = len(all_detections())  # every type's sample, one of them refused for the real finding
    assert all_["total"] == n
    high = console.call(
        "GET", "/api/findings?filter=severity%20%3E%3D%207&sort=severity&order=asc&size=10"
    ).json()
    assert high["total"] == sum(1 for x in all_["items"] if x["severity"] >= 7) > 0
    sev = [x["severity"] for x in high["items"]]
    assert sev == sorted(sev) and min(sev) >= 7
    page2 = console.call("GET", "/api/findings?size=10&page=2").json()
    assert len(page2["items"]) == 10 and page2["items"][0]["id"] not in {x["id"] for x in all_["items"][:10]}
    bad = console.call("GET", "/api/findings?filter=severity%20%3E%3D%20lots")
    assert bad.status == 400 and "severity" in bad.json()["error"]
    assert console.call("GET", "/api/findings?sort=__class__").status == 400


def test_finding_details_carry_runbook_and_a_suppression_rule(console: Console) -> None:
    d = console.call("GET", f"/api/findings/{console.xss_id}").json()
    assert d["detection"]["runbook"] and d["detection"]["mitre"]
    crit = d["suppression"]["FindingCriteria"]["Criterion"]
    assert crit["type"] == {"Equals": ["Execution:Runtime/ReverseShell"]}
    assert crit["resource.instanceDetails.instanceId"] == {"Equals": ["i-0123456789abcdef0"]}
    assert console.call("GET", "/api/findings/" + "0" * 32).status == 404


def test_archive_unarchive_and_feedback(console: Console) -> None:
    ids = {"ids": [console.xss_id]}
    assert console.call("POST", "/api/findings/archive", ids).json()["done"] == [console.xss_id]
    assert console.call("GET", "/api/findings").json()["total"] == 0
    assert console.call("GET", "/api/findings?archived=1").json()["total"] == 1
    d = console.call("GET", f"/api/findings/{console.xss_id}").json()
    assert d["row"]["archived"] and "via vigil console" in d["actions"]["archivedBy"]
    console.call("POST", "/api/findings/unarchive", ids)
    assert console.call("GET", "/api/findings").json()["total"] == 1
    r = console.call("POST", "/api/findings/feedback", {**ids, "value": "NOT_USEFUL", "comment": "pentest"})
    assert r.status == 200
    assert (
        console.call("GET", f"/api/findings/{console.xss_id}").json()["actions"]["feedback"] == "NOT_USEFUL"
    )
    assert console.call("POST", "/api/findings/feedback", {**ids, "value": "MAYBE"}).status == 400
    assert console.call("POST", "/api/findings/archive", {"ids": ["../x"]}).status == 400


def test_suppression_rule_from_a_finding_round_trip(console: Console) -> None:
    rule = console.call("GET", f"/api/findings/{console.xss_id}").json()["suppression"]
    created = console.call("POST", "/api/rules", rule)
    assert created.status == 201, created.body
    name = created.json()["Name"]
    listed = console.call("GET", "/api/rules").json()["rules"]
    assert [r["Name"] for r in listed] == [name] and listed[0]["Action"] == "ARCHIVE"
    assert console.call("PUT", f"/api/rules/{name}", {"Description": "pentest box"}).status == 200
    assert console.call("GET", "/api/rules").json()["rules"][0]["Description"] == "pentest box"
    assert console.call("POST", "/api/rules", {**rule, "Action": "DESTROY"}).status == 400
    assert console.call("DELETE", f"/api/rules/{name}").status == 200
    assert console.call("GET", "/api/rules").json()["rules"] == []


def test_isolate_starts_triage_with_the_finding_as_the_bus_event(console: Console) -> None:
    r = console.call("POST", f"/api/findings/{console.xss_id}/isolate", {})
    assert r.status == 200, r.body
    arn = r.json()["executionArn"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    event = json.loads(sfn.describe_execution(executionArn=arn)["input"])
    assert event["source"] == "vigil" and event["detail-type"] == "Vigil Finding"
    assert event["detail"]["id"] == console.xss_id
    rows = console.call("GET", "/api/response").json()["executions"]
    assert [x["arn"] for x in rows] == [arn]
    assert rows[0]["instanceId"] == "i-0123456789abcdef0"
    # nothing waits for an approval in this execution: approving it is a clear 400
    r = console.call("POST", "/api/response/approve", {"execution": arn, "reason": "go"})
    assert r.status == 400 and "not waiting" in r.json()["error"]


def test_samples_are_marked_and_never_overwrite_a_real_finding(console: Console) -> None:
    # the fixture's real finding was stored under the ReverseShell sample's id, on purpose
    r = console.call("POST", "/api/findings/samples", {}).json()
    assert r["written"] == len(all_detections()) - 1 and r["refused"] == [console.xss_id]
    items = console.call("GET", "/api/findings?size=100").json()["items"]
    assert sum(x["sample"] for x in items) == len(all_detections()) - 1
    assert all(x["title"].startswith("[SAMPLE] ") for x in items if x["sample"])
    real = next(x for x in items if not x["sample"])
    assert real["id"] == console.xss_id and real["title"] == XSS


def test_summary_timeline_coverage_usage(console: Console) -> None:
    s = console.call("GET", "/api/summary").json()
    assert s["active"] == 1 and s["bySeverity"] == {"High": 1}
    assert s["topInstances"] == [["i-0123456789abcdef0", 1]]
    assert sum(d["High"] for d in s["byDay"]) == 1
    assert "coverage" in s and "usage" in s
    t = console.call("GET", "/api/timeline/i-0123456789abcdef0").json()
    assert [e["id"] for e in t["events"]] == [console.xss_id] and t["sequence"] == ["Execution"]
    assert console.call("GET", "/api/coverage").json()["instances"] == []
    assert console.call("GET", "/api/usage?days=7").json()["days"] == 7
    assert console.call("GET", "/api/usage?days=1000").status == 400


def test_unknown_route_and_method(console: Console) -> None:
    assert console.call("GET", "/api/nothing").status == 404
    assert console.call("PATCH", "/api/rules/x", {}).status == 405
    assert console.call("GET", "/api/findings/archive").status == 404
    assert console.call("POST", "/api/summary", {}).status == 405


def test_non_loopback_host_is_refused_without_allow_remote() -> None:
    from typer.testing import CliRunner

    from vigil_cli.main import app

    r = CliRunner().invoke(app, ["console", "--host", "0.0.0.0", "--port", "0"])
    assert r.exit_code == 2 and "not a loopback address" in r.output
