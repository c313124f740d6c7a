//! Package inventory: dpkg (`<dpkg_dir>/status` and the file lists
//! `<dpkg_dir>/info/<name>[:<arch>].list`) and, where the `rpm` command and
//! an rpm database exist, rpm (`rpm -qa --queryformat`). The
//! [`PackageCollector`] re-reads a database only when it changed (by
//! mtime), diffs against the last inventory ([`PackageState`]) and emits
//! `package` events as `docs/events.md` defines them: `raw.package`,
//! `version`, `manager`, `action` (`installed`, `removed`, `upgraded`),
//! `files`.
//!
//! Files are what the server matches against running executables
//! (`process.path`, a real path), so each listed path whose directory is a
//! symlink (`/bin` → `/usr/bin` on merged-/usr systems) is also given in its
//! resolved form. Directories are left out. A package whose list would make
//! the event too big for the ingest limit (256 KiB) keeps only its
//! executables (`raw.files_complete = false`, `raw.file_count` the full count).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::json;
use vigil_event::{Event, Kind};

use super::{new_event, HostContext};
use crate::state::{directories_of, Inventory, Package, PackageChange, PackageState};

/// Bytes of file paths one event may carry before the list is cut to executables.
pub const MAX_FILES_BYTES: usize = 192 * 1024;

/// Why an inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("running rpm: {0}")]
    Rpm(String),
}

/// One paragraph of the dpkg status file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DpkgEntry {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub status: String,
    pub multi_arch: String,
}

impl DpkgEntry {
    /// Whether the package's files are on disk: status `installed` (whatever
    /// is wanted of it, `hold` or `deinstall` included) or installed with
    /// triggers pending.
    pub fn is_installed(&self) -> bool {
        matches!(self.status.split_whitespace().nth(2), Some("installed" | "triggers-pending" | "triggers-awaited"))
    }
}

/// Every paragraph of a dpkg status file (continuation lines skipped).
pub fn parse_dpkg_status(text: &str) -> Vec<DpkgEntry> {
    let mut entries = Vec::new();
    let mut cur = DpkgEntry::default();
    let mut any = false;
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if any && !cur.name.is_empty() {
                entries.push(std::mem::take(&mut cur));
            }
            cur = DpkgEntry::default();
            any = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        any = true;
        let value = value.trim().to_string();
        match key {
            "Package" => cur.name = value,
            "Version" => cur.version = value,
            "Architecture" => cur.architecture = value,
            "Status" => cur.status = value,
            "Multi-Arch" => cur.multi_arch = value,
            _ => {}
        }
    }
    entries
}

/// A dpkg `.list`: absolute paths, directories (parents of other paths) and `/.` left out.
pub fn parse_list(text: &str) -> Vec<String> {
    let paths: Vec<String> =
        text.lines().map(str::trim_end).filter(|l| l.starts_with('/') && *l != "/.").map(str::to_string).collect();
    let dirs = directories_of(&paths);
    let mut files: Vec<String> = paths.iter().filter(|p| !dirs.contains(p.as_str())).cloned().collect();
    files.sort();
    files.dedup();
    files
}

/// Resolves the directory part of package paths against a filesystem root
/// (cached per directory), so `/bin/ls` is also known as `/usr/bin/ls`.
#[derive(Debug)]
pub struct PathResolver {
    root: Option<PathBuf>,
    dirs: HashMap<String, Option<String>>,
}

impl PathResolver {
    /// Resolves against `root` (the host's `/`), or not at all with `None`.
    pub fn new(root: Option<&Path>) -> Self {
        PathResolver { root: root.and_then(|r| fs::canonicalize(r).ok()), dirs: HashMap::new() }
    }

    /// The path with its directory resolved, when that differs.
    pub fn resolve(&mut self, path: &str) -> Option<String> {
        let root = self.root.as_ref()?;
        let (dir, file) = path.rsplit_once('/')?;
        if dir.is_empty() {
            return None;
        }
        let real = self
            .dirs
            .entry(dir.to_string())
            .or_insert_with(|| {
                let canon = fs::canonicalize(root.join(dir.trim_start_matches('/'))).ok()?;
                let rel = canon.strip_prefix(root).ok()?;
                Some(format!("/{}", rel.to_string_lossy()))
            })
            .as_deref()?;
        let resolved = format!("{}/{file}", real.trim_end_matches('/'));
        (resolved != path).then_some(resolved)
    }

