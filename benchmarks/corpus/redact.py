"""Redact the recording machine's own harness from a recorded corpus before it is stored.

The machine that recorded the corpus runs its shells under a sandbox launcher whose command line
carries its environment; it shows up in every process's lineage. It is not project data, so its
command line is replaced by a placeholder. Nothing a detection matches on changes (names, paths,
stdio and the event's own process are kept).

A machine that is not an EC2 instance names itself ``host-<hostname>``; the ingest takes only
EC2-shaped instance ids (docs/wire-format.md §4), so such an id becomes ``RECORDING_INSTANCE``.

Usage: python benchmarks/corpus/redact.py IN.ndjson[.gz] OUT.ndjson.gz
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from typing import Any

PLACEHOLDER = "[recording harness]"
RECORDING_INSTANCE = "i-0000000000000c0de"
EC2_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


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
            host = d.get("host")
            if isinstance(host, dict) and not EC2_ID.match(str(host.get("instance_id", ""))):
                host["instance_id"] = RECORDING_INSTANCE
            fout.write(json.dumps(d, separators=(",", ":")).encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
