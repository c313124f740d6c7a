use std::io::IsTerminal;

use anyhow::Context;
use vigil_api::config::{DataDirs, GraphConfig, ModelConfig, QueryConfig};
use vigil_search::{SearchOptions, Searcher};
use vigil_srql::{compile, PostStage};
use vigil_store::connect;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SRQL query, e.g. 'host:web-01 severity:>=high | stats count() by user'.
    query: String,
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Print the plan, the SQL and its parameters instead of running it.
    #[arg(long)]
    explain: bool,
    /// Output: a table, or one JSON object per row.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Widest a table cell may be before it is cut.
    #[arg(long, default_value_t = 48)]
    max_width: usize,
    /// Without a BM25 index, free text is an ILIKE scan.
    #[command(flatten)]
    dirs: DataDirs,
    #[command(flatten)]
    limits: QueryConfig,
    #[command(flatten)]
    model: ModelConfig,
    #[command(flatten)]
    graph: GraphConfig,
}

/// Brings the graph tables up to date with the events (what a running
/// server's graph worker does continuously) and loads the in-memory graph.
async fn load_graph(
    pool: &vigil_store::Pool,
    cfg: &GraphConfig,
) -> anyhow::Result<std::sync::Arc<vigil_graph::live::LiveGraph>> {
    vigil_graph::sync::GraphSync::new().sync_all(pool).await.context("bringing the connection graph up to date")?;
    let graph = vigil_graph::live::LiveGraph::new(cfg.window());
    graph.refresh(pool).await.context("loading the connection graph")?;
    Ok(std::sync::Arc::new(graph))
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // A one-off query has no page to count beyond.
    let opts = SearchOptions { count_cap: 0, ..args.limits.search_options() };
    let compiled = match compile(&args.query, &opts.srql, chrono::Utc::now()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", e.render(&args.query));
            anyhow::bail!("the query has an error");
        }
    };
    let pool = match &args.database_url {
        Some(url) => Some(connect(url, 2)?),
        None => None,
    };
    // The model loads only for queries that need it (about a second).
    let embedder = if matches!(compiled.post, PostStage::Similar(_) | PostStage::Cluster(_)) {
        let e = vigil_embed::Embedder::load(&args.model.embed_config())
            .context("SIMILAR_TO and cluster need the embedding model")?;
        Some(std::sync::Arc::new(vigil_embed::CachedEmbedder::new(e, 16)))
    } else {
        None
    };
    let dir = args.dirs.bm25();
    let searcher = pool.map(|p| {
        let s = Searcher::new(p, embedder, opts);
        if !dir.join("meta.json").exists() {
            return s;
        }
        match vigil_fulltext::TextIndex::open(&dir) {
            Ok(index) => s.with_text_index(std::sync::Arc::new(index)),
            Err(e) => {
                eprintln!("note: free text scans instead of using the BM25 index ({e})");
                s
            }
        }
    });
    if args.explain {
        println!("entity: {}", compiled.entity);
        println!("plan:");
        for step in &compiled.plan {
            println!("  - {step}");
        }
        if let (Some(s), PostStage::Similar(_)) = (&searcher, &compiled.post) {
            let (_, reason) = s.choose_path(&compiled, &Default::default()).await?;
            println!("  - {reason}");
        }
        for w in &compiled.warnings {
            println!("warning: {w}");
        }
        println!("sql:\n  {}", compiled.sql);
        println!("params:");
        for (i, p) in compiled.params.iter().enumerate() {
            println!("  ${} = {}", i + 1, p.render());
        }
        return Ok(());
    }
    let mut searcher =
        searcher.context("set DATABASE_URL (or --database-url) to run a query; --explain works without")?;
    if matches!(compiled.post, PostStage::BlastRadius(_)) {
        let graph = load_graph(searcher.pool(), &args.graph).await?;
        searcher = searcher.with_graph(graph);
    }
    let result = searcher.search(&args.query, chrono::Utc::now()).await?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    match args.format {
        Format::Json => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for row in &result.rows {
                let obj: serde_json::Map<String, serde_json::Value> =
                    result.columns.iter().map(|c| c.name.clone()).zip(row.iter().cloned()).collect();
                if writeln!(out, "{}", serde_json::Value::Object(obj)).is_err() {
                    break;
                }
            }
        }
        Format::Table => print_table(&result.columns, &result.rows, args.max_width),
    }
    if std::io::stderr().is_terminal() || args.format == Format::Table {
        eprintln!("{} row(s) in {} ms", result.rows.len(), result.took_ms);
    }
    Ok(())
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        matches!((self, other), (Format::Table, Format::Table) | (Format::Json, Format::Json))
    }
}

fn cell(v: &serde_json::Value, max: usize) -> String {
    let s = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let s = s.replace(['\n', '\t'], " ");
    if s.chars().count() > max {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// Writes the table; a closed pipe (`| head`) just ends the output.
fn print_table(columns: &[vigil_srql::Column], rows: &[Vec<serde_json::Value>], max: usize) {
    let _ = write_table(&mut std::io::stdout().lock(), columns, rows, max);
}

fn write_table(
    out: &mut impl std::io::Write,
    columns: &[vigil_srql::Column],
    rows: &[Vec<serde_json::Value>],
    max: usize,
) -> std::io::Result<()> {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|v| cell(v, max)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].chars().count()).chain([c.name.chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |vals: Vec<String>| {
        vals.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join(" | ").trim_end().to_string()
    };
    writeln!(out, "{}", line(columns.iter().map(|c| c.name.clone()).collect()))?;
    writeln!(out, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"))?;
    for r in cells {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}
