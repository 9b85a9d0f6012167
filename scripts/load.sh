#!/usr/bin/env bash
# Sustained load over the broker: gen -> validate -> aggregate -> audit at a fixed rate for a (python scripts/load.py --help for options)
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
exec timeout 900 .venv/bin/python scripts/load.py "$@"
