"""Validate a finding document against the ``Finding`` shape of botocore's GuardDuty service model.

The JSON wire names are each member's ``locationName`` (camelCase). Unknown keys, wrong types and
missing required members are errors: existing GuardDuty tooling must parse our findings unchanged.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape


@cache
def finding_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("guardduty")
    shape = model.shape_for("Finding")
    assert isinstance(shape, StructureShape)
    return shape


def _wire_members(shape: StructureShape) -> dict[str, tuple[str, Shape]]:
    return {m.serialization.get("name", name): (name, m) for name, m in shape.members.items()}


def validate(value: Any, shape: Shape | None = None, path: str = "finding") -> list[str]:
    shape = shape or finding_shape()
    errs: list[str] = []
    t = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        members = _wire_members(shape)
        for key, v in value.items():
            if key not in members:
                errs.append(f"{path}.{key}: not a member of {shape.name}")
                continue
            errs.extend(validate(v, members[key][1], f"{path}.{key}"))
        wire_of = {py: wire for wire, (py, _) in members.items()}
        for req in shape.required_members:
            if wire_of[req] not in value:
                errs.append(f"{path}: missing required {wire_of[req]}")
    elif isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{path}: expected list"]
        for i, v in enumerate(value):
            errs.extend(validate(v, shape.member, f"{path}[{i}]"))
    elif isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{path}: expected map"]
        for k, v in value.items():
            errs.extend(validate(v, shape.value, f"{path}.{k}"))
    elif t == "string":
        if not isinstance(value, str):
            errs.append(f"{path}: expected string, got {type(value).__name__}")
        elif shape.enum and value not in shape.enum:
            errs.append(f"{path}: {value!r} not in enum {shape.name}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errs.append(f"{path}: expected integer, got {value!r}")
    elif t in ("double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            errs.append(f"{path}: expected number, got {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            errs.append(f"{path}: expected boolean")
    elif t == "timestamp":
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                errs.append(f"{path}: {value!r} is not an ISO-8601 timestamp")
        elif not isinstance(value, int | float):
            errs.append(f"{path}: expected timestamp")
    return errs
