# shellcheck shell=bash
# Shared helpers of scripts/setup.sh and its parts (sourced, not run).
#
# Every helper either succeeds or stops the set-up with die(): the command
# that failed, its error and what to do. No helper's failure is ever read as
# "nothing to do" (bash ignores `set -e` inside a function called as an `if`
# condition, which once let a failed `apt-get install` report success).

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() {
  printf '\033[1;31m[setup] error:\033[0m %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '        %s\n' "$line" >&2; done
  exit 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo" "run the set-up as root, or install sudo"
  SUDO="sudo"
fi

# die_with_log LOG MESSAGE [HINT…]: the last lines of LOG, then die().
die_with_log() {
  echo "---- last lines of $1 ----" >&2
  tail -n 30 "$1" >&2
  die "${@:2}" "full log: $1"
}

# run_step LOG DESCRIPTION CMD…: runs CMD with its output appended to LOG; on
# failure prints the last lines of LOG and stops, naming the command.
run_step() {
  local logf=$1 what=$2
  shift 2
  "$@" >>"$logf" 2>&1 || die_with_log "$logf" "$what failed: $*"
}

# ---------------------------------------------------------------- apt packages
# Always Debian's normal apt configuration: the private trixie source
# configuration (extensions.sh) is passed to its own commands only.
APT_UPDATED=0
APT_LOG="${TMPDIR:-/tmp}/vigil-setup-apt.log"

apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  log "apt-get update"
  : >"$APT_LOG"
  run_step "$APT_LOG" "apt-get update" $SUDO env -u APT_CONFIG apt-get update -qq
  APT_UPDATED=1
}

missing_pkgs() {
  local p out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]:-}"
}

# What the set-up installed itself (not what the machine came with), so that
# scripts/rehearse-fresh-install.sh can take exactly that away again.
INSTALLED_RECORD=/var/lib/vigil-setup/installed-packages
record_installed() {
  $SUDO mkdir -p "$(dirname "$INSTALLED_RECORD")"
  printf '%s\n' "$@" | $SUDO tee -a "$INSTALLED_RECORD" >/dev/null
}

# apt_install PKG…: installs the packages that are missing, or stops the
# set-up. Sets APT_CHANGED=1 when it installed anything.
APT_CHANGED=0
apt_install() {
  local need
  need=$(missing_pkgs "$@")
  [ -n "$need" ] || return 0
  apt_update_once
  log "installing: $need"
  # shellcheck disable=SC2086
  if ! DEBIAN_FRONTEND=noninteractive $SUDO env -u APT_CONFIG apt-get install -y -qq --no-install-recommends $need \
    >>"$APT_LOG" 2>&1; then
    die_with_log "$APT_LOG" "apt-get install failed for: $need" \
      "try it by hand: apt-get update && apt-get install --no-install-recommends $need" \
      "(an 'Unable to locate package' means the machine's apt sources lack Debian bookworm main)"
  fi
  record_installed $need
  need=$(missing_pkgs "$@")
  [ -z "$need" ] || die "apt-get reported success but these packages are still not installed: $need"
  # shellcheck disable=SC2034 # read by the callers
  APT_CHANGED=1
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
