# shellcheck shell=bash
# Chromium for the UI's browser tests, Node.js, and the web UI build (sourced by setup.sh).
#
# web/ is a Vite + TypeScript app; `vigil` serves its build (web/dist) at /.
# Its end-to-end tests drive Debian's Chromium with playwright-core (which
# cannot download browsers here); the fonts make screenshots legible.

WEB_PKGS=(chromium fonts-liberation fonts-dejavu-core)
NODE_MIN="20.19"   # Vite 8 needs Node.js ^20.19 or >= 22.12

install_chromium() {
  apt_install "${WEB_PKGS[@]}"
  chromium --version >/dev/null 2>&1 \
    || die "chromium is installed but 'chromium --version' fails" "try: apt-get install --reinstall chromium"
}

version_at_least() {  # version_at_least HAVE WANT (dotted numbers)
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

require_node() {
  local v
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || die "Node.js $NODE_MIN+ with npm is needed to build the web UI, and is not installed" \
      "install Node.js 20.19+ (Debian bookworm's nodejs 18 is too old for Vite 8), or set VIGIL_SETUP_SKIP_WEB=1"
  v=$(node --version | sed 's/^v//')
  version_at_least "$v" "$NODE_MIN" || die "Node.js $v is too old: the web UI build needs $NODE_MIN or newer"
}

# The web sources (and build configuration) changed since FILE was written.
web_sources_newer_than() {
  (cd "$ROOT/web" && find src index.html package-lock.json package.json tsconfig.json vite.config.ts \
    -newer "$1" -print -quit 2>/dev/null)
}

build_web() {
  local web="$ROOT/web" t0
  [ -f "$web/package.json" ] || return 0
  if [ "${VIGIL_SETUP_SKIP_WEB:-0}" = 1 ]; then
    log "web UI build skipped (VIGIL_SETUP_SKIP_WEB=1)"
    return 0
  fi
  require_node
  t0=$(date +%s)
  # npm ci only when the lockfile changed since the last install.
  if ! cmp -s "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed" 2>/dev/null; then
    log "web: npm ci"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) \
      || die "npm ci failed in web/" "run (cd web && npm ci) to see why"
    cp "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed"
  fi
  if [ -f "$web/dist/index.html" ] && [ -z "$(web_sources_newer_than "$web/dist/index.html")" ]; then
    log "web UI build is up to date: $web/dist"
    return 0
  fi
  (cd "$web" && npm run --silent build >/dev/null) \
    || die "building the web UI failed" "run (cd web && npm run build) to see why"
  [ -f "$web/dist/index.html" ] || die "the web UI build left no web/dist/index.html"
  log "web UI built in $(( $(date +%s) - t0 ))s: $web/dist"
}
