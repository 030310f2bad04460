#!/usr/bin/env bash
# The main job: a local nats-server with JetStream on a free loopback port and a temporary store, then against it
# the quickstart, topic pre-creation from examples/eventbus.yaml, the strategy comparison table and the topic
# configuration benchmark; then the server is stopped. Extra arguments go to the quickstart (e.g. --msgs 50000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

work=$(mktemp -d /tmp/natsbus-demo-XXXXXX)
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/store" --ports_file_dir "$work" >"$work/server.log" 2>&1 &
server=$!
# Keeps the script's own exit status: the server's (143 after the kill) never leaks into it.
cleanup() {
  local rc=$?
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
for _ in $(seq 1 400); do
  ports=$(ls "$work"/*.ports 2>/dev/null || true)
  [[ -n "$ports" ]] && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.05
done
url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$ports" | head -n1)
echo "demo: nats-server (pid $server) on $url"

echo
echo "== quickstart: event bus configured in code, windowed publishes, an ephemeral topic"
build/examples/natsbus-quickstart --url "$url" "$@"

echo
echo "== precreate: event bus from examples/eventbus.yaml, streams pre-created at start"
build/examples/natsbus-precreate --url "$url"

echo
echo "== bench strategy-table: every ack awaited, per strategy; medians of 12-192 rounds (more for the short runs), the fast columns in every order, all on one bus (about 50 s)"
build/bench/natsbus-bench --url "$url" --scenario strategy-table

echo
echo "== bench configure: 1,000 topics, pipelined against one at a time"
build/bench/natsbus-bench --url "$url" --scenario configure
