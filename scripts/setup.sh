#!/usr/bin/env bash
# Vigil set-up for Debian bookworm (run as root, or through sudo).
#
# Installs and starts everything Vigil and its tests need, does nothing that
# is already done (a second run takes seconds), stops at the first failure
# naming the command and what to do, and ends by checking that everything it
# promises is present and works (setup/verify.sh prints the table):
#   - PostgreSQL 15 with pgvector 0.8.x and TimescaleDB 2.x (Apache-only),
#     built from Debian trixie source packages (setup/extensions.sh).
#   - The NATS server with JetStream on 127.0.0.1:4222 (setup/services.sh).
#   - The libraries the Rust build links against, and the eBPF toolchain.
#   - The embedding model and ONNX Runtime (setup/embedding.sh).
#   - Debian's Chromium and the web UI build (setup/web.sh).
#
# Environment knobs:
#   VIGIL_SETUP_SKIP_SERVICES=1   install only; do not start or restart services
#   VIGIL_SETUP_SKIP_WEB=1        do not build the web UI (web/dist)
#   VIGIL_SETUP_WORK=/path        where sources are unpacked (default /var/cache/vigil-setup)
#   VIGIL_MODEL_HOME=/path        where the model goes (default /opt/vigil/models)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SETUP_DIR="$ROOT/scripts/setup"
PG_MAJOR=15
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
WORK="${VIGIL_SETUP_WORK:-/var/cache/vigil-setup}"
# shellcheck source=setup/lib.sh
. "$SETUP_DIR/lib.sh"
# shellcheck source=setup/extensions.sh
. "$SETUP_DIR/extensions.sh"
# shellcheck source=setup/services.sh
. "$SETUP_DIR/services.sh"
# shellcheck source=setup/embedding.sh
. "$SETUP_DIR/embedding.sh"
# shellcheck source=setup/web.sh
. "$SETUP_DIR/web.sh"

started=$(date +%s)
$SUDO mkdir -p "$WORK"
[ -z "$SUDO" ] || $SUDO chown "$(id -u):$(id -g)" "$WORK"

[ -d "$HOME/.cargo/bin" ] && PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null 2>&1 || die "cargo not found" "install the Rust toolchain (rustup) first"

BASE_PKGS=(ca-certificates curl "postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" postgresql-contrib
  nats-server build-essential pkg-config libssl-dev)
PG_BUILD_PKGS=("postgresql-server-dev-${PG_MAJOR}" cmake dpkg-dev)
# agent/build.rs compiles agent/bpf/*.bpf.c with clang (-target bpf, CO-RE),
# takes bpf_helpers.h from libbpf-dev and dumps vmlinux.h with bpftool from
# the kernel's BTF. The XDP test (agent/tests/bpf.rs) uses ip (network
# namespaces, veth) and ping.
EBPF_PKGS=(clang llvm libbpf-dev bpftool iproute2 iputils-ping)
# scripts/test.sh lints the scripts with shellcheck.
TEST_PKGS=(shellcheck)

PG_UPGRADED=0
APT_CHANGED=0
apt_install "${BASE_PKGS[@]}"
[ "$APT_CHANGED" = 0 ] || PG_UPGRADED=1
apt_install "${EBPF_PKGS[@]}"
apt_install "${TEST_PKGS[@]}"
install_pg_extensions
write_pg_conf

if [ "${VIGIL_SETUP_SKIP_SERVICES:-0}" != 1 ]; then
  start_postgres
  start_nats
fi

install_embedding_model
install_chromium
build_web

log "installed in $(( $(date +%s) - started ))s; checking"
if [ "${VIGIL_SETUP_SKIP_SERVICES:-0}" = 1 ]; then
  log "services not started (VIGIL_SETUP_SKIP_SERVICES=1): skipping the checks"
else
  "$SETUP_DIR/verify.sh" || die "set-up incomplete: see the failed checks above"
fi
log "done in $(( $(date +%s) - started ))s"
