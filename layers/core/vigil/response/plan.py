"""What isolation and release must change, computed from what the instance looks like now.

Idempotent by construction: the plan is a function of the current state, and the originals are
read from the isolation record (ResponseTable, written by an earlier, possibly partial, run)
before the current groups, so a re-run never records Vigil's own groups as "original" and never
changes an isolated instance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.response import tags as t
from vigil.response.instance import InstanceView, Interface
from vigil.response.record import record_key, record_update

BUDGET_KEY_PREFIX = "isolation-budget#"
BUDGET_ITEM_TTL_S = 2 * 3600


@dataclass(frozen=True, slots=True)
class IsolationRequest:
    finding_id: str
    finding_type: str
    instance_id: str
    dry_run: bool
    requested_by: str

    @classmethod
    def from_input(cls, doc: Mapping[str, Any]) -> IsolationRequest:
        dry = doc.get("dryRun", True)
        return cls(
            finding_id=str(doc.get("findingId") or "manual"),
            finding_type=str(doc.get("findingType") or ""),
            instance_id=str(doc.get("instanceId") or ""),
            # Anything but an explicit false is a dry run: the safe default.
            dry_run=not (dry is False or str(dry).lower() == "false"),
            requested_by=str(doc.get("requestedBy") or "unknown"),
        )


def _tag(key: str, value: str) -> dict[str, str]:
    return {"Key": key, "Value": value}


def _originals(inst: InstanceView, i: Interface) -> tuple[str, ...]:
    recorded = inst.recorded_groups(i)
    if recorded is not None:
        return recorded
    return tuple(g for g, n in zip(i.groups, i.group_names, strict=False) if n not in t.VIGIL_GROUP_NAMES)


def hour_bucket(now_iso: str) -> str:
    """``2026-11-27T22:05:00Z`` -> ``2026-11-27T22``: the budget window (one clock hour)."""
    return now_iso[:13]


def isolation_plan(
    req: IsolationRequest,
    inst: InstanceView,
    *,
    protected_tag_key: str,
    budget_per_hour: int,
    now_iso: str,
    now_epoch: int,
) -> dict[str, Any]:
    """The isolation plan (JSON-ready). ``outcome`` routes the workflow:
    gone | protected | already-isolated | dry-run | isolate."""
    base: dict[str, Any] = {
        "findingId": req.finding_id,
        "findingType": req.finding_type,
        "instanceId": req.instance_id,
        "dryRun": req.dry_run,
        "requestedBy": req.requested_by,
        "now": now_iso,
    }
    if not inst.exists:
        return {
            **base,
            "outcome": "gone",
            "steps": [f"instance {req.instance_id} no longer exists: nothing to do"],
        }
    if protected_tag_key and protected_tag_key in inst.tags:
        return {
            **base,
            "outcome": "protected",
            "steps": [f"instance carries the protected tag {protected_tag_key}: never isolated"],
        }
    if inst.isolated:
        return {
            **base,
            "outcome": "already-isolated",
            "steps": ["every interface is already in vigil-isolation"],
        }

    interfaces: list[dict[str, Any]] = []
    warnings: list[str] = []
    to_record: dict[str, list[str]] = {}
    in_table = inst.record.original_groups if inst.record is not None else {}
    for i in inst.interfaces:
        originals = _originals(inst, i)
        if not originals:
            warnings.append(f"{i.interface_id}: original groups unknown (only Vigil groups, no record)")
        elif i.interface_id not in in_table:
            to_record[i.interface_id] = list(originals)  # legacy tag records move to the table too
        interfaces.append(
            {"interfaceId": i.interface_id, "vpcId": i.vpc_id, "originalGroups": list(originals)}
        )
    protection = inst.recorded_termination_protection()
    if protection is None:
        protection = inst.termination_protection
    key = record_key(req.instance_id)
    vpcs = sorted({x["vpcId"] for x in interfaces})
    steps = [
        f"record original security groups per interface in ResponseTable {key}: "
        + "; ".join(f"{x['interfaceId']}={','.join(x['originalGroups'])}" for x in interfaces),
        f"move every interface to {t.UNTRACK_GROUP_NAME} (existing flows become untracked), "
        f"then to the empty {t.ISOLATION_GROUP_NAME} group (cuts them) in VPC {', '.join(vpcs)}",
        "enable termination protection",
        (f"detach from Auto Scaling group {inst.asg_name} without decrementing capacity (it is replaced)")
        if inst.asg_name
        else "not in an Auto Scaling group",
        f"snapshot {len(inst.volume_ids)} attached volume(s) {', '.join(inst.volume_ids) or '-'} "
        f"tagged {t.FINDING_ID}={req.finding_id}",
        f"tag the instance {t.ISOLATION_STATE}=isolated, {t.ISOLATED_AT}={now_iso}, "
        f"and it and its interfaces {t.ISOLATION_RECORD}={key}",
    ]
    return {
        **base,
        "outcome": "dry-run" if req.dry_run else "isolate",
        "steps": steps,
        "warnings": warnings,
        "interfaces": interfaces,
        "interfaceIds": [x["interfaceId"] for x in interfaces],
        "record": record_update(
            instance_id=req.instance_id,
            finding_id=req.finding_id,
            now_iso=now_iso,
            existing=inst.record,
            to_record=to_record,
            termination_protection=protection,
        ),
        "originalGroupsJson": json.dumps(
            {x["interfaceId"]: x["originalGroups"] for x in interfaces}, separators=(",", ":"), sort_keys=True
        ),
        "pointerTags": [_tag(t.ISOLATION_RECORD, key)],
        "isolatedTags": [
            _tag(t.FINDING_ID, req.finding_id),
            _tag(t.ISOLATION_STATE, "isolated"),
            _tag(t.ISOLATED_AT, now_iso),
            _tag(t.ISOLATION_RECORD, key),
        ],
        "vpcIds": vpcs,
        "volumeIds": list(inst.volume_ids),
        "snapshotTags": [
            _tag(t.FINDING_ID, req.finding_id),
            _tag("vigil:instance-id", req.instance_id),
            _tag("vigil:purpose", "evidence"),
        ],
        "autoScalingGroup": inst.asg_name,
        "evidence": {"snapshotIds": []},
        # Steps after the cut catch their failures here: they never undo or fail an isolation.
        "bookkeeping": {},
        "budget": {
            "key": BUDGET_KEY_PREFIX + hour_bucket(now_iso),
            "limit": str(budget_per_hour),
            "expiresAt": str(now_epoch + BUDGET_ITEM_TTL_S),
        },
    }


def release_plan(inst: InstanceView, *, finding_id: str | None, now_iso: str) -> dict[str, Any]:
    """The release plan: restore each interface's recorded groups and the recorded protection.
    ``outcome``: gone | not-isolated | release."""
    recorded_finding = inst.record.finding_id if inst.record is not None else None
    fid = finding_id or recorded_finding or inst.tags.get(t.FINDING_ID) or "manual"
    key = record_key(inst.instance_id)
    base: dict[str, Any] = {"instanceId": inst.instance_id, "findingId": fid, "now": now_iso}
    if not inst.exists:
        return {**base, "outcome": "gone", "steps": [f"instance {inst.instance_id} no longer exists"]}
    restore = []
    for i in inst.interfaces:
        groups = inst.recorded_groups(i)
        if groups:
            restore.append({"interfaceId": i.interface_id, "groups": list(groups)})
    if not restore:
        return {
            **base,
            "outcome": "not-isolated",
            "steps": ["no interface has recorded groups: nothing to restore"],
        }
    attached = {i.interface_id for i in inst.interfaces}
    unknown = [i.interface_id for i in inst.interfaces if i.isolated and not inst.recorded_groups(i)]
    detached = sorted(set(inst.record.original_groups) - attached) if inst.record is not None else []
    recorded_protection = inst.recorded_termination_protection()
    # Without a record, keep protection on: the safe side for an instance that held evidence.
    protection = recorded_protection if recorded_protection is not None else True
    return {
        **base,
        "outcome": "release",
        "restore": restore,
        "warnings": [f"{x}: isolated but no recorded groups; left isolated" for x in unknown]
        + [f"{x}: recorded but no longer attached to {inst.instance_id}; not restored" for x in detached],
        "terminationProtection": protection,
        "interfaceIds": [r["interfaceId"] for r in restore],
        "recordKey": {"pk": {"S": key}},
        "releasedTags": [_tag(t.ISOLATION_STATE, "released"), _tag(t.RELEASED_AT, now_iso)],
        "steps": [
            *(f"restore {r['interfaceId']} to {','.join(r['groups'])}" for r in restore),
            f"termination protection back to {str(protection).lower()}",
            f"delete the isolation record {key}, remove the {t.ISOLATION_RECORD} pointers, "
            f"tag {t.ISOLATION_STATE}=released",
        ],
    }
