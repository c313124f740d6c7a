#!/usr/bin/env bash
# Vigil set-up for Debian bookworm (run as root, or through sudo).
#
# Installs and starts everything Vigil and its tests need, and does nothing
# that is already done, so a second run takes seconds:
#   - PostgreSQL 15 with pgvector 0.8.x and TimescaleDB 2.x (Apache-only build).
#     Bookworm packages neither extension, so both are built from Debian trixie
#     *source* packages fetched through a private apt configuration that holds
#     only a deb-src line: a trixie binary line would drag in a libc upgrade.
#   - NATS server with JetStream on 127.0.0.1:4222.
#   - The system libraries the Rust build links against.
#
# Environment knobs:
#   VIGIL_SETUP_SKIP_SERVICES=1   install only; do not start or restart services
#   VIGIL_SETUP_WORK=/path        where sources are unpacked (default /var/cache/vigil-setup)
set -euo pipefail

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo)"
  SUDO="sudo"
fi

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
WORK="${VIGIL_SETUP_WORK:-/var/cache/vigil-setup}"
started=$(date +%s)

# ---------------------------------------------------------------- apt packages
APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
}

missing_pkgs() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]:-}"
}

apt_install() {
  local need
  need=$(missing_pkgs "$@")
  if [ -n "$need" ]; then
    apt_update_once
    log "installing: $need"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
    return 0
  fi
  return 1
}

BASE_PKGS=(ca-certificates curl postgresql-${PG_MAJOR} postgresql-client-${PG_MAJOR} postgresql-contrib
  nats-server build-essential pkg-config libssl-dev)
PG_BUILD_PKGS=(postgresql-server-dev-${PG_MAJOR} cmake dpkg-dev)

pg_upgraded=0
if apt_install "${BASE_PKGS[@]}"; then pg_upgraded=1; fi

