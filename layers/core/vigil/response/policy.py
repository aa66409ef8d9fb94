"""Triage policy: auto-isolate, ask an analyst, or notify only.

Evaluated in order; the first rule that applies decides (each decision carries its reasons, which
the approval message and ``vigil response list`` show):

0. the finding's instance identity was not verified -> notify (its host block may be forged)
1. the instance no longer exists                     -> notify
2. the instance carries the protected tag            -> notify (never isolated)
3. the finding was already handled (response status) -> notify
4. severity below the threshold / type not selected  -> notify
5. the instance's owners set vigil:response-mode=notify -> notify
6. the detection is not ``stable``                   -> approve (only stable detections auto-isolate)
7. the instance's owners set vigil:response-mode=approve -> approve
8. otherwise                                         -> auto-isolate

When an approval times out the default action applies, but never ``isolate`` for a detection that
is not stable: an unanswered question about an experimental rule must not contain production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from vigil.response import tags as t
from vigil.response.instance import InstanceView

Action = Literal["auto-isolate", "approve", "notify"]
DefaultAction = Literal["isolate", "notify"]

# A response already started or settled for this finding: a re-published update must not ask again.
HANDLED_STATUSES = frozenset(
    {"AWAITING_APPROVAL", "ISOLATING", "ISOLATED", "DENIED", "RELEASED", "PROTECTED"}
)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    severity_threshold: float
    finding_types: frozenset[str]  # empty = every type
    protected_tag_key: str
    dry_run: bool
    approval_timeout_s: int
    approval_default_action: DefaultAction
    account_id: str = ""  # the administrator's: a member account's finding is only notified


@dataclass(frozen=True, slots=True)
class FindingView:
    finding_id: str
    finding_type: str
    severity: float
    title: str
    instance_id: str
    maturity: str
    process: Mapping[str, Any]
    lineage: tuple[str, ...]
    identity_verified: bool = False
    account_id: str = ""

    @property
    def severity_label(self) -> str:
        s = self.severity
        return "Critical" if s >= 9 else "High" if s >= 7 else "Medium" if s >= 4 else "Low"


def _d(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _additional_info(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    """``service.additionalInfo.value`` is a JSON string (an object; anything else reads as {})."""
    raw = _d(_d(_d(finding).get("service")).get("additionalInfo")).get("value")
    try:
        info = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        info = None
    return _d(info)


def maturity_of(finding: Mapping[str, Any]) -> str:
    """The detection's maturity from ``additionalInfo``; defaults to experimental."""
    maturity = _additional_info(finding).get("maturity")
    return maturity if maturity in ("stable", "experimental") else "experimental"


def identity_verified(finding: Mapping[str, Any]) -> bool:
    """Whether ingest proved the instance with its signed identity document: only a JSON ``true``
    counts (a missing flag, a string "true" or a finding from before the flag: not verified)."""
    return _additional_info(finding).get("identityVerified") is True


def _proc_line(p: Mapping[str, Any]) -> str:
    name = p.get("name") or p.get("executablePath") or "?"
    return f"{name} (pid {p.get('pid', '?')}, {p.get('executablePath', '?')})"


def finding_view(finding: Mapping[str, Any]) -> FindingView:
    f = _d(finding)
    process = _d(_d(_d(f.get("service")).get("runtimeDetails")).get("process"))
    lineage = process.get("lineage")
    try:
        severity = float(f.get("severity", 0))
    except (TypeError, ValueError):
        severity = 0.0
    return FindingView(
        finding_id=str(f.get("id", "")),
        finding_type=str(f.get("type", "")),
        severity=severity,
        title=str(f.get("title", "")),
        instance_id=str(_d(_d(f.get("resource")).get("instanceDetails")).get("instanceId", "")),
        maturity=maturity_of(f),
        process={k: process[k] for k in ("name", "executablePath", "pid", "user") if k in process},
        lineage=tuple(_proc_line(_d(p)) for p in lineage) if isinstance(lineage, list) else (),
        identity_verified=identity_verified(f),
        account_id=str(f.get("accountId", "")),
    )


def execution_name(finding_type: str, instance_id: str, finding_id: str, suffix: str) -> str:
    """A console-readable, unique Step Functions execution name (<= 80 chars, [A-Za-z0-9_-]).

    ``Execution:Runtime/ReverseShell`` on ``i-0abc`` -> ``ReverseShell-i-0abc-1a2b3c4d-<suffix>``.
    """
    short = finding_type.rsplit("/", 1)[-1] or "Finding"
    parts = [short, instance_id or "no-instance", finding_id[:8], suffix[:12]]
    name = "-".join(_NAME_UNSAFE.sub("-", p).strip("-") for p in parts if p)
    return name[:80]


