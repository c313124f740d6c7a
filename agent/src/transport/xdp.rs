//! The XDP blocklist ([`XdpBlocklist`], backend `"xdp"`): the C program
//! `agent/bpf/xdp_blocklist.bpf.c` (compiled by `build.rs`, loaded with
//! aya) attached to the configured interfaces, generic (SKB) mode by
//! default, dropping every packet whose IPv4 or IPv6 *source* address is a
//! key of the `vigil_block_v4` / `vigil_block_v6` hash maps and counting
//! the drops in the map value.
//!
//! Both maps are pinned under the pin directory (`/sys/fs/bpf/vigil` by
//! default): an agent that starts again reuses them (blocks and counters
//! survive), and `bpftool map dump pinned /sys/fs/bpf/vigil/vigil_block_v4`
//! shows them. The program itself is attached through BPF links that end
//! with the agent, so nothing is dropped while no agent runs. The
//! file-backed [`MemoryBlocklist`] record (`blocklist.json`) is kept in step
//! and merged into the maps at start: pins do not survive a reboot, the
//! record does.

#[cfg(not(vigil_bpf))]
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::blocklist::{Blocklist, BlocklistError, MemoryBlocklist};
use crate::config::XdpAttachMode;

/// The maps, as the program names (and pins) them.
pub const MAP_V4: &str = "vigil_block_v4";
pub const MAP_V6: &str = "vigil_block_v6";

/// Where and how to attach.
#[derive(Debug, Clone)]
pub struct XdpOptions {
    /// Directory of the pinned maps (created; the BPF file system is mounted on /sys/fs/bpf if needed).
    pub pin_dir: PathBuf,
    /// Interfaces to attach to; `None`: every non-loopback interface that is up.
    pub interfaces: Option<Vec<String>>,
    pub mode: XdpAttachMode,
}

/// Every interface that is up and not a loopback, from `/sys/class/net`.
pub fn default_interfaces() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else { return out };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let flags = std::fs::read_to_string(entry.path().join("flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        // IFF_UP, IFF_LOOPBACK
        if flags & 0x1 != 0 && flags & 0x8 == 0 {
            out.push(name);
        }
    }
    out.sort();
    out
}

/// Opens the XDP blocklist, or says why it cannot be used.
#[cfg(not(vigil_bpf))]
pub fn open(_record_dir: &Path, _options: &XdpOptions) -> Result<XdpBlocklist, String> {
    Err(crate::collect::ebpf::NOT_BUILT.to_string())
}

/// Opens the XDP blocklist, or says why it cannot be used.
#[cfg(vigil_bpf)]
pub fn open(record_dir: &Path, options: &XdpOptions) -> Result<XdpBlocklist, String> {
    XdpBlocklist::open(record_dir, options)
}

#[cfg(not(vigil_bpf))]
/// The XDP blocklist (not built into this binary).
#[derive(Debug)]
pub struct XdpBlocklist {
    _never: std::convert::Infallible,
}

#[cfg(not(vigil_bpf))]
impl Blocklist for XdpBlocklist {
    fn block(&self, _ip: IpAddr) -> Result<bool, BlocklistError> {
        match self._never {}
    }
    fn unblock(&self, _ip: IpAddr) -> Result<bool, BlocklistError> {
        match self._never {}
    }
    fn list(&self) -> Result<Vec<IpAddr>, BlocklistError> {
        match self._never {}
    }
    fn backend(&self) -> &'static str {
        "xdp"
    }
}

#[cfg(vigil_bpf)]
pub use loaded::XdpBlocklist;