    /// Whether `path` is an executable regular file under the root (without
    /// a root: whether it sits in a `bin`, `sbin` or `libexec` directory).
    fn is_executable(&self, path: &str) -> bool {
        match &self.root {
            Some(root) => fs::metadata(root.join(path.trim_start_matches('/')))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0),
            None => path.contains("/bin/") || path.contains("/sbin/") || path.contains("/libexec/"),
        }
    }

    /// The listed files plus their resolved forms, sorted.
    pub fn expand(&mut self, files: Vec<String>) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for f in files {
            if let Some(r) = self.resolve(&f) {
                out.insert(r);
            }
            out.insert(f);
        }
        out.into_iter().collect()
    }
}

/// The installed dpkg packages under `dpkg_dir`, without their files
/// (only `status` is read). Multi-Arch: same packages installed for several
/// architectures are one package listing every architecture.
pub fn dpkg_packages(dpkg_dir: &Path) -> Result<Inventory, PackageError> {
    let status_path = dpkg_dir.join("status");
    let text =
        fs::read_to_string(&status_path).map_err(|source| PackageError::Read { path: status_path.clone(), source })?;
    let mut inv = Inventory::new();
    for entry in parse_dpkg_status(&text).into_iter().filter(DpkgEntry::is_installed) {
        let key = ("dpkg", entry.name.clone());
        match inv.get_mut(&key) {
            Some(pkg) => pkg.architectures.push(entry.architecture),
            None => {
                inv.insert(
                    key,
                    Package {
                        name: entry.name,
                        version: entry.version,
                        manager: "dpkg",
                        architectures: vec![entry.architecture],
                        files: Vec::new(),
                    },
                );
            }
        }
    }
    Ok(inv)
}

/// The files of a dpkg package: its `info/<name>:<arch>.list` (or
/// `<name>.list`) for each architecture, without directories, expanded by
/// `resolver`; empty when no list exists.
pub fn dpkg_files(dpkg_dir: &Path, pkg: &Package, resolver: &mut PathResolver) -> Vec<String> {
    let info = dpkg_dir.join("info");
    let mut files = Vec::new();
    let archs: Vec<&str> =
        if pkg.architectures.is_empty() { vec![""] } else { pkg.architectures.iter().map(String::as_str).collect() };
    for arch in archs {
        let list = [format!("{}:{arch}.list", pkg.name), format!("{}.list", pkg.name)]
            .iter()
            .find_map(|name| fs::read_to_string(info.join(name)).ok());
        if let Some(text) = list {
            files.extend(parse_list(&text));
        }
    }
    resolver.expand(files)
}

/// The dpkg inventory under `dpkg_dir` with every package's files.
pub fn dpkg_inventory(dpkg_dir: &Path, resolver: &mut PathResolver) -> Result<Inventory, PackageError> {
    let mut inv = dpkg_packages(dpkg_dir)?;
    for pkg in inv.values_mut() {
        pkg.files = dpkg_files(dpkg_dir, pkg, resolver);
    }
    Ok(inv)
}

/// The `rpm -qa` query format [`parse_rpm`] reads: a `P` line per package,
/// an `F` line (mode, path) per file.
pub const RPM_QUERY_FORMAT: &str =
    "P\\t%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n[F\\t%{FILEMODES:perms}\\t%{FILENAMES}\\n]";

/// [`RPM_QUERY_FORMAT`] without the files.
pub const RPM_QUERY_FORMAT_NO_FILES: &str = "P\\t%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n";

