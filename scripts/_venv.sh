# Sourced by the scripts: make sure .venv exists with evtool installed, quietly.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/evtool ]; then
  "${PYTHON:-python3}" -m venv .venv
  log=$(mktemp)
  .venv/bin/python -m pip install -q --disable-pip-version-check -e . >"$log" 2>&1 || { cat "$log"; exit 1; }
  rm -f "$log"
fi
export PATH="$PWD/.venv/bin:$PATH"
