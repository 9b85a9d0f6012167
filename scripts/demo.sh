#!/usr/bin/env bash
# A first look: make the venv, install evtool, run gen | validate | aggregate over pipes and
# show the windows it counted.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "\$ evtool gen --count 2000 --seed 1 --fast --duplicates 0.03 --invalid 0.02 --out-of-order 0.05 \\"
echo "    | evtool validate | evtool aggregate --window 10 --lateness 5 > windows.ndjson"
evtool gen --count 2000 --seed 1 --start 2026-11-26T12:00:00Z --fast \
    --duplicates 0.03 --invalid 0.02 --out-of-order 0.05 --max-delay 3 \
  | evtool validate \
  | evtool aggregate --window 10 --lateness 5 > "$out/windows.ndjson"
echo
python3 - "$out/windows.ndjson" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
windows = [r for r in recs if r.get("kind") == "window"]
dead = [r for r in recs if r.get("kind") == "deadletter"]
print(f"{'window start':22} {'total':>5}  security  survey  migration")
for w in windows[:12]:
    s = w["by_source"]
    print(f"{w['window_start']:22} {w['total']:5}  {s.get('security.incident', 0):8}"
          f"  {s.get('survey.victimization', 0):6}  {s.get('migration.case', 0):9}")
print(f"... {len(windows)} windows, {sum(w['total'] for w in windows)} distinct valid events,"
      f" {sum(1 for r in recs if r.get('kind') == 'metric')} metrics")
reasons = {}
for d in dead:
    reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
print(f"dead letters: {len(dead)} {reasons}")
if dead:
    print("for example:", dead[0]["error"])
PY

# The same stages over RabbitMQ, when one answers on 127.0.0.1:5672 (a vhost of the demo's own).
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || ! command -v rabbitmqctl >/dev/null; then
  echo
  echo "(no RabbitMQ on 127.0.0.1:5672: skipping the broker half of the demo)"
  exit 0
fi
echo
echo "== the same over RabbitMQ"
vhost=evtool-demo
rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$vhost" && rabbitmqctl -q set_permissions -p "$vhost" guest ".*" ".*" ".*"
export EVTOOL_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
evtool validate -i amqp -o amqp -q & pids+=($!)
evtool aggregate -i amqp -o amqp --idle-flush 1 -q & pids+=($!)
evtool audit -i amqp --db "$out/audit.db" -o /dev/null -q & pids+=($!)
sleep 2
echo "\$ evtool gen --count 2000 --seed 1 --fast --duplicates 0.03 -o amqp   (validate, aggregate, audit run on the broker)"
evtool gen --count 2000 --seed 1 --fast --duplicates 0.03 -o amqp -q
for _ in $(seq 30); do
  sleep 1
  n=$(evtool replay --db "$out/audit.db" -q 2>/dev/null | wc -l || echo 0)
  [ "$n" -ge 1900 ] && break
done
sleep 3
echo "audit database: $(evtool replay --db "$out/audit.db" -q | wc -l) distinct events stored"
evtool replay --db "$out/audit.db" --verify
