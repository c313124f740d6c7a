//! `vigil up`: the embedded default. With no DATABASE_URL it runs its own
//! PostgreSQL cluster (and with no NATS_URL its own NATS server) in the data
//! directory, migrates, loads demo data into an empty database, serves, and
//! on Ctrl-C stops what it started.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use vigil_api::config::ServerConfig;
use vigil_api::start::{Server, Services};
use vigil_embedded::{EmbeddedNats, EmbeddedPostgres};
use vigil_hunts::Settings;
use vigil_store::{connect, migrate, EventWriter, MigrateOptions, Pool};

use super::shutdown_signal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use this PostgreSQL server instead of starting one.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Use this NATS server instead of starting one.
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// Generated demo events to load into an empty database (0: none).
    #[arg(long, default_value_t = 50_000)]
    demo_events: u64,
    /// Do not load any demo data.
    #[arg(long)]
    no_demo: bool,
    /// The real datasets of the demo [default: ../shared/data when present].
    #[arg(long, env = "VIGIL_DEMO_DATA")]
    demo_data: Option<PathBuf>,
    /// Directory of the PostgreSQL 15 server binaries for the embedded cluster
    /// [default: /usr/lib/postgresql/15/bin or `pg_config --bindir`].
    #[arg(long, env = "VIGIL_PG_BIN")]
    pg_bin: Option<PathBuf>,
    /// The nats-server binary for the embedded NATS [default: nats-server on the PATH].
    #[arg(long, env = "VIGIL_NATS_SERVER")]
    nats_server: Option<PathBuf>,
    #[command(flatten)]
    server: ServerConfig,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = &args.server;
    let data_dir = &cfg.dirs.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;

    // Bind first: a taken port should fail before anything is started.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {} (use --listen to choose another address)", cfg.listen))?;

    let mut embedded_pg = None;
    let database_url = match args.database_url.clone() {
        Some(url) => url,
        None => {
            let (dir, bin) = (data_dir.clone(), args.pg_bin.clone());
            let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start_with(&dir, bin.as_deref()))
                .await?
                .context("starting the embedded PostgreSQL")?;
            // The app connects as the cluster's unprivileged role, by password.
            let timescaledb = cfg.timescaledb != vigil_store::TimescaleChoice::Off;
            let url = pg.prepare_app(timescaledb).await.context("preparing the embedded PostgreSQL")?;
            println!(
                "PostgreSQL: embedded, {} (password in {}; data in {})",
                pg.app_url_for_display(),
                pg.app_password_file().display(),
                pg.socket_dir().display()
            );
            embedded_pg = Some(pg);
            url
        }
    };

    let mut embedded_nats = None;
    let mut nats_security = cfg.nats.security();
    let nats_url = match &args.nats_url {
        Some(url) => {
            println!("NATS: {}", vigil_control::redact_url(url));
            Some(url.clone())
        }
        None => match start_embedded_nats(data_dir, args.nats_server.as_deref()) {
            Ok(Some((n, security))) => {
                println!(
                    "NATS: embedded, {} (clients need an identity: `vigil agent enroll <id>` makes an agent's)",
                    n.url()
                );
                let url = n.url();
                embedded_nats = Some(n);
                nats_security = security;
                Some(url)
            }
            Ok(None) => {
                println!("NATS: nats-server not installed; event streaming is off (run scripts/setup.sh)");
                None
            }
            Err(e) => {
                println!("NATS: could not start nats-server: {e:#}; event streaming is off");
                None
            }
        },
    };

    let pool = connect(&database_url, 16)?;
    let report =
        migrate(&pool, &MigrateOptions { timescaledb: cfg.timescaledb }).await.context("migrating the database")?;
    println!("Schema: {} storage, {} migration(s) applied now", report.mode, report.applied.len());

    let sign_in = local_admin_token(&pool, data_dir).await?;
    let settings = cfg.hunts.settings();
    let demo_hunts = if args.no_demo { Vec::new() } else { load_demo(&pool, &settings, &args).await? };

    let services = Services {
        pool: pool.clone(),
        database_url: database_url.clone(),
        storage_mode: report.mode,
        nats_url,
        nats_security,
    };
    let server = Server::start(cfg, services, listener).await?;
    if !demo_hunts.is_empty() {
        first_demo_hunt_runs(pool.clone(), settings, demo_hunts, server.stopping());
    }
    println!("Vigil is up: http://{}  (Ctrl-C to stop)", server.local_addr()?);
    match sign_in {
        // Shown once, when made; later starts say where it is kept.
        AdminToken::Created(token) => {
            println!("Sign in with this new admin token (also kept in {}): {token}", token_file(data_dir).display())
        }
        AdminToken::Kept => {
            println!("Sign in with the admin token kept in {} (readable by you only)", token_file(data_dir).display())
        }
    }
    let served = server.serve(async {
        shutdown_signal().await;
        println!("Stopping…");
    });
    let served = served.await;
    pool.close();
    drop(embedded_nats);
    if let Some(mut pg) = embedded_pg {
        tokio::task::spawn_blocking(move || pg.stop()).await?.context("stopping the embedded PostgreSQL")?;
    }
    served?;
    println!("Stopped.");
    Ok(())
}