/// Packages from `rpm -qa --queryformat RPM_QUERY_FORMAT` output
/// (directories and `gpg-pubkey` entries left out).
pub fn parse_rpm(text: &str, resolver: &mut PathResolver) -> Inventory {
    let mut inv = Inventory::new();
    let mut current: Option<Package> = None;
    let finish = |p: Option<Package>, inv: &mut Inventory, resolver: &mut PathResolver| {
        if let Some(mut p) = p {
            if p.name != "gpg-pubkey" {
                p.files = resolver.expand(std::mem::take(&mut p.files));
                match inv.get_mut(&("rpm", p.name.clone())) {
                    Some(existing) => {
                        existing.architectures.extend(p.architectures);
                        existing.files.extend(p.files);
                        existing.files.sort();
                        existing.files.dedup();
                    }
                    None => {
                        inv.insert(("rpm", p.name.clone()), p);
                    }
                }
            }
        }
    };
    for line in text.lines() {
        let mut f = line.split('\t');
        match f.next() {
            Some("P") => {
                finish(current.take(), &mut inv, resolver);
                let (Some(name), Some(version), arch) = (f.next(), f.next(), f.next()) else { continue };
                current = Some(Package {
                    name: name.to_string(),
                    version: version.to_string(),
                    manager: "rpm",
                    architectures: arch
                        .filter(|a| !a.is_empty() && *a != "(none)")
                        .map(str::to_string)
                        .into_iter()
                        .collect(),
                    files: Vec::new(),
                });
            }
            Some("F") => {
                let (Some(mode), Some(path)) = (f.next(), f.next()) else { continue };
                if let Some(p) = current.as_mut() {
                    if !mode.starts_with('d') && path.starts_with('/') {
                        p.files.push(path.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    finish(current.take(), &mut inv, resolver);
    inv
}

/// Where the rpm database lives on this host, if anywhere.
fn rpm_db(root: &Path) -> Option<PathBuf> {
    ["var/lib/rpm", "usr/lib/sysimage/rpm"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| fs::read_dir(d).is_ok_and(|mut it| it.next().is_some()))
}

fn rpm_command() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("rpm")).find(|p| p.is_file())
}

/// Newest modification time of a file or of a directory's entries.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for e in fs::read_dir(path).ok()?.flatten() {
            if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(m);
            }
        }
    }
    Some(newest)
}

/// The package inventory and the events its changes make. The inventory
/// kept between polls holds names, versions and architectures only; file
/// lists are read when an event needs them (a change, a snapshot), one
/// package at a time, so the agent does not hold every path of the host.
#[derive(Debug)]
pub struct PackageCollector {
    host: String,
    dpkg_dir: PathBuf,
    fs_root: Option<PathBuf>,
    rpm: bool,
    state: PackageState,
    dpkg_seen: Option<SystemTime>,
    rpm_seen: Option<SystemTime>,
}

/// Where the files of the packages an event is about are read from.
struct FileSource<'a> {
    dpkg_dir: &'a Path,
    fs_root: Option<&'a Path>,
    resolver: PathResolver,
    /// rpm's files per package, from one full query made when first needed.
    rpm_files: Option<HashMap<String, Vec<String>>>,
}

