//! The server's configuration, read once at start: every flag and `VIGIL_*`
//! variable is parsed by clap into these types (a bad value stops the start
//! with the flag, the variable and what was wrong), then carried in
//! [`crate::AppState`] and handed to the workers. Library crates never read
//! the environment. docs/configuration.md lists every setting; a test keeps
//! that table and these flags in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_embed::{EmbedConfig, Selection};
use vigil_hunts::actions::{AllowList, RootCerts, Secret, Url};
use vigil_search::SearchOptions;
use vigil_sigma::Mapping;
use vigil_store::retention::RetentionPolicy;
use vigil_store::TimescaleChoice;

use crate::maintenance::MaintenanceConfig;
use crate::rate::RateLimit;

/// Everything `vigil serve` and `vigil up` run the server with.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    #[arg(long, env = "VIGIL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Storage: TimescaleDB hypertables when the database has the extension
    /// (`auto`), only TimescaleDB (`require`), or native partitions (`off`).
    #[arg(long, default_value = "auto", env = "VIGIL_TIMESCALEDB")]
    pub timescaledb: TimescaleChoice,
    #[command(flatten)]
    pub dirs: DataDirs,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The key agent commands are signed with (an Ed25519 nkey seed, created
    /// 0600 at first start) [default: <data dir>/command-signing.nk].
    #[arg(long, env = "VIGIL_COMMAND_KEY")]
    pub command_key: Option<PathBuf>,
    /// Which events get a vector for SIMILAR_TO, e.g.
    /// "kinds=alert,auth,process;min_severity=medium;auth_failures=true".
    #[arg(long, env = "VIGIL_EMBED_SELECT", default_value = "", value_parser = parse_selection)]
    pub embed_selection: Selection,
    /// Database connections for searches, apart from ingest's.
    #[arg(long, env = "VIGIL_QUERY_CONNECTIONS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub query_connections: u16,
    #[command(flatten)]
    pub query: QueryConfig,
    #[command(flatten)]
    pub hunts: HuntConfig,
    #[command(flatten)]
    pub model: ModelConfig,
    #[command(flatten)]
    pub graph: GraphConfig,
    /// Requests per token: `<per second>[,<burst>]`, e.g. `20,50`; `0` turns the limit off.
    #[arg(long, env = "VIGIL_RATE_LIMIT", default_value = "50,200", value_parser = RateLimit::parse)]
    pub rate_limit: RateLimit,
    /// Failed token checks per client address: `<per second>[,<burst>]`;
    /// past it the address gets 429 before any token lookup; `0` turns the limit off.
    #[arg(long, env = "VIGIL_AUTH_FAILURE_LIMIT", default_value = crate::rate::DEFAULT_FAILURES,
          value_parser = RateLimit::parse)]
    pub auth_failure_limit: RateLimit,
    /// Live tails one token may have open at once.
    #[arg(long, env = "VIGIL_MAX_TAILS_PER_TOKEN", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_tails_per_token: u16,
    #[command(flatten)]
    pub maintenance: MaintenanceSettings,
    /// A Sigma mapping file replacing the built-in one (docs/sigma.md).
    #[arg(long, env = "VIGIL_SIGMA_MAPPING")]
    pub sigma_mapping: Option<PathBuf>,
    /// The UI build to serve at `/` [default: the checkout's web/dist].
    #[arg(long, env = "VIGIL_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
}

impl ServerConfig {
    /// The file of the key agent commands are signed with.
    pub fn command_key_file(&self) -> PathBuf {
        self.command_key.clone().unwrap_or_else(|| self.dirs.data_dir.join("command-signing.nk"))
    }

    /// The Sigma mapping, read now so a bad file stops the start.
    pub fn load_sigma_mapping(&self) -> anyhow::Result<Arc<Mapping>> {
        Ok(Arc::new(match &self.sigma_mapping {
            Some(path) => sigma_mapping_from_file(path)?,
            None => Mapping::builtin(),
        }))
    }
}

