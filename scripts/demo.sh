#!/usr/bin/env bash
# The main job: a local nats-server with JetStream on a free loopback port and a temporary store, then against it
# the quickstart, topic pre-creation from examples/eventbus.yaml, the strategy comparison table and the topic
# configuration benchmark; then the server is stopped. Extra arguments go to the quickstart (e.g. --msgs 50000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

source scripts/local-server.sh /tmp/natsbus-demo
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
