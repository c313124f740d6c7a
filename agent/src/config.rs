//! The agent's settings ([`AgentConfig`]): defaults, overridden by an
//! optional settings file (TOML, or JSON when the name ends in `.json`),
//! overridden in turn by environment variables. Owns the names of those
//! variables and the validation of every value; nothing here touches the
//! network or starts a collector.
//!
//! | setting | file key | environment | default |
//! |---|---|---|---|
//! | agent id | `agent_id` | `VIGIL_AGENT_ID` | the host name, with dots and other characters an id may not hold turned into `-` |
//! | host name on events | `host` | `VIGIL_AGENT_HOST` | `/proc/sys/kernel/hostname` |
//! | NATS server | `nats_url` | `NATS_URL` | `nats://127.0.0.1:4222` |
//! | spool directory | `spool_dir` | `VIGIL_AGENT_SPOOL_DIR` | `/var/lib/vigil-agent/spool` |
//! | spool size cap (bytes) | `spool_max_bytes` | `VIGIL_AGENT_SPOOL_MAX_BYTES` | 256 MiB |
//! | process source | `process_source` | `VIGIL_AGENT_PROCESS_SOURCE` | `auto` (`ebpf`, `netlink`, `procfs`) |
//! | connection source | `connection_source` | `VIGIL_AGENT_CONNECTION_SOURCE` | `auto` (`ebpf`, `procfs`) |
//! | /proc mount | `proc_root` | `VIGIL_AGENT_PROC_ROOT` | `/proc` |
//! | dpkg database | `dpkg_dir` | `VIGIL_AGENT_DPKG_DIR` | `/var/lib/dpkg` |
//! | rpm inventory | `rpm` | `VIGIL_AGENT_RPM` | `true` (used only where `rpm` exists) |
//! | XDP blocklist | `xdp` | `VIGIL_AGENT_XDP` | `true` (used when the program loads; else the blocklist is recorded only) |
//! | XDP interfaces | `xdp_interfaces` (list) | `VIGIL_AGENT_XDP_INTERFACES` (comma-separated) | every non-loopback interface that is up at start |
//! | XDP mode | `xdp_mode` | `VIGIL_AGENT_XDP_MODE` | `generic` (SKB mode; `native` for the driver's) |
//! | NATS credentials file (`.creds` or nkey seed, 0600) | `nats_credentials` | `VIGIL_NATS_CREDS` | none |
//! | NATS TLS: CA, client certificate and key, TLS required | `nats_tls_ca`, `nats_tls_cert`, `nats_tls_key`, `nats_require_tls` | `VIGIL_NATS_TLS_CA`, `VIGIL_NATS_TLS_CERT`, `VIGIL_NATS_TLS_KEY`, `VIGIL_NATS_REQUIRE_TLS` | none, `false` |
//! | the server's command public key (`N…`) | `command_key` | `VIGIL_AGENT_COMMAND_KEY` | none: every command is refused |
//! | addresses that can never be blocked (IPs and CIDRs) | `never_block` (list) | `VIGIL_AGENT_NEVER_BLOCK` (comma-separated) | none (the NATS servers, the gateways and the host's own addresses always are) |
//! | BPF pin directory | `bpf_pin_dir` | `VIGIL_AGENT_BPF_PIN_DIR` | `/sys/fs/bpf/vigil` |
//! | intervals (seconds) | `[intervals]` `process_reconcile`, `process_poll`, `connections`, `metrics`, `packages`, `snapshot`, `heartbeat` | `VIGIL_AGENT_INTERVAL_<NAME>` (e.g. `VIGIL_AGENT_INTERVAL_CONNECTIONS`) | 30, 2, 5, 15, 300, 600, 30 |
//!
//! The file is named by `--config` or `VIGIL_AGENT_CONFIG`. Unknown keys in
//! it are an error (a typo must not silently fall back to a default).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Environment variable naming the settings file.
pub const ENV_CONFIG: &str = "VIGIL_AGENT_CONFIG";
/// The agent id.
pub const ENV_AGENT_ID: &str = "VIGIL_AGENT_ID";
/// The host name put on events.
pub const ENV_HOST: &str = "VIGIL_AGENT_HOST";
/// The NATS server URL (the same variable the server uses).
pub const ENV_NATS_URL: &str = "NATS_URL";
/// The spool directory.
pub const ENV_SPOOL_DIR: &str = "VIGIL_AGENT_SPOOL_DIR";
/// The spool size cap in bytes.
pub const ENV_SPOOL_MAX_BYTES: &str = "VIGIL_AGENT_SPOOL_MAX_BYTES";
/// The process source preference.
pub const ENV_PROCESS_SOURCE: &str = "VIGIL_AGENT_PROCESS_SOURCE";
/// The connection source preference.
pub const ENV_CONNECTION_SOURCE: &str = "VIGIL_AGENT_CONNECTION_SOURCE";
/// Where /proc is mounted (e.g. `/host/proc` in a container).
pub const ENV_PROC_ROOT: &str = "VIGIL_AGENT_PROC_ROOT";
/// The dpkg database directory.
pub const ENV_DPKG_DIR: &str = "VIGIL_AGENT_DPKG_DIR";
/// Whether to inventory rpm packages where `rpm` exists.
pub const ENV_RPM: &str = "VIGIL_AGENT_RPM";
/// Whether to load the XDP blocklist.
pub const ENV_XDP: &str = "VIGIL_AGENT_XDP";
/// The interfaces the XDP blocklist is attached to (comma-separated).
pub const ENV_XDP_INTERFACES: &str = "VIGIL_AGENT_XDP_INTERFACES";
/// `generic` or `native`.
pub const ENV_XDP_MODE: &str = "VIGIL_AGENT_XDP_MODE";
/// Where the blocklist maps are pinned.
pub const ENV_BPF_PIN_DIR: &str = "VIGIL_AGENT_BPF_PIN_DIR";
/// The NATS credentials file.
pub const ENV_NATS_CREDS: &str = "VIGIL_NATS_CREDS";
/// The NATS TLS CA file.
pub const ENV_NATS_TLS_CA: &str = "VIGIL_NATS_TLS_CA";
/// The NATS TLS client certificate.
pub const ENV_NATS_TLS_CERT: &str = "VIGIL_NATS_TLS_CERT";
/// The NATS TLS client key.
pub const ENV_NATS_TLS_KEY: &str = "VIGIL_NATS_TLS_KEY";
/// Whether NATS must use TLS.
pub const ENV_NATS_REQUIRE_TLS: &str = "VIGIL_NATS_REQUIRE_TLS";
/// The server's command public key.
pub const ENV_COMMAND_KEY: &str = "VIGIL_AGENT_COMMAND_KEY";
/// Addresses that can never be blocked.
pub const ENV_NEVER_BLOCK: &str = "VIGIL_AGENT_NEVER_BLOCK";
/// Prefix of the interval variables (`VIGIL_AGENT_INTERVAL_CONNECTIONS=5`).
pub const ENV_INTERVAL_PREFIX: &str = "VIGIL_AGENT_INTERVAL_";

