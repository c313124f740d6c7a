//! Generated passwords, kept in files only their owner can read.

use std::io::Write;
use std::path::Path;

use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// 32 random letters and digits (about 190 bits): safe in a URL and in SQL
/// literals without escaping.
pub(crate) fn generate_password() -> String {
    Alphanumeric.sample_string(&mut StdRng::from_os_rng(), 32)
}

/// The password kept in `path`, or a new one written there (mode 0600,
/// never through an existing file or symlink) when there is none.
/// `Ok((password, true))` when it was just made.
pub(crate) fn password_file(path: &Path) -> std::io::Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(saved) if !saved.trim().is_empty() => return Ok((saved.trim().to_string(), false)),
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))),
    }
    let password = generate_password();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f =
        options.open(path).map_err(|e| std::io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))?;
    f.write_all(format!("{password}\n").as_bytes())?;
    f.sync_all()?;
    Ok((password, true))
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password`: computed here
/// so the password itself never travels to the server or into its logs.
pub(crate) fn scram_verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}
