//! Every SRQL example in README.md and docs/*.md, run against the demo
//! dataset through the executor the API uses, so the docs cannot drift from
//! the code.
//!
//! Examples are taken from the markdown mechanically (see [`extract`]):
//!
//! - each line of a ` ```srql ` block is one query that must run;
//! - a ` ```srql-error ` block holds transcripts (`$ vigil query '…'` then the
//!   error as the CLI prints it): the query must fail with exactly that error;
//! - in any other fenced block, the single-quoted query of a `vigil query`
//!   line, a `"query": "…"` JSON string and a `?query=` URL parameter are
//!   queries that must run;
//! - a fenced block must name its language, so a new example cannot hide in
//!   an unmarked block.
//!
//! What the text says an example finds is in `doc_examples.claims`
//! (example → checks), asserted here on the same results; a claim marked
//! `pending:` does not hold today: it is reported as a known failure, and
//! fails the test once it holds (remove the mark then).
//!
//! The database is loaded as `vigil up` loads it (`vigil_ingest::demo::build`
//! with its default 50,000 generated events, the real datasets from
//! `shared/data` and the scripted intrusion, then the `EventWriter`), and the
//! work the server's background workers derive from it is done before the
//! first query: vectors for `SIMILAR_TO` and `| cluster`, the BM25 index, the
//! graph tables and the in-memory graph. `VIGIL_DOC_EXAMPLES_SHOW=1` prints
//! what every example returns (with `--nocapture`), to write a claim from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use vigil_embed::{CachedEmbedder, EmbedConfig, Embedder, Selection};
use vigil_search::{SearchError, SearchOptions, SearchResult, Searcher, Vectorizer};
use vigil_store::testing::migrated;
use vigil_store::{EventWriter, TimescaleChoice};

/// Generated events in the demo: `vigil up`'s default (`--demo-events`).
/// The real datasets, the inventory and the scripted intrusion come with it.
const DEMO_EVENTS: u64 = 50_000;

/// The markdown files whose examples are run, relative to the workspace.
fn doc_files() -> Vec<PathBuf> {
    let root = workspace();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One example: where it is and what it must do.
#[derive(Debug, Clone)]
struct Example {
    /// `docs/srql.md:123`.
    at: String,
    query: String,
    /// `Some(lines)`: the query must fail and render exactly these lines.
    error: Option<Vec<String>>,
}

/// The examples of one markdown file, or what is wrong with its blocks.
fn extract(file: &str, text: &str) -> (Vec<Example>, Vec<String>) {
    let mut examples = Vec::new();
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let info = info.trim().to_string();
        let open = i + 1;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            body.push((i + 1, lines[i]));
            i += 1;
        }
        if i == lines.len() {
            problems.push(format!("{file}:{open}: this fenced block is never closed"));
        }
        i += 1;
        match info.as_str() {
            "" => problems.push(format!(
                "{file}:{open}: a fenced block without a language: mark it ```srql when it holds SRQL \
                 examples (one query a line, run by this test), else ```text or its language"
            )),
            "srql" => {
                for (n, line) in body {
                    if !line.trim().is_empty() {
                        examples.push(Example {
                            at: format!("{file}:{n}"),
                            query: line.trim().to_string(),
                            error: None,
                        });
                    }
                }
            }
            "srql-error" => {
                let (found, bad) = transcripts(file, &body);
                examples.extend(found);
                problems.extend(bad);
            }
            _ => {
                for (n, line) in body {
                    let at = format!("{file}:{n}");
                    if line.contains("vigil query") {
                        match cli_query(line) {
                            Some(q) => examples.push(Example { at: at.clone(), query: q, error: None }),
                            None => problems.push(format!("{at}: `vigil query` without a '…' query: {line}")),
                        }
                    }
                    for q in json_queries(line) {
                        match q {
                            Ok(q) => examples.push(Example { at: at.clone(), query: q, error: None }),
                            Err(e) => {
                                problems.push(format!("{at}: a \"query\" that is not a JSON string ({e}): {line}"))
                            }
                        }
                    }
                    for q in url_queries(line) {
                        examples.push(Example { at: at.clone(), query: q, error: None });
                    }
                }
            }
        }
    }
    (examples, problems)
}

