"""The core is pure (DESIGN §2): no boto3, no os.environ, no clock, no network, no AWS adapters.

Checked on the source (AST), so a forbidden import hidden in a function body fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "layers" / "core" / "vigil"
FORBIDDEN_MODULES = {
    "boto3",
    "botocore",
    "vigil_aws",
    "socket",
    "requests",
    "urllib.request",
    "http.client",
    "subprocess",
    "aws_lambda_powertools",
}
FORBIDDEN_CALLS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("os", "getenv"),
    ("random", "random"),
}


def _modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py"))


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for n in names:
            if n in FORBIDDEN_MODULES or n.split(".")[0] in FORBIDDEN_MODULES:
                out.append(f"{path.name}:{node.lineno} imports {n}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_CALLS:
                out.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
            if node.value.id == "os" and node.attr == "environ":
                out.append(f"{path.name}:{node.lineno} reads os.environ")
    return out


def test_core_has_modules() -> None:
    assert len(_modules()) > 10


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_is_pure(path: Path) -> None:
    assert _violations(path) == []


def test_the_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport boto3\n\ndef f():\n    return os.environ['X'], time.time()\n")
    assert len(_violations(bad)) == 3
