#!/usr/bin/env bash
# Build an audit database from a pipe run, replay an hour of it at 20x into a fresh aggregate,
# show that the recomputed metrics match, and verify every stored metric.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=2026-11-26T10:00:00Z
echo "\$ evtool gen --count 20000 --rate 5 ... | evtool validate | evtool aggregate --forward | evtool audit --db audit.db"
evtool gen --count 20000 --rate 5 --seed 4 --start "$start" --fast --duplicates 0.02 -q \
  | evtool validate -q | evtool aggregate --forward -q | evtool audit --db "$work/audit.db" -q \
  | jq -c 'select(.kind == "metric") | [.metric_id, .total]' | sort > "$work/first.txt"
echo "\$ evtool replay --db audit.db --since 2026-11-26T11:00:00Z --until 2026-11-26T11:01:00Z --speed 20"
timeout 60 evtool replay --db "$work/audit.db" --since 2026-11-26T11:00:00Z --until 2026-11-26T11:01:00Z \
  --speed 20 -q | wc -l | xargs echo "  events replayed in a minute of event time:"
evtool replay --db "$work/audit.db" -q | evtool validate -q | evtool aggregate -q \
  | jq -c 'select(.kind == "metric") | [.metric_id, .total]' | sort > "$work/again.txt"
if cmp -s "$work/first.txt" "$work/again.txt"; then
  echo "recomputed from the record: the same $(wc -l < "$work/first.txt") metrics, ids and totals"
else
  echo "recomputed metrics differ"; exit 1
fi
evtool replay --db "$work/audit.db" --verify
