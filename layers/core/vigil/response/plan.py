"""What isolation and release must change, computed from what the instance looks like now.

Idempotent by construction: the plan is a function of the current state, and the originals are
read from the tags written by an earlier (possibly partial) run before the current groups, so a
re-run never records Vigil's own groups as "original" and never changes an isolated instance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vigil.response import tags as t
from vigil.response.instance import InstanceView, Interface

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


def _originals(i: Interface) -> tuple[str, ...]:
    recorded = i.recorded_groups
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
    for i in inst.interfaces:
        originals = _originals(i)
        if not originals:
            warnings.append(f"{i.interface_id}: original groups unknown (only Vigil groups, no record tag)")
        interfaces.append(
            {
                "interfaceId": i.interface_id,
                "vpcId": i.vpc_id,
                "originalGroups": list(originals),
                "record": i.recorded_groups is None and bool(originals),
                "tags": [_tag(t.ORIGINAL_GROUPS, ",".join(originals))],
            }
        )
    to_record = [x for x in interfaces if x["record"]]
    instance_tags = [_tag(t.FINDING_ID, req.finding_id), _tag(t.ISOLATION_STATE, "isolating")]
    protection_recorded = t.ORIGINAL_TERMINATION_PROTECTION in inst.tags
    if not protection_recorded:
        original = bool(inst.termination_protection)
        instance_tags.append(_tag(t.ORIGINAL_TERMINATION_PROTECTION, "true" if original else "false"))
    vpcs = sorted({x["vpcId"] for x in interfaces})
    steps = [
        f"snapshot {len(inst.volume_ids)} attached volume(s) {', '.join(inst.volume_ids) or '-'} "
        f"tagged {t.FINDING_ID}={req.finding_id}",
        "record original security groups per interface: "
        + "; ".join(f"{x['interfaceId']}={','.join(x['originalGroups'])}" for x in interfaces),
        "enable termination protection",
        (f"detach from Auto Scaling group {inst.asg_name} without decrementing capacity (it is replaced)")
        if inst.asg_name
        else "not in an Auto Scaling group",
        f"move every interface to {t.UNTRACK_GROUP_NAME} (existing flows become untracked), "
        f"then to the empty {t.ISOLATION_GROUP_NAME} group (cuts them) in VPC {', '.join(vpcs)}",
        f"tag the instance {t.ISOLATION_STATE}=isolated, {t.ISOLATED_AT}={now_iso}",
    ]
    return {
        **base,
        "outcome": "dry-run" if req.dry_run else "isolate",
        "steps": steps,
        "warnings": warnings,
        "interfaces": interfaces,
        "interfacesToRecord": to_record,
        "originalGroupsJson": json.dumps(
            {x["interfaceId"]: x["originalGroups"] for x in interfaces}, separators=(",", ":"), sort_keys=True
        ),
        "instanceTags": instance_tags,
        "isolatedTags": [
            _tag(t.FINDING_ID, req.finding_id),
            _tag(t.ISOLATION_STATE, "isolated"),
            _tag(t.ISOLATED_AT, now_iso),
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
        "budget": {
            "key": BUDGET_KEY_PREFIX + hour_bucket(now_iso),
            "limit": str(budget_per_hour),
            "expiresAt": str(now_epoch + BUDGET_ITEM_TTL_S),
        },
    }


def release_plan(inst: InstanceView, *, finding_id: str | None, now_iso: str) -> dict[str, Any]:
    """The release plan: restore each interface's recorded groups and the recorded protection.
    ``outcome``: gone | not-isolated | release."""
    fid = finding_id or inst.tags.get(t.FINDING_ID) or "manual"
    base: dict[str, Any] = {"instanceId": inst.instance_id, "findingId": fid, "now": now_iso}
    if not inst.exists:
        return {**base, "outcome": "gone", "steps": [f"instance {inst.instance_id} no longer exists"]}
    restore = [
        {"interfaceId": i.interface_id, "groups": list(i.recorded_groups or ())}
        for i in inst.interfaces
        if i.recorded_groups
    ]
    if not restore:
        return {
            **base,
            "outcome": "not-isolated",
            "steps": ["no interface carries recorded groups: nothing to restore"],
        }
    unknown = [i.interface_id for i in inst.interfaces if i.isolated and not i.recorded_groups]
    recorded_protection = inst.tags.get(t.ORIGINAL_TERMINATION_PROTECTION)
    # Without a record, keep protection on: the safe side for an instance that held evidence.
    protection = recorded_protection == "true" if recorded_protection is not None else True
    return {
        **base,
        "outcome": "release",
        "restore": restore,
        "warnings": [f"{x}: isolated but no recorded groups; left isolated" for x in unknown],
        "terminationProtection": protection,
        "interfaceIds": [r["interfaceId"] for r in restore],
        "releasedTags": [_tag(t.ISOLATION_STATE, "released"), _tag(t.RELEASED_AT, now_iso)],
        "steps": [
            *(f"restore {r['interfaceId']} to {','.join(r['groups'])}" for r in restore),
            f"termination protection back to {str(protection).lower()}",
            f"remove {t.ORIGINAL_GROUPS} / {t.ORIGINAL_TERMINATION_PROTECTION} records, "
            f"tag {t.ISOLATION_STATE}=released",
        ],
    }