/// Longest interval accepted (one day): longer is a typo, not a schedule.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Shortest interval accepted.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Why the settings could not be loaded, naming the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the settings file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing the settings file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?}: {reason}")]
    Env { var: String, value: String, reason: String },
    #[error("setting `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error("reading the host name: {0}")]
    Hostname(std::io::Error),
}

/// Which process-event source the agent should try first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessSourcePreference {
    /// The best available: eBPF, then the netlink proc connector, then procfs polling.
    #[default]
    Auto,
    /// eBPF first (falls through to netlink, then procfs, when it does not load).
    Ebpf,
    /// The kernel's process-event connector, falling back to procfs polling.
    Netlink,
    /// Polling /proc only.
    Procfs,
}

/// Where connection events come from: /proc/net polling always runs (it
/// is the reconcile); eBPF adds the TCP state-change tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionSourcePreference {
    /// eBPF when it loads, else /proc polling only.
    #[default]
    Auto,
    /// The same as `auto` (eBPF, falling back to /proc polling when it does not load).
    Ebpf,
    /// Polling /proc/net only.
    Procfs,
}

impl ConnectionSourcePreference {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionSourcePreference::Auto => "auto",
            ConnectionSourcePreference::Ebpf => "ebpf",
            ConnectionSourcePreference::Procfs => "procfs",
        }
    }
}

