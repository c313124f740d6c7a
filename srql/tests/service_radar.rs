//! ServiceRadar's own SRQL query strings (`shared/data/serviceradar_srql`,
//! Apache-2.0, Copyright 2025 Carver Automation Corporation) parse unchanged,
//! and those on entities Vigil has compile or fail with a named reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use vigil_srql::{compile, parse, Config, ErrorKind};

fn corpus() -> Option<Vec<serde_json::Value>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/serviceradar_srql/queries.jsonl");
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect())
}

#[test]
fn service_radar_queries_parse_and_plan() {
    let Some(records) = corpus() else {
        eprintln!("skipped: shared/data/serviceradar_srql not found beside the repository");
        return;
    };
    let now = chrono::Utc::now();
    let mut parse_failures = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let q = r["query"].as_str().unwrap();
        let their_check = r["static_check"].as_str().unwrap_or("");
        match parse(q) {
            Ok(_) => {}
            // Queries ServiceRadar's own parser rejects may fail here too.
            Err(_) if their_check == "parse-error" => {}
            Err(e) => parse_failures.push(e.render(q)),
        }
        let key = match compile(q, &Config::default(), now) {
            Ok(_) => "compiles".to_string(),
            Err(e) => e.kind.code().to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    eprintln!("{} ServiceRadar queries: {outcomes:?}", records.len());
    assert!(
        parse_failures.is_empty(),
        "{} queries failed to parse:\n{}",
        parse_failures.len(),
        parse_failures.join("\n")
    );
}

#[test]
fn service_radar_queries_on_shared_entities_compile() {
    let Some(records) = corpus() else { return };
    let now = chrono::Utc::now();
    let mut failures = Vec::new();
    let mut compiled = 0;
    for r in &records {
        let q = r["query"].as_str().unwrap();
        let entity = r["entity"].as_str().unwrap_or("");
        let clean = r["static_check"].as_str() == Some("parses") && r["template"].as_bool() == Some(false);
        if !clean || !["events", "alerts"].contains(&entity) {
            continue;
        }
        match compile(q, &Config::default(), now) {
            Ok(_) => compiled += 1,
            // Fields ServiceRadar has and Vigil's events do not are a named error, never a crash.
            Err(e) if e.kind == ErrorKind::UnknownField => {}
            Err(e) => failures.push(e.render(q)),
        }
    }
    assert!(compiled > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
