"""The registry: discovery, one module = one detection, unique ids, meta rules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from vigil.registry import RegistryError, all_detections, discover


def test_discovers_every_detection_module() -> None:
    root = Path(__import__("vigil.detections").detections.__path__[0])
    modules = [p for p in root.rglob("*.py") if not p.name.startswith("_")]
    assert len(all_detections()) == len(modules)


def test_ids_are_unique_and_named_after_guardduty_types() -> None:
    types = [d.meta.type for d in all_detections()]
    assert len(types) == len(set(types))
    assert all(":Runtime/" in t for t in types if not d_ec2(t))
    assert any(":EC2/" in t for t in types)


def d_ec2(t: str) -> bool:
    return ":EC2/" in t or ":IAMUser/InstanceCredentialExfiltration" in t


def test_ec2_types_live_under_ec2_and_runtime_types_outside_it() -> None:
    # GIVEN every registered detection, WHEN we look at where its module is
    for d in all_detections():
        in_ec2 = type(d).__module__.startswith("vigil.detections.ec2.")
        # THEN an EC2 type is in the ec2/ tree and a runtime type is not
        assert in_ec2 == d_ec2(d.meta.type), (type(d).__module__, d.meta.type)


def _make_pkg(tmp_path: Path, name: str, files: dict[str, str]) -> str:
    pkg = tmp_path / name
    for rel, body in files.items():
        f = pkg / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(body))
    for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    sys.path.insert(0, str(tmp_path))
    return name


RULE = """
from typing import ClassVar
from vigil import sample as s
from vigil.detection import Detection, Example, Meta

class R{n}(Detection):
    meta = Meta(type="Execution:Runtime/ReverseShell", severity=8.0, title="t", description="d",
                mitre=("T1059",), runbook="r", false_positives=())
    kinds = frozenset({{"process_exec"}})
    fires: ClassVar = (Example("x", (s.exec_(s.proc("/bin/sh")),)),)
    near_misses: ClassVar = (Example("y", (s.exec_(s.proc("/bin/ls")),)),)
    def match(self, event, ctx):
        return True
"""


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    pkg = _make_pkg(
        tmp_path, "dupdets", {"execution/a.py": RULE.format(n=1), "execution/b.py": RULE.format(n=2)}
    )
    with pytest.raises(RegistryError, match="duplicate detection id"):
        discover(pkg)


def test_detection_in_the_wrong_folder_is_refused(tmp_path: Path) -> None:
    pkg = _make_pkg(tmp_path, "wrongdir", {"persistence/a.py": RULE.format(n=1)})
    with pytest.raises(RegistryError, match="belongs under detections/execution"):
        discover(pkg)


def test_a_detection_without_near_misses_is_refused(tmp_path: Path) -> None:
    body = RULE.format(n=1).replace(
        'near_misses: ClassVar = (Example("y", (s.exec_(s.proc("/bin/ls")),)),)', ""
    )
    pkg = _make_pkg(tmp_path, "nonear", {"execution/a.py": body})
    with pytest.raises(RegistryError, match="near miss"):
        discover(pkg)


def test_an_ec2_type_outside_the_ec2_tree_is_refused(tmp_path: Path) -> None:
    body = RULE.format(n=1).replace("Execution:Runtime/ReverseShell", "Execution:EC2/ReverseShell")
    pkg = _make_pkg(tmp_path, "ec2outside", {"execution/a.py": body})
    with pytest.raises(RegistryError, match="not a GuardDuty runtime finding type name"):
        discover(pkg)


def test_a_runtime_type_inside_the_ec2_tree_is_refused(tmp_path: Path) -> None:
    pkg = _make_pkg(tmp_path, "runtimeinside", {"ec2/execution/a.py": RULE.format(n=1)})
    with pytest.raises(RegistryError, match="not a GuardDuty EC2 finding type name"):
        discover(pkg)


def test_an_ec2_type_inside_the_ec2_tree_is_accepted(tmp_path: Path) -> None:
    body = RULE.format(n=1).replace("Execution:Runtime/ReverseShell", "Execution:EC2/ReverseShell")
    pkg = _make_pkg(tmp_path, "ec2inside", {"ec2/execution/a.py": body})
    assert [d.meta.type for d in discover(pkg)] == ["Execution:EC2/ReverseShell"]
