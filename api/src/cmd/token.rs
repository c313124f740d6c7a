use anyhow::Context;
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
        What::Create { role, name, database_url } => {
            if Role::parse(&role).is_none() {
                anyhow::bail!("unknown role `{role}`; use one of {}", Role::NAMES.join(", "));
            }
            let pool = connect(&database_url, 1)?;
            migrate(&pool, &MigrateOptions::default()).await.context("migrating the database")?;
            let (info, token) = tokens::create(&pool, &name, &role).await?;
            eprintln!("created {} token {} ({}); it is shown only now:", info.role, info.id, info.name);
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
