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
    Bench(vigil_bench::Args),
    /// Rebuild the BM25 full-text index from PostgreSQL.
    Reindex(cmd::reindex::Args),
    /// Sigma rules: `import` converts rule files into scheduled hunts.
    Sigma(cmd::sigma::Args),
    /// Retention and metric rollups: `run` one pass (`--dry-run`), or print the `policy`.
    Retention(cmd::retention::Args),
    /// Agents' NATS identities: `enroll` one (credentials and settings), `revoke` one.
    Agent(cmd::agent::Args),
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
        Command::Bench(args) => vigil_bench::run(args).await,
        Command::Reindex(args) => cmd::reindex::run(args).await,
        Command::Retention(args) => cmd::retention::run(args).await,
        Command::Sigma(args) => cmd::sigma::run(args).await,
        Command::Agent(args) => cmd::agent::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The table of settings in docs/configuration.md, rendered from the flags
/// themselves so the document cannot drift from the code.
#[cfg(test)]
mod configuration_table {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::Cli;

    const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    const BEGIN: &str = "<!-- settings table: generated from the flags; VIGIL_BLESS=1 cargo test -p vigil-api --bin vigil rewrites it -->";
    const END: &str = "<!-- end of settings table -->";

    #[derive(Default)]
    struct Setting {
        flag: String,
        default: String,
        help: String,
        commands: Vec<String>,
    }

    fn collect(cmd: &clap::Command, path: &str, out: &mut BTreeMap<String, Setting>) {
        for arg in cmd.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let s = out.entry(env.to_string_lossy().into_owned()).or_default();
            if s.flag.is_empty() {
                s.flag = arg.get_long().map(|l| format!("`--{l}`")).unwrap_or_default();
                s.default = arg.get_default_values().iter().map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(",");
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                s.help =
                    help.split_whitespace().collect::<Vec<_>>().join(" ").trim_end_matches('.').replace('|', "\\|");
            }
            s.commands.push(path.to_string());
        }
        for sub in cmd.get_subcommands() {
            let name = if path.is_empty() { sub.get_name().to_string() } else { format!("{path} {}", sub.get_name()) };
            collect(sub, &name, out);
        }
    }

    fn render() -> String {
        let mut settings = BTreeMap::new();
        collect(&Cli::command(), "", &mut settings);
        let mut t = String::from("| variable | flag | default | commands | what it sets |\n|---|---|---|---|---|\n");
        for (env, s) in &mut settings {
            // These two mean different things to `up` (which starts its own) and to the rest.
            match env.as_str() {
                "DATABASE_URL" => s.help = "the PostgreSQL database (`up` starts its own when unset)".into(),
                "NATS_URL" => {
                    s.help = "the NATS server to ingest from and command agents over (`up` starts its own when \
                              unset; `serve` then runs without NATS)"
                        .into()
                }
                _ => {}
            }
        }
        for (env, s) in &settings {
            let default = if s.default.is_empty() { "—".to_string() } else { format!("`{}`", s.default) };
            let commands = s.commands.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
            t.push_str(&format!("| `{env}` | {} | {default} | {commands} | {} |\n", s.flag, s.help));
        }
        t.push_str("| `VIGIL_LOG` | — | `info` | every command | the log filter (`warn`, `vigil_api=debug`, …) |\n");
        t
    }

    #[test]
    fn the_documented_settings_are_the_flags() {
        let doc = std::fs::read_to_string(DOC).unwrap_or_default();
        let (Some(a), Some(b)) = (doc.find(BEGIN), doc.find(END)) else {
            panic!("{DOC} must hold the table between `{BEGIN}` and `{END}`");
        };
        let (head, tail) = (&doc[..a + BEGIN.len()], &doc[b..]);
        let table = render();
        if std::env::var_os("VIGIL_BLESS").is_some() {
            std::fs::write(DOC, format!("{head}\n{table}{tail}")).unwrap_or_else(|e| panic!("writing {DOC}: {e}"));
            return;
        }
        assert_eq!(
            doc[a + BEGIN.len()..b].trim(),
            table.trim(),
            "docs/configuration.md is stale: VIGIL_BLESS=1 rewrites it"
        );
    }
}