impl FileSource<'_> {
    fn files(&mut self, pkg: &Package) -> Vec<String> {
        match pkg.manager {
            "dpkg" => dpkg_files(self.dpkg_dir, pkg, &mut self.resolver),
            "rpm" => {
                let root = self.fs_root;
                let all = self.rpm_files.get_or_insert_with(|| {
                    let Some(rpm) = rpm_command() else { return HashMap::new() };
                    match run_rpm(&rpm, root, true) {
                        Ok(inv) => inv.into_values().map(|p| (p.name, p.files)).collect(),
                        Err(e) => {
                            tracing::warn!(error = %e, "rpm file lists");
                            HashMap::new()
                        }
                    }
                });
                all.remove(&pkg.name).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }
}

impl PackageCollector {
    pub fn new(ctx: &HostContext) -> Self {
        PackageCollector {
            host: ctx.host.clone(),
            dpkg_dir: ctx.dpkg_dir.clone(),
            fs_root: ctx.fs_root.clone(),
            rpm: ctx.rpm,
            state: PackageState::new(),
            dpkg_seen: None,
            rpm_seen: None,
        }
    }

    pub fn state(&self) -> &PackageState {
        &self.state
    }

    /// Re-reads the package lists whose database changed (all of them with
    /// `force`) and returns the changes against the last inventory (files
    /// not loaded).
    pub fn changes(&mut self, force: bool) -> Vec<PackageChange> {
        let mut changes = Vec::new();
        let status = self.dpkg_dir.join("status");
        let mtime = newest_mtime(&status);
        if mtime.is_some() && (force || mtime != self.dpkg_seen || !self.state.is_known()) {
            match dpkg_packages(&self.dpkg_dir) {
                Ok(inv) => {
                    self.dpkg_seen = mtime;
                    changes.extend(self.state.update_manager("dpkg", inv));
                }
                Err(e) => tracing::warn!(error = %e, "dpkg inventory"),
            }
        }
        if self.rpm {
            let root = self.fs_root.clone().unwrap_or_else(|| PathBuf::from("/"));
            if let (Some(db), Some(rpm)) = (rpm_db(&root), rpm_command()) {
                let mtime = newest_mtime(&db);
                if force || mtime != self.rpm_seen {
                    match run_rpm(&rpm, self.fs_root.as_deref(), false) {
                        Ok(inv) => {
                            self.rpm_seen = mtime;
                            changes.extend(self.state.update_manager("rpm", inv));
                        }
                        Err(e) => tracing::warn!(error = %e, "rpm inventory"),
                    }
                }
            }
        }
        if !self.state.is_known() {
            // No package manager at all: an empty inventory, known.
            self.state.update(Inventory::new());
        }
        changes
    }

    fn file_source(&self) -> FileSource<'_> {
        FileSource {
            dpkg_dir: &self.dpkg_dir,
            fs_root: self.fs_root.as_deref(),
            resolver: PathResolver::new(self.fs_root.as_deref()),
            rpm_files: None,
        }
    }

    /// The changes since the last poll (databases re-read when they changed,
    /// or with `force`) as events, each handed to `emit`.
    pub fn poll_each(&mut self, now: DateTime<Utc>, force: bool, mut emit: impl FnMut(Event)) {
        let changes = self.changes(force);
        let mut files = self.file_source();
        for change in changes {
            let change = with_files(change, &mut files);
            emit(package_event(&self.host, &change, false, now, &mut files.resolver));
        }
    }

    /// [`PackageCollector::poll_each`], collected.
    pub fn poll(&mut self, now: DateTime<Utc>, force: bool) -> Vec<Event> {
        let mut events = Vec::new();
        self.poll_each(now, force, |e| events.push(e));
        events
    }

    /// A poll, then every installed package as `installed` with
    /// `raw.snapshot = true` (removals found by the poll are sent as such),
    /// each handed to `emit` as its files are read.
    pub fn snapshot_each(&mut self, now: DateTime<Utc>, mut emit: impl FnMut(Event)) {
        let changes = self.changes(false);
        let mut files = self.file_source();
        for change in changes.into_iter().filter(|c| matches!(c, PackageChange::Removed(_))) {
            emit(package_event(&self.host, &change, false, now, &mut files.resolver));
        }
        if let Some(inv) = self.state.inventory() {
            for pkg in inv.values() {
                let change = with_files(PackageChange::Installed(pkg.clone()), &mut files);
                emit(package_event(&self.host, &change, true, now, &mut files.resolver));
            }
        }
    }

    /// [`PackageCollector::snapshot_each`], collected.
    pub fn snapshot(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let mut events = Vec::new();
        self.snapshot_each(now, |e| events.push(e));
        events
    }
}

/// The change with its package's files loaded (a removal carries none).
fn with_files(change: PackageChange, source: &mut FileSource<'_>) -> PackageChange {
    match change {
        PackageChange::Installed(mut p) => {
            p.files = source.files(&p);
            PackageChange::Installed(p)
        }
        PackageChange::Upgraded { previous, mut package } => {
            package.files = source.files(&package);
            PackageChange::Upgraded { previous, package }
        }
        removed @ PackageChange::Removed(_) => removed,
    }
}

