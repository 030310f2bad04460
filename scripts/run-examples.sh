#!/usr/bin/env bash
# Runs the examples that need a server against a nats-server (JetStream) started here on a free loopback port with
# a temporary store, stopped by its pid at the end. Usage: scripts/run-examples.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: scripts/run-examples.sh BUILD_DIR}
source "$(dirname "$0")/local-server.sh" /tmp/natsbus-examples
echo "== quickstart against $url"
timeout 120 "$build/examples/natsbus-quickstart" --url "$url" --msgs 2000
echo "== precreate against $url"
timeout 120 "$build/examples/natsbus-precreate" --url "$url"
echo "== the natsbus tool against $url"
timeout 60 "$build/bin/natsbus" -s "$url" stream ls
echo "run-examples: all passed"
