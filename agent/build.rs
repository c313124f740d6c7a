//! Compiles the agent's BPF programs (`bpf/*.bpf.c`) with clang into
//! `OUT_DIR`, CO-RE against a `vmlinux.h` dumped by bpftool from the build
//! host's kernel BTF (`/sys/kernel/btf/vmlinux`). When clang, bpftool, the
//! libbpf headers or the BTF are missing (or `VIGIL_AGENT_BPF=0`), the agent
//! is built without them: a cargo warning says why and the agent reports
//! eBPF as unavailable at run time.
//!
//! On success it sets `cfg(vigil_bpf)` and the paths of the objects in
//! `VIGIL_BPF_EXEC_OBJ` / `VIGIL_BPF_NET_OBJ` / `VIGIL_BPF_XDP_OBJ` (for
//! `include_bytes_aligned!`).
//! Overrides: `CLANG`, `BPFTOOL`, `VIGIL_AGENT_BTF` (another BTF file).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAMS: [(&str, &str); 3] =
    [("exec", "VIGIL_BPF_EXEC_OBJ"), ("net", "VIGIL_BPF_NET_OBJ"), ("xdp_blocklist", "VIGIL_BPF_XDP_OBJ")];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vigil_bpf)");
    println!("cargo::rerun-if-changed=bpf");
    for var in ["CLANG", "BPFTOOL", "VIGIL_AGENT_BPF", "VIGIL_AGENT_BTF"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    match build() {
        Ok(objects) => {
            println!("cargo::rustc-cfg=vigil_bpf");
            for (var, path) in objects {
                println!("cargo::rustc-env={var}={}", path.display());
            }
        }
        Err(why) => {
            println!("cargo::warning=building vigil-agent without eBPF (exec/connection tracing, XDP): {why}");
        }
    }
}

fn build() -> Result<Vec<(&'static str, PathBuf)>, String> {
    if env::var("VIGIL_AGENT_BPF").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("false")) {
        return Err("VIGIL_AGENT_BPF=0".into());
    }
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default().as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        other => return Err(format!("no BPF target arch for {other:?}")),
    };
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?);
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| format!("CARGO_MANIFEST_DIR: {e}"))?);
    let src = manifest.join("bpf");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let bpftool = env::var("BPFTOOL").unwrap_or_else(|_| "bpftool".into());
    let btf = env::var("VIGIL_AGENT_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());

    if !Path::new(&btf).exists() {
        return Err(format!("no kernel BTF at {btf}"));
    }
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        return Err("no libbpf headers (/usr/include/bpf/bpf_helpers.h; install libbpf-dev)".into());
    }
    let vmlinux = out.join("vmlinux.h");
    let dump = Command::new(&bpftool)
        .args(["btf", "dump", "file", &btf, "format", "c"])
        .output()
        .map_err(|e| format!("running {bpftool}: {e} (install bpftool)"))?;
    if !dump.status.success() {
        return Err(format!("{bpftool} btf dump failed: {}", String::from_utf8_lossy(&dump.stderr).trim()));
    }
    std::fs::write(&vmlinux, &dump.stdout).map_err(|e| format!("writing {}: {e}", vmlinux.display()))?;

    let mut objects = Vec::new();
    for (name, var) in PROGRAMS {
        let input = src.join(format!("{name}.bpf.c"));
        let output = out.join(format!("{name}.bpf.o"));
        let result = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Wno-unused-function"])
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg("-I")
            .arg(&out)
            .arg("-I")
            .arg(&src)
            .arg("-c")
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .output()
            .map_err(|e| format!("running {clang}: {e} (install clang)"))?;
        if !result.status.success() {
            return Err(format!(
                "{clang} failed on {}: {}",
                input.display(),
                String::from_utf8_lossy(&result.stderr).trim()
            ));
        }
        objects.push((var, output));
    }
    Ok(objects)
}
