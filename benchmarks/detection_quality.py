"""Detection quality on a benign corpus: how many findings does normal activity raise?

Replays a recorded agent stream (gzip NDJSON from ``vigil-agent --stdout``, see
benchmarks/corpus/record.sh) through the real ingest path (decode -> normalize -> all detections,
built-in intel, in-memory State) in batches, as IngestFunction would, and reports findings by type
and severity. The contract (docs/detection-quality.md): Medium-or-higher findings <= 1 per 10,000
events, counted as distinct findings (GuardDuty-style aggregation: one finding id per type,
instance and dedup key) and, more strictly, as matched events.

Usage: .venv/bin/python benchmarks/detection_quality.py [benchmarks/corpus/benign.ndjson.gz] [--show N]
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import Counter, defaultdict
from pathlib import Path

from vigil import severity, wire
from vigil.normalize.agent import normalize_batch
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState

DEFAULT = Path(__file__).resolve().parent / "corpus" / "benign.ndjson.gz"
BATCH = 500


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--show", type=int, default=3, help="example command lines per finding type")
    args = ap.parse_args()

    data = Path(args.corpus).read_bytes()
    raw = gzip.decompress(data) if args.corpus.endswith(".gz") else data
    whole = wire.decode_record(raw, max_raw=1 << 30)  # a recorded corpus, not one Kinesis record
    decoded, errors = whole.events, whole.errors
    host = next((e.host for e in decoded if e.host is not None), None)
    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1")
    state = InMemoryState()
    kinds: Counter[str] = Counter(str(type(e).__struct_config__.tag) for e in decoded)
    matched: Counter[tuple[str, float]] = Counter()
    distinct: dict[str, tuple[str, float]] = {}
    examples: dict[str, list[str]] = defaultdict(list)
    n_events = 0
    rejected = 0
    for i in range(0, len(decoded), BATCH):
        chunk = decoded[i : i + BATCH]
        events, rej = normalize_batch(chunk, default_host=host)
        host = next((e.host for e in reversed(chunk) if e.host is not None), host)
        rejected += len(rej)
        res = pipeline.detect(events, state)
        state.commit()
        n_events += res.events
        for o in res.occurrences:
            f = o.finding
            key = (f["type"], float(f["severity"]))
            matched[key] += o.count
            distinct[f["id"]] = key
            proc = f["service"]["runtimeDetails"].get("process", {})
            ctx = f["service"]["runtimeDetails"].get("context", {})
            what = ctx.get("commandLineExample") or ctx.get("filePath") or proc.get("executablePath", "")
            dns = f["service"].get("action", {}).get("dnsRequestAction", {}).get("domain")
            sample = f"{proc.get('name', '?')}: {dns or what}"[:160]
            if len(examples[f["type"]]) < args.show and sample not in examples[f["type"]]:
                examples[f["type"]].append(sample)
        if res.detection_errors:
            print(f"detection errors: {res.detection_errors[:3]}", file=sys.stderr)

    per_type: Counter[tuple[str, float]] = Counter(distinct.values())
    med_distinct = sum(n for (t, s), n in per_type.items() if s >= severity.MEDIUM)
    med_matched = sum(n for (t, s), n in matched.items() if s >= severity.MEDIUM)
    print(f"corpus: {args.corpus}")
    print(f"events: {n_events} (decode errors {len(errors)}, rejected {rejected})")
    print("kinds: " + ", ".join(f"{k}={v}" for k, v in kinds.most_common()))
    print(f"{'type':62s} {'sev':>6s} {'findings':>8s} {'events':>7s}")
    for (t, s), n in sorted(per_type.items(), key=lambda x: (-x[0][1], x[0][0])):
        print(f"{t:62s} {severity.label(s):>6s} {n:8d} {matched[(t, s)]:7d}")
        for ex in examples[t]:
            print(f"    e.g. {ex}")
    per10k_d = med_distinct * 10_000 / max(1, n_events)
    per10k_m = med_matched * 10_000 / max(1, n_events)
    print(f"medium_plus_findings={med_distinct} per_10k_events={per10k_d:.2f} (goal <= 1)")
    print(f"medium_plus_matched_events={med_matched} per_10k_events={per10k_m:.2f}")
    return 0 if per10k_d <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
