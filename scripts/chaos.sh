#!/usr/bin/env bash
# The chaos drill: for a bounded time, SIGKILL random stages and restart them, restart the broker (python scripts/chaos.py --help for options)
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
exec timeout 900 .venv/bin/python scripts/chaos.py "$@"