/// A Sigma mapping file.
pub fn sigma_mapping_from_file(path: &Path) -> anyhow::Result<Mapping> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    Mapping::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Where Vigil keeps its files.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirs {
    /// Where the embedded PostgreSQL and NATS, the admin token and (unless
    /// --index-dir says otherwise) the BM25 index live.
    #[arg(long, env = "VIGIL_DATA_DIR", default_value = ".vigil")]
    pub data_dir: PathBuf,
    /// The BM25 index directory [default: <data dir>/bm25].
    #[arg(long, env = "VIGIL_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
}

impl DataDirs {
    /// The BM25 index directory.
    pub fn bm25(&self) -> PathBuf {
        self.index_dir.clone().unwrap_or_else(|| self.data_dir.join("bm25"))
    }
}

/// How this process authenticates to NATS: `vigil serve`, `vigil up` (with
/// an external NATS), `vigil ingest` and `vigil generate` alike.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsArgs {
    /// A NATS credentials file: a `.creds` file (user JWT and seed) or an
    /// nkey user seed (`SU…`); mode 0600.
    #[arg(long, env = "VIGIL_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// A NATS user name, with --nats-password-file.
    #[arg(long, env = "VIGIL_NATS_USER")]
    pub nats_user: Option<String>,
    /// A file holding the NATS user's password (mode 0600).
    #[arg(long, env = "VIGIL_NATS_PASSWORD_FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// PEM CA certificate(s) the NATS server's certificate must chain to (implies TLS).
    #[arg(long, env = "VIGIL_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate for NATS servers that verify clients (with --nats-tls-key).
    #[arg(long, env = "VIGIL_NATS_TLS_CERT")]
    pub nats_tls_cert: Option<PathBuf>,
    /// PEM key of --nats-tls-cert (mode 0600).
    #[arg(long, env = "VIGIL_NATS_TLS_KEY")]
    pub nats_tls_key: Option<PathBuf>,
    /// Refuse a NATS connection without TLS.
    #[arg(long, env = "VIGIL_NATS_REQUIRE_TLS")]
    pub nats_require_tls: bool,
}

impl NatsArgs {
    /// The connection's credentials and TLS.
    pub fn security(&self) -> vigil_control::NatsSecurity {
        vigil_control::NatsSecurity {
            credentials: self.nats_creds.clone(),
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
            require_tls: self.nats_require_tls,
            inbox_prefix: None,
        }
    }
}

/// Limits of SRQL queries, for the API and `vigil query` alike.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryConfig {
    /// The database cancels a query after this long: seconds (`30`) or with
    /// a unit (`500ms`, `2m`), from 1 ms to 1 h.
    #[arg(long, env = "VIGIL_QUERY_TIMEOUT", default_value = "30", value_parser = parse_query_timeout)]
    pub query_timeout: Duration,
    /// The most rows one query may return (`| limit` above it is an error).
    #[arg(long, env = "VIGIL_QUERY_MAX_ROWS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub query_max_rows: u64,
}

impl QueryConfig {
    /// The executor's options: these limits, and plain queries counted up to
    /// at least 10,000 matches.
    pub fn search_options(&self) -> SearchOptions {
        let mut o = SearchOptions::default();
        o.query.statement_timeout = self.query_timeout;
        o.srql.max_limit = self.query_max_rows;
        o.count_cap = self.query_max_rows.max(10_000);
        o
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig { query_timeout: Duration::from_secs(30), query_max_rows: 10_000 }
    }
}

