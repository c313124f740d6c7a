use anyhow::Context;
use chrono::{DateTime, Utc};
use vigil_api::auth::Role;
use vigil_store::{connect, migrate, tokens, MigrateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Create a token; it is printed once and only its hash is stored.
    Create {
        /// viewer, analyst, admin or ingest.
        #[arg(long)]
        role: String,
        /// What the token is for (shown in logs and the audit trail).
        #[arg(long, default_value = "cli")]
        name: String,
        /// When the token stops working: a duration from now (`30d`, `12h`)
        /// or a time (`2027-01-01`, RFC 3339). [default: never; revoke it instead]
        #[arg(long, value_parser = parse_expires)]
        expires: Option<DateTime<Utc>>,
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Revoke a token by its id.
    Revoke {
        id: uuid::Uuid,
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Create { role, name, expires, database_url } => {
            if Role::parse(&role).is_none() {
                anyhow::bail!("unknown role `{role}`; use one of {}", Role::NAMES.join(", "));
            }
            let pool = connect(&database_url, 1)?;
            migrate(&pool, &MigrateOptions::default()).await.context("migrating the database")?;
            let (info, token) = tokens::create(&pool, &name, &role, expires).await?;
            let until = info.expires_at.map_or("never expires".to_string(), |t| format!("expires {}", t.to_rfc3339()));
            eprintln!("created {} token {} ({}, {until}); it is shown only now:", info.role, info.id, info.name);
            println!("{token}");
        }
        What::Revoke { id, database_url } => {
            let pool = connect(&database_url, 1)?;
            if !tokens::revoke(&pool, id).await? {
                anyhow::bail!("no active token with id {id}");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

/// `--expires`: a duration from now or a time, which must be in the future.
fn parse_expires(v: &str) -> Result<DateTime<Utc>, String> {
    let now = Utc::now();
    let at = vigil_srql::time::parse_duration(v)
        .map(|d| now + d)
        .or_else(|| vigil_srql::time::parse_instant(v, now))
        .ok_or_else(|| format!("{v:?} is not a duration (30d, 12h) or a time (2027-01-01, RFC 3339)"))?;
    if at <= now {
        return Err(format!("{v:?} is not in the future; a token must expire after it is made"));
    }
    Ok(at)
}
