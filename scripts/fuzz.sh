#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 in build-fuzz/ and runs each for a bounded time.
# Fails on any finding. Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! command -v clang++-14 >/dev/null; then
  echo "fuzz: clang++-14 not found, skipped"
  exit 0
fi
if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
  cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNATSBUS_BUILD_FUZZERS=ON -DNATSBUS_BUILD_TESTS=OFF -DNATSBUS_BUILD_BENCH=OFF \
    -DNATSBUS_BUILD_EXAMPLES=OFF >/dev/null
fi
targets=(fuzz_parser fuzz_headers fuzz_json fuzz_url fuzz_creds fuzz_consumer fuzz_envelope fuzz_config)
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/"${t#fuzz_}"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $t for ${secs}s"
  build-fuzz/tests/fuzz/"$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=build-fuzz/"$t"- "$corpus" 2>build-fuzz/"$t".log || {
      tail -n 40 build-fuzz/"$t".log
      echo "fuzz: $t found a failure"
      exit 1
    }
  tail -n 1 build-fuzz/"$t".log
  rm -rf "$corpus"
done
