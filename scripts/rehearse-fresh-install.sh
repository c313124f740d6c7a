#!/usr/bin/env bash
# Fresh-install rehearsal, run on demand (never in CI): takes away what
# scripts/setup.sh installed on this machine, then runs the README's two
# commands from a clean clone exactly as written, and prints the wall time of
# each phase. It is how we learn that a set-up step is missing before a new
# machine does: CI runs on a machine that already has everything.
#
# Removes (as root): the packages the set-up recorded installing
# (/var/lib/vigil-setup/installed-packages, which it needs: the build and eBPF tool packages,
# chromium and its fonts, …) and what they alone pulled in, the built
# pgvector and TimescaleDB files, Vigil's PostgreSQL configuration, the
# model in /opt/vigil, the set-up's caches. The clean clone has no target/,
# web/node_modules or web/dist. Cargo's, npm's and pip's download caches are
# replaced by empty ones for the rehearsal (CARGO_HOME, npm_config_cache,
# PIP_CACHE_DIR), as on a new machine; --warm-caches keeps them.
#
#   scripts/rehearse-fresh-install.sh --yes [--warm-caches] [--ref REV] [--keep] [--under DIR]
#
# The clone goes to a new directory under DIR (default /tmp/vigil-rehearsal;
# /root/vigil-rehearsal tries a root user's home, which the postgres user
# cannot reach) with a symlink to ../shared beside it; logs with timestamps go
# there too. /var/lib/vigil, where run.sh keeps the data in that case, is
# removed first.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
YES=0 WARM=0 REF=HEAD KEEP=0 UNDER=/tmp/vigil-rehearsal
while [ $# -gt 0 ]; do
  case $1 in
    --yes) YES=1 ;;
    --warm-caches) WARM=1 ;;
    --ref) REF=$2; shift ;;
    --keep) KEEP=1 ;;
    --under) UNDER=$2; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "run as root: it removes packages" >&2; exit 2; }
