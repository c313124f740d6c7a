//! `vigil-agent`: the host agent binary. Owns the command line and the
//! event sink:
//!
//! - `vigil-agent run` (the default): starts the collectors and sends their
//!   events to the transport (NATS JetStream with the on-disk spool), and
//!   answers commands; `run --stdout` prints the events as NDJSON instead.
//! - `vigil-agent once --print` (alias `snapshot`): one full snapshot as
//!   NDJSON on stdout, no NATS.
//! - `vigil-agent sources`: which process-event source and connection
//!   source would be chosen and why, and which blocklist backend (XDP or
//!   recorded only).
//!
//! Settings come from `--config` / `VIGIL_AGENT_CONFIG` and the environment
//! (see `vigil_agent::config`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use vigil_agent::collect::ebpf_net::{choose_connection_source, ConnectionSource, ConnectionSourceChoice};
use vigil_agent::collect::process::ProcessSource;
use vigil_agent::collect::process::SourceChoice;
use vigil_agent::collect::{self, process::choose_source, Collectors, Control, StartOptions};
use vigil_agent::config::AgentConfig;
use vigil_agent::transport::{
    open_blocklist, Action, AgentCommands, Capabilities, ChannelHandler, CommandError, Transport, TransportConfig,
    XdpOptions,
};
use vigil_event::Event;

