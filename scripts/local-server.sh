# Sourced by scripts that need a nats-server of their own: starts one with JetStream on a free loopback port and a
# temporary store (the folder named by its first argument's prefix), sets $server (its pid), $url and $work, and
# stops it by pid when the script exits, keeping the script's own exit status (not the server's 143).
# Usage: source scripts/local-server.sh /tmp/natsbus-NAME
work=$(mktemp -d "${1:?usage: source scripts/local-server.sh PREFIX}-XXXXXX")
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/store" --ports_file_dir "$work" >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  local rc=$?
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
ports=
for _ in $(seq 1 400); do
  ports=$(ls "$work"/*.ports 2>/dev/null || true)
  [[ -n "$ports" ]] && break
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.05
done
[[ -n "$ports" ]] || { echo "nats-server did not start (see $work/server.log)" >&2; exit 1; }
url=$(grep -o 'nats://127.0.0.1:[0-9]*' "$ports" | head -n1)
