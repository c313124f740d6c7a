//! `vigil`: the server command. `vigil up` runs everything on one box;
//! `vigil serve` runs the API against a configured database; `vigil migrate`
//! and `vigil import` work on the database directly.

mod cmd;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "vigil", version, about = "Vigil: a Postgres-native SIEM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on this box: its own PostgreSQL and NATS unless
    /// DATABASE_URL / NATS_URL are set, migrations, demo data and the server.
    Up(cmd::up::Args),
    /// Run the server against DATABASE_URL (migrates first).
    Serve(cmd::serve::Args),
    /// Apply the schema migrations to DATABASE_URL.
    Migrate(cmd::migrate::Args),
    /// Run the JetStream → PostgreSQL ingest pipeline.
    Ingest(cmd::ingest::Args),
    /// Generate a realistic synthetic corpus: publish it to NATS or write NDJSON.
    Generate(cmd::generate::Args),
    /// Create or revoke API tokens.
    Token(cmd::token::Args),
    /// Run an SRQL query against DATABASE_URL (or --explain it).
    Query(cmd::query::Args),
    /// Import event files (Vigil JSON, Zeek conn.log TSV/JSON, syslog, Falco, Suricata, Trivy, evtx JSON) into DATABASE_URL.
    Import(cmd::import::Args),
    /// Print performance figures measured on this machine.
    Bench(cmd::bench::Args),
    /// Rebuild the BM25 full-text index from PostgreSQL.
    Reindex(cmd::reindex::Args),
    /// Sigma rules: `import` converts rule files into scheduled hunts.
    Sigma(cmd::sigma::Args),
    /// Retention and metric rollups: `run` one pass (`--dry-run`), or print the `policy`.
    Retention(cmd::retention::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("VIGIL_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(args).await,
        Command::Serve(args) => cmd::serve::run(args).await,
        Command::Migrate(args) => cmd::migrate::run(args).await,
        Command::Import(args) => cmd::import::run(args).await,
        Command::Query(args) => cmd::query::run(args).await,
        Command::Token(args) => cmd::token::run(args).await,
        Command::Ingest(args) => cmd::ingest::run_cmd(args).await,
        Command::Generate(args) => cmd::generate::run(args).await,
        Command::Bench(args) => cmd::bench::run(args).await,
        Command::Reindex(args) => cmd::reindex::run(args).await,
        Command::Retention(args) => cmd::retention::run(args).await,
        Command::Sigma(args) => cmd::sigma::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
