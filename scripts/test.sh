#!/usr/bin/env bash
# Install the test extras into .venv and run everything: ruff, mypy (strict on evtool/, and on
# tests/ for wrong calls and values), then pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k windows).
# `scripts/test.sh --fast` is the lane to run between edits: no broker, PostgreSQL, browser,
# terminal or slow test (markers follow from the fixtures a test uses, tests/conftest.py).
set -euo pipefail
fast=()
if [ "${1:-}" = "--fast" ]; then
  shift
  # in-process tests share nothing (own tmp dirs, free ports), so they run on every core
  fast=(-n auto -m "not broker and not postgres and not browser and not tmux and not slow")
fi
cd "$(dirname "$0")/.."
# the tests start evtool as a program hundreds of times: with bytecode never written (this
# machine's environment sets PYTHONDONTWRITEBYTECODE), each start compiles every module again
unset PYTHONDONTWRITEBYTECODE
source scripts/_venv.sh
log=$(mktemp)
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >"$log" 2>&1; then
  cat "$log"; exit 1
fi
rm -f "$log"
# The dashboard test opens watch's page in headless Chromium: Debian's, installed if missing.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing chromium for the browser test"
  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } \
    >/tmp/evtool-chromium-install.log 2>&1 || echo "(could not install chromium; that test will skip)"
fi
echo "== ruff"
.venv/bin/ruff check evtool tests scripts
echo "== mypy"
.venv/bin/mypy evtool tests
echo "== pytest"
if [ ${#fast[@]} -gt 0 ]; then
  exec .venv/bin/python -m pytest -p no:cacheprovider --durations=15 "${fast[@]}" "$@"
fi
# Every test owns its vhost, database, port, tmux server and files, so they share the cores;
# the tests that restart the shared broker run alone afterwards. Exit 5 is "nothing selected here".
pass() { .venv/bin/python -m pytest -p no:cacheprovider --durations=15 "$@" || { s=$?; [ $s = 5 ] || return $s; }; }
status=0
pass -n auto -m "not exclusive" "$@" || status=$?
echo "== pytest: the tests that restart the broker, alone"
pass -m exclusive "$@" || status=$?
exit $status