impl fmt::Display for ConnectionSourcePreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionSourcePreference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ConnectionSourcePreference::Auto),
            "ebpf" => Ok(ConnectionSourcePreference::Ebpf),
            "procfs" => Ok(ConnectionSourcePreference::Procfs),
            other => Err(format!("unknown connection source {other:?} (expected auto, ebpf or procfs)")),
        }
    }
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttachMode {
    /// Generic (SKB) mode: works on every interface, after the stack allocated the packet.
    #[default]
    Generic,
    /// The driver's own XDP hook (faster; not every driver has one).
    Native,
}

impl FromStr for XdpAttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "generic" | "skb" => Ok(XdpAttachMode::Generic),
            "native" | "driver" | "drv" => Ok(XdpAttachMode::Native),
            other => Err(format!("unknown XDP mode {other:?} (expected generic or native)")),
        }
    }
}

impl ProcessSourcePreference {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessSourcePreference::Auto => "auto",
            ProcessSourcePreference::Ebpf => "ebpf",
            ProcessSourcePreference::Netlink => "netlink",
            ProcessSourcePreference::Procfs => "procfs",
        }
    }
}

impl fmt::Display for ProcessSourcePreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProcessSourcePreference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ProcessSourcePreference::Auto),
            "ebpf" => Ok(ProcessSourcePreference::Ebpf),
            "netlink" => Ok(ProcessSourcePreference::Netlink),
            "procfs" => Ok(ProcessSourcePreference::Procfs),
            other => Err(format!("unknown process source {other:?} (expected auto, ebpf, netlink or procfs)")),
        }
    }
}

/// How often each collector works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// Full /proc reconcile behind the process event stream.
    pub process_reconcile: Duration,
    /// /proc polling when polling is the process source.
    pub process_poll: Duration,
    /// /proc/net connection deltas.
    pub connections: Duration,
    /// CPU, memory, disk and network counters.
    pub metrics: Duration,
    /// Package inventory check (cheap when the package database did not change).
    pub packages: Duration,
    /// Full snapshot of every collector's state (`raw.snapshot = true`).
    pub snapshot: Duration,
    /// Heartbeat.
    pub heartbeat: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            process_reconcile: Duration::from_secs(30),
            process_poll: Duration::from_secs(2),
            connections: Duration::from_secs(5),
            metrics: Duration::from_secs(15),
            packages: Duration::from_secs(300),
            snapshot: Duration::from_secs(600),
            heartbeat: Duration::from_secs(30),
        }
    }
}

impl Intervals {
    /// Each interval with its file key, for validation and overrides.
    fn fields_mut(&mut self) -> [(&'static str, &mut Duration); 7] {
        [
            ("process_reconcile", &mut self.process_reconcile),
            ("process_poll", &mut self.process_poll),
            ("connections", &mut self.connections),
            ("metrics", &mut self.metrics),
            ("packages", &mut self.packages),
            ("snapshot", &mut self.snapshot),
            ("heartbeat", &mut self.heartbeat),
        ]
    }
}

/// The agent's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The agent's id (NATS subjects, commands); letters, digits, `-`, `_`, inner `.`.
    pub agent_id: String,
    /// The host name put on every event.
    pub host: String,
    pub nats_url: String,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub intervals: Intervals,
    pub process_source: ProcessSourcePreference,
    pub connection_source: ConnectionSourcePreference,
    /// Where /proc is mounted.
    pub proc_root: PathBuf,
    /// The dpkg database (`status`, `info/*.list`).
    pub dpkg_dir: PathBuf,
    /// Inventory rpm packages where the `rpm` command exists.
    pub rpm: bool,
    /// Load the XDP blocklist (when it loads; else the blocklist is recorded only).
    pub xdp: bool,
    /// Interfaces to attach the XDP blocklist to (`None`: every non-loopback interface up at start).
    pub xdp_interfaces: Option<Vec<String>>,
    pub xdp_mode: XdpAttachMode,
    /// Where the blocklist maps are pinned (under the BPF file system).
    pub bpf_pin_dir: PathBuf,
    /// Credentials and TLS for NATS.
    pub nats_security: vigil_control::NatsSecurity,
    /// The server's command public key; without it every command is refused.
    pub command_key: Option<String>,
    /// Networks the blocklist refuses, beside the ones it always refuses.
    pub never_block: Vec<ipnet::IpNet>,
}

