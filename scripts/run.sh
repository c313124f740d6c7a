#!/usr/bin/env bash
# Runs Vigil on this machine: installs what it needs (scripts/setup.sh), builds
# it, and starts `vigil up`, which runs its own PostgreSQL and NATS unless
# DATABASE_URL / NATS_URL are set, loads demo data and serves on
# http://127.0.0.1:8080. Extra arguments go to `vigil up` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# shellcheck disable=SC1091 # rustup's, where it exists
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --locked --bin vigil

# As root, `vigil up` runs its PostgreSQL as the postgres user, who cannot
# reach a clone under /root: keep the data where it can, unless told where.
if [ "$(id -u)" -eq 0 ] && [ -z "${VIGIL_DATA_DIR:-}" ] && [ -z "${DATABASE_URL:-}" ] \
  && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
  export VIGIL_DATA_DIR=/var/lib/vigil
  echo "run.sh: the postgres user cannot reach $PWD, so Vigil keeps its data in $VIGIL_DATA_DIR (set VIGIL_DATA_DIR or --data-dir to choose)"
fi
exec ./target/release/vigil up "$@"
