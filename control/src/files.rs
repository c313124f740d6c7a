//! Secrets on disk: written readable by their owner only, created without
//! following a symlink planted at their path, and refused when group or
//! others may read them (as ssh refuses a private key).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::ControlError;

/// A symlink at the path is an error, not a redirection.
const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;

/// Writes `contents` to `path` with mode 0600, replacing what is there
/// (through a temporary file and a rename, so a reader never sees half a key).
/// A missing directory is created 0700; an existing one is left as it is
/// (it may be a data directory other users must traverse).
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), ControlError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        create_private_dir(dir)?;
    }
    replace(path, contents, 0o600)
}

/// Writes a file anyone may read (a public key, a generated configuration).
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), ControlError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ControlError::Write { path: path.to_path_buf(), source })?;
    }
    replace(path, contents, 0o644)
}

/// Writes a fresh temporary file with `mode` (never through a symlink planted
/// at its name), syncs it and renames it over `path`.
fn replace(path: &Path, contents: &[u8], mode: u32) -> Result<(), ControlError> {
    let err = |source| ControlError::Write { path: path.to_path_buf(), source };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(O_NOFOLLOW).open(&tmp).map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Creates `dir` (and parents) and makes it 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), ControlError> {
    let err = |source| ControlError::Write { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(err)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Reads a secret, refusing one that group or others may read.
pub fn read_secret(path: &Path) -> Result<String, ControlError> {
    let err = |source| ControlError::Read { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(err)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ControlError::Readable { path: path.to_path_buf(), mode });
    }
    std::fs::read_to_string(path).map_err(err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_private_and_readable_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("keys/k");
        write_secret(&key, b"seed").unwrap();
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(key.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(read_secret(&key).unwrap(), "seed");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret(&key).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        write_secret(&dir.path().join("k"), b"seed").unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "untouched").unwrap();
        let path = dir.path().join("k");
        std::os::unix::fs::symlink(&target, path.with_extension("tmp")).unwrap();
        // The temporary name is removed first, then created without following links.
        write_secret(&path, b"seed").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    }
}
