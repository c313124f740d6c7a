# shellcheck shell=bash
# pgvector and TimescaleDB (Apache-only) for PostgreSQL $PG_MAJOR (sourced by setup.sh).
#
# Bookworm packages neither extension, so both are built from Debian trixie
# *source* packages. The trixie index lives in a private apt configuration
# that holds only a deb-src line (source packages carry no binaries, so
# nothing from trixie can be installed through it), and that configuration
# is given to the two commands that need it — `apt-get update` and
# `apt-get source` — never exported: exported, it hid Debian's own lists from
# every later `apt-get install` of the set-up.

pkglibdir() { "$PG_CONFIG" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/${PG_MAJOR}/lib"; }
have_ext() { [ -f "$(pkglibdir)/$1" ]; }

# Writes the private configuration under $1 and prints its path.
private_trixie_src_apt_conf() {
  local dir=$1
  $SUDO mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/etc/preferences.d"
  echo "deb-src http://deb.debian.org/debian trixie main" | $SUDO tee "$dir/sources.list" >/dev/null
  cat <<CONF | $SUDO tee "$dir/apt.conf" >/dev/null
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "/nonexistent";
Dir::Etc::PreferencesParts "$dir/etc/preferences.d";
Dir::State::Lists "$dir/lists";
Dir::Cache "$dir/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Sandbox::User "root";
CONF
  echo "$dir/apt.conf"
}

# fetch_source CONF PACKAGE SRCDIR: downloads and unpacks a trixie source
# package into SRCDIR and prints the unpacked directory.
fetch_source() {
  local conf=$1 pkg=$2 src=$3 dir dsc
  $SUDO rm -rf "$src/$pkg"-* "$src/$pkg"_*
  (cd "$src" && run_step "$BUILD_LOG" "apt-get source $pkg" \
    $SUDO env APT_CONFIG="$conf" apt-get source -qq --download-only "$pkg")
  dsc=$(ls -1 "$src/$pkg"_*.dsc 2>/dev/null | head -1)
  [ -n "$dsc" ] || die "apt-get source $pkg left no .dsc in $src"
  (cd "$src" && run_step "$BUILD_LOG" "dpkg-source -x $pkg" $SUDO dpkg-source -x --no-check "$dsc")
  dir=$(find "$src" -maxdepth 1 -type d -name "$pkg-*" | head -1)
  [ -n "$dir" ] || die "$pkg source did not unpack in $src"
  echo "$dir"
}

build_pgvector() {
  local dir
  log "building pgvector from the trixie source package"
  dir=$(fetch_source "$1" pgvector "$2") || exit 1
  run_step "$BUILD_LOG" "building pgvector" $SUDO make -C "$dir" PG_CONFIG="$PG_CONFIG"
  run_step "$BUILD_LOG" "installing pgvector" $SUDO make -C "$dir" PG_CONFIG="$PG_CONFIG" install
}

build_timescaledb() {
  local dir
  log "building TimescaleDB (Apache-only) from the trixie source package"
  dir=$(fetch_source "$1" timescaledb "$2") || exit 1
  run_step "$BUILD_LOG" "configuring TimescaleDB" $SUDO cmake -S "$dir" -B "$dir/build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPG_CONFIG="$PG_CONFIG" -DAPACHE_ONLY=1 \
    -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
    -DWARNINGS_AS_ERRORS=OFF
  run_step "$BUILD_LOG" "building TimescaleDB" $SUDO make -C "$dir/build" -j"$(nproc)"
  run_step "$BUILD_LOG" "installing TimescaleDB" $SUDO make -C "$dir/build" install
}

# Sets PG_UPGRADED=1 when the server package may have changed (dev-15 can
# pull a newer minor version: the server must restart).
install_pg_extensions() {
  if have_ext vector.so && have_ext timescaledb.so; then
    log "pgvector and TimescaleDB already installed in $(pkglibdir)"
    return 0
  fi
  APT_CHANGED=0
  apt_install "${PG_BUILD_PKGS[@]}"
  # shellcheck disable=SC2034 # read by services.sh
  [ "$APT_CHANGED" = 0 ] || PG_UPGRADED=1
  $SUDO mkdir -p "$WORK/src"
  BUILD_LOG="$WORK/build.log"
  : >"$BUILD_LOG"
  local conf
  conf=$(private_trixie_src_apt_conf "$WORK/apt") || exit 1
  log "fetching trixie source indexes (private apt configuration, this command only)"
  run_step "$BUILD_LOG" "apt-get update (trixie sources)" $SUDO env APT_CONFIG="$conf" apt-get update -qq
  if ! have_ext vector.so; then build_pgvector "$conf" "$WORK/src"; fi
  if ! have_ext timescaledb.so; then build_timescaledb "$conf" "$WORK/src"; fi
  have_ext vector.so && have_ext timescaledb.so \
    || die "extension build finished but vector.so or timescaledb.so is missing in $(pkglibdir)" "build log: $BUILD_LOG"
  log "pgvector and TimescaleDB installed"
}
