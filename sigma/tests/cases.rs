//! Table-driven conversion cases (`tests/cases/*.yml`): a detection and
//! logsource → the expected SRQL, or the expected failure reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_yaml::{Mapping as YMap, Value};
use vigil_sigma::{convert, Mapping};

fn run_file(name: &str) -> usize {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases").join(name);
    let cases: Vec<Value> = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mapping = Mapping::builtin();
    let mut failures = Vec::new();
    for case in &cases {
        let title = case["name"].as_str().unwrap();
        let mut rule = YMap::new();
        rule.insert("title".into(), title.into());
        rule.insert("id".into(), "0123456789abcdef".into());
        let ls = case
            .get("logsource")
            .cloned()
            .unwrap_or_else(|| serde_yaml::from_str("{product: windows, category: process_creation}").unwrap());
        rule.insert("logsource".into(), ls.clone());
        rule.insert("detection".into(), case["detection"].clone());
        let yaml = serde_yaml::to_string(&Value::Mapping(rule)).unwrap();
        match (convert(&yaml, &mapping), case.get("query"), case.get("error")) {
            (Ok(c), Some(want), _) => {
                let got = &c[0].query;
                // Strip the logsource's filter: `(<filter>) AND <detection>`.
                let filter = mapping
                    .resolve(&vigil_sigma::Logsource {
                        product: ls["product"].as_str().map(Into::into),
                        category: ls.get("category").and_then(Value::as_str).map(Into::into),
                        service: ls.get("service").and_then(Value::as_str).map(Into::into),
                    })
                    .unwrap()
                    .filter
                    .map(|f| format!("({f}) AND "))
                    .unwrap_or_default();
                let detection = got.strip_prefix(&filter).unwrap_or(got);
                if detection != want.as_str().unwrap() {
                    failures.push(format!("{title}:\n   got {detection}\n  want {}", want.as_str().unwrap()));
                }
            }
            (Err(f), _, Some(want)) => {
                if f.error.reason() != want.as_str().unwrap() {
                    failures.push(format!(
                        "{title}: failed with {} ({}), want {}",
                        f.error.reason(),
                        f.error,
                        want.as_str().unwrap()
                    ));
                }
                if let Some(d) = case.get("detail") {
                    if f.error.detail_key() != d.as_str().unwrap() {
                        failures.push(format!(
                            "{title}: detail {}, want {}",
                            f.error.detail_key(),
                            d.as_str().unwrap()
                        ));
                    }
                }
            }
            (Ok(c), _, Some(want)) => {
                failures.push(format!("{title}: converted to {}, want error {want:?}", c[0].query))
            }
            (Err(f), _, _) => failures.push(format!("{title}: failed: {}", f.error)),
            (Ok(_), None, None) => failures.push(format!("{title}: the case has no query or error")),
        }
    }
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    cases.len()
}

#[test]
fn modifiers() {
    assert!(run_file("modifiers.yml") >= 40);
}

#[test]
fn conditions() {
    assert!(run_file("conditions.yml") >= 10);
}