/// `rpm -qa` as an inventory, with the files or without.
fn run_rpm(rpm: &Path, root: Option<&Path>, with_files: bool) -> Result<Inventory, PackageError> {
    let format = if with_files { RPM_QUERY_FORMAT } else { RPM_QUERY_FORMAT_NO_FILES };
    let out = Command::new(rpm)
        .args(["-qa", "--queryformat", format])
        .output()
        .map_err(|e| PackageError::Rpm(e.to_string()))?;
    if !out.status.success() {
        return Err(PackageError::Rpm(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    let mut resolver = PathResolver::new(if with_files { root } else { None });
    Ok(parse_rpm(&String::from_utf8_lossy(&out.stdout), &mut resolver))
}

/// The package event for one change. `resolver` decides which files are
/// executables when the list is too long for one event.
pub fn package_event(
    host: &str,
    change: &PackageChange,
    snapshot: bool,
    time: DateTime<Utc>,
    resolver: &mut PathResolver,
) -> Event {
    let (pkg, action, previous) = match change {
        PackageChange::Installed(p) => (p, "installed", None),
        PackageChange::Removed(p) => (p, "removed", None),
        PackageChange::Upgraded { previous, package } => (package, "upgraded", Some(previous.as_str())),
    };
    let identity = format!("package|{host}|{}|{}|{}|{action}|{snapshot}", pkg.manager, pkg.name, pkg.version);
    let mut e = new_event(Kind::Package, host, time, &identity);
    e.message = match previous {
        Some(prev) => format!("{} upgraded from {prev} to {}", pkg.name, pkg.version),
        None => format!("{} {} {action}", pkg.name, pkg.version),
    };
    let mut raw = json!({
        "package": pkg.name,
        "version": pkg.version,
        "manager": pkg.manager,
        "action": action,
        "architecture": pkg.architectures.join(","),
        "snapshot": snapshot,
    });
    if let Some(map) = raw.as_object_mut() {
        if let Some(prev) = previous {
            map.insert("previous_version".into(), json!(prev));
        }
        if action != "removed" {
            let size: usize = pkg.files.iter().map(|f| f.len() + 3).sum();
            if size <= MAX_FILES_BYTES {
                map.insert("files".into(), json!(pkg.files));
            } else {
                let mut kept: Vec<&String> = pkg.files.iter().filter(|f| resolver.is_executable(f)).collect();
                let mut budget = MAX_FILES_BYTES;
                kept.retain(|f| match budget.checked_sub(f.len() + 3) {
                    Some(left) => {
                        budget = left;
                        true
                    }
                    None => false,
                });
                map.insert("files".into(), json!(kept));
                map.insert("files_complete".into(), json!(false));
                map.insert("file_count".into(), json!(pkg.files.len()));
            }
        }
    }
    e.raw = raw;
    e
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn status_paragraphs_and_installed_states() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nDescription: x\n more\n .\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\n\
                    Package: c\nStatus: hold ok installed\nVersion: 3\nMulti-Arch: same\nArchitecture: i386\n";
        let e = parse_dpkg_status(text);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].name.as_str(), e[0].version.as_str(), e[0].is_installed()), ("a", "1.0", true));
        assert!(!e[1].is_installed());
        assert!(e[2].is_installed() && e[2].multi_arch == "same");
    }

    #[test]
    fn rpm_output_parses_without_directories_or_keys() {
        let out = "P\topenssl\t1:3.0.7-24.el9\tx86_64\nF\t-rwxr-xr-x\t/usr/bin/openssl\nF\tdrwxr-xr-x\t/etc/pki\n\
                   P\tgpg-pubkey\t5a6340b3-6229229e\t(none)\n";
        let inv = parse_rpm(out, &mut PathResolver::new(None));
        assert_eq!(inv.len(), 1);
        let p = &inv[&("rpm", "openssl".to_string())];
        assert_eq!((p.version.as_str(), p.files.clone()), ("1:3.0.7-24.el9", vec!["/usr/bin/openssl".to_string()]));
    }

    #[test]
    fn oversized_lists_keep_their_executables() {
        let mut files: Vec<String> = (0..20_000).map(|i| format!("/usr/share/big/file-{i:05}.txt")).collect();
        files.push("/usr/bin/big".into());
        let pkg = Package {
            name: "big".into(),
            version: "1".into(),
            manager: "dpkg",
            architectures: vec!["all".into()],
            files,
        };
        let e = package_event("h", &PackageChange::Installed(pkg), false, Utc::now(), &mut PathResolver::new(None));
        e.validate().unwrap();
        assert_eq!(e.raw["files"], json!(["/usr/bin/big"]));
        assert_eq!(e.raw["files_complete"], false);
        assert_eq!(e.raw["file_count"], 20_001);
        assert!(serde_json::to_vec(&e).unwrap().len() < 256 * 1024);
    }
}
