#!/usr/bin/env bash
# Runs every Vigil test on this machine: installs and starts what the tests
# need (scripts/setup.sh), then the whole suite against the real PostgreSQL
# (with TimescaleDB) and NATS services. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# shellcheck disable=SC1091 # rustup's, where it exists
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== shellcheck"
shellcheck -S warning scripts/*.sh scripts/setup/*.sh scripts/tests/*.sh .ci/run

echo "== set-up tests"
./scripts/tests/setup.test.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== web unit tests"
(cd web && npm test --silent)

# The UI in a real browser, against a real `vigil up` (the binary cargo test built).
echo "== web e2e (Chromium)"
(cd web && npm run --silent e2e)
