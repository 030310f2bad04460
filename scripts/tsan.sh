#!/usr/bin/env bash
# Builds the library and the multi-threaded tests with ThreadSanitizer in build-tsan/ and runs them.
# Fails on any reported data race.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f build-tsan/CMakeCache.txt ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNATSBUS_SANITIZE=thread \
    -DNATSBUS_BUILD_BENCH=OFF -DNATSBUS_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
fi
cmake --build build-tsan -j"$(nproc)" --target natsbus-thread-tests >build-tsan/build.log 2>&1 || {
  tail -n 60 build-tsan/build.log
  exit 1
}
# halt_on_error: the first race fails the run; second_deadlock_stack for readable reports.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
  build-tsan/tests/natsbus-thread-tests --log_level=test_suite --report_level=short
