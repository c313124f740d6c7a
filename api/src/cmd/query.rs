use std::io::IsTerminal;

use anyhow::Context;
use vigil_srql::{compile, Config};
use vigil_store::connect;
use vigil_store::query::{run as run_query, QueryOptions};

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
    /// Seconds before the database cancels the query.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let compiled = match compile(&args.query, &Config::default(), chrono::Utc::now()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}", e.render(&args.query));
            anyhow::bail!("the query has an error");
        }
    };
    if args.explain {
        println!("entity: {}", compiled.entity);
        println!("plan:");
        for step in &compiled.plan {
            println!("  - {step}");
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
    let url =
        args.database_url.context("set DATABASE_URL (or --database-url) to run a query; --explain works without")?;
    let pool = connect(&url, 1)?;
    let opts = QueryOptions { statement_timeout: std::time::Duration::from_secs(args.timeout) };
    let result = run_query(&pool, &compiled, &opts).await?;
    for w in &compiled.warnings {
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
