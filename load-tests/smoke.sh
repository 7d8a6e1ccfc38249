#!/usr/bin/env bash
# A short load run: starts gmshub on a free loopback port, drives it with
# bayeux-load over WebSocket (200 clients, 20 rooms), checks that every
# expected delivery arrived, and stops the server by its pid.
# Usage: load-tests/smoke.sh [BIN_DIR]   (default target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release}"
log=$(mktemp)
report=$(mktemp)
data=$(mktemp -d)
# The generator publishes on /load/room/N: list it, as a site lists its broadcast channels.
GMSHUB__SQLITE__PATH="$data/gmshub.db" GMSHUB__COMETD__PUBLISHCHANNELS="/load/**" GMSHUB__DOS_FILTER__IPWHITELIST=127.0.0.0/8 "$bin/gmshub" --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$log" "$report" "$data"' EXIT
addr=""
for _ in $(seq 1 100); do
  addr=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "gmshub did not start:"; cat "$log"; exit 1; }
timeout 120 "$bin/bayeux-load" --url "http://$addr/genesys/cometd" --scenario rooms \
  --clients 200 --rooms 20 --rooms-per-client 5 --rates 200 --publishers 2 --seconds 3 --drain 2 \
  --server-pid "$pid" --label gmshub --json "$report"
python3 - "$report" <<'PY'
import json, sys
step = json.load(open(sys.argv[1]))["steps"][0]
ok = step["received"] > 0 and step["missed"] == 0 and step["errors"] == 0
print(f"smoke: {step['received']} of {step['expected']} deliveries, p99 {step['p99_ms']} ms, "
      f"{step['errors']} errors: {'ok' if ok else 'FAILED'}")
sys.exit(0 if ok else 1)
PY
