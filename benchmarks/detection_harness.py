"""`make detection-quality`: recall on attack scenarios and false alarms on benign activity.

- Recall: every attack scenario of benchmarks/scenarios/attacks.toml (our own, from GTFOBins,
  Elastic/Falco rule ideas and GuardDuty's descriptions; see the file's header) runs through every
  registered detection with the built-in intel on a fresh State, as one instance's events would.
  A scenario is detected when it raises at least one Medium-or-higher finding. Printed per ATT&CK
  tactic, for the core tactics and for all.
- Benign: the recorded benign corpus (benchmarks/corpus/benign.ndjson.gz, replayed through the real
  ingest path by detection_quality.replay) plus the benign administrator scenarios
  (benchmarks/scenarios/benign_admin.toml). Medium-or-higher distinct findings per 10,000 events.

The last line is the contract: ``recall_medium_plus=R benign_medium_plus_per_10k=F`` (R a fraction
of the attack scenarios, 0..1). Exit status 1 when F is above the goal (10).

Usage: .venv/bin/python benchmarks/detection_harness.py [--missed] [--benign-detail] [--no-corpus]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detection_quality import replay
from scenario_events import CORE_TACTICS, HERE, TACTICS, Scenario, load

from vigil import severity
from vigil.pipeline import Pipeline
from vigil.state import InMemoryState

GOAL_PER_10K = 10.0


def findings(pipeline: Pipeline, sc: Scenario) -> dict[str, float]:
    """Distinct finding types the scenario raised, with their highest severity."""
    res = pipeline.detect(list(sc.events), InMemoryState())
    if res.detection_errors:
        raise RuntimeError(f"{sc.id}: detection errors {res.detection_errors[:3]}")
    out: dict[str, float] = {}
    for o in res.occurrences:
        t, s = o.finding["type"], float(o.finding["severity"])
        out[t] = max(s, out.get(t, 0.0))
    return out


def medium_plus(found: dict[str, float]) -> dict[str, float]:
    return {t: s for t, s in found.items() if s >= severity.MEDIUM}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--missed", action="store_true", help="list the attack scenarios without a Medium+ finding"
    )
    ap.add_argument("--benign-detail", action="store_true", help="list what each benign scenario raised")
    ap.add_argument("--no-corpus", action="store_true", help="skip the recorded corpus (quick iteration)")
    args = ap.parse_args()

    pipeline = Pipeline.default(account_id="123456789012", region="us-east-1")
    attacks = load(HERE / "attacks.toml")
    benign = load(HERE / "benign_admin.toml", need_tactic=False)

    total: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    missed: dict[str, list[str]] = defaultdict(list)
    types: Counter[str] = Counter()
    for sc in attacks:
        found = medium_plus(findings(pipeline, sc))
        total[sc.tactic] += 1
        types.update(found.keys())
        if found:
            hit[sc.tactic] += 1
        else:
            missed[sc.tactic].append(sc.id)
    print(f"attack scenarios: {len(attacks)} ({HERE / 'attacks.toml'})")
    print(f"{'tactic':24s} {'detected':>9s} {'recall':>7s}")
    for tactic in TACTICS:
        if total[tactic]:
            print(f"{tactic:24s} {hit[tactic]:4d}/{total[tactic]:<4d} {hit[tactic] / total[tactic]:7.1%}")
            if args.missed and missed[tactic]:
                print("    missed: " + ", ".join(missed[tactic]))
    core_n = sum(total[t] for t in CORE_TACTICS)
    core_h = sum(hit[t] for t in CORE_TACTICS)
    all_n, all_h = sum(total.values()), sum(hit.values())
    print(f"{'core tactics':24s} {core_h:4d}/{core_n:<4d} {core_h / max(1, core_n):7.1%}")
    print(f"{'all tactics':24s} {all_h:4d}/{all_n:<4d} {all_h / max(1, all_n):7.1%}")
    print(
        "Medium+ types raised by attack scenarios: " + ", ".join(f"{t}={n}" for t, n in types.most_common())
    )

    b_events = 0
    b_medium = 0
    b_noisy: list[str] = []
    for sc in benign:
        found = findings(pipeline, sc)
        b_events += len(sc.events)
        loud = medium_plus(found)
        b_medium += len(loud)
        if loud:
            b_noisy.append(f"{sc.id} ({', '.join(sorted(loud))})")
        if args.benign_detail and found:
            print(
                f"    benign {sc.id}: "
                + ", ".join(f"{t} {severity.label(s)}" for t, s in sorted(found.items()))
            )
    print(
        f"benign admin scenarios: {len(benign)} scenarios, {b_events} events, Medium+ findings {b_medium}"
        f" ({b_medium * 10_000 / max(1, b_events):.0f} per 10k of these events)"
        + (f": {'; '.join(b_noisy)}" if b_noisy else "")
    )
    c_events = c_medium = 0
    if not args.no_corpus:
        r = replay()
        c_events, c_medium = r.events, r.medium_plus
        print(f"benign corpus: {c_events} events, Medium+ findings {c_medium} ({r.corpus})")
    per10k = (b_medium + c_medium) * 10_000 / max(1, b_events + c_events)
    print(f"recall_medium_plus={all_h / max(1, all_n):.3f} benign_medium_plus_per_10k={per10k:.2f}")
    return 0 if per10k <= GOAL_PER_10K else 1


if __name__ == "__main__":
    sys.exit(main())
