#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest (unit, integration against real
# nats-server processes of the system's 2.9 and of 2.10, the thread tests with and without ThreadSanitizer, the
# unit and integration tests with AddressSanitizer and UndefinedBehaviorSanitizer, the installed-package check,
# and the fuzzers when clang is present). NATSBUS_JOBS: parallel compile jobs of setup.sh and asan.sh (default:
# the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 1200