/// The settings file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    agent_id: Option<String>,
    host: Option<String>,
    nats_url: Option<String>,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    process_source: Option<ProcessSourcePreference>,
    connection_source: Option<ConnectionSourcePreference>,
    proc_root: Option<PathBuf>,
    dpkg_dir: Option<PathBuf>,
    rpm: Option<bool>,
    xdp: Option<bool>,
    xdp_interfaces: Option<Vec<String>>,
    xdp_mode: Option<XdpAttachMode>,
    bpf_pin_dir: Option<PathBuf>,
    nats_credentials: Option<PathBuf>,
    nats_tls_ca: Option<PathBuf>,
    nats_tls_cert: Option<PathBuf>,
    nats_tls_key: Option<PathBuf>,
    nats_require_tls: Option<bool>,
    command_key: Option<String>,
    never_block: Option<Vec<String>>,
    #[serde(default)]
    intervals: FileIntervals,
}

/// Intervals in seconds (integers or decimals).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIntervals {
    process_reconcile: Option<f64>,
    process_poll: Option<f64>,
    connections: Option<f64>,
    metrics: Option<f64>,
    packages: Option<f64>,
    snapshot: Option<f64>,
    heartbeat: Option<f64>,
}

impl FileIntervals {
    fn get(&self, key: &str) -> Option<f64> {
        match key {
            "process_reconcile" => self.process_reconcile,
            "process_poll" => self.process_poll,
            "connections" => self.connections,
            "metrics" => self.metrics,
            "packages" => self.packages,
            "snapshot" => self.snapshot,
            "heartbeat" => self.heartbeat,
            _ => None,
        }
    }
}