/// `$ vigil query '…'` lines, each followed by the error lines it prints (up
/// to the next `$` or blank line; the CLI's closing `error: the query has an
/// error` is optional).
fn transcripts(file: &str, body: &[(usize, &str)]) -> (Vec<Example>, Vec<String>) {
    let (mut examples, mut problems) = (Vec::new(), Vec::new());
    let mut current: Option<Example> = None;
    for &(n, line) in body {
        if let Some(cmd) = line.strip_prefix("$ ") {
            examples.extend(current.take());
            match cli_query(cmd) {
                Some(q) => current = Some(Example { at: format!("{file}:{n}"), query: q, error: Some(Vec::new()) }),
                None => problems.push(format!("{file}:{n}: a transcript line that is not `$ vigil query '…'`")),
            }
        } else if line.trim().is_empty() {
            examples.extend(current.take());
        } else if let Some(Example { error: Some(lines), .. }) = current.as_mut() {
            lines.push(line.trim_end().to_string());
        } else {
            problems.push(format!("{file}:{n}: output without a `$ vigil query '…'` line before it"));
        }
    }
    examples.extend(current);
    for e in &mut examples {
        if let Some(lines) = e.error.as_mut() {
            if lines.last().is_some_and(|l| l == "error: the query has an error") {
                lines.pop();
            }
            if lines.is_empty() {
                problems.push(format!("{}: a transcript without the error it prints", e.at));
            }
        }
    }
    (examples, problems)
}

/// The single-quoted query of a `vigil query [options] '…'` command.
fn cli_query(line: &str) -> Option<String> {
    let rest = &line[line.find("vigil query")? + "vigil query".len()..];
    let start = rest.find('\'')?;
    let len = rest[start + 1..].find('\'')?;
    Some(rest[start + 1..start + 1 + len].to_string())
}

/// The values of `"query": "…"` (JSON strings, unescaped).
fn json_queries(line: &str) -> Vec<Result<String, String>> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("\"query\"") {
        rest = rest[i + "\"query\"".len()..].trim_start();
        let Some(after) = rest.strip_prefix(':') else { continue };
        let after = after.trim_start();
        if !after.starts_with('"') {
            out.push(Err("no string after the colon".to_string()));
            rest = after;
            continue;
        }
        // The closing quote: the first one not escaped.
        let bytes = after.as_bytes();
        let mut j = 1;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        let literal = &after[..(j + 1).min(after.len())];
        out.push(serde_json::from_str::<String>(literal).map_err(|e| e.to_string()));
        rest = &after[(j + 1).min(after.len())..];
    }
    out
}

