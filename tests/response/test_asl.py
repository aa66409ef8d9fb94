"""Meta-tests over statemachines/*.asl.json: every AWS step retries and catches, every transition
lands on a state, and every ${placeholder} is a DefinitionSubstitution in template.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MACHINES = {
    "triage.asl.json": "TriageStateMachine",
    "isolate_instance.asl.json": "IsolateInstanceStateMachine",
    "release_instance.asl.json": "ReleaseInstanceStateMachine",
}


def _states(states: dict[str, Any], inner: bool = False) -> Iterator[tuple[str, dict[str, Any], bool]]:
    for name, st in states.items():
        yield name, st, inner
        if "ItemProcessor" in st:
            yield from _states(st["ItemProcessor"]["States"], inner=True)


@pytest.mark.parametrize("file", sorted(MACHINES))
def test_every_aws_step_retries_and_catches(file: str) -> None:
    d = json.loads((REPO / "statemachines" / file).read_text())
    for name, st, inner in _states(d["States"]):
        if st["Type"] != "Task":
            continue
        assert st.get("Retry"), f"{file}: {name} has no Retry"
        # Tasks inside a Map are caught by the Map itself (which records the failure)
        assert inner or st.get("Catch"), f"{file}: {name} has no Catch"
        for r in st.get("Retry", []) + st.get("Catch", []):
            assert "States.ALL" not in r["ErrorEquals"] or "Next" in r, f"{file}: {name} retries States.ALL"


@pytest.mark.parametrize("file", sorted(MACHINES))
def test_transitions_land_on_states(file: str) -> None:
    d = json.loads((REPO / "statemachines" / file).read_text())

    def check(states: dict[str, Any]) -> None:
        for name, st in states.items():
            targets = [st.get("Next"), st.get("Default")]
            targets += [c.get("Next") for c in st.get("Choices", []) + st.get("Catch", [])]
            for t in filter(None, targets):
                assert t in states, f"{file}: {name} -> {t!r} does not exist"
            if "ItemProcessor" in st:
                check(st["ItemProcessor"]["States"])

    assert d["StartAt"] in d["States"]
    check(d["States"])


@pytest.mark.parametrize("file", sorted(MACHINES))
def test_placeholders_are_substituted_by_the_template(file: str) -> None:
    from samtranslator.yaml_helper import yaml_parse

    text = (REPO / "statemachines" / file).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    resource = yaml_parse((REPO / "template.yaml").read_text())["Resources"][MACHINES[file]]
    assert resource["Properties"]["DefinitionUri"] == f"statemachines/{file}"
    assert placeholders == set(resource["Properties"]["DefinitionSubstitutions"])
