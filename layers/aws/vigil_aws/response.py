"""AWS side of response: settings of the response functions, the per-VPC isolation groups, and
what ``vigil response`` reads from Step Functions (executions, the approval task token).

The workflows make the single AWS calls themselves (SDK integrations); code here does only what
needs logic: find-or-create the isolation groups (races included) and read execution histories.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from botocore.exceptions import ClientError

from vigil.response import groups as g
from vigil.response import tags as t
from vigil.response.policy import DefaultAction, PolicyConfig
from vigil_aws.settings import SettingsError, as_bool, as_number, env_str


def policy_config(env: Mapping[str, str] | None = None) -> PolicyConfig:
    """TriagePolicyFunction settings (stack parameters Response*, ProtectedTagKey, Approval*)."""
    e = os.environ if env is None else env
    fn = "TriagePolicyFunction"
    types = env_str(e, "RESPONSE_FINDING_TYPES", fn, "*")
    default = env_str(e, "APPROVAL_DEFAULT_ACTION", fn, "notify").lower()
    if default not in ("isolate", "notify"):
        raise SettingsError(f"{fn}: APPROVAL_DEFAULT_ACTION={default!r} must be isolate or notify")
    return PolicyConfig(
        severity_threshold=as_number(
            env_str(e, "RESPONSE_SEVERITY_THRESHOLD", fn), "RESPONSE_SEVERITY_THRESHOLD", fn, 1
        ),
        finding_types=frozenset()
        if types.strip() == "*"
        else frozenset(x.strip() for x in types.split(",") if x.strip()),
        protected_tag_key=env_str(e, "PROTECTED_TAG_KEY", fn),
        dry_run=as_bool(env_str(e, "RESPONSE_DRY_RUN", fn, "true"), "RESPONSE_DRY_RUN", fn),
        approval_timeout_s=int(
            as_number(env_str(e, "APPROVAL_TIMEOUT_SECONDS", fn), "APPROVAL_TIMEOUT_SECONDS", fn, 1)
        ),
        approval_default_action=cast(DefaultAction, default),
        account_id=e.get("VIGIL_ACCOUNT_ID", "").strip(),
    )


@dataclass(frozen=True, slots=True)
class PlanSettings:
    protected_tag_key: str
    budget_per_hour: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PlanSettings:
        e = os.environ if env is None else env
        fn = "IsolationPlanFunction"
        return cls(
            protected_tag_key=env_str(e, "PROTECTED_TAG_KEY", fn),
            budget_per_hour=int(
                as_number(env_str(e, "ISOLATION_BUDGET_PER_HOUR", fn), "ISOLATION_BUDGET_PER_HOUR", fn, 0)
            ),
        )


# -- the per-VPC isolation groups ------------------------------------------------------------
def _find(ec2: Any, vpc_id: str) -> dict[str, dict[str, Any]]:
    """Vigil's groups in ``vpc_id``: the right name *and* the ``vigil:role`` tag Vigil sets at
    creation (the tag the IAM policies allow changes on). A group that only has the name is not
    Vigil's and is never used."""
    resp = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [spec["name"] for spec in g.GROUPS.values()]},
        ]
    )
    found: dict[str, dict[str, Any]] = {}
    for sg in resp.get("SecurityGroups", []):
        role = next((r for r, spec in g.GROUPS.items() if spec["name"] == sg.get("GroupName")), None)
        tags = {x.get("Key"): x.get("Value") for x in sg.get("Tags", [])}
        if role is not None and tags.get(t.ROLE) == role:
            found[role] = sg
    return found


class ForeignGroupError(RuntimeError):
    """A security group with one of Vigil's names exists in the VPC without Vigil's role tag."""