/// The values of `?query=` / `&query=` URL parameters, percent-decoded.
fn url_queries(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["?query=", "&query="] {
        let mut rest = line;
        while let Some(i) = rest.find(key) {
            rest = &rest[i + key.len()..];
            let end = rest.find(|c: char| c.is_whitespace() || "\"'&#".contains(c)).unwrap_or(rest.len());
            out.push(percent_encoding::percent_decode_str(&rest[..end]).decode_utf8_lossy().into_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// One check of a claim (`doc_examples.claims`).
#[derive(Debug, Clone)]
enum Check {
    /// `rows >= N`, `rows <= N`, `rows = N`.
    Rows(&'static str, usize),
    /// `column NAME`: the result has this column.
    Column(String),
    /// `some|every|first COL =|~|!~ VALUE`.
    Cell { quantifier: String, column: String, op: String, value: String },
    /// `plan ~ TEXT`: a step of the plan contains it.
    Plan(String),
    /// `order COL desc|asc`: the rows are ordered by this numeric column.
    Order { column: String, desc: bool },
}

/// A claim: the checks the docs' text makes about one example.
#[derive(Debug)]
struct Claim {
    /// `doc_examples.claims:12`.
    at: String,
    query: String,
    checks: Vec<(String, Check)>,
    /// `pending: …`: why it does not hold today.
    pending: Option<String>,
}

fn read_claims(path: &Path) -> Result<Vec<Claim>, Vec<String>> {
    let text = std::fs::read_to_string(path).expect("the claims file");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut claims = Vec::new();
    let mut problems = Vec::new();
    for case in vigil_srql::casefile::read(&text) {
        let at = format!("api/tests/{name}:{}", case.line);
        let mut claim = Claim { at: at.clone(), query: case.query.clone(), checks: Vec::new(), pending: None };
        for line in &case.expect {
            if let Some(why) = line.strip_prefix("pending:") {
                claim.pending = Some(why.trim().to_string());
                continue;
            }
            match parse_check(line) {
                Some(c) => claim.checks.push((line.clone(), c)),
                None => problems.push(format!("{at}: not a check: {line:?}")),
            }
        }
        if claim.checks.is_empty() {
            problems.push(format!("{at}: a claim without checks"));
        }
        claims.push(claim);
    }
    if problems.is_empty() {
        Ok(claims)
    } else {
        Err(problems)
    }
}

fn parse_check(line: &str) -> Option<Check> {
    let mut words = line.splitn(2, ' ');
    let head = words.next()?;
    let rest = words.next().unwrap_or("").trim();
    match head {
        "rows" => {
            let (op, n) = rest.split_once(' ')?;
            let op = ["=", ">=", "<="].into_iter().find(|o| *o == op)?;
            Some(Check::Rows(op, n.trim().parse().ok()?))
        }
        "column" if !rest.is_empty() => Some(Check::Column(rest.to_string())),
        "plan" => Some(Check::Plan(rest.strip_prefix("~ ")?.to_string())),
        "order" => {
            let (column, dir) = rest.split_once(' ')?;
            let desc = match dir.trim() {
                "desc" => true,
                "asc" => false,
                _ => return None,
            };
            Some(Check::Order { column: column.to_string(), desc })
        }
        "some" | "every" | "first" => {
            let mut parts = rest.splitn(3, ' ');
            let (column, op, value) = (parts.next()?, parts.next()?, parts.next()?);
            if !["=", "~", "!~"].contains(&op) {
                return None;
            }
            Some(Check::Cell { quantifier: head.into(), column: column.into(), op: op.into(), value: value.into() })
        }
        _ => None,
    }
}

fn names(r: &SearchResult) -> String {
    r.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Ok` when the check holds on `r`, else what was found instead.
fn holds(check: &Check, r: &SearchResult) -> Result<(), String> {
    let col = |name: &str| {
        r.columns.iter().position(|c| c.name == name).ok_or_else(|| format!("no column {name} (columns: {})", names(r)))
    };
    match check {
        Check::Rows(op, n) => {
            let got = r.rows.len();
            let ok = match *op {
                "=" => got == *n,
                ">=" => got >= *n,
                _ => got <= *n,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("{got} rows"))
            }
        }
        Check::Column(name) => col(name).map(|_| ()),
        Check::Plan(text) => {
            if r.plan.iter().any(|p| p.contains(text.as_str())) {
                Ok(())
            } else {
                Err(format!("plan: {:?}", r.plan))
            }
        }
        Check::Order { column, desc } => {
            let i = col(column)?;
            let values: Vec<Option<f64>> = r.rows.iter().map(|row| row[i].as_f64()).collect();
            let ordered = values.windows(2).all(|w| match (w[0], w[1]) {
                (Some(a), Some(b)) => {
                    if *desc {
                        a >= b
                    } else {
                        a <= b
                    }
                }
                _ => false,
            });
            if ordered && !values.is_empty() {
                Ok(())
            } else {
                Err(format!("{column} of the {} rows: {values:?}", values.len()))
            }
        }
        Check::Cell { quantifier, column, op, value } => {
            let i = col(column)?;
            let values: Vec<String> = r.rows.iter().map(|row| cell(&row[i])).collect();
            let matches = |v: &String| match op.as_str() {
                "=" => v == value,
                "~" => v.contains(value.as_str()),
                _ => !v.contains(value.as_str()),
            };
            let ok = match quantifier.as_str() {
                "some" => values.iter().any(matches),
                "every" => !values.is_empty() && values.iter().all(matches),
                _ => values.first().is_some_and(matches),
            };
            if ok {
                Ok(())
            } else {
                let shown: Vec<&String> = values.iter().take(10).collect();
                Err(format!("{column} of the {} rows: {shown:?}", values.len()))
            }
        }
    }
}

/// The demo database with everything derived from it, and the executor over it.
struct Demo {
    _db: vigil_store::testing::TempDatabase,
    searcher: Searcher,
    index_dir: PathBuf,
    summary: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.index_dir);
    }
}

async fn demo() -> Demo {
    let shared = vigil_ingest::demo::find_shared_data(None)
        .expect("shared/data (the demo's real datasets; set VIGIL_DEMO_DATA to its directory)");
    let (db, pool) = migrated(TimescaleChoice::Auto).await;

    // As `vigil up` loads it (api/src/cmd/up.rs, load_demo).
    let (events, s) = vigil_ingest::demo::build(Some(&shared), Utc::now(), DEMO_EVENTS);
    assert!(s.story > 0 && s.datasets.len() == vigil_ingest::demo::DATASETS.len(), "{s:?}");
    let writer = EventWriter::new(pool.clone());
    for batch in events.chunks(10_000) {
        writer.write(batch).await.unwrap();
    }
    let summary = format!(
        "{} events: {} generated, {} inventory, {} intrusion, {}",
        events.len(),
        s.generated,
        s.packages + s.daemons + s.vulns,
        s.story,
        s.datasets.iter().map(|(n, c)| format!("{c} from {n}")).collect::<Vec<_>>().join(", ")
    );

    // What the server's workers derive (api/src/derived.rs), caught up once.
    let model = Embedder::load(&EmbedConfig::default()).expect("the embedding model (run scripts/setup.sh)");
    let embedder = Arc::new(CachedEmbedder::new(model, 100_000));
    let index_dir = std::env::temp_dir().join(format!("vigil-doc-examples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&index_dir);
    let index = Arc::new(vigil_fulltext::TextIndex::open(&index_dir).unwrap().with_settle(Duration::ZERO));
    let vectors = {
        let (pool, embedder) = (pool.clone(), embedder.clone());
        tokio::spawn(async move {
            Vectorizer::new(embedder, Selection::default()).with_settle(Duration::ZERO).sync(&pool).await
        })
    };
    let text = {
        let (pool, index) = (pool.clone(), index.clone());
        tokio::spawn(async move { vigil_fulltext::sync(&index, &pool, 10_000).await })
    };
    vigil_graph::sync::GraphSync::new().with_settle(Duration::ZERO).sync_all(&pool).await.unwrap();
    let graph = vigil_graph::live::LiveGraph::new(vigil_api::config::GraphConfig::default().window());
    graph.refresh(&pool).await.unwrap();
    vectors.await.unwrap().unwrap();
    text.await.unwrap().unwrap();
    // Table statistics, as autovacuum gathers them within a minute of the
    // load: `SIMILAR_TO` chooses its path from the planner's estimate.
    pool.get().await.unwrap().batch_execute("ANALYZE").await.unwrap();

    // The API's executor (api/src/server.rs, search_http.rs).
    let opts = SearchOptions { count_cap: 10_000, ..SearchOptions::default() };
    let searcher = Searcher::new(pool, Some(embedder), opts).with_text_index(index).with_graph(Arc::new(graph));
    Demo { _db: db, searcher, index_dir, summary }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_doc_example_runs_on_the_demo_and_does_what_the_text_says() {
    let started = Instant::now();
    let root = workspace();
    let mut examples = Vec::new();
    let mut failures = Vec::new();
    for path in doc_files() {
        let name = path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().to_string();
        let (found, problems) = extract(&name, &std::fs::read_to_string(&path).unwrap());
        examples.extend(found);
        failures.extend(problems);
    }
    let claims_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doc_examples.claims");
    let claims = read_claims(&claims_path).unwrap_or_else(|problems| {
        failures.extend(problems);
        Vec::new()
    });
    assert!(examples.len() > 100, "the extraction found only {} examples: {examples:?}", examples.len());

    let demo = demo().await;
    let loaded = started.elapsed();

    // Each distinct query once (several docs show the same one).
    let mut results: HashMap<String, Result<SearchResult, SearchError>> = HashMap::new();
    for e in &examples {
        if !results.contains_key(&e.query) {
            let r = demo.searcher.search(&e.query, Utc::now()).await;
            results.insert(e.query.clone(), r);
        }
    }

    // VIGIL_DOC_EXAMPLES_SHOW=1: what each example finds, to write a claim from.
    if std::env::var_os("VIGIL_DOC_EXAMPLES_SHOW").is_some() {
        for (q, r) in &results {
            match r {
                Ok(r) => {
                    println!("{q}\n  {} rows; columns: {}\n  plan: {:?}", r.rows.len(), names(r), r.plan);
                    for row in r.rows.iter().take(5) {
                        println!("  | {}", row.iter().map(cell).collect::<Vec<_>>().join(" | "));
                    }
                }
                Err(e) => println!("{q}\n  error: {e}"),
            }
        }
    }

    let (mut runs, mut errors) = (0, 0);
    for e in &examples {
        let r = &results[&e.query];
        match (&e.error, r) {
            (None, Ok(_)) => runs += 1,
            (None, Err(err)) => failures.push(format!("{}: {}\n  does not run: {err}", e.at, e.query)),
            (Some(want), Err(SearchError::Srql(err))) => {
                let got: Vec<String> = err.render(&e.query).lines().map(|l| l.trim_end().to_string()).collect();
                if &got == want {
                    errors += 1;
                } else {
                    failures.push(format!(
                        "{}: {}\n  the docs show:\n    {}\n  the query gives:\n    {}",
                        e.at,
                        e.query,
                        want.join("\n    "),
                        got.join("\n    ")
                    ));
                }
            }
            (Some(_), Err(err)) => {
                failures.push(format!("{}: {}\n  fails, but not with an SRQL error: {err}", e.at, e.query))
            }
            (Some(_), Ok(r)) => failures.push(format!(
                "{}: {}\n  the docs show an error, but it runs ({} rows)",
                e.at,
                e.query,
                r.rows.len()
            )),
        }
    }

    let mut asserted = Vec::new();
    let mut known = Vec::new();
    for c in &claims {
        let shown: Vec<&str> = examples.iter().filter(|e| e.query == c.query).map(|e| e.at.as_str()).collect();
        let Some(Ok(r)) = results.get(&c.query) else {
            if shown.is_empty() {
                failures.push(format!("{}: no doc shows the example {:?} any more; update the claim", c.at, c.query));
            }
            continue;
        };
        let failed: Vec<String> = c
            .checks
            .iter()
            .filter_map(|(text, check)| holds(check, r).err().map(|got| format!("`{text}`: {got}")))
            .collect();
        let place = format!("{} ({})", c.at, shown.join(", "));
        match (&c.pending, failed.is_empty()) {
            (None, true) => asserted.push(format!("{place}: {}", c.query)),
            (None, false) => failures.push(format!(
                "{place}: {}\n  the claim does not hold:\n    {}",
                c.query,
                failed.join("\n    ")
            )),
            (Some(why), false) => {
                known.push(format!("{place}: {}\n  known failure ({why}):\n    {}", c.query, failed.join("\n    ")))
            }
            (Some(why), true) => failures.push(format!(
                "{place}: {}\n  marked pending ({why}) but it holds now: remove the `pending:` line",
                c.query
            )),
        }
    }

    let files: BTreeMap<&str, usize> = examples.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.at.split(':').next().unwrap_or("")).or_default() += 1;
        m
    });
    println!("demo: {}", demo.summary);
    println!(
        "{} examples ({} distinct queries) from {:?}: {runs} ran, {errors} failed as documented; \
         {} claims hold, {} pending; loaded in {:.1}s, all in {:.1}s",
        examples.len(),
        results.len(),
        files,
        asserted.len(),
        known.len(),
        loaded.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for a in &asserted {
        println!("  holds: {a}");
    }
    for k in &known {
        println!("  {k}");
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

/// The conventions, on a page written for the purpose: what is an example,
/// what is an expected error, and what is refused.
#[test]
fn examples_are_found_by_the_conventions_and_unmarked_blocks_are_refused() {
    let page = r#"# A page

```srql
host:web-01

| stats count() by host
```

```srql-error
$ vigil query --explain 'hots:x'
error: unknown field `hots` in `in:events` (at 0..4)
  hots:x
  ^^^^
error: the query has an error
```

```sh
vigil query --format json 'kind:auth' # a comment
curl -d '{"query": "user:\"a b\"", "limit": 5}' "$V/api/v1/tail?query=kind:auth%20status:failure"
vigil query --explain
```

```json
{"query": "in:hosts"}
```

```
in:alerts
```
"#;
    let (found, problems) = extract("page.md", page);
    let got: Vec<(&str, &str, bool)> =
        found.iter().map(|e| (e.at.as_str(), e.query.as_str(), e.error.is_some())).collect();
    assert_eq!(
        got,
        [
            ("page.md:4", "host:web-01", false),
            ("page.md:6", "| stats count() by host", false),
            ("page.md:10", "hots:x", true),
            ("page.md:18", "kind:auth", false),
            ("page.md:19", "user:\"a b\"", false),
            ("page.md:19", "kind:auth status:failure", false),
            ("page.md:24", "in:hosts", false),
        ]
    );
    assert_eq!(
        found[2].error.as_deref().unwrap(),
        ["error: unknown field `hots` in `in:events` (at 0..4)", "  hots:x", "  ^^^^"],
        "the CLI's closing line is not part of the error"
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("page.md:20: `vigil query` without"), "{problems:?}");
    assert!(problems[1].starts_with("page.md:27: a fenced block without a language"), "{problems:?}");
}
