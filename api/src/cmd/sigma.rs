//! `vigil sigma import PATH…`: Sigma rule files (or directories, searched
//! for `*.yml`/`*.yaml`) converted into hunts in DATABASE_URL. See docs/sigma.md.

use std::path::{Path, PathBuf};

use anyhow::Context;
use vigil_api::config::HuntConfig;
use vigil_hunts::sigma_import::{self, Outcome};
use vigil_sigma::{convert_all, Options, Source};
use vigil_store::{connect, migrate, MigrateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: SigmaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SigmaCommand {
    /// Convert Sigma rules into hunts: created, or replacing the hunt with the
    /// same Sigma id (or name). Prints converted / failed by reason.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Rule files and directories (searched recursively for *.yml and *.yaml).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Cron schedule of the created hunts.
    #[arg(long, default_value = vigil_sigma::DEFAULT_SCHEDULE)]
    schedule: String,
    /// Create the hunts disabled.
    #[arg(long)]
    disabled: bool,
    /// Convert and validate only; no database needed.
    #[arg(long)]
    dry_run: bool,
    /// A mapping file replacing the built-in one (sigma/mapping.yaml).
    #[arg(long, env = "VIGIL_SIGMA_MAPPING")]
    mapping: Option<PathBuf>,
    /// Print each converted rule's SRQL query.
    #[arg(long)]
    show_queries: bool,
    #[command(flatten)]
    hunts: HuntConfig,
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() || p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                collect(&p, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        SigmaCommand::Import(a) => import(a).await,
    }
}

async fn import(a: ImportArgs) -> anyhow::Result<()> {
    let mapping = match &a.mapping {
        Some(p) => vigil_api::config::sigma_mapping_from_file(p)?,
        None => vigil_sigma::Mapping::builtin(),
    };
    let mut files = Vec::new();
    for p in &a.paths {
        collect(p, &mut files)?;
    }
    let texts = files
        .iter()
        .map(|p| {
            Ok((
                p.display().to_string(),
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sources: Vec<Source<'_>> = texts.iter().map(|(o, y)| Source { origin: o, yaml: y }).collect();
    let opts = Options { schedule: a.schedule.clone(), enabled: !a.disabled };
    let report = convert_all(&sources, &mapping, &opts);
    if a.show_queries {
        for c in report.converted.iter().chain(&report.referenced_only) {
            println!("{}\n  {}", c.name, c.query);
        }
    }
    let out = if a.dry_run && a.database_url.is_none() {
        // No database: the conversion report (queries already compile).
        Outcome::converted_only(&report)
    } else {
        let url = a.database_url.as_deref().context("--database-url (or DATABASE_URL) is required")?;
        let pool = connect(url, 2)?;
        if !a.dry_run {
            migrate(&pool, &MigrateOptions::default()).await.context("migrating the database")?;
        }
        let created_by = format!("sigma-import:{}", std::env::var("USER").unwrap_or_else(|_| "cli".into()));
        sigma_import::store(&pool, report, Some(&created_by), a.hunts.settings().settle, a.dry_run).await?
    };
    for s in &out.converted {
        let id = s.id.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
        println!("{:<9} {id} {}", s.action, s.name);
    }
    print!("{}", out.render());
    Ok(())
}
