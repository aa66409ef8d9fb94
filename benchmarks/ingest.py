"""`make bench`: ingest-path throughput (decode -> normalize -> all detections), one core, no AWS I/O.

Compares against json.loads over the same NDJSON bytes in the same run. The last line is a
contract: ``ingest_events_per_s=N json_loads_events_per_s=M ratio=N/M``.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flowlog
from workload import batches, generate

from vigil.pipeline import Pipeline
from vigil.registry import all_detections
from vigil.state import InMemoryState


def _best(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-flowlog", action="store_true", help="skip the flow-log line")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one core

    print(f"generating {args.events:,} events ...", file=sys.stderr)
    recs = batches(generate(args.events))
    total_bytes = sum(len(r) for r in recs)
    lines = [line for r in recs for line in r.split(b"\n") if line]
    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1")
    n_det = len(all_detections())

    state = InMemoryState()
    findings = 0

    def ingest() -> None:
        nonlocal findings
        findings = 0
        for r in recs:
            res = pipeline.process_record(r, state)
            findings += len(res.occurrences)
            assert not res.rejected

    def loads() -> None:
        jl = json.loads
        for r in recs:
            for line in r.split(b"\n"):
                if line:
                    jl(line)

    gz = [gzip.compress(r, 6) for r in recs]

    def gunzip() -> None:
        for g in gz:
            gzip.decompress(g)

    ingest()  # warm-up (imports, caches)
    t_ingest = _best(ingest, args.repeats)
    t_loads = _best(loads, args.repeats)
    t_gunzip = _best(gunzip, args.repeats)
    n = len(lines)
    ingest_eps = n / t_ingest
    loads_eps = n / t_loads
    print(
        f"events={n} batches={len(recs)} bytes_per_event={total_bytes / n:.0f} detections={n_det} findings_per_run={findings}",
        file=sys.stderr,
    )
    print(
        f"gzip_decompress_events_per_s={n / t_gunzip:.0f} (not included above; zlib at ~{total_bytes / t_gunzip / 1e6:.0f} MB/s)",
        file=sys.stderr,
    )
    print(f"us_per_event: ingest={1e6 / ingest_eps:.2f} json_loads={1e6 / loads_eps:.2f}", file=sys.stderr)
    if not args.no_flowlog:  # the AWS-delivered path (issue 16): printed before the contract line
        print(flowlog.measure(args.repeats), flush=True)
    print(
        f"ingest_events_per_s={ingest_eps:.0f} json_loads_events_per_s={loads_eps:.0f} ratio={ingest_eps / loads_eps:.2f}"
    )


if __name__ == "__main__":
    main()
