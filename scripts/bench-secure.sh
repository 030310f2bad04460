#!/usr/bin/env bash
# Publish over the secure transports: natsbus over plain TCP, TLS, ws:// and wss://, and nats.c over plain TCP and
# TLS, in alternating rounds against local nats-server processes (JetStream, temporary stores, free loopback ports;
# a CA and a server certificate made for the run with the openssl command). Then the time of a connect over TLS,
# natsbus against nats.c. Needs bash, coreutils, awk and openssl.
#
# Usage: scripts/bench-secure.sh [--msgs N] [--size N] [--runs N] [--connects N]
#   MSGS (100000), SIZE (16), RUNS (5), CONNECTS (200), MAX_PENDING (4000) also from the environment.
#   NATSBUS_BENCH, NATSC_BENCH: client binaries (default build/bench/natsbus-bench, build/bench/natsc-bench).
#
# The table gives medians of msg/s and client CPU per message (user+sys, microseconds) for the async scenario
# (every publish acknowledged), and the ratios the goals name: natsbus TLS / natsbus TCP, natsbus TLS / nats.c TLS,
# natsbus ws / natsbus TCP; then median connect times (to the first PONG, TLS handshake included).
set -euo pipefail
cd "$(dirname "$0")/.."

msgs=${MSGS:-100000}
size=${SIZE:-16}
runs=${RUNS:-5}
connects=${CONNECTS:-200}
max_pending=${MAX_PENDING:-4000}
natsbus_bin=${NATSBUS_BENCH:-build/bench/natsbus-bench}
natsc_bin=${NATSC_BENCH:-build/bench/natsc-bench}
while (($#)); do
  case "$1" in
    --msgs) msgs=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --connects) connects=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-secure: unknown option $1" >&2; exit 2 ;;
  esac
done
for b in "$natsbus_bin" "$natsc_bin"; do
  [[ -x $b ]] || { echo "bench-secure: $b not built (cmake --build build)" >&2; exit 1; }
done
command -v openssl >/dev/null || { echo "bench-secure: openssl not found" >&2; exit 1; }

work=$(mktemp -d /tmp/natsbus-bench-secure.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A CA and a server certificate for 127.0.0.1 (EC P-256, one day).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$work/ca-key.pem" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$work/server-key.pem" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" -CAcreateserial -days 1 \
  -extfile "$work/ext.cnf" -out "$work/server.pem" 2>/dev/null

# start NAME CONFIG: a nats-server with JetStream; prints its ports file's path.
start() {
  local dir="$work/$1"
  mkdir -p "$dir/store"
  printf '%s\n' "$2" >"$dir/server.conf"
  nats-server -a 127.0.0.1 -p -1 -js -sd "$dir/store" --ports_file_dir "$dir" -c "$dir/server.conf" \
    >"$dir/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    ls "$dir"/*.ports >/dev/null 2>&1 && break
    sleep 0.05
  done
  ls "$dir"/*.ports 2>/dev/null || { echo "bench-secure: nats-server $1 did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
}
plain_ports=$(start plain 'websocket { listen: "127.0.0.1:-1"
  no_tls: true }')
tls_ports=$(start tls "tls { cert_file: \"$work/server.pem\"
  key_file: \"$work/server-key.pem\" }
websocket { listen: \"127.0.0.1:-1\"
  tls { cert_file: \"$work/server.pem\"
    key_file: \"$work/server-key.pem\" } }")
tcp_url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$plain_ports" | head -n1)
ws_url=$(grep -o 'ws://127.0.0.1:[0-9]*' "$plain_ports" | head -n1)
tls_url=$(grep -o 'tls://127.0.0.1:[0-9]*' "$tls_ports" | head -n1)
wss_url=$(grep -o 'wss://127.0.0.1:[0-9]*' "$tls_ports" | head -n1)
echo "bench-secure: nats-server $(nats-server --version | grep -o 'v[0-9][0-9.]*'): tcp $tcp_url, ws $ws_url," \
  "tls $tls_url, wss $wss_url; $msgs messages of $size bytes, $runs rounds"

raw="$work/raw"
: >"$raw"
common=(--scenario async --storage memory --size "$size" --msgs "$msgs" --max-pending "$max_pending")
for ((r = 1; r <= runs; r++)); do
  for kind in natsbus-tcp natsbus-tls natsc-tls natsbus-ws natsbus-wss natsc-tcp; do
    case $kind in
      natsbus-tcp) line=$("$natsbus_bin" --url "$tcp_url" "${common[@]}") ;;
      natsbus-tls) line=$("$natsbus_bin" --url "$tls_url" --tls-ca "$work/ca.pem" "${common[@]}") ;;
      natsbus-ws) line=$("$natsbus_bin" --url "$ws_url" "${common[@]}") ;;
      natsbus-wss) line=$("$natsbus_bin" --url "$wss_url" --tls-ca "$work/ca.pem" "${common[@]}") ;;
      natsc-tcp) line=$("$natsc_bin" --url "$tcp_url" "${common[@]}") ;;
      natsc-tls) line=$("$natsc_bin" --url "$tls_url" --tls-ca "$work/ca.pem" "${common[@]}") ;;
    esac
    echo "kind=$kind $line" >>"$raw"
  done
done
for ((r = 1; r <= 3; r++)); do
  echo "kind=natsbus-connect $("$natsbus_bin" --url "$tls_url" --tls-ca "$work/ca.pem" --scenario connect --msgs "$connects")" >>"$raw"
  echo "kind=natsc-connect $("$natsc_bin" --url "$tls_url" --tls-ca "$work/ca.pem" --scenario connect --msgs "$connects")" >>"$raw"
done
if [[ -n ${BENCH_RAW:-} ]]; then cat "$raw" >>"$BENCH_RAW"; fi

awk '
  function field(name,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == name) return kv[2] } return "" }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  /^kind=/ {
    k = field("kind")
    if (field("error") != "") { print "error in " k ": " $0; bad = 1; next }
    if (k ~ /connect$/) { conn[k] = conn[k] " " field("connect_us"); next }
    rate[k] = rate[k] " " field("msgs_per_s")
    cpu[k] = cpu[k] " " (field("client_user_s") + field("client_sys_s")) * 1e6 / field("msgs")
    errs[k] += field("errors")
  }
  END {
    printf "%-12s %12s %14s %7s\n", "client", "msg/s", "cpu_us/msg", "errors"
    split("natsbus-tcp natsbus-tls natsbus-ws natsbus-wss natsc-tcp natsc-tls", order, " ")
    for (i = 1; i <= 6; i++) { k = order[i]; m[k] = median(rate[k])
      printf "%-12s %12.0f %14.3f %7d\n", k, m[k], median(cpu[k]), errs[k] }
    printf "natsbus TLS / natsbus TCP: %.2f (goal >= 0.8)\n", m["natsbus-tls"] / m["natsbus-tcp"]
    printf "natsbus TLS / nats.c TLS:  %.2f (goal >= 1.5)\n", m["natsbus-tls"] / m["natsc-tls"]
    printf "natsbus ws / natsbus TCP:  %.2f (goal >= 0.7)\n", m["natsbus-ws"] / m["natsbus-tcp"]
    printf "natsbus TCP / nats.c TCP:  %.2f\n", m["natsbus-tcp"] / m["natsc-tcp"]
    printf "connect over TLS (median us): natsbus %.0f, nats.c %.0f\n", median(conn["natsbus-connect"]), median(conn["natsc-connect"])
    exit bad
  }' "$raw"