/// `VIGIL_QUERY_TIMEOUT`: seconds (`30`), or with a unit (`500ms`, `2m`).
pub fn parse_query_timeout(v: &str) -> Result<Duration, String> {
    let t = v.trim();
    let parsed = if let Some(ms) = t.strip_suffix("ms") {
        ms.parse::<u64>().ok().map(Duration::from_millis)
    } else if let Ok(secs) = t.parse::<u64>() {
        Some(Duration::from_secs(secs))
    } else {
        vigil_srql::time::parse_duration(t).and_then(|d| d.to_std().ok())
    };
    match parsed {
        Some(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(3_600) => Ok(d),
        _ => Err(format!("{v:?} is not a duration from 1ms to 1h (e.g. 30, 500ms, 2m)")),
    }
}

/// Scheduled hunts and the delivery of their alerts.
#[derive(Debug, Clone, clap::Args)]
pub struct HuntConfig {
    /// Seconds a hunt's window stays behind now, so late events are in it.
    #[arg(long, env = "VIGIL_HUNT_SETTLE_S", default_value_t = 10,
          value_parser = clap::value_parser!(i64).range(0..=3600))]
    pub hunt_settle_s: i64,
    /// Prefix of the links in webhook payloads (else they are relative).
    #[arg(long, env = "VIGIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Attempts per webhook or AWX delivery.
    #[arg(long, env = "VIGIL_WEBHOOK_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub webhook_attempts: u32,
    /// Where webhooks may go: host names (`hooks.example.com`, `*.example.com`),
    /// addresses and CIDRs, comma-separated. A listed name must resolve to
    /// public addresses unless its range is listed too; empty: no webhooks.
    #[arg(long, env = "VIGIL_WEBHOOK_ALLOW", default_value = "", value_parser = AllowList::parse)]
    pub webhook_allow: AllowList,
    /// A PEM file of CA certificates trusted for https webhooks and AWX,
    /// besides the built-in Mozilla roots.
    #[arg(long, env = "VIGIL_WEBHOOK_CA", value_parser = parse_ca_file)]
    pub webhook_ca: Option<RootCerts>,
    /// AWX (Ansible) base URL for `awx` actions; AWX calls (and the token)
    /// go only to its origin.
    #[arg(long, env = "VIGIL_AWX_URL", value_parser = vigil_hunts::actions::parse_awx_url)]
    pub awx_url: Option<Url>,
    /// AWX token for `awx` actions (sent only to VIGIL_AWX_URL's origin).
    #[arg(long, env = "VIGIL_AWX_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub awx_token: Option<Secret>,
}

/// A secret setting: kept as given, `***` in debug output.
pub fn parse_secret(v: &str) -> Result<Secret, String> {
    Ok(Secret::new(v))
}

/// `VIGIL_WEBHOOK_CA`: read and parsed now, so a bad file stops the start.
pub fn parse_ca_file(path: &str) -> Result<RootCerts, String> {
    RootCerts::from_file(Path::new(path))
}

impl HuntConfig {
    /// The runner's settings.
    pub fn settings(&self) -> vigil_hunts::Settings {
        let non_empty = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
        let mut s = vigil_hunts::Settings {
            settle: chrono::TimeDelta::seconds(self.hunt_settle_s),
            public_url: non_empty(&self.public_url).map(|u| u.trim_end_matches('/').to_string()),
            ..Default::default()
        };
        s.delivery.max_attempts = self.webhook_attempts;
        s.delivery.awx_url = self.awx_url.clone();
        s.delivery.awx_token = self.awx_token.clone().filter(|t| !t.expose().trim().is_empty());
        s.delivery.webhook_allow = self.webhook_allow.clone();
        s.delivery.extra_roots = self.webhook_ca.clone();
        s
    }
}

impl Default for HuntConfig {
    fn default() -> Self {
        HuntConfig {
            hunt_settle_s: 10,
            public_url: None,
            webhook_attempts: 5,
            webhook_allow: AllowList::default(),
            webhook_ca: None,
            awx_url: None,
            awx_token: None,
        }
    }
}

/// The embedding model's files.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelConfig {
    /// Directory of the embedding model (`model.onnx`, tokenizer files).
    #[arg(long, env = "VIGIL_MODEL_DIR", default_value = vigil_embed::DEFAULT_MODEL_DIR)]
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library.
    #[arg(long, env = "VIGIL_ORT_LIB", default_value = vigil_embed::DEFAULT_RUNTIME_LIB)]
    pub ort_lib: PathBuf,
}

impl ModelConfig {
    pub fn embed_config(&self) -> EmbedConfig {
        EmbedConfig { model_dir: self.model_dir.clone(), runtime_lib: self.ort_lib.clone(), ..EmbedConfig::default() }
    }
}

