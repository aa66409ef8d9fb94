"""Validate an OCSF event against the Detection Finding class (2004) compiled from the published
schema (tests/data/ocsf/detection_finding-<version>.json, made by compile_schema.py from
github.com/ocsf/ocsf-schema at the tag and commit recorded in the file).

Checks: unknown attributes, missing required attributes (profile attributes only when the event
lists the profile in ``metadata.profiles``), types (with their base types, regexes, max lengths
and value ranges), ``is_array``, enum values, and objects' ``at_least_one`` constraints.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).parent / "data" / "ocsf" / "detection_finding-1.1.0.json"


@cache
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA.read_text()))


def _scalar(value: Any, type_name: str, path: str) -> list[str]:
    types = schema()["types"]
    chain = []
    t: str | None = type_name
    while t:
        chain.append(t)
        t = types.get(t, {}).get("type")
    base = chain[-1]
    if base == "string_t" and not isinstance(value, str):
        return [f"{path}: expected string ({type_name}), got {type(value).__name__}"]
    if base in ("integer_t", "long_t") and (not isinstance(value, int) or isinstance(value, bool)):
        return [f"{path}: expected integer ({type_name}), got {value!r}"]
    if base == "float_t" and (not isinstance(value, int | float) or isinstance(value, bool)):
        return [f"{path}: expected number, got {value!r}"]
    if base == "boolean_t" and not isinstance(value, bool):
        return [f"{path}: expected boolean, got {value!r}"]
    errs = []
    for t in chain:
        spec = types.get(t, {})
        if "regex" in spec and isinstance(value, str) and not re.search(spec["regex"], value):
            errs.append(f"{path}: {value[:40]!r} is not a valid {t}")
        if "max_len" in spec and isinstance(value, str) and len(value) > spec["max_len"]:
            errs.append(f"{path}: longer than {spec['max_len']} ({t})")
        if "range" in spec and isinstance(value, int) and not spec["range"][0] <= value <= spec["range"][1]:
            errs.append(f"{path}: {value} outside {spec['range']} ({t})")
    return errs


def _attributes(
    value: Any, attrs: dict[str, Any], path: str, profiles: set[str], constraints: Any = None
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected object, got {type(value).__name__}"]
    errs = []
    for key, v in value.items():
        spec = attrs.get(key)
        if spec is None:
            errs.append(f"{path}.{key}: not an attribute")
            continue
        errs += _value(v, spec, f"{path}.{key}", profiles)
    for name, spec in attrs.items():
        applies = "profile" not in spec or spec["profile"] in profiles
        if applies and spec["requirement"] == "required" and name not in value:
            errs.append(f"{path}: missing required {name}")
    group = (constraints or {}).get("at_least_one")
    if group and not any(k in value for k in group):
        errs.append(f"{path}: needs at least one of {group}")
    return errs


def _value(v: Any, spec: dict[str, Any], path: str, profiles: set[str]) -> list[str]:
    if spec["is_array"]:
        if not isinstance(v, list):
            return [f"{path}: expected array"]
        return [
            e
            for i, x in enumerate(v)
            for e in _value(x, dict(spec, is_array=False), f"{path}[{i}]", profiles)
        ]
    if "enum" in spec and v not in spec["enum"]:
        return [f"{path}: {v!r} not in enum {spec['enum']}"]
    t = spec["type"]
    if t == "object":  # OCSF's generic object (e.g. unmapped): any JSON object
        return [] if isinstance(v, dict) else [f"{path}: expected object"]
    if t.endswith("_t"):
        return _scalar(v, t, path)
    obj = schema()["objects"][t]
    return _attributes(v, obj["attributes"], path, profiles, obj.get("constraints"))


def validate(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["event: expected object"]
    profiles = set((event.get("metadata") or {}).get("profiles") or [])
    unknown = profiles - {"cloud", "host", "security_control", "datetime"}
    errs = [f"metadata.profiles: {p!r} is not a profile of this class" for p in sorted(unknown)]
    return errs + _attributes(event, schema()["class"]["attributes"], "event", profiles)
