#!/usr/bin/env bash
# Installs what natsbus needs from Debian 12 packages and fetches nats-server 2.10 for the tests
# (scripts/nats-server-2.10.sh), idempotent and quiet when all is there, and builds natsbus.
# Usage: scripts/setup.sh [build-dir]   (NATSBUS_JOBS: parallel compile jobs, default: the number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake make g++ pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-test1.81-dev
  libssl-dev openssl libspdlog-dev libyaml-cpp-dev libcli11-dev nats-server libnats-dev clang-14 libclang-rt-14-dev
  prometheus)  # promtool and a Prometheus server for the metrics tests, which start their own on free ports

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package enables a system service on port 9090; the tests need none, and a developer machine is better
  # without a Prometheus of its own running (where systemd runs at all).
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
     systemctl is-enabled prometheus >/dev/null 2>&1; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# The second nats-server version of the integration tests (2.10, unpacked into a cache folder, not installed).
# Offline, setup goes on without it: the integration-2.10 test fetches it again, and fails if it cannot.
scripts/nats-server-2.10.sh >/dev/null ||
  echo "setup: nats-server 2.10 not fetched (see above); the integration-2.10 test needs it" >&2

build=${1:-build}
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"${NATSBUS_JOBS:-$(nproc)}"
