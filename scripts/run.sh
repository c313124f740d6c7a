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
exec ./target/release/vigil up "$@"
