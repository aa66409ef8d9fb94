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
from dataclasses import dataclass, field
from pathlib import Path

from vigil import severity, wire
from vigil.normalize.agent import normalize_batch
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState

DEFAULT = Path(__file__).resolve().parent / "corpus" / "benign.ndjson.gz"
BATCH = 500


@dataclass
class Replay:
    """What the benign corpus raised: distinct findings and matched events by (type, severity)."""

    corpus: str
    events: int = 0
    decode_errors: int = 0
    rejected: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    per_type: Counter[tuple[str, float]] = field(default_factory=Counter)  # distinct findings
    matched: Counter[tuple[str, float]] = field(default_factory=Counter)  # matched events
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def medium_plus(self) -> int:
        return sum(n for (t, s), n in self.per_type.items() if s >= severity.MEDIUM)

    @property
    def medium_plus_matched(self) -> int:
        return sum(n for (t, s), n in self.matched.items() if s >= severity.MEDIUM)


def replay(corpus: str = str(DEFAULT), show: int = 3) -> Replay:
    """Replay a recorded corpus through the ingest path (decode -> normalize -> detect) in batches."""
    data = Path(corpus).read_bytes()
    raw = gzip.decompress(data) if corpus.endswith(".gz") else data
    whole = wire.decode_record(raw, max_raw=1 << 30)  # a recorded corpus, not one Kinesis record
    decoded = whole.events
    out = Replay(corpus=corpus, decode_errors=len(whole.errors))
    host = next((e.host for e in decoded if e.host is not None), None)
    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1")
    state = InMemoryState()
    out.kinds.update(str(type(e).__struct_config__.tag) for e in decoded)
    distinct: dict[str, tuple[str, float]] = {}
    for i in range(0, len(decoded), BATCH):
        chunk = decoded[i : i + BATCH]
        events, rej = normalize_batch(chunk, default_host=host)
        host = next((e.host for e in reversed(chunk) if e.host is not None), host)
        out.rejected += len(rej)
        res = pipeline.detect(events, state)
        state.commit()
        out.events += res.events
        for o in res.occurrences:
            f = o.finding
            key = (f["type"], float(f["severity"]))
            out.matched[key] += o.count
            distinct[f["id"]] = key
            runtime = f["service"].get("runtimeDetails", {})  # EC2 types (an attack sequence) have none
            proc = runtime.get("process", {})
            ctx = runtime.get("context", {})
            what = ctx.get("commandLineExample") or ctx.get("filePath") or proc.get("executablePath", "")
            dns = f["service"].get("action", {}).get("dnsRequestAction", {}).get("domain")
            sample = f"{proc.get('name', '?')}: {dns or what}"[:160]
            if len(out.examples[f["type"]]) < show and sample not in out.examples[f["type"]]:
                out.examples[f["type"]].append(sample)
        if res.detection_errors:
            print(f"detection errors: {res.detection_errors[:3]}", file=sys.stderr)
    out.per_type.update(distinct.values())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT))
    ap.add_argument("--show", type=int, default=3, help="example command lines per finding type")
    args = ap.parse_args()

    r = replay(args.corpus, args.show)
    print(f"corpus: {r.corpus}")
    print(f"events: {r.events} (decode errors {r.decode_errors}, rejected {r.rejected})")
    print("kinds: " + ", ".join(f"{k}={v}" for k, v in r.kinds.most_common()))
    print(f"{'type':62s} {'sev':>6s} {'findings':>8s} {'events':>7s}")
    for (t, s), n in sorted(r.per_type.items(), key=lambda x: (-x[0][1], x[0][0])):
        print(f"{t:62s} {severity.label(s):>6s} {n:8d} {r.matched[(t, s)]:7d}")
        for ex in r.examples[t]:
            print(f"    e.g. {ex}")
    per10k_d = r.medium_plus * 10_000 / max(1, r.events)
    per10k_m = r.medium_plus_matched * 10_000 / max(1, r.events)
    print(f"medium_plus_findings={r.medium_plus} per_10k_events={per10k_d:.2f} (goal <= 1)")
    print(f"medium_plus_matched_events={r.medium_plus_matched} per_10k_events={per10k_m:.2f}")
    return 0 if per10k_d <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
