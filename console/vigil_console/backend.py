"""What the console reads and does on a stack: the same core and adapters as the CLI.

Every method returns JSON-ready values (plain dicts, lists, str, numbers); the HTTP layer
(``vigil_console.app``) never touches AWS. Errors the operator can fix (a bad filter, no such
finding, a refused rule) are :class:`UserError`; AWS errors pass up and become one JSON error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from vigil import coverage as coverage_core
from vigil import severity
from vigil import usage as usage_core
from vigil.criteria import FilterError, parse_expressions, parse_filter
from vigil.registry import all_detections
from vigil.response.policy import execution_name
from vigil.sample_findings import is_sample
from vigil_aws.coverage_eval import coverage_rows, stored, updated_at
from vigil_aws.filters import FilterChangeError, FilterStore, caller
from vigil_aws.finding_actions import FindingActionError, FindingActions
from vigil_aws.findings_store import document, plain
from vigil_aws.response import NoPendingApproval, answer_approval, recent_executions
from vigil_aws.usage import first_day, usage_items
from vigil_cli.stack import Target

PAGE_SIZES: Final = (10, 25, 50, 100)
SORT_KEYS: Final = ("updatedAt", "severity", "type", "instance", "count", "firstSeen", "lastSeen")
WORKFLOWS: Final = (
    "TriageStateMachineArn",
    "IsolateInstanceStateMachineArn",
    "ReleaseInstanceStateMachineArn",
)
# item attributes a person's action wrote (finding_actions): shown, never part of the document
_ACTION_ATTRS: Final = (
    "archiveSource",
    "archivedBy",
    "archivedAt",
    "suppressedBy",
    "unarchivedBy",
    "unarchivedAt",
    "feedback",
    "feedbackBy",
    "feedbackAt",
    "feedbackComment",
    "responseStatus",
)


class UserError(ValueError):
    """Bad input from the console's user: a 400 with this message."""


class NotFound(LookupError):
    """No such finding / rule / execution: a 404."""


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    """What the findings table shows of one finding."""
    sev = float(doc.get("severity", 0))
    inst = (doc.get("resource") or {}).get("instanceDetails") or {}
    svc = doc.get("service") or {}
    return {
        "id": doc.get("id", ""),
        "type": doc.get("type", ""),
        "severity": sev,
        "severityLabel": severity.label(sev) if 0 < sev <= 10 else "Low",
        "title": doc.get("title", ""),
        "instance": inst.get("instanceId", ""),
        "count": svc.get("count", 1),
        "firstSeen": svc.get("eventFirstSeen", ""),
        "lastSeen": svc.get("eventLastSeen", ""),
        "updatedAt": doc.get("updatedAt", ""),
        "archived": bool(svc.get("archived")),
        "sample": is_sample(doc),
    }


def _detection_meta(finding_type: str) -> dict[str, Any] | None:
    for d in all_detections():
        if d.meta.type == finding_type:
            m = d.meta
            return {
                "type": m.type,
                "title": m.title,
                "description": m.description,
                "runbook": m.runbook,
                "mitre": list(m.mitre),
                "falsePositives": list(m.false_positives),
                "references": list(m.references),
                "maturity": m.maturity,
                "defaultSeverity": m.severity,
            }
    return None


def suppression_rule(doc: dict[str, Any]) -> dict[str, Any]:
    """A suppression rule (CreateFilter JSON, Action ARCHIVE) for findings like ``doc``: its type
    on its instance, and the same executable when there is one. The user edits it before saving."""
    ftype = str(doc.get("type", ""))
    instance = str(((doc.get("resource") or {}).get("instanceDetails") or {}).get("instanceId", ""))
    criterion: dict[str, Any] = {"type": {"Equals": [ftype]}}
    if instance:
        criterion["resource.instanceDetails.instanceId"] = {"Equals": [instance]}
    process = ((doc.get("service") or {}).get("runtimeDetails") or {}).get("process") or {}
    exe = process.get("executablePath")
    if isinstance(exe, str) and exe:
        criterion["service.runtimeDetails.process.executablePath"] = {"Equals": [exe]}
    short = "".join(c if c.isalnum() else "-" for c in ftype.rsplit("/", 1)[-1])[:30].strip("-")
    name = f"suppress-{short or 'finding'}-{str(doc.get('id', ''))[:8]}"
    return {
        "Name": name[:64],
        "Description": f"Suppress {ftype} findings like {doc.get('id', '')}"[:512],
        "Action": "ARCHIVE",
        "FindingCriteria": {"Criterion": criterion},
    }