#[cfg(vigil_bpf)]
mod loaded {
    use std::collections::BTreeSet;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, MutexGuard};

    use aya::maps::{HashMap, MapData, MapError};
    use aya::programs::{Xdp, XdpMode};
    use aya::{include_bytes_aligned, Ebpf, EbpfLoader};

    use super::{default_interfaces, XdpOptions, MAP_V4, MAP_V6};
    use crate::collect::ebpf::{ensure_bpffs, error_chain};
    use crate::config::XdpAttachMode;
    use crate::transport::blocklist::{Blocklist, BlocklistError, MemoryBlocklist};

    static XDP_OBJ: &[u8] = include_bytes_aligned!(env!("VIGIL_BPF_XDP_OBJ"));

    struct Maps {
        v4: HashMap<MapData, u32, u64>,
        v6: HashMap<MapData, [u8; 16], u64>,
    }

    impl Maps {
        fn get(&self, ip: IpAddr) -> Result<Option<u64>, MapError> {
            let r = match ip {
                IpAddr::V4(a) => self.v4.get(&u32::from_ne_bytes(a.octets()), 0),
                IpAddr::V6(a) => self.v6.get(&a.octets(), 0),
            };
            match r {
                Ok(n) => Ok(Some(n)),
                Err(MapError::KeyNotFound) => Ok(None),
                Err(e) => Err(e),
            }
        }

        fn insert(&mut self, ip: IpAddr) -> Result<(), MapError> {
            match ip {
                IpAddr::V4(a) => self.v4.insert(u32::from_ne_bytes(a.octets()), 0, 0),
                IpAddr::V6(a) => self.v6.insert(a.octets(), 0, 0),
            }
        }

        fn remove(&mut self, ip: IpAddr) -> Result<(), MapError> {
            match ip {
                IpAddr::V4(a) => self.v4.remove(&u32::from_ne_bytes(a.octets())),
                IpAddr::V6(a) => self.v6.remove(&a.octets()),
            }
        }

        fn entries(&self) -> Result<Vec<(IpAddr, u64)>, MapError> {
            let mut out = Vec::new();
            for kv in self.v4.iter() {
                let (k, n) = kv?;
                out.push((IpAddr::V4(Ipv4Addr::from(k.to_ne_bytes())), n));
            }
            for kv in self.v6.iter() {
                let (k, n) = kv?;
                out.push((IpAddr::V6(Ipv6Addr::from(k)), n));
            }
            out.sort_unstable();
            Ok(out)
        }
    }

    /// The loaded, attached program and its pinned maps. Dropping it
    /// detaches the program; the pinned maps stay.
    pub struct XdpBlocklist {
        maps: Mutex<Maps>,
        record: MemoryBlocklist,
        attached: Vec<String>,
        pin_dir: PathBuf,
        // Holds the program and its links.
        _bpf: Mutex<Ebpf>,
    }

    impl std::fmt::Debug for XdpBlocklist {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("XdpBlocklist")
                .field("attached", &self.attached)
                .field("pin_dir", &self.pin_dir)
                .finish_non_exhaustive()
        }
    }

    fn backend_err(what: &str, e: MapError) -> BlocklistError {
        BlocklistError::Backend(format!("{what}: {}", error_chain(&e)))
    }

    impl XdpBlocklist {
        /// Loads the program (reusing the maps pinned in `options.pin_dir`,
        /// or creating and pinning them), attaches it to the interfaces and
        /// merges the record kept in `record_dir` with the maps. Fails when
        /// it cannot be attached to any interface.
        pub fn open(record_dir: &Path, options: &XdpOptions) -> Result<XdpBlocklist, String> {
            ensure_bpffs(&options.pin_dir)?;
            let interfaces = options.interfaces.clone().unwrap_or_else(default_interfaces);
            if interfaces.is_empty() {
                return Err("no interface to attach XDP to (none is up besides loopback)".into());
            }
            let mut bpf = EbpfLoader::new()
                .default_map_pin_directory(&options.pin_dir)
                .load(XDP_OBJ)
                .map_err(|e| format!("loading xdp_blocklist.bpf.o: {}", error_chain(&e)))?;
            let prog: &mut Xdp = bpf
                .program_mut("vigil_xdp_blocklist")
                .ok_or("xdp_blocklist.bpf.o has no program vigil_xdp_blocklist")?
                .try_into()
                .map_err(|e| format!("vigil_xdp_blocklist: {}", error_chain(&e)))?;
            prog.load().map_err(|e| format!("loading the XDP program: {}", error_chain(&e)))?;
            let mode = match options.mode {
                XdpAttachMode::Generic => XdpMode::Skb,
                XdpAttachMode::Native => XdpMode::Driver,
            };
            let mut attached = Vec::new();
            let mut failed = Vec::new();
            for iface in &interfaces {
                match prog.attach(iface, mode) {
                    Ok(_) => attached.push(iface.clone()),
                    Err(e) => failed.push(format!("{iface}: {}", error_chain(&e))),
                }
            }
            if attached.is_empty() {
                return Err(format!("attaching XDP failed on every interface ({})", failed.join("; ")));
            }
            for f in &failed {
                tracing::warn!(error = %f, "XDP blocklist not attached");
            }
            let take = |bpf: &mut Ebpf, name: &str| bpf.take_map(name).ok_or(format!("no map {name}"));
            let v4 =
                HashMap::try_from(take(&mut bpf, MAP_V4)?).map_err(|e| format!("{MAP_V4}: {}", error_chain(&e)))?;
            let v6 =
                HashMap::try_from(take(&mut bpf, MAP_V6)?).map_err(|e| format!("{MAP_V6}: {}", error_chain(&e)))?;
            let mut maps = Maps { v4, v6 };

            // Merge: what the record has and the maps lost (a reboot) goes
            // back into the maps; what only the maps have is recorded.
            let record = MemoryBlocklist::open(record_dir).map_err(|e| e.to_string())?;
            let recorded: BTreeSet<IpAddr> = record.list().map_err(|e| e.to_string())?.into_iter().collect();
            let pinned: BTreeSet<IpAddr> =
                maps.entries().map_err(|e| format!("reading the maps: {e}"))?.into_iter().map(|(ip, _)| ip).collect();
            for ip in recorded.difference(&pinned) {
                maps.insert(*ip).map_err(|e| format!("restoring {ip}: {}", error_chain(&e)))?;
            }
            for ip in pinned.difference(&recorded) {
                record.block(*ip).map_err(|e| e.to_string())?;
            }
            tracing::info!(
                interfaces = ?attached,
                pin_dir = %options.pin_dir.display(),
                blocked = recorded.union(&pinned).count(),
                "XDP blocklist attached"
            );
            Ok(XdpBlocklist {
                maps: Mutex::new(maps),
                record,
                attached,
                pin_dir: options.pin_dir.clone(),
                _bpf: Mutex::new(bpf),
            })
        }

        /// The interfaces the program is attached to.
        pub fn interfaces(&self) -> &[String] {
            &self.attached
        }

        /// Where the maps are pinned.
        pub fn pin_dir(&self) -> &Path {
            &self.pin_dir
        }

        fn lock(&self) -> MutexGuard<'_, Maps> {
            self.maps.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl Blocklist for XdpBlocklist {
        fn block(&self, ip: IpAddr) -> Result<bool, BlocklistError> {
            let mut maps = self.lock();
            if maps.get(ip).map_err(|e| backend_err("reading the blocklist map", e))?.is_some() {
                self.record.block(ip)?;
                return Ok(false);
            }
            maps.insert(ip).map_err(|e| backend_err("adding to the blocklist map", e))?;
            if let Err(e) = self.record.block(ip) {
                let _ = maps.remove(ip);
                return Err(e);
            }
            Ok(true)
        }

        fn unblock(&self, ip: IpAddr) -> Result<bool, BlocklistError> {
            let mut maps = self.lock();
            let present = maps.get(ip).map_err(|e| backend_err("reading the blocklist map", e))?.is_some();
            if present {
                maps.remove(ip).map_err(|e| backend_err("removing from the blocklist map", e))?;
            }
            let recorded = self.record.unblock(ip)?;
            Ok(present || recorded)
        }

        fn list(&self) -> Result<Vec<IpAddr>, BlocklistError> {
            let entries = self.lock().entries().map_err(|e| backend_err("reading the blocklist map", e))?;
            Ok(entries.into_iter().map(|(ip, _)| ip).collect())
        }

        fn backend(&self) -> &'static str {
            "xdp"
        }

        fn drop_counts(&self) -> Result<Option<Vec<(IpAddr, u64)>>, BlocklistError> {
            self.lock().entries().map(Some).map_err(|e| backend_err("reading the blocklist map", e))
        }
    }
}

