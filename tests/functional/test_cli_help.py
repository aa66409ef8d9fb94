"""`vigil` help and version (issue 15, CLI rough edges).

GIVEN every `vigil` command and group, WHEN its help is printed, THEN flags show no value, values
show a NAME (never typer's `<str>`, `<bool>`, `<int>`, `<float>`) and the usage line names a
required argument FILE, not `{file}`; `vigil --version` prints the installed version.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vigil_cli.main import app


def _paths(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    if isinstance(cmd, typer.core.TyperGroup):
        for name, sub in cmd.commands.items():
            out += _paths(sub, (*path, name))
    return out


PATHS = _paths(typer.main.get_command(app))


def test_every_command_is_walked() -> None:
    assert {("replay",), ("findings", "list"), ("findings", "show"), ("response", "list")} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "vigil")
def test_help_has_no_type_labels_and_no_braced_arguments(path: tuple[str, ...]) -> None:
    res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert not re.findall(r"<(?:str|bool|int|float)[^>]*>", res.output), res.output
    (usage,) = [line for line in res.output.splitlines() if "Usage:" in line]
    assert "{" not in usage, usage


def test_a_value_option_shows_its_name_and_a_flag_shows_none() -> None:
    res = CliRunner().invoke(app, ["findings", "list", "--help"], env={"COLUMNS": "200"})
    lines = {line.split()[1]: line for line in res.output.splitlines() if line.startswith("│ --")}
    assert "NAME" in lines["--stack"] and "INSTANCE_ID" in lines["--instance"]
    assert lines["--json"].split()[2:4] == ["JSON", "lines"]  # the help text follows the flag


def test_replay_usage_names_its_file() -> None:
    res = CliRunner().invoke(app, ["replay", "--help"], env={"COLUMNS": "200"})
    assert "replay [OPTIONS] FILE" in res.output


def test_version() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"vigil {version('vigil')}"
