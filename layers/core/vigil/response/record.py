"""The isolation record: an instance's original security groups per interface (and its original
termination protection), kept in ResponseTable under ``isolation#<instance id>``.

A table item holds 400 KB, so any number of groups on any number of interfaces fits; EC2 tags
(256 characters a value) only point at the record (``vigil:isolation-record``). The workflow reads
the record with GetItem before planning, and writes it with the one UpdateItem this module builds:

- first isolation: ``SET originalGroups = :groups ...`` if the item has no ``originalGroups`` yet;
- a re-run after a partial isolation: ``SET originalGroups.#i0 = if_not_exists(originalGroups.#i0,
  :g0) ...`` for interfaces not recorded yet, so the originals are never overwritten by Vigil's own
  groups; either shape is conditional on what was read, so a concurrent run cannot clobber it.

Release restores exactly these groups and deletes the item: a later isolation records the groups
of that day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KEY_PREFIX = "isolation#"


def record_key(instance_id: str) -> str:
    return KEY_PREFIX + instance_id


@dataclass(frozen=True, slots=True)
class IsolationRecord:
    """What ResponseTable holds for one isolated instance."""

    original_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    termination_protection: bool | None = None
    finding_id: str | None = None
    has_groups: bool = False  # the item has an ``originalGroups`` map (maybe empty)


def _plain(v: Any) -> Any:
    """One DynamoDB-JSON value (``{"S": ...}``, ``{"L": [...]}`` ...) as plain Python; None if unknown."""
    if not isinstance(v, Mapping) or len(v) != 1:
        return None
    ((kind, raw),) = v.items()
    if kind == "S" and isinstance(raw, str):
        return raw
    if kind == "BOOL" and isinstance(raw, bool):
        return raw
    if kind == "L" and isinstance(raw, list):
        return [_plain(x) for x in raw]
    if kind == "SS" and isinstance(raw, list):
        return [x for x in raw if isinstance(x, str)]
    if kind == "M" and isinstance(raw, Mapping):
        return {str(k): _plain(x) for k, x in raw.items()}
    return None


def parse_record(get_item: Any) -> IsolationRecord | None:
    """The record from a GetItem answer (``{"Item": {...}}``), None when there is none.

    Total: a malformed item gives what could be read, never an exception (release then leaves
    an interface without a readable record isolated, and says so).
    """
    item = get_item.get("Item") if isinstance(get_item, Mapping) else None
    if not isinstance(item, Mapping):
        return None
    groups_raw = _plain(item.get("originalGroups"))
    groups: dict[str, tuple[str, ...]] = {}
    if isinstance(groups_raw, dict):
        for eni, ids in groups_raw.items():
            if isinstance(ids, list):
                groups[eni] = tuple(g for g in ids if isinstance(g, str) and g)
    protection = _plain(item.get("originalTerminationProtection"))
    finding = _plain(item.get("findingId"))
    return IsolationRecord(
        original_groups=groups,
        termination_protection=protection if isinstance(protection, bool) else None,
        finding_id=finding if isinstance(finding, str) else None,
        has_groups=isinstance(groups_raw, dict),
    )


def _groups_value(groups: list[str]) -> dict[str, Any]:
    return {"L": [{"S": g} for g in groups]}


def record_update(
    *,
    instance_id: str,
    finding_id: str,
    now_iso: str,
    existing: IsolationRecord | None,
    to_record: Mapping[str, list[str]],
    termination_protection: bool | None,
) -> dict[str, Any]:
    """Key, UpdateExpression, ConditionExpression, names and values (DynamoDB JSON) of the
    record write, ready for the ``dynamodb:updateItem`` task of IsolateInstance."""
    names: dict[str, str] = {"#g": "originalGroups"}
    values: dict[str, Any] = {
        ":iid": {"S": instance_id},
        ":fid": {"S": finding_id},
        ":now": {"S": now_iso},
    }
    sets = [
        "instanceId = :iid",
        "findingId = if_not_exists(findingId, :fid)",
        "recordedAt = if_not_exists(recordedAt, :now)",
        "updatedAt = :now",
    ]
    if termination_protection is not None:
        values[":prot"] = {"BOOL": termination_protection}
        sets.append("originalTerminationProtection = if_not_exists(originalTerminationProtection, :prot)")
    if existing is None or not existing.has_groups:
        values[":groups"] = {"M": {eni: _groups_value(g) for eni, g in sorted(to_record.items())}}
        sets.append("#g = :groups")
        condition = "attribute_not_exists(#g)"
    else:
        for n, (eni, g) in enumerate(sorted(to_record.items())):
            names[f"#i{n}"] = eni
            values[f":g{n}"] = _groups_value(g)
            sets.append(f"#g.#i{n} = if_not_exists(#g.#i{n}, :g{n})")
        condition = "attribute_exists(#g)"
    return {
        "key": {"pk": {"S": record_key(instance_id)}},
        "updateExpression": "SET " + ", ".join(sets),
        "conditionExpression": condition,
        "names": names,
        "values": values,
    }
