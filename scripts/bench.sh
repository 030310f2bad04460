#!/usr/bin/env bash
# Side-by-side publish benchmark: natsbus (build/bench/natsbus-bench) against nats.c (build/bench/natsc-bench),
# both driven against one local nats-server with JetStream on a free loopback port and a temporary store,
# which is stopped on exit. Needs bash, coreutils and awk only.
#
# Usage: scripts/bench.sh [--scenarios "a b"] [--storages "memory file"] [--size N] [--msgs N] [--rt-msgs N]
#                         [--runs N] [--max-pending N] [--batch N] [--ordered-batch N] [--timeout S]
# Every option can also be given in the environment (flags win):
#   SCENARIOS    scenarios to run                 default "async sync core core-js info-sync configure"
#                (also fetch, consume, ordered: BENCH filled, then read back and acked; not in the default)
#                (configure: 1,000 streams created then deleted; natsbus pipelined and one by one, nats.c one
#                by one, its only way; a table of its own)
#   STORAGES     stream storage types             default "memory file"
#   SIZE         payload bytes                    default 16
#   MSGS         messages per run                 default 100000
#   RT_MSGS      messages per run for the round-trip bound scenarios (sync, info-sync, one request/reply
#                per message or two):             default MSGS/10
#   RUNS         runs per client and combination  default 3
#   WARMUP       discarded nats.c runs before each combination's rotation: default 1. The first run on a
#                new server or stream is the slowest (the server's heap and the stream's store grow), and
#                without this it is always natsbus's, which runs first in every round.
#   MAX_PENDING  async publish window             default 4000
#   BATCH        fetch, consume: messages per pull (consume: buffered plus requested) default 100
#   ORDERED_BATCH  ordered: the same for natsbus and the bare client: default 500, the ordered consumer's own
#                default buffer (nats.c's ordered consumer is pushed with flow control and has no batch)
#   RUN_TIMEOUT  seconds before one run is killed default 600
#   NATSBUS_BENCH, NATSC_BENCH  client binaries   default build/bench/natsbus-bench, build/bench/natsc-bench
#   BARE_BENCH   the bare socket client           default build/bench/natsbus-bare-bench; it runs in the same
#                rotation for async (fresh, unique and shared reply subjects), configure and fetch, consume,
#                ordered (the consumers' ceiling: natsbus / bare), in reference tables ("" skips it)
#   BENCH_RAW    if set, every client's raw key=value line is appended to this file
#
# For each (scenario, storage) the two clients run RUNS times each, alternating (natsbus, natsc, natsbus, ...);
# the table shows medians: msg/s, client CPU (user+sys) in microseconds per message, natsbus allocations
# per message (nats.c's are not counted), and the server's CPU per message during each client's runs (natsbus /
# nats.c; read from /proc, stream setup included). ratio = natsbus msg/s / natsc msg/s. For fetch, consume and
# ordered a table of their own sets natsbus against the bare client (the goal: natsbus / bare >= 0.8).
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=${SCENARIOS:-"async sync core core-js info-sync configure"}
storages=${STORAGES:-"memory file"}
size=${SIZE:-16}
msgs=${MSGS:-100000}
rt_msgs=${RT_MSGS:-}
runs=${RUNS:-3}
warmup=${WARMUP:-1}
max_pending=${MAX_PENDING:-4000}
batch=${BATCH:-100}
ordered_batch=${ORDERED_BATCH:-500}
run_timeout=${RUN_TIMEOUT:-600}
natsbus_bin=${NATSBUS_BENCH:-build/bench/natsbus-bench}
natsc_bin=${NATSC_BENCH:-build/bench/natsc-bench}
bare_bin=${BARE_BENCH-build/bench/natsbus-bare-bench}

usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --scenarios) scenarios=$2; shift 2 ;;
    --storages) storages=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --msgs) msgs=$2; shift 2 ;;
    --rt-msgs) rt_msgs=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --max-pending) max_pending=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --ordered-batch) ordered_batch=$2; shift 2 ;;
    --timeout) run_timeout=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for v in size msgs runs warmup max_pending run_timeout batch ordered_batch; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a non-negative integer, got '${!v}'" >&2; exit 2; }