/// The in-memory connection graph.
#[derive(Debug, Clone, clap::Args)]
pub struct GraphConfig {
    /// The graph holds connections last seen within this many days (raise
    /// it to explore old captures).
    #[arg(long, env = "VIGIL_GRAPH_WINDOW_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(i64).range(1..=36_500))]
    pub graph_window_days: i64,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig { graph_window_days: 7 }
    }
}

impl GraphConfig {
    pub fn window(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(self.graph_window_days)
    }
}

/// Retention and rollups (docs/retention.md).
#[derive(Debug, Clone, clap::Args)]
pub struct MaintenanceSettings {
    /// Changes to the default retention policy, e.g. "metric=60d,alert=730d,rollup_after=off".
    #[arg(long, env = "VIGIL_RETENTION", default_value = "", value_parser = parse_policy)]
    pub retention: Box<RetentionPolicy>,
    /// How often the retention pass runs: `30m`, `1h`, `6h`, `1d`, or `off`.
    #[arg(long, env = "VIGIL_MAINTENANCE_EVERY", default_value = "1h", value_parser = parse_every)]
    pub maintenance_every: Every,
}

impl MaintenanceSettings {
    /// What the retention loop runs and how often.
    pub fn loop_config(&self) -> MaintenanceConfig {
        MaintenanceConfig {
            policy: (*self.retention).clone(),
            every: self.maintenance_every.0,
            batch: vigil_store::retention::DEFAULT_BATCH,
        }
    }
}

/// An interval, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

/// A retention policy change list ([`RetentionPolicy::parse`]).
pub fn parse_policy(s: &str) -> Result<Box<RetentionPolicy>, String> {
    RetentionPolicy::parse(s).map(Box::new).map_err(|e| e.to_string())
}

/// `30m`, `1h`, `6h`, `1d` or `off`.
pub fn parse_every(v: &str) -> Result<Every, String> {
    crate::maintenance::parse_every(v).map(Every)
}

/// Parses `--embed-selection` (`VIGIL_EMBED_SELECT`); empty means the default rules.
pub fn parse_selection(spec: &str) -> Result<Selection, String> {
    if spec.trim().is_empty() {
        return Ok(Selection::default());
    }
    Selection::parse(spec).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_timeouts_take_seconds_or_units_and_refuse_the_rest() {
        assert_eq!(parse_query_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_query_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_query_timeout("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_query_timeout("0").unwrap_err().contains("1ms to 1h"));
        assert!(parse_query_timeout("2h").is_err());
        assert!(parse_query_timeout("soon").is_err());
    }

    #[test]
    fn hunt_settings_trim_the_public_url_and_drop_empty_values() {
        let c = HuntConfig {
            public_url: Some(" https://vigil.example/ ".into()),
            awx_token: Some(Secret::new("  ")),
            ..HuntConfig::default()
        };
        let s = c.settings();
        assert_eq!(s.public_url.as_deref(), Some("https://vigil.example"));
        assert_eq!(s.delivery.awx_token, None);
        assert_eq!(s.delivery.max_attempts, 5);
    }

    #[test]
    fn hunt_settings_carry_where_actions_may_go_and_bad_values_are_named() {
        let c = HuntConfig {
            webhook_allow: AllowList::parse("hooks.example.com, 10.0.0.0/8").unwrap(),
            awx_url: Some(vigil_hunts::actions::parse_awx_url("https://awx.example/").unwrap()),
            awx_token: Some(Secret::new("t0ken")),
            ..HuntConfig::default()
        };
        let s = c.settings();
        assert_eq!(s.delivery.webhook_allow, c.webhook_allow);
        assert_eq!(s.delivery.awx_url.unwrap().as_str(), "https://awx.example/");
        assert_eq!(s.delivery.awx_token.unwrap().expose(), "t0ken");
        assert!(AllowList::parse("hooks.example.com:8080").unwrap_err().contains("hooks.example.com:8080"));
        assert!(vigil_hunts::actions::parse_awx_url("awx.example").unwrap_err().contains("VIGIL_AWX_URL"));
        assert!(parse_ca_file("/nonexistent/ca.pem").unwrap_err().contains("/nonexistent/ca.pem"));
    }
}
