# shellcheck shell=bash
# PostgreSQL configuration and the services the tests use (sourced by setup.sh):
# PostgreSQL $PG_MAJOR on 127.0.0.1:5432 with TimescaleDB preloaded, and the
# NATS server with JetStream on 127.0.0.1:4222.

PG_ETC="/etc/postgresql/${PG_MAJOR}/main"

# Preload TimescaleDB; give bulk COPY room (fewer forced checkpoints, more cache).
# Sets PG_CONF_CHANGED=1 when the file changed.
write_pg_conf() {
  PG_CONF_CHANGED=0
  [ -d "$PG_ETC" ] || return 0
  local conf="$PG_ETC/conf.d/vigil.conf"
  $SUDO mkdir -p "$PG_ETC/conf.d"
  local want=$'# Managed by Vigil scripts/setup.sh\nshared_preload_libraries = \'timescaledb\'\ntimescaledb.telemetry_level = off\nshared_buffers = 1GB\nmax_wal_size = 4GB\ncheckpoint_timeout = 15min\nwal_compression = lz4\n'
  if [ "$(cat "$conf" 2>/dev/null)" != "$(printf '%s' "$want")" ]; then
    printf '%s' "$want" | $SUDO tee "$conf" >/dev/null
    PG_CONF_CHANGED=1
    log "wrote $conf"
  fi
}

wait_for_pg() {
  local _
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && return 0
    sleep 1
  done
  return 1
}

pg_cluster_status() {
  pg_lsclusters --no-header 2>/dev/null | awk -v v="$PG_MAJOR" '$1==v && $2=="main" {print $4}'
}

start_postgres() {
  [ -d "$PG_ETC" ] || die "no PostgreSQL ${PG_MAJOR} cluster 'main' in $PG_ETC" \
    "create one with: pg_createcluster ${PG_MAJOR} main"
  if [ "$(pg_cluster_status)" != "online" ]; then
    log "starting PostgreSQL ${PG_MAJOR}"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start \
      || die "pg_ctlcluster ${PG_MAJOR} main start failed" "see /var/log/postgresql/postgresql-${PG_MAJOR}-main.log"
  elif [ "$PG_CONF_CHANGED" = 1 ] || [ "$PG_UPGRADED" = 1 ]; then
    log "restarting PostgreSQL ${PG_MAJOR} (configuration or server package changed)"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main restart \
      || die "pg_ctlcluster ${PG_MAJOR} main restart failed" "see /var/log/postgresql/postgresql-${PG_MAJOR}-main.log"
  fi
  wait_for_pg || die "PostgreSQL is not accepting connections on 127.0.0.1:5432"
  allow_loopback_trust
}

# Tests and the default DATABASE_URL connect over TCP as postgres without a
# password. Debian's default pg_hba asks for one on 127.0.0.1: allow trust
# for loopback only, and only when it is not allowed already.
allow_loopback_trust() {
  psql -w -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1 && return 0
  local hba="$PG_ETC/pg_hba.conf" tmp
  log "allowing trust auth for postgres on loopback ($hba)"
  tmp=$(mktemp)
  { echo '# vigil: loopback trust for local development and tests'
    echo 'host all postgres 127.0.0.1/32 trust'
    echo 'host all postgres ::1/128 trust'
    $SUDO cat "$hba"; } >"$tmp"
  $SUDO cp "$tmp" "$hba"
  rm -f "$tmp"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main reload || die "reloading PostgreSQL failed"
  wait_for_pg || die "PostgreSQL is not accepting connections on 127.0.0.1:5432 after the reload"
  psql -w -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null \
    || die "psql -h 127.0.0.1 -U postgres still cannot connect without a password" "check $hba"
}

start_nats() {
  port_open 4222 && return 0
  log "starting nats-server with JetStream on 127.0.0.1:4222"
  $SUDO mkdir -p /var/lib/nats-server
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log \
    || die "starting nats-server failed"
  local _
  for _ in $(seq 1 30); do
    port_open 4222 && return 0
    sleep 0.5
  done
  die "nats-server did not start on 127.0.0.1:4222" "see /var/log/nats-server.log"
}
