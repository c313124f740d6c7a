//! The SRQL conformance suite: `tests/cases/*.case` hold query → SQL and
//! parameters, or query → error class, span and message. Run with
//! `SRQL_BLESS=1` to rewrite the expectations from the current compiler
//! (then review the diff), like DataFusion's `.slt --complete`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vigil_srql::casefile::{self, Case};
use vigil_srql::{compile, Config};

fn read_cases(path: &Path) -> Vec<Case> {
    casefile::read(&fs::read_to_string(path).unwrap())
}

/// Every case compiles as if it were this moment, so windows are stable.
pub fn fixed_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-15T12:00:00Z").unwrap().with_timezone(&Utc)
}

/// The planner's configuration for a case file: `*rollup*` files compile
/// with a metric rollup boundary at the start of "today" (2026-01-15).
pub fn config_for(file: &Path) -> Config {
    let mut cfg = Config::default();
    if file.file_name().is_some_and(|n| n.to_string_lossy().contains("rollup")) {
        cfg.rollup_before = Some(DateTime::parse_from_rfc3339("2026-01-15T00:00:00Z").unwrap().with_timezone(&Utc));
    }
    cfg
}

fn outcome(query: &str, cfg: &Config) -> Vec<String> {
    match compile(query, cfg, fixed_now()) {
        Ok(c) => {
            let params: Vec<String> = c.params.iter().map(|p| p.render()).collect();
            vec![format!("sql: {}", c.sql), format!("params: {}", params.join(" | "))]
        }
        Err(e) => vec![format!("error: {} {}..{}: {}", e.kind.code(), e.span.start, e.span.end, e.message)],
    }
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    files
}

#[test]
fn conformance_cases() {
    let bless = std::env::var_os("SRQL_BLESS").is_some();
    let mut total = 0;
    let mut failures = Vec::new();
    for file in case_files() {
        let cases = read_cases(&file);
        let mut results = Vec::new();
        for c in &cases {
            total += 1;
            let got = outcome(&c.query, &config_for(&file));
            if !bless {
                failures.extend(c.mismatch(&file, &got));
            }
            results.push((c, got));
        }
        if bless {
            fs::write(&file, casefile::write(results)).unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ (SRQL_BLESS=1 rewrites them):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("{total} SRQL conformance cases");
}

/// The count query (what a page's `total` comes from) names exactly the
/// parameters `$1..$count_params` it is given: one more (a JSON sort key only
/// the final order uses) or one skipped is an error in PostgreSQL.
#[test]
fn count_queries_take_exactly_their_parameters() {
    let mut counted = 0;
    for file in case_files() {
        for c in read_cases(&file) {
            let Ok(compiled) = compile(&c.query, &config_for(&file), fixed_now()) else { continue };
            let Some(sql) = &compiled.count_sql else { continue };
            let mut used: Vec<usize> = sql
                .split('$')
                .skip(1)
                .filter_map(|s| s[..s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len()].parse().ok())
                .collect();
            used.sort();
            used.dedup();
            let want: Vec<usize> = (1..=compiled.count_params).collect();
            assert_eq!(used, want, "{}:{}: {}\n  count SQL: {sql}", file.display(), c.line, c.query);
            assert!(compiled.count_params <= compiled.params.len(), "{}", c.query);
            counted += 1;
        }
    }
    assert!(counted > 100, "{counted} count queries");
}

/// Every literal in a compiled query is a parameter: the SQL text never holds
/// the values from the cases.
#[test]
fn case_values_never_reach_the_sql_text() {
    for file in case_files() {
        for c in read_cases(&file) {
            let Ok(compiled) = compile(&c.query, &Config::default(), fixed_now()) else { continue };
            let ast = vigil_srql::parse(&c.query).unwrap();
            for lit in literals(&ast) {
                // Short or keyword-like values can coincide with SQL words; check distinctive ones.
                if lit.len() >= 4 && lit.chars().any(|c| c.is_ascii_digit() || c == '-' || c == '/' || c == ' ') {
                    assert!(
                        !compiled.sql.contains(&lit),
                        "{}: value {lit:?} appears in SQL: {}",
                        c.query,
                        compiled.sql
                    );
                }
            }
        }
    }
}

fn literals(q: &vigil_srql::ast::Query) -> Vec<String> {
    use vigil_srql::ast::{Expr, Pipe, Value};
    fn expr(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::And(v, _) | Expr::Or(v, _) => v.iter().for_each(|e| expr(e, out)),
            Expr::Not(e, _) => expr(e, out),
            Expr::Text(t) => out.push(t.text.clone()),
            Expr::Term(t) if ["sort", "in", "stats"].contains(&t.field.name.as_str()) => {}
            Expr::Term(t) => match &t.value {
                Value::Literal(l) | Value::Compare(_, l, _) => out.push(l.text.clone()),
                Value::List(v, _) => out.extend(v.iter().map(|l| l.text.clone())),
                Value::Bracket(v, _) => out.extend(v.iter().flatten().map(|l| l.text.clone())),
                Value::Range(a, b, _) => out.extend([a.text.clone(), b.text.clone()]),
                Value::Regex(r, _) => out.push(r.clone()),
                // A field reference names a registry field, not a value.
                Value::Exists(_) | Value::Field(..) => {}
            },
            Expr::Stats(_) => {}
        }
    }
    let mut out = Vec::new();
    if let Some(f) = &q.filter {
        expr(f, &mut out);
    }
    for p in &q.pipes {
        match p {
            Pipe::Where(e, _) => expr(e, &mut out),
            Pipe::SimilarTo { text, .. } => out.push(text.text.clone()),
            _ => {}
        }
    }
    out
}