class Backend:
    """One stack, read and changed with the operator's credentials (or the offline stack's)."""

    def __init__(self, target: Target, *, clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self.clock = clock
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.target.client(service)
        return self._clients[service]

    @property
    def account(self) -> str:
        from vigil_cli.samples import account_of

        return account_of(self.target)

    def who(self) -> str:
        return f"{caller(self.client('sts'))} via vigil console"

    # -- findings ------------------------------------------------------------------------------
    def _items(self) -> list[dict[str, Any]]:
        ddb = self.client("dynamodb")
        kwargs: dict[str, Any] = {"TableName": self.target.output("FindingsTableName")}
        items: list[dict[str, Any]] = []
        while True:
            page = ddb.scan(**kwargs)
            items.extend(plain(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def documents(self) -> list[dict[str, Any]]:
        out = []
        for item in self._items():
            try:
                out.append(document(item))
            except (KeyError, ValueError, TypeError):
                continue  # an item that is not a finding (hand-written): not shown
        return out

    def list_findings(
        self,
        filters: list[str],
        *,
        sort: str = "updatedAt",
        descending: bool = True,
        page: int = 1,
        size: int = 25,
        archived: bool = False,
    ) -> dict[str, Any]:
        try:
            criteria = parse_expressions(filters) if filters else None
        except FilterError as exc:
            raise UserError(str(exc)) from None
        if sort not in SORT_KEYS:
            raise UserError(f"sort must be one of {', '.join(SORT_KEYS)}")
        if size not in PAGE_SIZES:
            raise UserError(f"size must be one of {', '.join(map(str, PAGE_SIZES))}")
        if page < 1:
            raise UserError("page starts at 1")
        if criteria is not None and "service.archived" in criteria.criterion:
            archived = True  # the filter says which
        docs = [
            d
            for d in self.documents()
            if (archived or not d["service"].get("archived")) and (criteria is None or criteria.matches(d))
        ]
        rows = [_row(d) for d in docs]
        rows.sort(key=lambda r: (r[sort], r["id"]), reverse=descending)
        start = (page - 1) * size
        return {
            "items": rows[start : start + size],
            "total": len(rows),
            "page": page,
            "size": size,
            "sort": sort,
            "descending": descending,
            "counts": dict(Counter(r["severityLabel"] for r in rows)),
        }

    def finding(self, finding_id: str) -> dict[str, Any]:
        item = (
            self.client("dynamodb")
            .get_item(TableName=self.target.output("FindingsTableName"), Key={"id": {"S": finding_id}})
            .get("Item")
        )
        if not item:
            raise NotFound(f"no finding {finding_id}")
        it = plain(item)
        doc = document(it)
        return {
            "finding": doc,
            "row": _row(doc),
            "actions": {k: it[k] for k in _ACTION_ATTRS if k in it},
            "detection": _detection_meta(str(doc.get("type", ""))),
            "suppression": suppression_rule(doc),
        }

    def _actions(self) -> FindingActions:
        return FindingActions(self.client("dynamodb"), self.target.output("FindingsTableName"))

    def archive(self, ids: list[str], unarchive: bool = False) -> dict[str, Any]:
        acts = self._actions()
        try:
            r = acts.unarchive(ids, self.who()) if unarchive else acts.archive(ids, self.who())
        except FindingActionError as exc:
            raise UserError(str(exc)) from None
        return {"done": r.done, "missing": r.missing}

    def feedback(self, ids: list[str], value: str, comment: str) -> dict[str, Any]:
        try:
            r = self._actions().feedback(ids, value, self.who(), comment)
        except FindingActionError as exc:
            raise UserError(str(exc)) from None
        return {"done": r.done, "missing": r.missing}

    def generate_samples(self) -> dict[str, Any]:
        from vigil_cli.samples import generate

        s = generate(self.target, now_s=self.clock())
        return {"written": len(s.written), "refused": s.refused}

    def isolate(self, finding_id: str) -> dict[str, Any]:
        """Start Triage for the finding, as FindingsBus's rule does: the workflow keeps its rules
        (identity verified, protected tag, threshold, approval for non-stable detections, dry run)."""
        doc = self.finding(finding_id)["finding"]
        instance = _row(doc)["instance"]
        if not instance:
            raise UserError("this finding names no EC2 instance")
        now = self.clock()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Vigil Finding",
            "source": "vigil",
            "account": doc.get("accountId", ""),
            "time": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": doc.get("region", self.target.region),
            "resources": [doc.get("arn", "")],
            "detail": doc,
        }
        name = execution_name(str(doc.get("type", "")), instance, finding_id, f"console{int(now)}")
        arn = self.client("stepfunctions").start_execution(
            stateMachineArn=self.target.output("TriageStateMachineArn"), name=name, input=json.dumps(event)
        )["executionArn"]
        return {"executionArn": arn, "name": name, "link": self.execution_link(str(arn))}

    def execution_link(self, arn: str) -> str:
        """The Step Functions console page of an execution (none for the offline stack)."""
        if self.target.offline or self.target.endpoint_url:
            return ""
        region = self.target.region
        return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}"

    # -- instance timeline -----------------------------------------------------------------------
    def timeline(self, instance: str) -> dict[str, Any]:
        docs = [d for d in self.documents() if _row(d)["instance"] == instance]
        docs.sort(key=lambda d: (d["service"].get("eventFirstSeen") or "", d.get("type", "")))
        events = []
        for d in docs:
            r = _row(d)
            info = _info(d)
            events.append({**r, "tactic": r["type"].split(":", 1)[0], "mitre": info.get("mitre") or []})
        sequence: list[str] = []
        for e in events:
            if not e["archived"] and (not sequence or sequence[-1] != e["tactic"]):
                sequence.append(e["tactic"])
        details: dict[str, Any] = next(
            (d["resource"].get("instanceDetails") or {} for d in reversed(docs) if d.get("resource")), {}
        )
        return {"instance": instance, "details": details, "events": events, "sequence": sequence}

    # -- suppression rules -----------------------------------------------------------------------
    def _filters(self) -> FilterStore:
        t = self.target
        return FilterStore(
            t.output("FiltersTableName"),
            t.output("FindingsBusName"),
            ddb=self.client("dynamodb"),
            events=self.client("events"),
            sts=self.client("sts"),
        )

    def rules(self) -> dict[str, Any]:
        stored, problems = self._filters().list_filters()
        return {
            "rules": [{**s.to_json(), "UpdatedBy": s.updated_by} for s in stored],
            "problems": problems,
        }

    def create_rule(self, doc: Any) -> dict[str, Any]:
        try:
            f = parse_filter(doc)
            return dict(self._filters().create(f).to_json())
        except (FilterError, FilterChangeError) as exc:
            raise UserError(str(exc)) from None

    def update_rule(self, name: str, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise UserError("the update must be a JSON object")
        try:
            return dict(self._filters().update(name, changes).to_json())
        except (FilterError, FilterChangeError) as exc:
            raise UserError(str(exc)) from None

    def delete_rule(self, name: str) -> dict[str, Any]:
        try:
            return dict(self._filters().delete(name).to_json())
        except (FilterError, FilterChangeError) as exc:
            raise UserError(str(exc)) from None

    # -- response --------------------------------------------------------------------------------
    def executions(self, limit: int = 50) -> dict[str, Any]:
        arns = [self.target.outputs[k] for k in WORKFLOWS if k in self.target.outputs]
        rows = recent_executions(self.client("stepfunctions"), arns, limit)
        out = []
        for r in rows:
            started: Any = r.get("started")
            out.append(
                {
                    **r,
                    "started": started.isoformat() if hasattr(started, "isoformat") else str(started or ""),
                    "pending": r.get("outcome") == "awaiting approval",
                    "link": self.execution_link(str(r.get("arn", ""))),
                }
            )
        return {"executions": out}

    def answer(self, execution_arn: str, approve: bool, reason: str) -> dict[str, Any]:
        if not execution_arn.startswith("arn:") or ":execution:" not in execution_arn:
            raise UserError("not an execution ARN")
        try:
            answer_approval(
                self.client("stepfunctions"), execution_arn, approve=approve, by=self.who(), reason=reason
            )
        except NoPendingApproval as exc:
            raise UserError(str(exc)) from None
        return {"answered": execution_arn, "approved": approve}

    # -- coverage and usage ----------------------------------------------------------------------
    def coverage(self) -> dict[str, Any]:
        ddb = self.client("dynamodb")
        covs: list[tuple[coverage_core.Coverage, float]] = []
        for item in coverage_rows(ddb, self.target.output("CoverageTableName")):
            c = stored(item)
            if c is not None:
                covs.append((c, updated_at(item)))
        covs.sort(key=lambda p: p[0].instance_id)
        only = [c for c, _ in covs]
        return {
            "instances": [
                {
                    "instanceId": c.instance_id,
                    "instanceType": c.instance_type,
                    "status": c.status,
                    "issue": c.issue,
                    "warnings": list(c.warnings),
                    "agentVersion": c.agent_version,
                    "managementType": c.management_type,
                    "hostname": c.hostname,
                    "kernel": c.kernel,
                    "lastHeartbeat": coverage_core.iso(c.last_heartbeat_at) if c.last_heartbeat_at else "",
                    "updatedAt": coverage_core.iso(at),
                }
                for c, at in covs
            ],
            "statistics": coverage_core.statistics(only),
            "healthyPercent": round(coverage_core.healthy_percent(only), 1) if only else None,
        }

    def usage(self, days: int = 30) -> dict[str, Any]:
        from vigil_cli.usage import _is_day, load_rates

        if not 1 <= days <= 100:
            raise UserError("days must be 1..100")
        rates = load_rates()
        items = list(
            usage_items(self.client("dynamodb"), self.target.output("CoverageTableName"), "0000-00-00")
        )
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        newest = max((dt.date.fromisoformat(i["day"]) for i in items if _is_day(i["day"])), default=today)
        end = min(today, newest)
        since = first_day(days, end)
        period = [i for i in items if since <= i["day"] <= end.isoformat()]
        est = usage_core.estimate(usage_core.per_instance(period), days, rates)
        per_day: dict[str, float] = {}
        for i in period:
            try:
                hours = float(i.get("vcpuSeconds") or 0) / 3600
            except ValueError:
                continue
            per_day[i["day"]] = per_day.get(i["day"], 0.0) + hours
        return {
            "days": days,
            "since": since,
            "until": end.isoformat(),
            "instances": [
                {
                    "instanceId": i.instance_id,
                    "vcpus": i.vcpus,
                    "heartbeats": i.heartbeats,
                    "vcpuHours": round(i.vcpu_hours, 3),
                }
                for i in est.instances
            ],
            "vcpuHours": round(est.vcpu_hours, 3),
            "avgVcpus": round(est.avg_vcpus, 3),
            "vigilUsdQuiet": round(est.vigil_usd_quiet, 4),
            "vigilUsdBusy": round(est.vigil_usd_busy, 4),
            "vigilMonthUsdQuiet": round(est.vigil_month_usd_quiet, 4),
            "vigilMonthUsdBusy": round(est.vigil_month_usd_busy, 4),
            "guarddutyUsd": round(est.guardduty_usd, 4),
            "guarddutyMonthUsd": round(est.guardduty_month_usd, 4),
            "vcpuHoursPerDay": dict(sorted(per_day.items())),
        }

    # -- summary ---------------------------------------------------------------------------------
    def summary(self, days: int = 14) -> dict[str, Any]:
        rows = [_row(d) for d in self.documents()]
        active = [r for r in rows if not r["archived"]]
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        if active:  # recorded data (the demo) may be older than today: end at the newest finding
            newest = max((r["lastSeen"] or r["updatedAt"])[:10] for r in active)
            with contextlib.suppress(ValueError):
                today = min(today, dt.date.fromisoformat(newest))
        day_keys = [(today - dt.timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
        by_day = {d: {lab: 0 for lab in ("Low", "Medium", "High", "Critical")} for d in day_keys}
        for r in active:
            day = (r["lastSeen"] or r["updatedAt"])[:10]
            if day in by_day:
                by_day[day][r["severityLabel"]] += 1
        instances = Counter[str]()
        for r in active:
            if r["instance"]:
                instances[r["instance"]] += 1
        out: dict[str, Any] = {
            "total": len(rows),
            "active": len(active),
            "archived": len(rows) - len(active),
            "bySeverity": dict(Counter(r["severityLabel"] for r in active)),
            "byType": Counter(r["type"] for r in active).most_common(10),
            "byDay": [{"day": d, **by_day[d]} for d in day_keys],
            "topInstances": instances.most_common(10),
        }
        for name, call in (("coverage", self.coverage), ("usage", self.usage)):
            try:
                out[name] = call()
            except SystemExit as exc:  # the stack has no such table (an older stack): say so
                out[name] = {"unavailable": str(exc)}
        return out


def _info(doc: dict[str, Any]) -> dict[str, Any]:
    raw = ((doc.get("service") or {}).get("additionalInfo") or {}).get("value")
    try:
        v = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}
