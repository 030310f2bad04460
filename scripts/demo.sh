#!/usr/bin/env bash
# The main job: a local nats-server with JetStream on a free loopback port and a temporary store, the demo
# against it, then the server is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

work=$(mktemp -d /tmp/natsbus-demo-XXXXXX)
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/store" --ports_file_dir "$work" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 400); do
  ports=$(ls "$work"/*.ports 2>/dev/null || true)
  [[ -n "$ports" ]] && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.05
done
url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$ports" | head -n1)
echo "demo: nats-server (pid $server) on $url"
build/examples/natsbus-demo --url "$url" "$@"
