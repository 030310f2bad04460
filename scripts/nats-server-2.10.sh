#!/usr/bin/env bash
# nats-server 2.10.27, the second server version the integration suite runs against (ctest "integration-2.10";
# the system's nats-server, Debian 12's 2.9, is the first). Taken from Debian 13 (trixie)'s nats-server package
# with apt-get download, through a temporary sources list on this machine's own Debian mirror and temporary apt
# lists and cache (the system's apt state is not touched), its archive signature checked against the Debian
# archive keyring, and unpacked with dpkg-deb -x into a cache folder: nothing is installed, the system's
# nats-server stays. The binary is static (Go) and runs on Debian 12. Idempotent, and silent once cached.
#
# Usage: scripts/nats-server-2.10.sh                  prints the binary's path (fetching it first if missing)
#        scripts/nats-server-2.10.sh COMMAND [ARG...]  runs COMMAND with NATSBUS_NATS_SERVER set to that path
# The binary: ${XDG_CACHE_HOME:-$HOME/.cache}/natsbus/nats-server-2.10.27/usr/sbin/nats-server (NATSBUS_CACHE_DIR
# replaces ${XDG_CACHE_HOME:-$HOME/.cache}/natsbus).
set -euo pipefail

version=2.10.27
suite=trixie
cache=${NATSBUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/natsbus}
dir=$cache/nats-server-$version
bin=$dir/usr/sbin/nats-server  # where the Debian package puts it

say() { echo "nats-server-2.10: $*" >&2; }

tmp= stage=
cleanup() { rm -rf "$tmp" "$stage"; }
trap cleanup EXIT

cached() { [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -qx "nats-server: v$version"; }

# The first URI of this machine's own Debian sources that serves its release (the codename in /etc/os-release),
# from deb822 files (*.sources) or one-line ones (sources.list, *.list); deb.debian.org when none does.
mirror_uri() {
  local codename uri=
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  if [[ -n $codename ]]; then
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -r $f ]] || continue
      # Stanzas are separated by blank lines; a field may continue on indented lines (not used for these three).
      uri=$(awk -v codename="$codename" '
        function flush() {
          if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no" && (" " suites " ") ~ (" " codename " ") && uris != "") {
            split(uris, u, " "); print u[1]; found = 1; exit
          }
          types = ""; suites = ""; uris = ""; enabled = ""
        }
        /^[[:space:]]*#/ { next }
        /^[[:space:]]*$/ { flush(); next }
        {
          key = tolower($1); sub(/:$/, "", key)
          value = $0; sub(/^[^:]*:[[:space:]]*/, "", value); gsub(/[[:space:]]+/, " ", value)
          if (key == "types") types = value
          else if (key == "suites") suites = value
          else if (key == "uris") uris = value
          else if (key == "enabled") enabled = value
        }
        END { if (!found) flush() }' "$f")
      [[ -n $uri ]] && break
    done
    if [[ -z $uri ]]; then
      for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        # deb [option=value ...] URI SUITE COMPONENT...
        uri=$(awk -v codename="$codename" '
          { sub(/#.*/, "") }
          $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == codename) { print $i; exit }
          }' "$f")
        [[ -n $uri ]] && break
      done
    fi
  fi
  case $uri in
    http://* | https://*) echo "${uri%/}" ;;
    *) echo http://deb.debian.org/debian ;;
  esac
}

fetch() {
  local mirror keyrings=() k
  mirror=$(mirror_uri)
  say "fetching nats-server $version from Debian $suite ($mirror) into $dir"
  # The Debian archive keyring (bookworm's carries the trixie keys since 2023.3+deb12u2), and trixie's own
  # keyring files when installed; the Release file must be signed by one of these keys.
  for k in /usr/share/keyrings/debian-archive-keyring.gpg /usr/share/keyrings/debian-archive-$suite-automatic.gpg \
    /usr/share/keyrings/debian-archive-$suite-stable.gpg; do
    [[ -r $k ]] && keyrings+=("$k")
  done
  if ((${#keyrings[@]} == 0)); then
    say "no Debian archive keyring in /usr/share/keyrings (package debian-archive-keyring)"
    return 1
  fi
  tmp=$(mktemp -d /tmp/natsbus-apt-XXXXXX)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
  echo "deb [signed-by=$(IFS=,; echo "${keyrings[*]}")] $mirror $suite main" >"$tmp/sources.list"
  local apt=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Dir::Etc::Preferences=/nonexistent
    -o Dir::Etc::PreferencesParts=/nonexistent -o "APT::Architectures=$(dpkg --print-architecture)"
    -o Acquire::Languages=none)
  if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then
    # apt downloads as the user _apt when run as root: it must be able to write the download folder.
    chmod 755 "$tmp"
    chown _apt "$tmp/deb"
  fi
  local log=$tmp/apt.log
  # An unsigned or badly signed Release file fails the update (E:) or is reported as a GPG error (W:).
  if ! apt-get "${apt[@]}" -q update >"$log" 2>&1 || grep -qE '^(E:|W: GPG error)' "$log"; then
    cat "$log" >&2
    say "apt-get update of $suite failed (see above)"
    return 1
  fi
  if [[ ! -s $(echo "$tmp"/lists/*_dists_${suite}_InRelease) ]]; then
    say "no signed InRelease file for $suite from $mirror"
    return 1
  fi
  # Pin the Debian revision of the upstream version (e.g. 2.10.27-1+b2) when the suite offers it.
  local offered pinned
  offered=$(apt-cache "${apt[@]}" madison nats-server | awk -F'|' '{ gsub(/ /, "", $2); print $2 }')
  pinned=$(printf '%s\n' "$offered" | grep -E "^([0-9]+:)?${version//./\\.}-" | head -n 1 || true)
  if [[ -z $pinned ]]; then
    say "Debian $suite offers nats-server ${offered//$'\n'/, } but not $version: set version= in $0"
    return 1
  fi
  if ! (cd "$tmp/deb" && apt-get "${apt[@]}" -q download "nats-server=$pinned" >"$log" 2>&1); then
    cat "$log" >&2
    say "apt-get download nats-server=$pinned failed"
    return 1
  fi
  local deb
  deb=$(echo "$tmp"/deb/nats-server_*.deb)
  # Unpacked next to the cache folder and renamed into place: a folder that exists is complete.
  stage=$(mktemp -d "$cache/.nats-server-$version.XXXXXX")
  dpkg-deb -x "$deb" "$stage"
  chmod 755 "$stage"
  if ! "$stage/usr/sbin/nats-server" --version | grep -qx "nats-server: v$version"; then
    say "the unpacked binary reports '$("$stage/usr/sbin/nats-server" --version 2>&1)', not v$version"
    return 1
  fi
  rm -rf "$dir"
  mv -T "$stage" "$dir"
  stage=
  cleanup
  say "cached nats-server $version ($pinned) at $bin"
}

if ! cached; then
  mkdir -p "$cache"
  # One fetch at a time (setup.sh and ctest may both ask).
  exec 9>"$cache/.nats-server-$version.lock"
  flock -w 600 9 || { say "timed out waiting for another fetch"; exit 1; }
  # Not "cached || fetch": errexit is off in a function called from a || list.
  if ! cached; then fetch; fi
  exec 9>&-
fi

if (($# == 0)); then
  echo "$bin"
else
  NATSBUS_NATS_SERVER=$bin exec "$@"
fi
