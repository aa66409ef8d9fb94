"""Validate an ASFF document against the ``AwsSecurityFinding`` shape of botocore's securityhub
service model, the way tests/guardduty_shape.py validates GuardDuty's ``Finding``.

Unknown keys, wrong types, missing required members and enum values are the structural checks
shared with guardduty_shape; on top: every string holds a non-space (``NonEmptyString``'s
pattern, whole string), and ASFF's documented length/count limits (vigil.asff.LIMITS).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape
from guardduty_shape import validate as validate_shape

from vigil.asff import LIMITS


@cache
def asff_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.shape_for("AwsSecurityFinding")
    assert isinstance(shape, StructureShape)
    return shape


def _patterns(value: Any, shape: Shape, path: str) -> list[str]:
    errs: list[str] = []
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                errs += _patterns(v, shape.members[k], f"{path}.{k}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, v in enumerate(value):
            errs += _patterns(v, shape.member, f"{path}[{i}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for k, v in value.items():
            errs += _patterns(k, shape.key, f"{path} key {k!r}")
            errs += _patterns(v, shape.value, f"{path}.{k}")
    elif shape.type_name == "string" and isinstance(value, str):
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            errs.append(f"{path}: {value[:40]!r} does not match {pattern}")
    return errs


def _limits(doc: dict[str, Any]) -> list[str]:
    errs = []
    for key in ("Id", "GeneratorId", "Title", "Description", "SourceUrl"):
        if len(doc.get(key, "")) > LIMITS[key]:
            errs.append(f"{key}: longer than {LIMITS[key]}")
    fields = doc.get("ProductFields") or {}
    if len(fields) > LIMITS["ProductFields.pairs"]:
        errs.append(f"ProductFields: more than {LIMITS['ProductFields.pairs']} pairs")
    for k, v in fields.items():
        if len(k) > LIMITS["ProductFields.key"] or len(v) > LIMITS["ProductFields.value"]:
            errs.append(f"ProductFields.{k[:40]}: key or value too long")
    if len(doc.get("Types", [])) > LIMITS["Types"] or len(doc.get("Resources", [])) > LIMITS["Resources"]:
        errs.append("Types or Resources: too many")
    for r in doc.get("Resources", []):
        for k, v in (r.get("Tags") or {}).items():
            if len(k) > LIMITS["Tags.key"] or len(v) > LIMITS["Tags.value"]:
                errs.append(f"Resources.Tags.{k[:40]}: key or value too long")
    return errs


def validate(doc: Any) -> list[str]:
    errs = validate_shape(doc, asff_shape(), "asff")
    if isinstance(doc, dict):
        errs += _patterns(doc, asff_shape(), "asff") + _limits(doc)
    return errs
