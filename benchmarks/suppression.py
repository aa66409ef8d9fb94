"""Suppression cost at ingest: findings/s through 100 ARCHIVE rules (GuardDuty's limit), one core.

    .venv/bin/python benchmarks/suppression.py

Findings are the pipeline's own (the SuspiciousTool hydra example) with instance details as the
enrichment fills them; the rules are 99 that miss on their second attribute (the worst realistic
case: every rule is tried) plus the issue's Done-when rule, ranked last. Suppression runs once per
finding occurrence, not per event, so this is compared with findings per second, not events.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from vigil import sample as s
from vigil.criteria import Suppressor, parse_filter
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState


def _doc(role: str) -> dict[str, Any]:
    ev = s.exec_(s.proc("/usr/bin/hydra", "-l", "root", "ssh://198.51.100.3", parent=s.proc("/bin/bash")))
    doc = Pipeline.default(account_id="123456789012", region="us-east-1").detect([ev], InMemoryState())
    out = copy.deepcopy(doc.occurrences[0].finding)
    out["resource"]["instanceDetails"].update(
        imageId="ami-0123", tags=[{"key": "Role", "value": role}, {"key": "Name", "value": f"{role}-1"}]
    )
    return out


def main() -> None:
    rules = [
        parse_filter(
            {
                "Name": f"rule-{i:03d}",
                "Action": "ARCHIVE",
                "Rank": 1 + i % 99,
                "FindingCriteria": {
                    "Criterion": {
                        "type": {"Equals": ["Execution:Runtime/SuspiciousTool", "Recon:EC2/Portscan"]},
                        "resource.instanceDetails.tags.value": {"Equals": [f"team-{i}"]},
                        "service.runtimeDetails.process.executablePath": {"Matches": ["/opt/*"]},
                        "severity": {"Gte": 1},
                        "resource.instanceDetails.imageId": {"NotEquals": ["ami-x"]},
                    }
                },
            }
        )
        for i in range(99)
    ]
    rules.append(parse_filter({"Name": "pentest-tools", "Action": "ARCHIVE", "Rank": 100, "FindingCriteria": {"Criterion": {
        "type": {"Equals": ["Execution:Runtime/SuspiciousTool"]},
        "resource.instanceDetails.tags.key": {"Equals": ["Role"]},
        "resource.instanceDetails.tags.value": {"Equals": ["pentest"]}}}}))  # fmt: skip
    suppress = Suppressor(rules)
    for role, want in (("web", None), ("pentest", "pentest-tools")):
        doc = _doc(role)
        assert suppress(doc) == want
        n = 20_000
        t0 = time.perf_counter()
        for _ in range(n):
            suppress(doc)
        dt = time.perf_counter() - t0
        print(f"100 ARCHIVE rules, {role} finding ({'matches the last' if want else 'matches none'}): "
              f"{n / dt:,.0f} findings/s, {dt / n * 1e6:.1f} us each")  # fmt: skip


if __name__ == "__main__":
    main()
