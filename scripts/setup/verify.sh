#!/usr/bin/env bash
# Checks that everything scripts/setup.sh promises is present and works, and
# prints one line per check. Exits non-zero naming what is missing. setup.sh
# runs it last; it can also be run alone.
set -uo pipefail

SETUP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SETUP_DIR/../.." && pwd)"
# shellcheck source=embedding.sh
. "$SETUP_DIR/embedding.sh"
MODEL_HOME="${VIGIL_MODEL_HOME:-/opt/vigil/models}"

FAILED=()
ROWS=()
row() {  # row STATUS CHECK DETAIL
  ROWS+=("$(printf '%-4s  %-30s  %s' "$1" "$2" "$3")")
  [ "$1" = ok ] || FAILED+=("$2: $3")
}

check_postgres() {
  local v
  if v=$(psql -w -h 127.0.0.1 -U postgres -d postgres -Atqc 'show server_version' 2>&1); then
    row ok "PostgreSQL 127.0.0.1:5432" "server $v"
  else
    row FAIL "PostgreSQL 127.0.0.1:5432" "psql -h 127.0.0.1 -U postgres: ${v//$'\n'/ }"
    return 1
  fi
}

# CREATE EXTENSION of both in a scratch database, and one use of each.
check_extensions() {
  local db="vigil_setup_check_$$" out
  psql -w -h 127.0.0.1 -U postgres -d postgres -qc "create database $db" >/dev/null 2>&1 \
    || { row FAIL "extensions" "cannot create scratch database $db"; return; }
  out=$(psql -w -h 127.0.0.1 -U postgres -d "$db" -v ON_ERROR_STOP=1 -Atq 2>&1 <<'SQL'
set client_min_messages = warning;
create extension timescaledb;
create extension vector;
create table setup_check (t timestamptz not null, v vector(2));
select create_hypertable('setup_check', 't') is not null;
insert into setup_check values (now(), '[3,4]');
select 'timescaledb ' || extversion from pg_extension where extname = 'timescaledb';
select 'vector ' || extversion from pg_extension where extname = 'vector';
select 'distance ' || (v <-> '[0,0]') from setup_check;
SQL
  )
  local rc=$?
  psql -w -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists $db" >/dev/null 2>&1
  if [ $rc -ne 0 ]; then
    row FAIL "extensions" "${out//$'\n'/ }"
    return
  fi
  local ts vec dist
  ts=$(grep '^timescaledb ' <<<"$out" | cut -d' ' -f2)
  vec=$(grep '^vector ' <<<"$out" | cut -d' ' -f2)
  dist=$(grep '^distance ' <<<"$out" | cut -d' ' -f2)
  row ok "CREATE EXTENSION timescaledb" "$ts (hypertable created)"
  if [ "$dist" = 5 ]; then
    row ok "CREATE EXTENSION vector" "$vec (distance computed)"
  else
    row FAIL "CREATE EXTENSION vector" "$vec: distance [3,4]<->[0,0] gave '$dist', expected 5"
  fi
}

# A JetStream API request over the NATS protocol: the server answers only when
# JetStream is enabled for the account.
check_nats() {
  local out
  if out=$(python3 - <<'PY' 2>&1
import json, socket, sys
s = socket.create_connection(("127.0.0.1", 4222), timeout=5)
f = s.makefile("rb")
info = json.loads(f.readline()[5:])
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.vigil_setup 1\r\n'
          b'PUB $JS.API.INFO _INBOX.vigil_setup 0\r\n\r\nPING\r\n')
while True:
    line = f.readline()
    if not line:
        sys.exit("connection closed before the JetStream answer")
    if line.startswith(b"MSG "):
        body = json.loads(f.read(int(line.split()[-1]) + 2))
        if "error" in body:
            sys.exit("JetStream: " + body["error"].get("description", str(body["error"])))
        print(f'nats-server {info.get("version")}, JetStream answering')
        break
    if line.startswith(b"-ERR"):
        sys.exit(line.decode().strip())
PY
  ); then
    row ok "NATS 127.0.0.1:4222" "$out"
  else
    row FAIL "NATS 127.0.0.1:4222" "${out//$'\n'/ } (is nats-server running with -js?)"
  fi
}

check_sha() {  # check_sha NAME FILE SHA
  local have
  if [ ! -f "$2" ]; then
    row FAIL "$1" "missing: $2"
    return
  fi
  have=$(sha256sum "$2" | cut -d' ' -f1)
  if [ "$have" = "$3" ]; then
    row ok "$1" "$2 sha256 ${have:0:16}…"
  else
    row FAIL "$1" "$2 sha256 $have, expected $3"
  fi
}

check_model() {
  local mdir="$MODEL_HOME/all-minilm-l6-v2" odir="$MODEL_HOME/onnxruntime"
  check_sha "embedding model" "$mdir/model.onnx" "$EMBED_FP32_ONNX_SHA"
  check_sha "tokenizer" "$mdir/tokenizer.json" "$EMBED_TOKENIZER_JSON_SHA"
  check_sha "ONNX Runtime" "$odir/libonnxruntime.so.1.31.1" "$EMBED_ORT_SO_SHA"
}

check_command() {  # check_command NAME CMD…: CMD prints a version
  local out
  # Read all of the output before taking its first line: `| head -1` closes
  # the pipe early, so a tool that prints more (bpftool) dies of SIGPIPE and
  # pipefail reports a working tool as failed.
  if out=$("${@:2}" 2>&1) && [ -n "$out" ]; then
    row ok "$1" "${out%%$'\n'*}"
  else
    row FAIL "$1" "'${*:2}' failed: ${out:-not found}"
  fi
}

check_web_build() {
  if [ "${VIGIL_SETUP_SKIP_WEB:-0}" = 1 ]; then
    row ok "web UI build" "skipped (VIGIL_SETUP_SKIP_WEB=1)"
  elif [ -f "$ROOT/web/dist/index.html" ]; then
    row ok "web UI build" "$ROOT/web/dist"
  else
    row FAIL "web UI build" "no $ROOT/web/dist/index.html"
  fi
}

# Debian's chromium wrapper prints shell noise before the version on some machines.
chromium_version() { chromium --version 2>/dev/null | grep -m1 -i '^chromium'; }

shellcheck_version() { shellcheck --version | grep -m1 '^version'; }

check_postgres && check_extensions
check_nats
check_model
check_command "chromium" chromium_version
check_command "node" node --version
check_command "npm" npm --version
check_web_build
check_command "cargo" cargo --version
check_command "clang (eBPF programs)" clang --version
check_command "bpftool" bpftool version
check_command "shellcheck" shellcheck_version

printf '\n%-4s  %-30s  %s\n' "" "check" "detail" >&2
printf '%s\n' "${ROWS[@]}" >&2
if [ ${#FAILED[@]} -gt 0 ]; then
  printf '\n\033[1;31m[setup] not ready, %d check(s) failed:\033[0m\n' ${#FAILED[@]} >&2
  printf '  - %s\n' "${FAILED[@]}" >&2
  exit 1
fi
printf '\n[setup] ready: every check passed\n' >&2