# ------------------------------------------------ pgvector + TimescaleDB build
pkglibdir() { "$PG_CONFIG" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/${PG_MAJOR}/lib"; }

# Build output goes to a log that is shown only when a step fails.
run_logged() {
  if ! $SUDO "$@" >>"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    die "failed: $* (full log: $WORK/build.log)"
  fi
}

have_ext() { [ -f "$(pkglibdir)/$1" ]; }

if have_ext vector.so && have_ext timescaledb.so; then
  log "pgvector and TimescaleDB already installed in $(pkglibdir)"
else
  # postgresql-server-dev can upgrade the server's minor version: restart afterwards.
  if apt_install "${PG_BUILD_PKGS[@]}"; then pg_upgraded=1; fi
  $SUDO mkdir -p "$WORK"
  APTDIR="$WORK/apt"
  $SUDO mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/etc/preferences.d"
  # Only a deb-src line: source packages carry no binaries, so nothing from
  # trixie can ever be installed through this configuration.
  echo "deb-src http://deb.debian.org/debian trixie main" | $SUDO tee "$APTDIR/sources.list" >/dev/null
  cat <<CONF | $SUDO tee "$APTDIR/apt.conf" >/dev/null
Dir::Etc::SourceList "$APTDIR/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "/nonexistent";
Dir::Etc::PreferencesParts "$APTDIR/etc/preferences.d";
Dir::State::Lists "$APTDIR/lists";
Dir::Cache "$APTDIR/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Sandbox::User "root";
CONF
  export APT_CONFIG="$APTDIR/apt.conf"
  log "fetching trixie source indexes (private apt configuration)"
  $SUDO env APT_CONFIG="$APT_CONFIG" apt-get update -qq
  SRC="$WORK/src"
  $SUDO mkdir -p "$SRC"
  cd "$SRC"

  if ! have_ext vector.so; then
    log "building pgvector from the trixie source package"
    $SUDO rm -rf "$SRC"/pgvector-*
    $SUDO env APT_CONFIG="$APT_CONFIG" apt-get source -qq --download-only pgvector >/dev/null
    $SUDO dpkg-source -x --no-check "$(ls -1 pgvector_*.dsc | head -1)" >/dev/null
    dir=$(find "$SRC" -maxdepth 1 -type d -name 'pgvector-*' | head -1)
    [ -n "$dir" ] || die "pgvector source did not unpack"
    run_logged make -C "$dir" PG_CONFIG="$PG_CONFIG"
    run_logged make -C "$dir" PG_CONFIG="$PG_CONFIG" install
  fi

  if ! have_ext timescaledb.so; then
    log "building TimescaleDB (Apache-only) from the trixie source package"
    $SUDO rm -rf "$SRC"/timescaledb-*
    $SUDO env APT_CONFIG="$APT_CONFIG" apt-get source -qq --download-only timescaledb >/dev/null
    $SUDO dpkg-source -x --no-check "$(ls -1 timescaledb_*.dsc | head -1)" >/dev/null
    dir=$(find "$SRC" -maxdepth 1 -type d -name 'timescaledb-*' | head -1)
    [ -n "$dir" ] || die "timescaledb source did not unpack"
    run_logged cmake -S "$dir" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPG_CONFIG="$PG_CONFIG" \
      -DAPACHE_ONLY=1 -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF -DREGRESS_CHECKS=OFF \
      -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF
    run_logged make -C "$dir/build" -j"$(nproc)"
    run_logged make -C "$dir/build" install
  fi
  have_ext vector.so && have_ext timescaledb.so || die "extension build finished but the .so files are missing"
  log "pgvector and TimescaleDB installed"
fi

# ---------------------------------------------------- PostgreSQL configuration
CONF_DIR="/etc/postgresql/${PG_MAJOR}/main/conf.d"
conf_changed=0
if [ -d "/etc/postgresql/${PG_MAJOR}/main" ]; then
  $SUDO mkdir -p "$CONF_DIR"
  # Preload TimescaleDB; give bulk COPY room (fewer forced checkpoints, more cache).
  want=$'# Managed by Vigil scripts/setup.sh\nshared_preload_libraries = \'timescaledb\'\ntimescaledb.telemetry_level = off\nshared_buffers = 1GB\nmax_wal_size = 4GB\ncheckpoint_timeout = 15min\nwal_compression = lz4\n'
  if [ "$(cat "$CONF_DIR/vigil.conf" 2>/dev/null)" != "$(printf '%s' "$want")" ]; then
    printf '%s' "$want" | $SUDO tee "$CONF_DIR/vigil.conf" >/dev/null
    conf_changed=1
    log "wrote $CONF_DIR/vigil.conf"
  fi
fi

if [ "${VIGIL_SETUP_SKIP_SERVICES:-0}" != 1 ]; then
  if [ -d "/etc/postgresql/${PG_MAJOR}/main" ]; then
    status=$(pg_lsclusters --no-header 2>/dev/null | awk -v v="$PG_MAJOR" '$1==v && $2=="main" {print $4}')
    if [ "$status" != "online" ]; then
      log "starting PostgreSQL ${PG_MAJOR}"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start
    elif [ "$conf_changed" = 1 ] || [ "$pg_upgraded" = 1 ]; then
      log "restarting PostgreSQL ${PG_MAJOR} (configuration or server package changed)"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main restart
    fi
    for _ in $(seq 1 30); do
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 1
    done
    # Tests and the default DATABASE_URL connect over TCP as postgres without a
    # password. Debian's default pg_hba asks for one on 127.0.0.1: allow trust
    # for loopback only, and only when it is not allowed already.
    if ! psql -w -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
      HBA="/etc/postgresql/${PG_MAJOR}/main/pg_hba.conf"
      log "allowing trust auth for postgres on loopback (${HBA})"
      tmp=$(mktemp)
      { echo '# vigil: loopback trust for local development and tests'
        echo 'host all postgres 127.0.0.1/32 trust'
        echo 'host all postgres ::1/128 trust'
        $SUDO cat "$HBA"; } >"$tmp"
      $SUDO cp "$tmp" "$HBA"; rm -f "$tmp"
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main reload
    fi
    for _ in $(seq 1 30); do
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 1
    done
    pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL is not accepting connections on 127.0.0.1:5432"
  fi

  if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    log "starting nats-server with JetStream on 127.0.0.1:4222"
    $SUDO mkdir -p /var/lib/nats-server
    $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 1 30); do
      (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break
      sleep 0.5
    done
    (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null || die "nats-server did not start on 127.0.0.1:4222"
  fi
fi

# ------------------------------------------------------------------- Rust
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || die "cargo not found: install the Rust toolchain (rustup) first"
fi

log "done in $(( $(date +%s) - started ))s"