done
((msgs > 0 && runs > 0)) || { echo "bench: msgs and runs must be positive" >&2; exit 2; }
if [[ -z "$rt_msgs" ]]; then
  rt_msgs=$((msgs / 10))
  ((rt_msgs > 0)) || rt_msgs=1
fi
[[ $rt_msgs =~ ^[1-9][0-9]*$ ]] || { echo "bench: rt-msgs must be a positive integer, got '$rt_msgs'" >&2; exit 2; }

missing=0
for b in "$natsbus_bin" "$natsc_bin"; do
  if [[ ! -x "$b" ]]; then
    echo "bench: $b not found (or not executable)" >&2
    missing=1
  fi
done
if ((missing)); then
  echo "bench: run scripts/setup.sh first (it builds build/, including bench/natsc-bench when libnats-dev is" \
    "installed), or point NATSBUS_BENCH / NATSC_BENCH at the binaries" >&2
  exit 1
fi
command -v nats-server >/dev/null || { echo "bench: nats-server not found; run scripts/setup.sh" >&2; exit 1; }

work=$(mktemp -d /tmp/natsbus-bench-XXXXXX)
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/store" --ports_file_dir "$work" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  local rc=$?
  kill $server 2>/dev/null || true
  wait $server 2>/dev/null || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
