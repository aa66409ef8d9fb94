#!/usr/bin/env bash
# Record the benign corpus: vigil-agent --stdout while activity.sh runs, gzip the NDJSON.
# Usage: sudo benchmarks/corpus/record.sh [out.ndjson.gz]   (root: the agent needs audit netlink)
set -eu
cd "$(dirname "$0")/../.."
OUT=${1:-benchmarks/corpus/benign.ndjson.gz}
RAW=$(mktemp /tmp/vigil-corpus-raw.XXXXXX)
.venv/bin/python -m vigil_agent.main --stdout --log-level warning > "$RAW" &
AGENT=$!
sleep 3
ROUNDS=${ROUNDS:-3} bash benchmarks/corpus/activity.sh || echo "activity ended early (rc=$?)" >&2
sleep 3
kill -INT "$AGENT"; wait "$AGENT" || true
.venv/bin/python benchmarks/corpus/redact.py "$RAW" "$OUT"
echo "recorded $(wc -l < "$RAW") events to $OUT ($(stat -c %s "$OUT") bytes)"
rm -f "$RAW"