/// The blocklist the agent uses: XDP when `enabled` and it loads, else the
/// recorded-only [`MemoryBlocklist`]; with the reason for the choice.
pub fn open_blocklist(
    record_dir: &Path,
    enabled: bool,
    options: &XdpOptions,
) -> Result<(std::sync::Arc<dyn Blocklist>, String), BlocklistError> {
    if enabled {
        match open(record_dir, options) {
            Ok(x) => {
                #[cfg(vigil_bpf)]
                let why = format!(
                    "xdp: attached ({} mode) to {} (maps pinned in {})",
                    match options.mode {
                        XdpAttachMode::Generic => "generic",
                        XdpAttachMode::Native => "native",
                    },
                    x.interfaces().join(", "),
                    x.pin_dir().display()
                );
                #[cfg(not(vigil_bpf))]
                let why = String::new();
                return Ok((std::sync::Arc::new(x), why));
            }
            Err(e) => {
                tracing::warn!(reason = %e, "XDP blocklist unavailable; blocks are recorded, not enforced");
                let m = MemoryBlocklist::open(record_dir)?;
                return Ok((std::sync::Arc::new(m), format!("memory: recorded only (xdp: {e})")));
            }
        }
    }
    let m = MemoryBlocklist::open(record_dir)?;
    Ok((std::sync::Arc::new(m), "memory: recorded only (xdp disabled in the settings)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_interfaces_skip_loopback() {
        assert!(!default_interfaces().iter().any(|i| i == "lo"));
    }
}