def _verdict(
    f: FindingView, inst: InstanceView, previous_status: str | None, cfg: PolicyConfig
) -> tuple[Action, list[str]]:
    if not f.instance_id:
        return "notify", ["the finding names no EC2 instance"]
    if not f.identity_verified:
        return "notify", [
            f"instance identity not verified: the events naming {f.instance_id} were not proven to come "
            "from it (no signed identity document), so Vigil never acts on them"
        ]
    if cfg.account_id and f.account_id and f.account_id != cfg.account_id:
        return "notify", [
            f"the instance is in member account {f.account_id}: the response workflows act only in the "
            f"administrator account {cfg.account_id} (docs/multi-account.md)"
        ]
    if not inst.exists:
        return "notify", [f"instance {f.instance_id} no longer exists ({inst.state or 'not found'})"]
    if cfg.protected_tag_key and cfg.protected_tag_key in inst.tags:
        return "notify", [f"instance is protected by tag {cfg.protected_tag_key}: never isolated"]
    if previous_status in HANDLED_STATUSES:
        return "notify", [f"finding already handled (response status {previous_status})"]
    if f.severity < cfg.severity_threshold:
        return "notify", [
            f"severity {f.severity:g} is below the response threshold {cfg.severity_threshold:g}"
        ]
    if cfg.finding_types and f.finding_type not in cfg.finding_types:
        return "notify", [f"finding type {f.finding_type} is not selected for response"]
    mode = inst.tags.get(t.RESPONSE_MODE, "").strip().lower()
    if mode == "notify":
        return "notify", [f"instance tag {t.RESPONSE_MODE}=notify"]
    reasons = [
        f"{f.severity_label} severity {f.severity:g} >= {cfg.severity_threshold:g}",
        f"type {f.finding_type}",
    ]
    if f.maturity != "stable":
        return "approve", [
            *reasons,
            f"detection maturity is {f.maturity}: only stable detections auto-isolate",
        ]
    if mode == "approve":
        return "approve", [*reasons, f"instance tag {t.RESPONSE_MODE}=approve"]
    return "auto-isolate", [*reasons, "stable detection"]


SNS_SUBJECT_MAX: Final = 99  # SNS: "must be less than 100 characters"
OUTCOME_PREFIX_MAX: Final = 72  # + ": " + the longest outcome the workflows write (< 25) stays < 100


def sns_subject(text: str, limit: int = SNS_SUBJECT_MAX) -> str:
    """An SNS Subject: printable ASCII only (no line breaks or control characters), under 100
    characters, cut with an ellipsis. A finding type such as
    UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS makes a subject too long
    for SNS, which then fails the publish (and the triage with it)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text).strip() or "Vigil"
    return clean if len(clean) <= limit else clean[: limit - 3].rstrip() + "..."


def decide(
    finding: Mapping[str, Any],
    inst: InstanceView,
    cfg: PolicyConfig,
    *,
    previous_status: str | None,
    triage_execution: str,
    now: str,
) -> dict[str, Any]:
    """The triage document the workflow routes on (JSON-ready)."""
    f = finding_view(finding)
    action, reasons = _verdict(f, inst, previous_status, cfg)
    default: DefaultAction = cfg.approval_default_action
    if default == "isolate" and f.maturity != "stable":
        default = "notify"
    name = execution_name(f.finding_type, f.instance_id, f.finding_id, triage_execution)
    summary = (
        f"{f.severity_label} {f.finding_type} on {f.instance_id}: {action}"
        + (" (dry run)" if cfg.dry_run and action != "notify" else "")
        + f" - {'; '.join(reasons)}"
    )
    return {
        "finding": {
            "id": f.finding_id,
            "type": f.finding_type,
            "severity": f.severity,
            "severityLabel": f.severity_label,
            "title": f.title,
            "maturity": f.maturity,
            "identityVerified": f.identity_verified,
            "process": dict(f.process),
            "lineage": list(f.lineage),
        },
        "instance": {
            "id": f.instance_id,
            "exists": inst.exists,
            "state": inst.state,
            "vpcId": inst.vpc_id,
            "autoScalingGroup": inst.asg_name,
            "name": inst.tags.get("Name", ""),
            "tags": dict(inst.tags),
        },
        "decision": {
            "action": action,
            "reasons": reasons,
            "summary": summary,
            "decidedAt": now,
            # SNS subjects (the workflow cannot cut a string): "Notify analysts" appends ": <outcome>"
            "subjects": {
                "approval": sns_subject(f"Vigil: approve isolation of {f.instance_id}? ({f.finding_type})"),
                "outcomePrefix": sns_subject(f"Vigil: {f.finding_type} on {f.instance_id}", OUTCOME_PREFIX_MAX),
            },
        },
        # Until a later step says otherwise (isolation outcome, denied, approval timed out).
        "outcome": "notified",
        "isolationResult": {"executionArn": None, "outcome": None},
        "dryRun": cfg.dry_run,
        "approval": {"timeoutSeconds": cfg.approval_timeout_s, "defaultAction": default},
        "isolation": {
            "executionName": name,
            "input": {
                "findingId": f.finding_id,
                "findingType": f.finding_type,
                "instanceId": f.instance_id,
                "dryRun": cfg.dry_run,
                "requestedBy": f"triage:{triage_execution}",
                "reason": summary,
            },
        },
    }
