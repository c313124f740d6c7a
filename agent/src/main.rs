//! `vigil-agent`: the host agent. This first cut identifies the host and
//! prints a heartbeat event in Vigil's event JSON; process, connection,
//! metric and package collection and the NATS transport arrive with the
//! agent issue.

use clap::Parser;
use vigil_agent::heartbeat;

#[derive(Debug, Parser)]
#[command(name = "vigil-agent", version, about = "Vigil host agent")]
struct Cli {
    /// Agent id (defaults to the host name).
    #[arg(long, env = "VIGIL_AGENT_ID")]
    id: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let event = heartbeat(cli.id.as_deref(), chrono::Utc::now())?;
    println!("{}", serde_json::to_string(&event)?);
    Ok(())
}