#[derive(Debug, Parser)]
#[command(name = "vigil-agent", version, about = "Vigil host agent")]
struct Cli {
    /// Settings file (TOML, or JSON when it ends in .json).
    #[arg(long, global = true, env = "VIGIL_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Agent id (defaults to the host name); overrides the file and VIGIL_AGENT_ID.
    #[arg(long, global = true)]
    id: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collectors and send their events (the default).
    Run {
        /// Print events as NDJSON on stdout instead of sending them.
        #[arg(long)]
        stdout: bool,
    },
    /// Print one full snapshot as NDJSON on stdout, without NATS.
    #[command(alias = "snapshot")]
    Once {
        /// Print the events (the only output there is; accepted for clarity).
        #[arg(long)]
        print: bool,
        /// Pretty-print instead of one event per line.
        #[arg(long)]
        pretty: bool,
    },
    /// Print which process source, connection source and blocklist backend are chosen and why.
    Sources {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = AgentConfig::load(cli.config.as_deref()).context("loading the agent settings")?;
    if let Some(id) = cli.id {
        config.agent_id = id;
        config.validate()?;
    }
    match cli.command.unwrap_or(Command::Run { stdout: false }) {
        Command::Run { stdout } => run(config, stdout),
        Command::Once { print: _, pretty } => once(&config, pretty),
        Command::Sources { json } => sources(&config, json),
    }
}

fn once(config: &AgentConfig, pretty: bool) -> anyhow::Result<()> {
    let events = collect::snapshot(config, Duration::from_millis(250));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in &events {
        if pretty {
            serde_json::to_writer_pretty(&mut out, e)?;
        } else {
            serde_json::to_writer(&mut out, e)?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn xdp_options(config: &AgentConfig) -> XdpOptions {
    XdpOptions { pin_dir: config.bpf_pin_dir.clone(), interfaces: config.xdp_interfaces.clone(), mode: config.xdp_mode }
}

fn sources(config: &AgentConfig, json: bool) -> anyhow::Result<()> {
    let (choice, _stream) = choose_source(config.process_source, config.intervals.process_poll);
    let (connections, _tracer) = choose_connection_source(config.connection_source, config.intervals.connections);
    let (blocklist, why) =
        open_blocklist(&config.spool_dir, config.xdp, &xdp_options(config)).context("opening the blocklist")?;
    if json {
        let mut v = serde_json::to_value(&choice)?;
        v["connection_source"] = serde_json::to_value(&connections)?;
        v["blocklist"] = serde_json::json!({"backend": blocklist.backend(), "reason": why});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{choice}");
        print!("{connections}");
        println!("blocklist: {} ({why})", blocklist.backend());
    }
    Ok(())
}

/// Starts the transport (NATS JetStream with the on-disk spool) and its
/// command service: the blocklist answers block/unblock/list, and
/// `rescan_packages` / `snapshot_now` are handed to the collectors.
async fn start_transport(
    config: &AgentConfig,
    source: &SourceChoice,
    connections: &ConnectionSourceChoice,
    control: Control,
    registry: &mut Registry,
) -> anyhow::Result<Transport> {
    let mut tc = TransportConfig::new(&config.nats_url, &config.agent_id, &config.spool_dir);
    tc.spool_max_bytes = config.spool_max_bytes;
    tc.heartbeat_interval = config.intervals.heartbeat;
    tc.security = config.nats_security.clone();
    tc.create_stream = !config.nats_security.has_credentials();
    tc.command_key = config.command_key.clone();
    tc.never_block = config.never_block.clone();
    tc.proc_root = config.proc_root.clone();
    let (blocklist, why) =
        open_blocklist(&config.spool_dir, config.xdp, &xdp_options(config)).context("opening the blocklist")?;
    vigil_agent::collect::ebpf::release_freed_memory();
    tracing::info!(backend = blocklist.backend(), reason = %why, "blocklist");
    tc.capabilities = Capabilities {
        process_source: source.source.to_string(),
        connection_source: connections.source.to_string(),
        ebpf: source.source == ProcessSource::Ebpf || connections.source == ConnectionSource::Ebpf,
        xdp: blocklist.backend() == "xdp",
    };
    let mut transport = Transport::start(tc, registry).await.context("starting the transport")?;
    let (handler, mut requests) = ChannelHandler::new(16);
    tokio::spawn(async move {
        while let Some((cmd, reply)) = requests.recv().await {
            let answer = match cmd.action {
                Action::RescanPackages => {
                    control.rescan_packages();
                    Ok(serde_json::json!({"rescan_packages": "started"}))
                }
                Action::SnapshotNow => {
                    control.snapshot_now();
                    Ok(serde_json::json!({"snapshot_now": "started"}))
                }
                _ => Err(CommandError::Unsupported("this command")),
            };
            let _ = reply.send(answer);
        }
    });
    transport
        .serve_commands(Arc::new(AgentCommands::new(blocklist).with_fallback(Arc::new(handler))))
        .await
        .context("subscribing to commands")?;
    tracing::info!(nats_url = %vigil_control::redact_url(&config.nats_url), subject = %transport.command_subject(), "transport running");
    Ok(transport)
}

fn run(config: AgentConfig, force_stdout: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("vigil-agent")
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let (tx, rx) = mpsc::channel(1024);
        // The agent's own metrics registry, apart from the server's: the transport counts in it.
        let mut registry = Registry::with_prefix("vigil");
        // The transport sends heartbeats with the agent's capabilities; on stdout the collectors do.
        let collectors = Collectors::start_with(&config, tx, StartOptions { heartbeats: force_stdout })
            .context("starting the collectors")?;
        tracing::info!(
            agent_id = %config.agent_id,
            host = %config.host,
            process_source = %collectors.source().source,
            connection_source = %collectors.connection_source().source,
            "agent running"
        );
        let (drain, transport) = if force_stdout {
            (tokio::spawn(print_ndjson(rx)), None)
        } else {
            let (source, connections) = (collectors.source(), collectors.connection_source());
            let transport = start_transport(&config, source, connections, collectors.control(), &mut registry).await?;
            (tokio::spawn(forward(rx, transport.sender())), Some(transport))
        };
        let result = tokio::select! {
            r = drain => r.context("the event sink")?,
            _ = shutdown_signal() => {
                tracing::info!("stopping");
                Ok(())
            }
        };
        tokio::task::spawn_blocking(move || collectors.stop()).await.ok();
        if let Some(t) = transport {
            // Flushes what is batched (or spools it) before exiting.
            t.shutdown().await.context("stopping the transport")?;
        }
        result
    })
}

/// Hands the collectors' events to the transport.
async fn forward(mut rx: mpsc::Receiver<Event>, tx: mpsc::Sender<Event>) -> anyhow::Result<()> {
    while let Some(e) = rx.recv().await {
        tx.send(e).await.map_err(|_| anyhow::anyhow!("the transport stopped"))?;
    }
    Ok(())
}

/// Writes events as NDJSON on stdout (a blocking thread: stdout is a plain
/// file or pipe), flushing whenever the channel is empty.
async fn print_ndjson(mut rx: mpsc::Receiver<Event>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        while let Some(e) = rx.blocking_recv() {
            serde_json::to_writer(&mut out, &e)?;
            out.write_all(b"\n")?;
            if rx.is_empty() {
                out.flush()?;
            }
        }
        out.flush()?;
        Ok(())
    })
    .await
    .context("the stdout writer")?
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
