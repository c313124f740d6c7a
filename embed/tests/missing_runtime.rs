//! A missing ONNX Runtime library is an error, not a panic. In a file of its
//! own: the first runtime a process loads is the one it keeps.

use std::path::PathBuf;

use vigil_embed::{EmbedConfig, EmbedError, Embedder};

#[test]
fn missing_runtime_library_is_an_error_naming_the_path() {
    let lib = PathBuf::from("/nonexistent/libonnxruntime.so.1.31.1");
    let cfg = EmbedConfig { runtime_lib: lib, ..EmbedConfig::default() };
    let err = match Embedder::load(&cfg) {
        Ok(_) => panic!("loaded without a runtime"),
        Err(e) => e,
    };
    // With the model installed this is the runtime; without it, the model file.
    assert!(matches!(err, EmbedError::MissingFile { .. }), "{err:?}");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn unloadable_runtime_library_is_an_error() {
    let dir = std::env::temp_dir().join(format!("vigil-embed-bad-ort-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let lib = dir.join("libonnxruntime.so.1.31.1");
    if std::fs::write(&lib, b"not a shared library").is_err() {
        return;
    }
    let cfg = EmbedConfig { runtime_lib: lib.clone(), ..EmbedConfig::default() };
    let result = Embedder::load(&cfg);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(EmbedError::Runtime { path, .. }) => assert_eq!(path, lib),
        Err(EmbedError::MissingFile { .. }) => {} // the model itself is not installed
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("loaded a runtime from a text file"),
    }
}
