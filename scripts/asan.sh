#!/usr/bin/env bash
# Builds the library, the unit tests and the integration tests with AddressSanitizer and UndefinedBehaviorSanitizer
# in build-asan/ and runs them (the integration tests against the system's nats-server). Fails on any report: a
# memory error, a leak, undefined behaviour (-fno-sanitize-recover: the first report ends the run).
# NATSBUS_JOBS: parallel compile jobs (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f build-asan/CMakeCache.txt ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # -O1 -g1: what the sanitizers need (line tables for the reports), at a fraction of -O2 -g's compile time.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DNATSBUS_SANITIZE=address,undefined \
    -DNATSBUS_BUILD_BENCH=OFF -DNATSBUS_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
fi
cmake --build build-asan -j"${NATSBUS_JOBS:-$(nproc)}" --target natsbus-unit-tests natsbus-integration-tests \
  >build-asan/build.log 2>&1 || {
  tail -n 60 build-asan/build.log
  exit 1
}
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Both run even when the first fails, so one run shows every report.
status=0
build-asan/tests/natsbus-unit-tests --log_level=test_suite --report_level=short || status=1
build-asan/tests/natsbus-integration-tests --log_level=test_suite --report_level=short || status=1
exit "$status"
