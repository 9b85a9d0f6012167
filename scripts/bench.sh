#!/usr/bin/env bash
# The benchmark (not a test): events/s per stage and end to end beside baselines from the same
# run, medians of several runs, and aggregate's memory; it ends with the table of every stage
# of every pack against its target, quiet and beside a busy neighbour (scripts/load.py).
# Arguments go to scripts/bench.py (--events, --runs, --skip-memory, --skip-busy, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  scripts/test.sh --co -q >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >/dev/null 2>&1
exec .venv/bin/python scripts/bench.py "$@"
