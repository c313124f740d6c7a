//! `vigil agent enroll <id>` / `vigil agent revoke <id>`: an agent's NATS
//! identity. Enrolment makes an nkey for the agent, adds it to the NATS
//! authorization in the data directory (the embedded NATS of `vigil up`
//! reloads it at once; an external nats-server includes the same file),
//! writes the agent's credentials file (0600) and prints the settings the
//! agent needs, the server's command public key among them.

use std::path::PathBuf;

use anyhow::Context;
use vigil_api::config::DataDirs;
use vigil_control::{CommandSigner, IdentityDir};
use vigil_embedded::EmbeddedNats;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// What both actions work on.
#[derive(Debug, clap::Args)]
struct Common {
    #[command(flatten)]
    dirs: DataDirs,
    /// The key agent commands are signed with [default: <data dir>/command-signing.nk].
    #[arg(long, env = "VIGIL_COMMAND_KEY")]
    command_key: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Give an agent its NATS identity and print its settings.
    Enroll {
        /// The agent id (its `agent_id` setting).
        id: String,
        /// Where to write the agent's credentials [default: <data dir>/agents/<id>.nk].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Take an agent's NATS identity away: it can no longer connect.
    Revoke {
        /// The agent id.
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let common = match &args.action {
        Action::Enroll { common, .. } | Action::Revoke { common, .. } => common,
    };
    let data_dir = &common.dirs.data_dir;
    let ids = IdentityDir::open(&data_dir.join("nats-auth"), vigil_ingest::nats::EVENTS_STREAM)
        .context("opening the NATS identities")?;
    match &args.action {
        Action::Enroll { id, out, .. } => {
            let seed = ids.enroll_agent(id).with_context(|| format!("enrolling agent {id}"))?;
            let out = out.clone().unwrap_or_else(|| data_dir.join("agents").join(format!("{id}.nk")));
            vigil_control::files::write_secret(&out, format!("{seed}\n").as_bytes())?;
            let key_file = common.command_key.clone().unwrap_or_else(|| data_dir.join("command-signing.nk"));
            let signer = CommandSigner::load_or_create(&key_file).context("loading the agent command key")?;
            println!("Enrolled agent {id}. Its NATS credentials are in {} (mode 0600): copy them to", out.display());
            println!("the agent's host and give the agent these settings:\n");
            println!("  agent_id = \"{id}\"");
            println!("  nats_credentials = \"/etc/vigil-agent/nats.nk\"   # where you copied the file");
            println!("  command_key = \"{}\"", signer.public_key());
        }
        Action::Revoke { id, .. } => {
            if !ids.revoke_agent(id)? {
                anyhow::bail!("agent {id} is not enrolled");
            }
            println!("Revoked agent {id}.");
        }
    }
    if EmbeddedNats::reload_running(data_dir).context("reloading the embedded NATS")? {
        println!("\nThe embedded NATS reloaded its authorization.");
    } else {
        println!(
            "\nNo embedded NATS runs from {}: include {} in your nats-server configuration and reload it.",
            data_dir.display(),
            ids.authorization_file().display()
        );
    }
    Ok(())
}
