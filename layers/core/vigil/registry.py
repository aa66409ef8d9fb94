"""Discovers detections: every ``Detection`` subclass defined in a module under ``vigil.detections``.

Naming convention (DESIGN §6): a runtime type lives at ``detections/<threat_purpose>/<name>.py``
(``trojan/drop_point_dns.py`` -> ``Trojan:Runtime/DropPoint!DNS``); the EC2 type of the same name
mirrors it under ``detections/ec2/`` (``ec2/trojan/drop_point_dns.py`` -> ``Trojan:EC2/DropPoint!DNS``).
The registry enforces both: an EC2 type outside ``ec2/``, or a runtime type inside it, is refused.

Refuses duplicate finding types, a module that defines more than one detection, and metadata that
fails the corpus rules (Sigma-style meta-checks), so a broken rule fails at import, not at 3 a.m.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from types import ModuleType

from vigil import severity as sev
from vigil.detection import Detection

_TYPE_RE = re.compile(r"^[A-Za-z]+:Runtime/[A-Za-z0-9&]+(\.[A-Za-z0-9]+)*(![A-Za-z0-9]+)?$")
# GuardDuty's EC2 ("foundational") types, and the instance-credential IAMUser types they include
_EC2_TYPE_RE = re.compile(
    r"^[A-Za-z]+:(EC2/[A-Za-z0-9&]+|IAMUser/InstanceCredentialExfiltration)(\.[A-Za-z0-9]+)*(![A-Za-z0-9]+)?$"
)
EC2_PACKAGE = "ec2"  # EC2 types live under detections/ec2/<threat_purpose>/, runtime types outside it
_MITRE_RE = re.compile(r"^T\d{4}(\.\d{3})?$")


class RegistryError(Exception):
    pass


def _check(det: type[Detection], module: ModuleType, package: str = "vigil.detections") -> None:
    m = getattr(det, "meta", None)
    where = f"{module.__name__}.{det.__name__}"
    if m is None:
        raise RegistryError(f"{where}: no meta")
    in_ec2 = module.__name__.startswith(f"{package}.{EC2_PACKAGE}.")
    if in_ec2:
        if not _EC2_TYPE_RE.match(m.type):
            raise RegistryError(
                f"{where}: {m.type!r} is not a GuardDuty EC2 finding type name (detections/ec2/)"
            )
    elif not _TYPE_RE.match(m.type):
        raise RegistryError(f"{where}: {m.type!r} is not a GuardDuty runtime finding type name")
    sev.label(m.severity)  # raises on out-of-range
    if not getattr(det, "kinds", None):
        raise RegistryError(f"{where}: declares no event kinds")
    for name in ("title", "description", "runbook"):
        if not getattr(m, name).strip():
            raise RegistryError(f"{where}: empty meta.{name}")
    if not m.mitre or not all(_MITRE_RE.match(t) for t in m.mitre):
        raise RegistryError(f"{where}: meta.mitre must list ATT&CK technique ids, got {m.mitre!r}")
    if not det.fires:
        raise RegistryError(f"{where}: needs at least one firing example")
    if not det.near_misses:
        raise RegistryError(f"{where}: needs at least one near miss")
    purpose_dir = module.__name__.split(".")[-2]
    expected_dir = re.sub(r"(?<!^)(?=[A-Z])", "_", m.threat_purpose).lower()
    if purpose_dir != expected_dir:
        raise RegistryError(f"{where}: {m.type} belongs under detections/{expected_dir}/")


def discover(package: str = "vigil.detections") -> tuple[Detection, ...]:
    """Import every module below ``package`` and instantiate the detection each one defines."""
    root = importlib.import_module(package)
    found: dict[str, Detection] = {}
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.ispkg or info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        defined = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Detection)
            and obj is not Detection
            and obj.__module__ == module.__name__
        ]
        if len(defined) != 1:
            raise RegistryError(f"{info.name}: one module = one detection, found {len(defined)}")
        det = defined[0]
        _check(det, module, package)
        if det.meta.type in found:
            other = type(found[det.meta.type]).__module__
            raise RegistryError(f"duplicate detection id {det.meta.type!r}: {info.name} and {other}")
        found[det.meta.type] = det()
    return tuple(sorted(found.values(), key=lambda d: d.meta.type))


@cache
def all_detections() -> tuple[Detection, ...]:
    return discover()
