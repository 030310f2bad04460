#!/usr/bin/env bash
# Runs the examples that need a server against a nats-server (JetStream) started here on a free loopback port with
# a temporary store, stopped by its pid at the end. Usage: scripts/run-examples.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: scripts/run-examples.sh BUILD_DIR}
work=$(mktemp -d /tmp/natsbus-examples-XXXXXX)
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/store" --ports_file_dir "$work" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  local rc=$?
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
ports=
for _ in $(seq 1 400); do
  ports=$(ls "$work"/*.ports 2>/dev/null || true)
  [[ -n "$ports" ]] && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.05
done
[[ -n "$ports" ]] || { echo "run-examples: nats-server did not start" >&2; exit 1; }
url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$ports" | head -n1)
echo "== quickstart against $url"
timeout 120 "$build/examples/natsbus-quickstart" --url "$url" --msgs 2000
echo "== precreate against $url"
timeout 120 "$build/examples/natsbus-precreate" --url "$url"
echo "== the natsbus tool against $url"
timeout 60 "$build/bin/natsbus" -s "$url" stream ls
echo "run-examples: all passed"
