"""Redact the recording machine's own harness from a recorded corpus before it is stored.

The machine that recorded the corpus runs its shells under a sandbox launcher whose command line
carries its environment; it shows up in every process's lineage. It is not project data, so its
command line is replaced by a placeholder. Nothing a detection matches on changes (names, paths,
stdio and the event's own process are kept).

Usage: python benchmarks/corpus/redact.py IN.ndjson[.gz] OUT.ndjson.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

PLACEHOLDER = "[recording harness]"


def _is_harness(p: dict[str, Any]) -> bool:
    return "binary_backend" in str(p.get("cmd_line", "")) or str(p.get("name", "")).startswith("memfd:sealed")


def _scrub(p: Any) -> None:
    if not isinstance(p, dict):
        return
    if _is_harness(p):
        p["cmd_line"] = PLACEHOLDER
        p["args"] = [PLACEHOLDER]
    for a in p.get("lineage", []) or []:
        _scrub(a)


def main(src: str, dst: str) -> None:
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=9) as fout:
        for line in fin:
            if not line.strip():
                continue
            d = json.loads(line)
            for k in ("process", "target"):
                _scrub(d.get(k))
            fout.write(json.dumps(d, separators=(",", ":")).encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
