"""A typed view of one instance, built from the raw EC2 / Auto Scaling describe results.

Total functions: malformed or missing input gives an empty view, never an exception, because a
workflow must reach a clear outcome ("instance gone") rather than a failure loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.response import tags as t
from vigil.response.record import IsolationRecord, parse_record

GONE_STATES = frozenset({"shutting-down", "terminated"})


@dataclass(frozen=True, slots=True)
class Interface:
    interface_id: str
    vpc_id: str
    groups: tuple[str, ...]
    group_names: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def legacy_recorded_groups(self) -> tuple[str, ...] | None:
        """Groups recorded in the legacy ``vigil:original-sgs`` tag (older releases), or None."""
        raw = self.tags.get(t.ORIGINAL_GROUPS)
        if raw is None:
            return None
        return tuple(g for g in raw.split(",") if g)

    @property
    def isolated(self) -> bool:
        return self.group_names == (t.ISOLATION_GROUP_NAME,)


@dataclass(frozen=True, slots=True)
class InstanceView:
    instance_id: str
    exists: bool
    state: str = ""
    vpc_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    interfaces: tuple[Interface, ...] = ()
    volume_ids: tuple[str, ...] = ()
    asg_name: str | None = None
    termination_protection: bool | None = None
    record: IsolationRecord | None = None  # ResponseTable isolation#<instance id>

    @property
    def isolated(self) -> bool:
        return bool(self.interfaces) and all(i.isolated for i in self.interfaces)

    def recorded_groups(self, i: Interface) -> tuple[str, ...] | None:
        """The groups ``i`` had before isolation: from the isolation record, else from a legacy
        tag; None when nothing is recorded for it."""
        if self.record is not None and i.interface_id in self.record.original_groups:
            return self.record.original_groups[i.interface_id]
        return i.legacy_recorded_groups

    def recorded_termination_protection(self) -> bool | None:
        if self.record is not None and self.record.termination_protection is not None:
            return self.record.termination_protection
        legacy = self.tags.get(t.ORIGINAL_TERMINATION_PROTECTION)
        return None if legacy is None else legacy == "true"


def _dict(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _list(v: Any) -> Sequence[Any]:
    return v if isinstance(v, list | tuple) else ()


def tag_map(raw: Any) -> dict[str, str]:
    return {
        str(x["Key"]): str(x.get("Value", "")) for x in _list(raw) if isinstance(x, Mapping) and "Key" in x
    }


def _interface(raw: Mapping[str, Any], fallback_vpc: str) -> Interface | None:
    eni = str(raw.get("NetworkInterfaceId", ""))
    if not eni:
        return None
    groups = [_dict(g) for g in _list(raw.get("Groups"))]
    return Interface(
        interface_id=eni,
        vpc_id=str(raw.get("VpcId") or fallback_vpc),
        groups=tuple(str(g.get("GroupId", "")) for g in groups),
        group_names=tuple(str(g.get("GroupName", "")) for g in groups),
        tags=tag_map(raw.get("TagSet", raw.get("Tags"))),
    )


def instance_view(instance_id: str, observed: Mapping[str, Any]) -> InstanceView:
    """``observed`` holds what the workflow's describe steps returned:

    ``instance.reservations`` (DescribeInstances ``Reservations``), ``eni.interfaces``
    (DescribeNetworkInterfaces), ``asg.instances`` (DescribeAutoScalingInstances) and
    ``protection`` (DescribeInstanceAttribute disableApiTermination) and ``record`` (GetItem of
    the isolation record in ResponseTable); each may be missing.
    """
    found: Mapping[str, Any] | None = None
    for res in _list(_dict(_dict(observed).get("instance")).get("reservations")):
        for inst in _list(_dict(res).get("Instances")):
            if _dict(inst).get("InstanceId") == instance_id:
                found = _dict(inst)
    if found is None:
        return InstanceView(instance_id=instance_id, exists=False)
    state = str(_dict(found.get("State")).get("Name", ""))
    vpc = str(found.get("VpcId", ""))
    # DescribeNetworkInterfaces carries the ENI tags; DescribeInstances is the fallback.
    raw_enis = _list(_dict(observed.get("eni")).get("interfaces")) or _list(found.get("NetworkInterfaces"))
    interfaces = tuple(
        sorted(
            (i for i in (_interface(_dict(r), vpc) for r in raw_enis) if i is not None),
            key=lambda i: i.interface_id,
        )
    )
    volumes = tuple(
        str(_dict(b.get("Ebs")).get("VolumeId"))
        for b in (_dict(x) for x in _list(found.get("BlockDeviceMappings")))
        if _dict(b.get("Ebs")).get("VolumeId")
    )
    asg = next(
        (
            str(_dict(a).get("AutoScalingGroupName"))
            for a in _list(_dict(observed.get("asg")).get("instances"))
            if _dict(a).get("InstanceId") == instance_id and _dict(a).get("AutoScalingGroupName")
        ),
        None,
    )
    protection_raw = _dict(_dict(observed.get("protection")).get("DisableApiTermination")).get("Value")
    return InstanceView(
        instance_id=instance_id,
        exists=state not in GONE_STATES,
        state=state,
        vpc_id=vpc,
        tags=tag_map(found.get("Tags")),
        interfaces=interfaces,
        volume_ids=volumes,
        asg_name=asg,
        termination_protection=protection_raw if isinstance(protection_raw, bool) else None,
        record=parse_record(_dict(observed).get("record")),
    )