/// Starts the embedded NATS open only to the identities in
/// `<data dir>/nats-auth` (the server's, made now if missing, and enrolled
/// agents'), and returns it with the server's credentials.
fn start_embedded_nats(
    data_dir: &std::path::Path,
    binary: Option<&std::path::Path>,
) -> anyhow::Result<Option<(EmbeddedNats, vigil_control::NatsSecurity)>> {
    let ids = vigil_control::IdentityDir::open(&data_dir.join("nats-auth"), vigil_ingest::nats::EVENTS_STREAM)
        .context("preparing the NATS identities")?;
    let port = vigil_embedded::free_port()?;
    let Some(nats) = EmbeddedNats::start_configured(data_dir, port, binary, Some(&ids.authorization_file()))? else {
        return Ok(None);
    };
    let security = vigil_control::NatsSecurity { credentials: Some(ids.service_credentials()), ..Default::default() };
    Ok(Some((nats, security)))
}

fn token_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// The local admin's token: made now (printed once), or the saved one.
#[derive(Debug, PartialEq, Eq)]
enum AdminToken {
    Created(String),
    Kept,
}

/// The local admin's token for signing in to the UI: the one saved in the data
/// directory while it still works, else a new one (saved, readable by this
/// user only). Only its hash is in the database, like every token.
async fn local_admin_token(pool: &Pool, data_dir: &std::path::Path) -> anyhow::Result<AdminToken> {
    let file = token_file(data_dir);
    if let Ok(saved) = std::fs::read_to_string(&file) {
        let saved = saved.trim().to_string();
        if vigil_store::tokens::verify(pool, &saved).await?.is_some_and(|t| t.role == "admin") {
            return Ok(AdminToken::Kept);
        }
    }
    let (_, token) = vigil_store::tokens::create(pool, "vigil up (local admin)", "admin", None).await?;
    // A file left by an older version may be wider than 0600: start afresh.
    let _ = std::fs::remove_file(&file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&file).with_context(|| format!("saving the admin token in {}", file.display()))?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())?;
    Ok(AdminToken::Created(token))
}