def _ignore_duplicate(call: Any, **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("InvalidPermission.Duplicate", "InvalidPermission.NotFound"):
            raise


def _create(ec2: Any, vpc_id: str, role: str) -> None:
    spec = g.GROUPS[role]
    try:
        gid = ec2.create_security_group(
            GroupName=spec["name"],
            Description=spec["description"],
            VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": t.ROLE, "Value": role}]}],
        )["GroupId"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "InvalidGroup.Duplicate":
            return  # another isolation created it first (or a foreign one: the caller checks)
        raise
    if role == "untrack":
        _ignore_duplicate(ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[g.ALL_TRAFFIC])
        _ignore_duplicate(ec2.authorize_security_group_egress, GroupId=gid, IpPermissions=[g.ALL_TRAFFIC])


def ensure_isolation_groups(ec2: Any, vpc_id: str) -> dict[str, str]:
    """``{"untrack": sg-id, "isolation": sg-id}`` for ``vpc_id``, created on first use.

    The isolation group is emptied on every call: a rule someone added by hand would reopen
    every isolated instance in the VPC.
    """
    found = _find(ec2, vpc_id)
    for role in g.GROUPS:
        if role not in found:
            _create(ec2, vpc_id, role)
    found = _find(ec2, vpc_id)
    missing = [r for r in g.GROUPS if r not in found]
    if missing:
        names = [g.GROUPS[r]["name"] for r in missing]
        raise ForeignGroupError(
            f"{vpc_id}: a security group named {', '.join(names)} exists without the tag "
            f"{t.ROLE}={'|'.join(missing)} that Vigil sets when it creates one; Vigil never uses a "
            "group it did not create. Delete it (or, if an older Vigil made it, tag it) and retry."
        )
    ingress, egress = g.stray_rules(found["isolation"])
    gid = found["isolation"]["GroupId"]
    if ingress:
        _ignore_duplicate(ec2.revoke_security_group_ingress, GroupId=gid, IpPermissions=ingress)
    if egress:
        _ignore_duplicate(ec2.revoke_security_group_egress, GroupId=gid, IpPermissions=egress)
    return {role: str(sg["GroupId"]) for role, sg in found.items()}


# -- what `vigil response` reads --------------------------------------------------------------
def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page.get("events", []))
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def pending_task_token(sfn: Any, execution_arn: str) -> str | None:
    """The task token of the execution's open approval request, or None.

    The workflow sends the token through SNS (``sns:publish.waitForTaskToken``); the same
    parameters are in the execution history, which is what the CLI reads (no extra store). The
    request is open until a TaskSucceeded / TaskFailed / TaskTimedOut of that resource follows.
    """
    token: str | None = None
    for e in _history(sfn, execution_arn):
        kind = e["type"]
        if kind == "TaskScheduled":
            details = e.get("taskScheduledEventDetails") or {}
            if "waitForTaskToken" not in str(details.get("resource", "")):
                continue
            try:
                params = json.loads(details.get("parameters") or "{}")
                message = params.get("Message")
                message = json.loads(message) if isinstance(message, str) else message
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("taskToken"):
                token = str(message["taskToken"])
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
            key = {
                "TaskSucceeded": "taskSucceededEventDetails",
                "TaskFailed": "taskFailedEventDetails",
                "TaskTimedOut": "taskTimedOutEventDetails",
            }[kind]
            if "waitForTaskToken" in str((e.get(key) or {}).get("resource", "")):
                token = None
    if token is None:
        return None
    status = sfn.describe_execution(executionArn=execution_arn)["status"]
    return token if status == "RUNNING" else None


def execution_summary(sfn: Any, execution: Mapping[str, Any]) -> dict[str, Any]:
    """Finding, instance, decision and outcome of one triage/isolate/release execution."""
    d = sfn.describe_execution(executionArn=execution["executionArn"])
    try:
        inp = json.loads(d.get("input") or "{}")
    except ValueError:
        inp = {}
    try:
        out = json.loads(d.get("output") or "{}")
    except ValueError:
        out = {}
    inp = inp if isinstance(inp, dict) else {}
    out = out if isinstance(out, dict) else {}
    raw_detail = inp.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    finding_type = out.get("findingType") or inp.get("findingType") or detail.get("type") or ""
    instance = (
        out.get("instanceId")
        or inp.get("instanceId")
        or ((detail.get("resource") or {}).get("instanceDetails") or {}).get("instanceId")
        or ""
    )
    status = d["status"]
    outcome = out.get("outcome") or ("awaiting approval" if status == "RUNNING" else status.lower())
    return {
        "name": execution["name"],
        "arn": execution["executionArn"],
        "stateMachine": execution["stateMachineArn"].rsplit(":", 1)[-1],
        "status": status,
        "started": execution.get("startDate"),
        "findingId": out.get("findingId") or inp.get("findingId") or detail.get("id") or "",
        "findingType": finding_type,
        "instanceId": instance,
        # the finding's account (multi-account); "" when the input names none (a manual isolate)
        "accountId": str(out.get("accountId") or inp.get("accountId") or detail.get("accountId") or ""),
        "decision": out.get("decision") or "",
        "outcome": outcome,
    }


def recent_executions(sfn: Any, state_machine_arns: list[str], limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for arn in state_machine_arns:
        page = sfn.list_executions(stateMachineArn=arn, maxResults=limit)
        rows.extend(page.get("executions", []))
    rows.sort(key=lambda e: e.get("startDate") or 0, reverse=True)
    return [execution_summary(sfn, e) for e in rows[:limit]]


class NoPendingApproval(RuntimeError):
    """The execution is not waiting for an analyst (finished, or never asked)."""


def answer_approval(sfn: Any, execution_arn: str, *, approve: bool, by: str, reason: str = "") -> str:
    """Approve (SendTaskSuccess) or deny (SendTaskFailure ``Vigil.ApprovalDenied``) the open
    approval request of a triage execution; returns the token used."""
    token = pending_task_token(sfn, execution_arn)
    if token is None:
        raise NoPendingApproval(f"{execution_arn} is not waiting for an approval")
    if approve:
        sfn.send_task_success(
            taskToken=token, output=json.dumps({"decision": "approve", "by": by, "reason": reason})
        )
    else:
        sfn.send_task_failure(
            taskToken=token, error="Vigil.ApprovalDenied", cause=json.dumps({"by": by, "reason": reason})
        )
    return token