ports=
for _ in $(seq 1 400); do
  ports=$(ls "$work"/*.ports 2>/dev/null || true)
  [[ -n "$ports" ]] && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.05
done
[[ -n "$ports" ]] || { echo "bench: nats-server did not write its ports file" >&2; exit 1; }
url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$ports" | head -n1)
echo "bench: nats-server $(nats-server --version | grep -o 'v[0-9][0-9.]*') (pid $server) on $url;" \
  "size=$size msgs=$msgs (sync/info-sync: $rt_msgs) runs=$runs max-pending=$max_pending" >&2

results="$work/results"    # lines: <slot> <key=value line from the client>
warnings="$work/warnings"
: >"$results"
: >"$warnings"

clk_tck=$(getconf CLK_TCK)
# server_ticks: the server's user+sys CPU so far, in clock ticks (/proc/PID/stat fields 14 and 15; the command
# name in field 2 has no spaces for nats-server).
server_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }

# run_one SLOT BINARY SCENARIO STORAGE N [ARGS]: one client run; its line goes to $results, problems to
# $warnings.
run_one() {
  local slot=$1 bin=$2 sc=$3 st=$4 n=$5 extra=${6:-} out rc=0 s0 s1
  case $sc in
    fetch | consume) extra="$extra --batch $batch" ;;
    ordered) extra="$extra --batch $ordered_batch" ;;
  esac
  s0=$(server_ticks)
  # shellcheck disable=SC2086 # extra is a list of flags
  out=$(timeout "$run_timeout" "$bin" $extra --url "$url" --scenario "$sc" --storage "$st" --size "$size" --msgs "$n" \
    --max-pending "$max_pending" --server-pid "$server" 2>"$work/stderr") || rc=$?
  s1=$(server_ticks)
  line=$(grep -m1 '^client=' <<<"$out" || true)
  # The server's CPU time (user+sys) over the whole client run, stream setup included.
  [[ -n "$line" ]] && line="$line server_cpu_s=$(awk -v a="$s0" -v b="$s1" -v t="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / t }')"
  [[ $slot == warmup ]] && return 0
  if ((rc != 0)) || [[ -z "$line" ]]; then
    echo "WARNING: $slot $sc/$st run failed (exit $rc): $(tr '\n' ' ' <"$work/stderr" | cut -c1-300)" >>"$warnings"
    return 0
  fi
  echo "$slot $line" >>"$results"
  [[ -n "${BENCH_RAW:-}" ]] && echo "$line" >>"$BENCH_RAW"
  awk -v slot="$slot" -v sc="$sc" -v st="$st" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    END {
      if (f["errors"] + 0 > 0)
        printf "WARNING: %s %s/%s: errors=%s (acks=%s of msgs=%s)\n", slot, sc, st, f["errors"], f["acks"], f["msgs"]
      else if (sc != "core" && sc != "core-js" && sc != "configure" && sc != "ordered" && f["acks"] + 0 != f["msgs"] + 0)
        printf "WARNING: %s %s/%s: acks=%s but msgs=%s\n", slot, sc, st, f["acks"], f["msgs"]
    }' <<<"$line" >>"$warnings"
}

rows="$work/rows"
cfg_rows="$work/cfg_rows"
ref_rows="$work/ref_rows"
cons_ref_rows="$work/cons_ref_rows"
cfg_ref_rows="$work/cfg_ref_rows"
: >"$cfg_ref_rows"
: >"$rows"
: >"$cfg_rows"
: >"$ref_rows"
: >"$cons_ref_rows"
with_bare=0
[[ -n "$bare_bin" && -x "$bare_bin" ]] && with_bare=1
for sc in $scenarios; do
  if [[ $sc == configure ]]; then
    for st in $storages; do
      echo "bench: configure/$st x$runs (1000 streams)" >&2
      : >"$results"
      for ((w = 0; w < warmup; w++)); do run_one warmup "$natsc_bin" configure "$st" 1; done
      for ((r = 1; r <= runs; r++)); do
        run_one natsbus "$natsbus_bin" configure "$st" 1
        run_one natsc "$natsc_bin" configure "$st" 1
        ((with_bare)) && run_one bare "$bare_bin" configure "$st" 1
      done
      awk -v st="$st" -v ref="$cfg_ref_rows" '
        # Client CPU per stream, microseconds: "pipelined / one by one" ("-" for a client that gave none).
        function cpu_pair(a, b) { return (a == "" || b == "") ? "-" : sprintf("%.1f / %.1f", a, b) }
        function median(list,   a, k, i, j, t) {
          if (list == "") return ""
          k = split(substr(list, 2), a, " ")
          for (i = 2; i <= k; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
          return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        {
          slot = $1; delete f
          for (i = 2; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) }
          if (slot == "natsbus") {
            bp = bp " " f["create_pipelined_s"]; bs = bs " " f["create_one_by_one_s"]
            bdp = bdp " " f["delete_pipelined_s"]; bds = bds " " f["delete_one_by_one_s"]
            bpc = bpc " " f["create_pipelined_cpu_us"]; bsc = bsc " " f["create_one_by_one_cpu_us"]
          } else if (slot == "bare") {
            xp = xp " " f["create_pipelined_s"]; xs = xs " " f["create_one_by_one_s"]
            xdp = xdp " " f["delete_pipelined_s"]; xds = xds " " f["delete_one_by_one_s"]
            xpc = xpc " " f["create_pipelined_cpu_us"]; xsc = xsc " " f["create_one_by_one_cpu_us"]
          } else {
            cs = cs " " f["create_one_by_one_s"]; cds = cds " " f["delete_one_by_one_s"]
            csc = csc " " f["create_one_by_one_cpu_us"]
          }
        }
        END {
          p = median(bp); s1 = median(bs); c = median(cs); dp = median(bdp); ds = median(bds); dc = median(cds)
          if (xp != "") {
            x1 = median(xp); x2 = median(xs); x3 = median(xdp); x4 = median(xds)
            printf "%-7s %-8s %9.3f %8.3f %9.2fx %8.3f %8.3f %9.2fx %14s\n", st, "bare", x1, x2, x2 / x1, x3, x4, x4 / x3,
              cpu_pair(median(xpc), median(xsc)) >> ref
            if (p != "") printf "%-7s %-8s %9.3f %8.3f %9.2fx %8.3f %8.3f %9.2fx %14s\n", st, "natsbus", p, s1, s1 / p, dp, ds,
              ds / dp, cpu_pair(median(bpc), median(bsc)) >> ref
          }
          if (p == "" || c == "") { printf "%-7s %s\n", st, "-"; exit }
          printf "%-7s %8.3f %8.3f %8.3f %9.2fx %9.2fx %8.3f %8.3f %8.3f %9.2fx %14s %10s\n", st, p, s1, c, s1 / p, c / p,
            dp, ds, dc, dc / dp, cpu_pair(median(bpc), median(bsc)), (median(csc) == "" ? "-" : sprintf("%.1f", median(csc)))
        }' "$results" >>"$cfg_rows"
    done
    continue
  fi
  case "$sc" in
    sync|info-sync) n=$rt_msgs ;;
    async|core|core-js|fetch|consume|ordered) n=$msgs ;;
    *) echo "bench: unknown scenario '$sc'" >&2; exit 2 ;;
  esac
  for st in $storages; do
    case "$st" in memory|file) ;; *) echo "bench: unknown storage '$st'" >&2; exit 2 ;; esac
    echo "bench: $sc/$st x$runs ($n msgs)" >&2
    : >"$results"
    for ((w = 0; w < warmup; w++)); do run_one warmup "$natsc_bin" "$sc" "$st" "$n"; done
    for ((r = 1; r <= runs; r++)); do
      run_one natsbus "$natsbus_bin" "$sc" "$st" "$n"
      run_one natsc "$natsc_bin" "$sc" "$st" "$n"
      if [[ $sc == async ]] && ((with_bare)); then
        run_one bare-fresh "$bare_bin" "$sc" "$st" "$n" "--reply fresh"
        run_one bare-unique "$bare_bin" "$sc" "$st" "$n" "--reply unique"
        run_one bare-shared "$bare_bin" "$sc" "$st" "$n" "--reply shared"
      fi
      case "$sc" in fetch|consume|ordered) ((with_bare)) && run_one bare "$bare_bin" "$sc" "$st" "$n" ;; esac
    done
    # Medians per slot: msg/s, CPU us/msg, allocs/msg ("-" when no successful run, "n/a" when not counted).
    awk -v sc="$sc" -v st="$st" -v size="$size" -v n="$n" -v ref="$ref_rows" -v cref="$cons_ref_rows" '
      function median(list,   a, k, m) {
        if (list == "") return ""
        k = split(substr(list, 2), a, " ")
        m = asort_num(a, k)
        return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
      }
      function asort_num(a, k,   i, j, t) {   # insertion sort, numeric (POSIX awk has no asort)
        for (i = 2; i <= k; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return k
      }
      {
        slot = $1; delete f
        for (i = 2; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) }
        rate[slot] = rate[slot] " " f["msgs_per_s"]
        cpu[slot] = cpu[slot] " " ((f["client_user_s"] + f["client_sys_s"]) / f["msgs"] * 1e6)
        scpu[slot] = scpu[slot] " " (f["server_cpu_s"] / f["msgs"] * 1e6)
        if (f["allocs_per_msg"] + 0 >= 0) allocs[slot] = allocs[slot] " " f["allocs_per_msg"]
        else allocs_na[slot] = 1
      }
      END {
        br = median(rate["natsbus"]); cr = median(rate["natsc"])
        bc = median(cpu["natsbus"]);  cc = median(cpu["natsc"])
        ba = median(allocs["natsbus"])
        bs = median(scpu["natsbus"]); cs = median(scpu["natsc"])
        ratio = (br != "" && cr != "" && cr > 0) ? sprintf("%.2fx", br / cr) : "-"
        printf "%-10s %-7s %5s %8s %14s %12s %7s %19s %17s %19s %15s\n", sc, st, size, n,
          (br == "" ? "-" : sprintf("%.0f", br)), (cr == "" ? "-" : sprintf("%.0f", cr)), ratio,
          (bc == "" ? "-" : sprintf("%.2f", bc)), (cc == "" ? "-" : sprintf("%.2f", cc)),
          (ba != "" ? sprintf("%.2f", ba) : (allocs_na["natsbus"] ? "n/a" : "-")),
          (bs == "" || cs == "" ? "-" : sprintf("%.2f / %.2f", bs, cs))
        for (k = 1; k <= 4; k++) {
          slot = (k == 1) ? "natsbus" : (k == 2) ? "bare-fresh" : (k == 3) ? "bare-unique" : "bare-shared"
          r = median(rate[slot]); c = median(cpu[slot]); s = median(scpu[slot])
          if (rate["bare-fresh"] == "" || r == "") continue
          printf "%-7s %-12s %12.0f %9s %12.2f %12.2f\n", st, slot, r,
            (cr != "" && cr > 0) ? sprintf("%.2fx", r / cr) : "-", c, s >> ref
        }
        xr = median(rate["bare"])
        if (xr != "") {   # fetch, consume, ordered: natsbus against the bare consumer
          xc = median(cpu["bare"]); xs = median(scpu["bare"])
          printf "%-10s %-7s %5s %8s %12.0f %14s %8s %18.2f %19s %16s\n", sc, st, size, n, xr,
            (br == "" ? "-" : sprintf("%.0f", br)), (br != "" && xr > 0) ? sprintf("%.2fx", br / xr) : "-", xc,
            (bc == "" ? "-" : sprintf("%.2f", bc)), (bs == "" ? "-" : sprintf("%.2f / %.2f", bs, xs)) >> cref
        }
      }' "$results" >>"$rows"
  done
done

printf "%-10s %-7s %5s %8s %14s %12s %7s %19s %17s %19s %15s\n" scenario storage size msgs "natsbus msg/s" \
  "natsc msg/s" ratio "natsbus cpu us/msg" "natsc cpu us/msg" "natsbus allocs/msg" "server us/msg"
cat "$rows"
if [[ -s "$ref_rows" ]]; then
  echo
  echo "async reference: natsbus-bare-bench, a publisher on a plain socket with no features, in the same rotation;"
  echo "fresh = a reply subject never used before for every publish (as natsbus); unique = a subject per window"
  echo "slot, used again once its ack is in; shared = one subject for all, acks counted in arrival order (both"
  echo "cheaper for the server and unsafe for a real client: see README)"
  printf "%-7s %-12s %12s %9s %12s %12s\n" storage client "msg/s" "vs natsc" "cpu us/msg" "server us/msg"
  cat "$ref_rows"
fi
if [[ -s "$cons_ref_rows" ]]; then
  echo
  echo "consumer reference: natsbus-bare-bench, a pull consumer on a plain socket with no features (same pulls of"
  echo "--batch, +ACK per message for fetch and consume, no heartbeats), in the same rotation; ratio = natsbus / bare"
  echo "(the goal: 0.8 or more); server us/msg over each client's whole runs, the stream's fill included"
  printf "%-10s %-7s %5s %8s %12s %14s %8s %18s %19s %16s\n" scenario storage size msgs "bare msg/s" "natsbus msg/s" \
    ratio "bare cpu us/msg" "natsbus cpu us/msg" "server nb / bare"
  cat "$cons_ref_rows"
fi
if [[ -s "$cfg_rows" ]]; then
  echo
  echo "configure: 1000 streams, seconds (medians); natsbus pipelined vs one by one, and vs nats.c one by one;"
  echo "client CPU per created stream in microseconds (natsbus pipelined / one by one; nats.c one by one)"
  printf "%-7s %8s %8s %8s %10s %10s %8s %8s %8s %10s %14s %10s\n" storage pipelined "1-by-1" natsc "vs 1-by-1" \
    "vs natsc" "del pipe" "del 1x1" "natsc del" "vs natsc" "cpu us (p/1)" "natsc cpu"
  cat "$cfg_rows"
fi
if [[ -s "$cfg_ref_rows" ]]; then
  echo
  echo "configure reference: natsbus-bare-bench (plain socket, minimal requests) against natsbus, each against its own"
  echo "one-by-one (seconds, medians of the same runs)"
  printf "%-7s %-8s %9s %8s %10s %8s %8s %10s %14s\n" storage client pipelined "1-by-1" ratio "del pipe" "del 1x1" ratio \
    "cpu us (p/1)"
  cat "$cfg_ref_rows"
fi
if [[ -s "$warnings" ]]; then
  echo
  cat "$warnings"
fi