[ "$YES" = 1 ] || { echo "this removes what scripts/setup.sh installed on this machine; pass --yes" >&2; exit 2; }
! (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null || { echo "port 8080 is taken: stop what listens there first" >&2; exit 2; }

say() { printf '\033[1;35m[rehearsal]\033[0m %s\n' "$*" >&2; }
PG_MAJOR=15
PG_LIB="/usr/lib/postgresql/${PG_MAJOR}/lib"
PG_SHARE="/usr/share/postgresql/${PG_MAJOR}"
RECORD=/var/lib/vigil-setup/installed-packages

remove_installed() {
  [ -s "$RECORD" ] || { echo "no $RECORD: the set-up that installed this machine's packages kept no record of them (an older set-up); nothing to take away safely" >&2; exit 2; }
  local pkgs=()
  mapfile -t pkgs < <(sort -u "$RECORD")
  local present=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && present+=("$p")
  done
  say "purging ${present[*]:-nothing} (and what only they pulled in)"
  if [ ${#present[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${present[@]}" >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null
  fi
  rm -f "$RECORD"

  say "removing pgvector, TimescaleDB and Vigil's PostgreSQL configuration"
  rm -f "/etc/postgresql/${PG_MAJOR}/main/conf.d/vigil.conf"
  rm -rf "$PG_LIB"/vector.so "$PG_LIB"/timescaledb*.so "$PG_LIB"/bitcode/vector* \
    "$PG_SHARE"/extension/vector* "$PG_SHARE"/extension/timescaledb* \
    "/usr/include/postgresql/${PG_MAJOR}/server/extension/vector"
  pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main restart

  say "removing /opt/vigil and the set-up's caches"
  rm -rf /opt/vigil /var/cache/vigil-setup "${TMPDIR:-/tmp}/vigil-setup-apt.log" /var/lib/vigil
}

# Runs a command with each output line timestamped (epoch seconds) into a log.
stamped() {
  local logf=$1
  shift
  "$@" 2>&1 | while IFS= read -r line; do printf '%(%s)T %s\n' -1 "$line"; done >"$logf"
  return "${PIPESTATUS[0]}"
}
first_stamp() { grep -m1 -E "$2" "$1" | cut -d' ' -f1; }  # first_stamp LOG ERE

mkdir -p "$UNDER"
WORKDIR=$(mktemp -d "$UNDER/XXXX")
# mktemp makes it 0700; a clone is as readable as the place it is in.
chmod 755 "$WORKDIR"
remove_installed
say "cloning $REF into $WORKDIR/main"
git clone -q "$ROOT" "$WORKDIR/main"
git -C "$WORKDIR/main" checkout -q "$(git -C "$ROOT" rev-parse "$REF")"
[ -d "$ROOT/../shared" ] && ln -s "$(cd "$ROOT/../shared" && pwd)" "$WORKDIR/shared"
if [ "$WARM" = 0 ]; then
  export CARGO_HOME="$WORKDIR/cargo-home" npm_config_cache="$WORKDIR/npm-cache" PIP_CACHE_DIR="$WORKDIR/pip-cache"
  mkdir -p "$CARGO_HOME"
  say "empty download caches: CARGO_HOME=$CARGO_HOME npm_config_cache=$npm_config_cache PIP_CACHE_DIR=$PIP_CACHE_DIR"
fi
cd "$WORKDIR/main"

# 1. ./scripts/run.sh: set-up, release build, vigil up serving the demo.
say "./scripts/run.sh"
t0=$(date +%s)
stamped "$WORKDIR/run.log" ./scripts/run.sh &
runner=$!
up=""
while kill -0 "$runner" 2>/dev/null; do
  if grep -q 'Vigil is up' "$WORKDIR/run.log" 2>/dev/null && curl -fsS -o /dev/null http://127.0.0.1:8080/health; then
    up=$(date +%s)
    break
  fi
  sleep 2
done
run_ok=0
if [ -n "$up" ]; then
  ui=$(curl -fsS http://127.0.0.1:8080/ | grep -c 'id="root"' || true)
  health=$(curl -fsS http://127.0.0.1:8080/health)
  say "vigil up answers: $health; UI page served: $([ "$ui" -gt 0 ] && echo yes || echo NO)"
  [ "$ui" -gt 0 ] && run_ok=1
  pkill -INT -f 'target/release/vigil up' || true
fi
wait "$runner" || true
setup1=$(first_stamp "$WORKDIR/run.log" 'setup\].* done in [0-9]+s')
# shellcheck disable=SC2016 # the backquotes are cargo's, not an expansion
built=$(first_stamp "$WORKDIR/run.log" 'Finished `release`')

# 2. ./scripts/test.sh: set-up again (everything present), every test.
say "./scripts/test.sh"
t1=$(date +%s)
test_rc=0
stamped "$WORKDIR/test.log" ./scripts/test.sh || test_rc=$?
t2=$(date +%s)
setup2=$(first_stamp "$WORKDIR/test.log" 'setup\].* done in [0-9]+s')

secs() { [ -n "$2" ] && [ -n "$1" ] && echo "$(( $2 - $1 )) s" || echo "—"; }
mark() { first_stamp "$WORKDIR/test.log" "^[0-9]+ == $1"; }
fmt_at=$(mark 'cargo fmt'); clippy_at=$(mark 'cargo clippy'); test_at=$(mark 'cargo test')
unit_at=$(mark 'web unit'); e2e_at=$(mark 'web e2e')
cargo_counts=$(awk '/test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
  END { printf "%d passed, %d failed", p, f }' "$WORKDIR/test.log")
{
  echo
  echo "fresh-install rehearsal of $(git rev-parse --short HEAD) ($([ "$WARM" = 1 ] && echo warm || echo empty) download caches)"
  printf '%-50s %s\n' "./scripts/run.sh: set-up" "$(secs "$t0" "$setup1")"
  printf '%-50s %s\n' "./scripts/run.sh: release build" "$(secs "$setup1" "$built")"
  printf '%-50s %s\n' "./scripts/run.sh: vigil up until serving the demo" "$(secs "$built" "$up")"
  printf '%-50s %s\n' "./scripts/run.sh: total until serving" "$(secs "$t0" "$up")"
  printf '%-50s %s\n' "./scripts/test.sh: set-up (second run)" "$(secs "$t1" "$setup2")"
  printf '%-50s %s\n' "./scripts/test.sh: fmt" "$(secs "$fmt_at" "$clippy_at")"
  printf '%-50s %s\n' "./scripts/test.sh: clippy (builds in check mode)" "$(secs "$clippy_at" "$test_at")"
  printf '%-50s %s\n' "./scripts/test.sh: cargo test (build and run)" "$(secs "$test_at" "$unit_at")"
  printf '%-50s %s\n' "./scripts/test.sh: web unit tests" "$(secs "$unit_at" "$e2e_at")"
  printf '%-50s %s\n' "./scripts/test.sh: web e2e (Chromium)" "$(secs "$e2e_at" "$t2")"
  printf '%-50s %s\n' "./scripts/test.sh: total" "$(secs "$t1" "$t2")"
  printf '%-50s %s\n' "run.sh served the demo and the UI" "$([ "$run_ok" = 1 ] && echo yes || echo NO)"
  printf '%-50s %s\n' "run.sh: where vigil up kept its data" "$(grep -q 'keeps its data in' "$WORKDIR/run.log" && echo /var/lib/vigil || echo "$WORKDIR/main/.vigil")"
  printf '%-50s %s\n' "test.sh exit code" "$test_rc"
  printf '%-50s %s\n' "cargo tests" "$cargo_counts"
  printf '%-50s %s\n' "web tests" "$(sed 's/\x1b\[[0-9;]*m//g' "$WORKDIR/test.log" | grep -E '( Tests  |ℹ (pass|fail) )' | cut -d' ' -f2- | tr -s ' ' | tr '\n' ' ')"
  echo "logs: $WORKDIR/run.log $WORKDIR/test.log"
} | tee "$WORKDIR/summary.txt"
[ "$KEEP" = 1 ] || rm -rf "$WORKDIR/main/target" "$WORKDIR/cargo-home" "$WORKDIR/npm-cache" "$WORKDIR/pip-cache"
[ "$run_ok" = 1 ] && [ "$test_rc" = 0 ]
