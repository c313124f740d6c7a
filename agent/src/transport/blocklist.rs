//! IP blocking behind the [`Blocklist`] trait, which the `block_ip`,
//! `unblock_ip` and `list_blocked` commands drive. [`MemoryBlocklist`] is the
//! backend that works everywhere: a set in memory, persisted to
//! `blocklist.json` in the spool directory so blocks survive a restart. It
//! records intent only (nothing is filtered); the XDP backend
//! ([`super::xdp::XdpBlocklist`]), which drops the traffic in the kernel,
//! implements the same trait and keeps the same file as its record.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::spool::{create_private_dir, open_private, read_private};

/// Blocklist failures.
#[derive(Debug, thiserror::Error)]
pub enum BlocklistError {
    #[error("blocklist {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blocklist {path} is not readable ({detail}); fix or remove it")]
    Corrupt { path: PathBuf, detail: String },
    #[error("blocklist backend failed: {0}")]
    Backend(String),
}

/// A set of blocked addresses. Methods are synchronous (a file write, a BPF
/// map update) and must be cheap.
pub trait Blocklist: Send + Sync {
    /// Blocks `ip`; `Ok(false)` when it already was.
    fn block(&self, ip: IpAddr) -> Result<bool, BlocklistError>;
    /// Unblocks `ip`; `Ok(false)` when it was not blocked.
    fn unblock(&self, ip: IpAddr) -> Result<bool, BlocklistError>;
    /// The blocked addresses, sorted.
    fn list(&self) -> Result<Vec<IpAddr>, BlocklistError>;
    /// What enforces the list (`"memory"`: recorded only; `"xdp"`: dropped in the kernel).
    fn backend(&self) -> &'static str;
    /// Packets dropped per blocked address, sorted by address; `None` when
    /// the backend does not count (nothing is dropped).
    fn drop_counts(&self) -> Result<Option<Vec<(IpAddr, u64)>>, BlocklistError> {
        Ok(None)
    }
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    blocked: Vec<IpAddr>,
}

/// The file-backed, in-memory blocklist.
#[derive(Debug)]
pub struct MemoryBlocklist {
    path: PathBuf,
    set: Mutex<HashSet<IpAddr>>,
}

impl MemoryBlocklist {
    /// Name of the file in the directory given to [`MemoryBlocklist::open`].
    pub const FILE_NAME: &'static str = "blocklist.json";

    /// Opens the blocklist kept in `dir` (usually the spool directory),
    /// starting empty when there is no file yet. A file that does not parse
    /// is an error rather than silently forgotten blocks, and so is a
    /// symbolic link in its place (the file is never read or written through one).
    pub fn open(dir: &Path) -> Result<Self, BlocklistError> {
        create_private_dir(dir).map_err(|source| BlocklistError::Io { path: dir.to_path_buf(), source })?;
        let path = dir.join(Self::FILE_NAME);
        let set = match read_private(&path) {
            Ok(bytes) => {
                let form: FileForm = serde_json::from_slice(&bytes)
                    .map_err(|e| BlocklistError::Corrupt { path: path.clone(), detail: e.to_string() })?;
                form.blocked.into_iter().collect()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashSet::new(),
            Err(source) => return Err(BlocklistError::Io { path, source }),
        };
        Ok(MemoryBlocklist { path, set: Mutex::new(set) })
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<IpAddr>> {
        // The set is consistent at every unlock (a failed save is rolled back), so a poisoned lock is usable.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the set atomically: a fresh temporary file (mode 0600, never
    /// through a link), fsync, rename (which replaces a link, never follows
    /// it), fsync of the directory.
    fn save(&self, set: &HashSet<IpAddr>) -> Result<(), BlocklistError> {
        let io = |source| BlocklistError::Io { path: self.path.clone(), source };
        let form = FileForm { version: 1, blocked: sorted(set) };
        let bytes = serde_json::to_vec_pretty(&form).map_err(|e| io(io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        // A leftover of a crashed save (or anything planted there) goes; removing a link removes only the link.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut f = open_private(OpenOptions::new().write(true).create_new(true), &tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

fn sorted(set: &HashSet<IpAddr>) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = set.iter().copied().collect();
    v.sort_unstable();
    v
}

impl Blocklist for MemoryBlocklist {
    fn block(&self, ip: IpAddr) -> Result<bool, BlocklistError> {
        let mut set = self.lock();
        if !set.insert(ip) {
            return Ok(false);
        }
        if let Err(e) = self.save(&set) {
            set.remove(&ip);
            return Err(e);
        }
        Ok(true)
    }

    fn unblock(&self, ip: IpAddr) -> Result<bool, BlocklistError> {
        let mut set = self.lock();
        if !set.remove(&ip) {
            return Ok(false);
        }
        if let Err(e) = self.save(&set) {
            set.insert(ip);
            return Err(e);
        }
        Ok(true)
    }

    fn list(&self) -> Result<Vec<IpAddr>, BlocklistError> {
        Ok(sorted(&self.lock()))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        {
            let bl = MemoryBlocklist::open(dir.path()).unwrap();
            assert!(bl.block(a).unwrap());
            assert!(!bl.block(a).unwrap());
            assert!(bl.block(b).unwrap());
            assert!(bl.unblock(b).unwrap());
            assert!(!bl.unblock(b).unwrap());
        }
        let bl = MemoryBlocklist::open(dir.path()).unwrap();
        assert_eq!(bl.list().unwrap(), vec![a]);
    }

    #[test]
    fn a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(MemoryBlocklist::FILE_NAME), b"{not json").unwrap();
        assert!(matches!(MemoryBlocklist::open(dir.path()), Err(BlocklistError::Corrupt { .. })));
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_file_and_its_directory_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spool");
        let bl = MemoryBlocklist::open(&dir).unwrap();
        bl.block("203.0.113.7".parse().unwrap()).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(MemoryBlocklist::FILE_NAME)), 0o600);
    }

    #[test]
    fn a_symlink_at_the_blocklist_path_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, br#"{"version": 1, "blocked": []}"#).unwrap();
        let path = dir.path().join(MemoryBlocklist::FILE_NAME);
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        // Planted before start: refused with a clear error.
        let err = MemoryBlocklist::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("blocklist.json") && err.contains("symbolic link"), "{err}");

        // Planted while running (and at the temporary file): the save
        // replaces the links, the target is never written.
        fs::remove_file(&path).unwrap();
        let bl = MemoryBlocklist::open(dir.path()).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("json.tmp")).unwrap();
        bl.block("203.0.113.7".parse().unwrap()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), br#"{"version": 1, "blocked": []}"#);
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(MemoryBlocklist::open(dir.path()).unwrap().list().unwrap().len(), 1);
    }
}
