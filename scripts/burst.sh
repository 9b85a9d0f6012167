#!/usr/bin/env bash
# Bursts of security incidents through gen | validate | aggregate, and the alerts they raise.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 300 bash -c 'evtool gen --count "${1:-30000}" --seed 3 --fast --burst-probability 0.002 \
  --burst-size 60 -q | evtool validate -q | evtool aggregate -q' _ "${1:-}" > "$out"
windows=$(jq -s 'map(select(.kind == "window")) | length' "$out")
echo "windows: $windows; alerts: $(jq -s 'map(select(.kind == "alert")) | length' "$out")"
echo "window start          region          source              count  baseline  score"
jq -r 'select(.kind == "alert") | [.window_start, .region, .source, .count, .baseline, .score]
  | @tsv' "$out" | head -20 | awk -F'\t' '{printf "%-21s %-15s %-19s %5s %9s %6s\n", $1, $2, $3, $4, $5, $6}'