impl AgentConfig {
    /// The settings from the file named by `file` (else by
    /// `VIGIL_AGENT_CONFIG`, else none) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<AgentConfig, ConfigError> {
        AgentConfig::load_with(file, |name| std::env::var(name).ok(), crate::hostname)
    }

    /// [`AgentConfig::load`] with the environment and the host name supplied
    /// by the caller (tests).
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        hostname: impl FnOnce() -> std::io::Result<String>,
    ) -> Result<AgentConfig, ConfigError> {
        let from_env = env(ENV_CONFIG).filter(|p| !p.trim().is_empty()).map(PathBuf::from);
        let path = file.map(Path::to_path_buf).or(from_env);
        let file_config = match &path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        AgentConfig::merge(file_config, &env, hostname)
    }

    /// The settings from file text (`json` picks JSON, else TOML) and the
    /// given environment; for tests and for `--config -`-like callers.
    pub fn from_text(
        text: &str,
        json: bool,
        env: impl Fn(&str) -> Option<String>,
        hostname: impl FnOnce() -> std::io::Result<String>,
    ) -> Result<AgentConfig, ConfigError> {
        let file = parse_text(text, json, Path::new("<text>"))?;
        AgentConfig::merge(file, &env, hostname)
    }

    fn merge(
        file: FileConfig,
        env: &impl Fn(&str) -> Option<String>,
        hostname: impl FnOnce() -> std::io::Result<String>,
    ) -> Result<AgentConfig, ConfigError> {
        let env_text = |var: &str| env(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let host = match env_text(ENV_HOST).or(file.host) {
            Some(h) => h,
            None => hostname().map_err(ConfigError::Hostname)?,
        };
        let agent_id = env_text(ENV_AGENT_ID).or(file.agent_id).unwrap_or_else(|| id_from_host(&host));
        let nats_url = env_text(ENV_NATS_URL).or(file.nats_url).unwrap_or_else(|| "nats://127.0.0.1:4222".into());
        let spool_dir = env_text(ENV_SPOOL_DIR)
            .map(PathBuf::from)
            .or(file.spool_dir)
            .unwrap_or_else(|| PathBuf::from("/var/lib/vigil-agent/spool"));
        let spool_max_bytes = match env_text(ENV_SPOOL_MAX_BYTES) {
            Some(v) => v.parse::<u64>().map_err(|e| ConfigError::Env {
                var: ENV_SPOOL_MAX_BYTES.into(),
                value: v.clone(),
                reason: e.to_string(),
            })?,
            None => file.spool_max_bytes.unwrap_or(256 * 1024 * 1024),
        };
        let process_source = match env_text(ENV_PROCESS_SOURCE) {
            Some(v) => v.parse().map_err(|reason| ConfigError::Env {
                var: ENV_PROCESS_SOURCE.into(),
                value: v.clone(),
                reason,
            })?,
            None => file.process_source.unwrap_or_default(),
        };
        let connection_source = match env_text(ENV_CONNECTION_SOURCE) {
            Some(v) => v.parse().map_err(|reason| ConfigError::Env {
                var: ENV_CONNECTION_SOURCE.into(),
                value: v.clone(),
                reason,
            })?,
            None => file.connection_source.unwrap_or_default(),
        };
        let proc_root =
            env_text(ENV_PROC_ROOT).map(PathBuf::from).or(file.proc_root).unwrap_or_else(|| PathBuf::from("/proc"));
        let dpkg_dir = env_text(ENV_DPKG_DIR)
            .map(PathBuf::from)
            .or(file.dpkg_dir)
            .unwrap_or_else(|| PathBuf::from("/var/lib/dpkg"));
        let rpm = match env_text(ENV_RPM) {
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError::Env {
                var: ENV_RPM.into(),
                value: v.clone(),
                reason: "expected true/false, 1/0, yes/no".into(),
            })?,
            None => file.rpm.unwrap_or(true),
        };
        let xdp = match env_text(ENV_XDP) {
            Some(v) => parse_bool(&v).ok_or_else(|| ConfigError::Env {
                var: ENV_XDP.into(),
                value: v.clone(),
                reason: "expected true/false, 1/0, yes/no".into(),
            })?,
            None => file.xdp.unwrap_or(true),
        };
        let xdp_interfaces = match env_text(ENV_XDP_INTERFACES) {
            Some(v) => Some(v.split(',').map(|i| i.trim().to_string()).filter(|i| !i.is_empty()).collect()),
            None => file.xdp_interfaces,
        };
        let xdp_mode = match env_text(ENV_XDP_MODE) {
            Some(v) => {
                v.parse().map_err(|reason| ConfigError::Env { var: ENV_XDP_MODE.into(), value: v.clone(), reason })?
            }
            None => file.xdp_mode.unwrap_or_default(),
        };
        let bpf_pin_dir = env_text(ENV_BPF_PIN_DIR)
            .map(PathBuf::from)
            .or(file.bpf_pin_dir)
            .unwrap_or_else(|| PathBuf::from("/sys/fs/bpf/vigil"));

        let mut intervals = Intervals::default();
        for (key, slot) in intervals.fields_mut() {
            let var = format!("{ENV_INTERVAL_PREFIX}{}", key.to_ascii_uppercase());
            if let Some(v) = env_text(&var) {
                let secs = v.parse::<f64>().map_err(|e| ConfigError::Env {
                    var: var.clone(),
                    value: v.clone(),
                    reason: format!("{e} (expected seconds)"),
                })?;
                *slot =
                    seconds(secs).map_err(|reason| ConfigError::Env { var: var.clone(), value: v.clone(), reason })?;
            } else if let Some(secs) = file.intervals.get(key) {
                *slot = seconds(secs)
                    .map_err(|reason| ConfigError::Invalid { field: format!("intervals.{key}"), reason })?;
            }
        }

        let nats_security = vigil_control::NatsSecurity {
            credentials: env_text(ENV_NATS_CREDS).map(PathBuf::from).or(file.nats_credentials),
            tls_ca: env_text(ENV_NATS_TLS_CA).map(PathBuf::from).or(file.nats_tls_ca),
            tls_cert: env_text(ENV_NATS_TLS_CERT).map(PathBuf::from).or(file.nats_tls_cert),
            tls_key: env_text(ENV_NATS_TLS_KEY).map(PathBuf::from).or(file.nats_tls_key),
            require_tls: match env_text(ENV_NATS_REQUIRE_TLS) {
                Some(v) => parse_bool(&v).ok_or_else(|| ConfigError::Env {
                    var: ENV_NATS_REQUIRE_TLS.into(),
                    value: v.clone(),
                    reason: "expected true/false, 1/0, yes/no".into(),
                })?,
                None => file.nats_require_tls.unwrap_or(false),
            },
            ..Default::default()
        };
        let command_key = env_text(ENV_COMMAND_KEY).or(file.command_key);
        let never_block = match env_text(ENV_NEVER_BLOCK) {
            Some(v) => parse_networks(v.split(',')).map_err(|reason| ConfigError::Env {
                var: ENV_NEVER_BLOCK.into(),
                value: v.clone(),
                reason,
            })?,
            None => parse_networks(file.never_block.iter().flatten().map(String::as_str))
                .map_err(|reason| ConfigError::Invalid { field: "never_block".into(), reason })?,
        };

        let config = AgentConfig {
            agent_id,
            host,
            nats_url,
            spool_dir,
            spool_max_bytes,
            intervals,
            process_source,
            connection_source,
            proc_root,
            dpkg_dir,
            rpm,
            xdp,
            xdp_interfaces,
            xdp_mode,
            bpf_pin_dir,
            nats_security,
            command_key,
            never_block,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        valid_agent_id(&self.agent_id).map_err(|reason| ConfigError::Invalid { field: "agent_id".into(), reason })?;
        if self.host.trim().is_empty() {
            return Err(ConfigError::Invalid { field: "host".into(), reason: "must not be empty".into() });
        }
        if !(self.nats_url.contains("://") || self.nats_url.contains(':')) {
            return Err(ConfigError::Invalid {
                field: "nats_url".into(),
                reason: format!("{:?} is not a URL (e.g. nats://127.0.0.1:4222)", self.nats_url),
            });
        }
        if let Some(ifaces) = &self.xdp_interfaces {
            if let Some(bad) = ifaces.iter().find(|i| i.is_empty() || i.len() > 15 || i.contains(['/', ' '])) {
                return Err(ConfigError::Invalid {
                    field: "xdp_interfaces".into(),
                    reason: format!("{bad:?} is not an interface name"),
                });
            }
        }
        if self.spool_max_bytes == 0 {
            return Err(ConfigError::Invalid { field: "spool_max_bytes".into(), reason: "must be above 0".into() });
        }
        let mut intervals = self.intervals;
        for (key, d) in intervals.fields_mut() {
            if *d < MIN_INTERVAL || *d > MAX_INTERVAL {
                return Err(ConfigError::Invalid {
                    field: format!("intervals.{key}"),
                    reason: format!("{d:?} is outside {MIN_INTERVAL:?}..={MAX_INTERVAL:?}"),
                });
            }
        }
        Ok(())
    }
}

