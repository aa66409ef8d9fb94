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
ROUNDS=${ROUNDS:-3} bash benchmarks/corpus/activity.sh
sleep 3
kill -INT "$AGENT"; wait "$AGENT" || true
gzip -9 -c "$RAW" > "$OUT"
echo "recorded $(wc -l < "$RAW") events to $OUT ($(stat -c %s "$OUT") bytes)"
rm -f "$RAW"
