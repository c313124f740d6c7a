use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, Utc};
use vigil_ingest::generate::{Generator, GeneratorConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many events.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Same seed, same corpus.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 50)]
    hosts: usize,
    /// Events spread over the hours before now.
    #[arg(long, default_value_t = 24)]
    span_hours: i64,
    /// Write NDJSON here ("-" for stdout) instead of publishing.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Publish to this NATS server (subjects vigil.events.<kind>).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[command(flatten)]
    nats: vigil_api::config::NatsArgs,
    /// Publish acks in flight.
    #[arg(long, default_value_t = 1024)]
    window: usize,
    /// Events per NATS message (NDJSON, one kind per message); 1 sends one message per event.
    #[arg(long, default_value_t = 1)]
    per_message: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = GeneratorConfig {
        seed: args.seed,
        hosts: args.hosts,
        ..GeneratorConfig::recent(args.events, Duration::hours(args.span_hours.max(1)), Utc::now())
    };
    let events = Generator::new(cfg);
    let started = Instant::now();
    match &args.out {
        Some(path) => {
            let mut out: Box<dyn Write> = if path.as_os_str() == "-" {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
                ))
            };
            for e in events {
                serde_json::to_writer(&mut out, &e)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        None => {
            let client = vigil_ingest::nats::connect(&args.nats_url, &args.nats.security()).await?;
            let js = async_nats::jetstream::new(client);
            vigil_ingest::nats::ensure_streams(&js, &vigil_ingest::nats::NatsConfig::new(args.nats_url.clone()))
                .await?;
            let n = vigil_ingest::publish::publish_batched(&js, events, args.window, args.per_message).await?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!("published {n} events in {secs:.1}s ({:.0} events/s)", n as f64 / secs.max(1e-9));
            return Ok(());
        }
    }
    eprintln!("wrote {} events in {:.1}s", args.events, started.elapsed().as_secs_f64());
    Ok(())
}