pub use vigil_event::valid_agent_id;

/// IPs (as /32 or /128) and CIDRs, skipping blanks.
fn parse_networks<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<ipnet::IpNet>, String> {
    items
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{s:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
        })
        .collect()
}

/// The default agent id: the host name with anything an id may not hold
/// (dots of a fully qualified name, …) turned into `-`.
fn id_from_host(host: &str) -> String {
    let id: String =
        host.chars().take(128).map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
    if id.is_empty() {
        "agent".into()
    } else {
        id
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    parse_text(&text, json, path)
}

fn parse_text(text: &str, json: bool, path: &Path) -> Result<FileConfig, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse { path: path.to_path_buf(), message };
    if json {
        serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))
    } else {
        toml::from_str(text).map_err(|e| parse_err(e.to_string().trim_end().to_string()))
    }
}

fn seconds(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{secs} is not a positive number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn host() -> std::io::Result<String> {
        Ok("web-01".into())
    }

    #[test]
    fn defaults_name_the_agent_after_the_host() {
        let c = AgentConfig::from_text("", false, env(&[]), host).unwrap();
        assert_eq!(c.agent_id, "web-01");
        assert_eq!(c.host, "web-01");
        assert_eq!(c.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(c.intervals, Intervals::default());
        assert_eq!(c.intervals.connections, Duration::from_secs(5));
        assert_eq!(c.process_source, ProcessSourcePreference::Auto);
        assert_eq!(c.connection_source, ConnectionSourcePreference::Auto);
        assert_eq!(c.proc_root, PathBuf::from("/proc"));
    }

    #[test]
    fn the_file_sets_and_the_environment_overrides() {
        let toml = r#"
            agent_id = "edge-7"
            nats_url = "nats://10.0.0.1:4222"
            spool_max_bytes = 1048576
            process_source = "procfs"
            connection_source = "procfs"
            [intervals]
            connections = 2
            metrics = 7.5
        "#;
        let c = AgentConfig::from_text(toml, false, env(&[]), host).unwrap();
        assert_eq!(c.agent_id, "edge-7");
        assert_eq!(c.spool_max_bytes, 1_048_576);
        assert_eq!(c.process_source, ProcessSourcePreference::Procfs);
        assert_eq!(c.connection_source, ConnectionSourcePreference::Procfs);
        assert_eq!(c.intervals.connections, Duration::from_secs(2));
        assert_eq!(c.intervals.metrics, Duration::from_millis(7500));
        assert_eq!(c.intervals.packages, Duration::from_secs(300));

        let e = env(&[
            ("VIGIL_AGENT_ID", "edge-8"),
            ("NATS_URL", "nats://nats:4222"),
            ("VIGIL_AGENT_INTERVAL_CONNECTIONS", "1"),
            ("VIGIL_AGENT_PROCESS_SOURCE", "netlink"),
            ("VIGIL_AGENT_SPOOL_DIR", "/tmp/spool"),
            ("VIGIL_AGENT_CONNECTION_SOURCE", "ebpf"),
        ]);
        let c = AgentConfig::from_text(toml, false, e, host).unwrap();
        assert_eq!(c.agent_id, "edge-8");
        assert_eq!(c.nats_url, "nats://nats:4222");
        assert_eq!(c.intervals.connections, Duration::from_secs(1));
        assert_eq!(c.intervals.metrics, Duration::from_millis(7500));
        assert_eq!(c.process_source, ProcessSourcePreference::Netlink);
        assert_eq!(c.connection_source, ConnectionSourcePreference::Ebpf);
        assert_eq!(c.spool_dir, PathBuf::from("/tmp/spool"));
    }

    #[test]
    fn json_files_are_read_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.json");
        std::fs::write(&path, r#"{"agent_id": "j-1", "intervals": {"heartbeat": 10}}"#).unwrap();
        let c = AgentConfig::load_with(Some(&path), env(&[]), host).unwrap();
        assert_eq!(c.agent_id, "j-1");
        assert_eq!(c.intervals.heartbeat, Duration::from_secs(10));
        let via_env = AgentConfig::load_with(None, env(&[("VIGIL_AGENT_CONFIG", path.to_str().unwrap())]), host);
        assert_eq!(via_env.unwrap().agent_id, "j-1");
    }

    #[test]
    fn mistakes_name_the_key_or_variable() {
        let err = AgentConfig::from_text("agent_idd = \"x\"", false, env(&[]), host).unwrap_err();
        assert!(err.to_string().contains("agent_idd"), "{err}");
        let err = AgentConfig::from_text("[intervals]\nmetrics = 0", false, env(&[]), host).unwrap_err();
        assert!(err.to_string().contains("intervals.metrics"), "{err}");
        let err =
            AgentConfig::from_text("", false, env(&[("VIGIL_AGENT_INTERVAL_METRICS", "soon")]), host).unwrap_err();
        assert!(err.to_string().contains("VIGIL_AGENT_INTERVAL_METRICS"), "{err}");
        let err =
            AgentConfig::from_text("", false, env(&[("VIGIL_AGENT_PROCESS_SOURCE", "dtrace")]), host).unwrap_err();
        assert!(err.to_string().contains("dtrace"), "{err}");
        let err = AgentConfig::from_text("", false, env(&[("VIGIL_AGENT_ID", "bad id")]), host).unwrap_err();
        assert!(err.to_string().contains("agent_id"), "{err}");
        let err = AgentConfig::load_with(Some(Path::new("/nonexistent/agent.toml")), env(&[]), host).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }

    #[test]
    fn the_default_id_is_the_host_name_made_a_valid_id() {
        assert_eq!(id_from_host("web-01.example.com"), "web-01-example-com");
        assert!(valid_agent_id(&id_from_host("web-01.example.com")).is_ok());
        assert!(valid_agent_id("web-01.example.com").is_err(), "a dot would split the command subject");
    }
}