/// Loads the demo dataset once: only into a database with no events. The
/// demo hunts are created first, so their first window covers the load;
/// returns their ids.
async fn load_demo(pool: &Pool, settings: &Settings, args: &Args) -> anyhow::Result<Vec<uuid::Uuid>> {
    let client = pool.get().await?;
    let has_events = client.query_opt("SELECT 1 FROM events LIMIT 1", &[]).await?.is_some();
    drop(client);
    if has_events {
        println!("Demo data: database already has events; nothing loaded");
        return Ok(Vec::new());
    }
    let hunts = create_demo_hunts(pool, settings).await?;
    let started = Instant::now();
    let shared = vigil_ingest::demo::find_shared_data(args.demo_data.as_deref());
    let (events, summary) = vigil_ingest::demo::build(shared.as_deref(), chrono::Utc::now(), args.demo_events);
    let writer = EventWriter::new(pool.clone());
    let mut stored = 0;
    for batch in events.chunks(10_000) {
        stored += writer.write(batch).await.context("loading demo data")?.inserted;
    }
    println!("Demo data: {stored} events stored in {:.1}s", started.elapsed().as_secs_f64());
    println!("  {} generated (seeded synthetic telemetry from {} hosts, last 24 h)", summary.generated, summary.hosts);
    println!(
        "  {} package inventory, {} running daemon and {} Trivy finding events for them",
        summary.packages, summary.daemons, summary.vulns
    );
    println!("  {} events of a scripted intrusion (SSH guessing, reverse shell, /etc/shadow read)", summary.story);
    for (name, n) in &summary.datasets {
        println!("  {n} from {name}");
    }
    for r in summary.rebased.iter().filter(|r| r.idle_gap_cap.is_some()) {
        let hours = |(a, b): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)| (b - a).num_minutes() / 60;
        println!(
            "  {}: its {} h fitted into {} h of the demo day (idle gaps over {} s shortened; raw.dataset.original_time keeps each event's time)",
            r.name,
            hours(r.original),
            hours(r.moved),
            r.idle_gap_cap.map_or(0, |c| c.num_seconds()),
        );
    }
    if shared.is_none() {
        println!("  (shared/data not found: set VIGIL_DEMO_DATA to add the real datasets)");
    }
    if !hunts.is_empty() {
        println!("Demo hunts: {} created; first run in ~{} s", hunts.len(), demo_first_run_delay(settings).as_secs());
    }
    Ok(hunts)
}

/// The demo's hunts ([`vigil_ingest::demo::hunts`]) as hunt specs.
fn demo_hunt_specs() -> anyhow::Result<Vec<vigil_hunts::HuntSpec>> {
    vigil_ingest::demo::hunts().into_iter().map(|h| serde_json::from_value(h).context("reading a demo hunt")).collect()
}

/// Creates the demo hunts (enabled, `meta.demo = true`); one whose name is
/// taken already is left as it is.
async fn create_demo_hunts(pool: &Pool, settings: &Settings) -> anyhow::Result<Vec<uuid::Uuid>> {
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for spec in demo_hunt_specs()? {
        let v = spec
            .validate(settings.row_limit, &settings.delivery)
            .with_context(|| format!("demo hunt {:?}", spec.name))?;
        match vigil_hunts::hunt::create(pool, &v, Some("vigil up (demo)"), now, settings.settle).await {
            Ok(h) => ids.push(h.id),
            Err(vigil_hunts::HuntError::Conflict(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("creating demo hunt {:?}", spec.name)),
        }
    }
    Ok(ids)
}

/// How long after the load the demo hunts first run: a run searches up to
/// `now − settle`, so the loaded events are all inside its window by then.
fn demo_first_run_delay(settings: &Settings) -> std::time::Duration {
    let settle = settings.settle.to_std().unwrap_or_default();
    settle + std::time::Duration::from_secs(3)
}

/// Runs each demo hunt once, [`demo_first_run_delay`] from now, instead of
/// waiting for its schedule, so the alerts inbox fills right after start.
fn first_demo_hunt_runs(
    pool: Pool,
    settings: Settings,
    hunts: Vec<uuid::Uuid>,
    stop: vigil_ingest::shutdown::Shutdown,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(demo_first_run_delay(&settings)) => {}
            _ = stop.wait() => return,
        }
        let runner = vigil_hunts::Runner::new(pool, settings, std::sync::Arc::new(vigil_hunts::SystemClock));
        let (mut matches, mut alerts) = (0, 0);
        for id in hunts {
            match runner.run_now(id).await {
                Ok(r) => {
                    matches += r.matches;
                    alerts += r.alerts_created;
                }
                Err(e) => tracing::warn!("demo hunt {id}: first run failed: {e}"),
            }
        }
        println!("Demo hunts: first run matched {matches} events, raised {alerts} alerts");
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn demo_hunts_validate() {
        let specs = demo_hunt_specs().unwrap();
        assert!(specs.len() >= 3);
        for spec in &specs {
            let v = spec
                .validate(10_000, &vigil_hunts::DeliveryConfig::default())
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            assert!(v.enabled, "{}", spec.name);
            assert_eq!(v.meta["demo"], true, "{}", spec.name);
            assert!(v.severity_id >= 4, "{}: high or critical", spec.name);
        }
    }
}
