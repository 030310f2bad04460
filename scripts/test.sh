#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest (unit, integration against real
# nats-server processes, the installed-package check, and the fuzzers when clang is present).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 1200
