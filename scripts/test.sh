#!/usr/bin/env bash
# Install the test extras into .venv and run everything: ruff, mypy (strict on core/ and
# transports/), then pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k windows).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
log=$(mktemp)
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
  cat "$log"; exit 1
fi
rm -f "$log"
echo "== ruff"
.venv/bin/ruff check evtool tests scripts
echo "== mypy"
.venv/bin/mypy evtool
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
