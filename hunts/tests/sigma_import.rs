//! Sigma rules stored as hunts against real PostgreSQL: a dry run stores
//! nothing, a rule is created then replaced by its Sigma id (keeping the
//! hunt's id), a hunt of the same name is replaced, a name taken by another
//! hunt is refused as a conflict, and conversion failures are reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeDelta;
use serde_json::json;
use vigil_hunts::sigma_import::{store, Outcome};
use vigil_hunts::{hunt, HuntSpec};
use vigil_sigma::{convert_all, Mapping, Options, Report, Source};
use vigil_store::testing::migrated;
use vigil_store::{Pool, TimescaleChoice};

const RULE: &str = r#"
title: Whoami Execution
id: e2c3a1b0-1111-4222-8333-944455556666
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\whoami.exe'
    condition: selection
level: high
"#;

const BAD: &str = r#"
title: Expanded placeholder
id: 0000aaaa-1111-4222-8333-944455556666
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine|expand: '%admin_users%'}
    condition: selection
level: medium
"#;

fn convert(rules: &[&str]) -> Report {
    let origins: Vec<String> = (0..rules.len()).map(|i| format!("rules[{i}]")).collect();
    let sources: Vec<Source<'_>> = rules.iter().zip(&origins).map(|(y, o)| Source { origin: o, yaml: y }).collect();
    let opts = Options { schedule: "0 0 1 1 *".into(), enabled: true };
    convert_all(&sources, &Mapping::builtin(), &opts)
}

async fn import(pool: &Pool, rules: &[&str], dry_run: bool) -> Outcome {
    store(pool, convert(rules), Some("tester"), TimeDelta::seconds(10), dry_run).await.unwrap()
}

async fn hand_made(pool: &Pool, name: &str, meta: serde_json::Value) -> uuid::Uuid {
    let spec: HuntSpec = serde_json::from_value(json!({"name": name, "query": "kind:process", "schedule": "0 0 1 1 *",
                                                      "meta": meta}))
    .unwrap();
    let v = spec.validate(10_000, &vigil_hunts::DeliveryConfig::default()).unwrap();
    hunt::create(pool, &v, None, chrono::Utc::now(), TimeDelta::seconds(10)).await.unwrap().id
}

#[tokio::test]
async fn stores_creates_replaces_and_refuses() {
    let (_db, pool) = migrated(TimescaleChoice::Auto).await;

    // A dry run validates and stores nothing.
    let out = import(&pool, &[RULE, BAD], true).await;
    assert_eq!((out.converted.len(), out.converted[0].action, out.converted[0].id), (1, "validated", None));
    assert_eq!(serde_json::to_value(out.summary()).unwrap()["by_reason"], json!({"unsupported_modifier": 1}));
    assert!(hunt::list(&pool).await.unwrap().is_empty());

    let out = import(&pool, &[RULE, BAD], false).await;
    let created = &out.converted[0];
    assert_eq!((created.action, created.name.as_str()), ("created", "Whoami Execution (e2c3a1b0)"));
    let id = created.id.unwrap();
    let f = &out.failed[0];
    assert_eq!((f.rule.as_str(), f.reason.as_str()), ("rules[1]", "unsupported_modifier"));
    assert_eq!(f.title.as_deref(), Some("Expanded placeholder"));
    assert_eq!(out.render().lines().next(), Some("converted 1, failed 1"));
    let h = hunt::get(&pool, id).await.unwrap();
    assert_eq!((h.severity, h.created_by.as_deref()), ("high", Some("tester")));
    assert_eq!(h.meta["sigma"]["id"], "e2c3a1b0-1111-4222-8333-944455556666");

    // The same Sigma id again: the hunt is replaced in place.
    let out = import(&pool, &[&RULE.replace("level: high", "level: critical")], false).await;
    assert_eq!((out.converted[0].action, out.converted[0].id), ("replaced", Some(id)));
    assert_eq!(hunt::get(&pool, id).await.unwrap().severity, "critical");
    assert_eq!(hunt::list(&pool).await.unwrap().len(), 1);

    // No hunt of its Sigma id, but one of its name: that one is replaced.
    let other = RULE.replace("e2c3a1b0", "22222222");
    let by_name = hand_made(&pool, "Whoami Execution (22222222)", json!({})).await;
    let out = import(&pool, &[&other], false).await;
    assert_eq!((out.converted[0].action, out.converted[0].id), ("replaced", Some(by_name)));

    // Its Sigma id's hunt would take a name another hunt has: refused.
    let third = RULE.replace("e2c3a1b0", "33333333");
    hand_made(&pool, "Renamed by hand", json!({"sigma": {"id": "33333333-1111-4222-8333-944455556666"}})).await;
    hand_made(&pool, "Whoami Execution (33333333)", json!({})).await;
    let out = import(&pool, &[&third], false).await;
    assert!(out.converted.is_empty(), "{:?}", out.converted);
    assert_eq!(out.failed[0].reason, "conflict");
    assert_eq!(serde_json::to_value(out.summary()).unwrap()["by_reason"], json!({"conflict": 1}));
}

#[test]
fn converted_only_reports_the_conversion() {
    let out = Outcome::converted_only(&convert(&[RULE, BAD]));
    assert_eq!((out.converted.len(), out.converted[0].action), (1, "validated"));
    assert_eq!(out.failed[0].reason, "unsupported_modifier");
    assert_eq!(serde_json::to_value(out.summary()).unwrap()["converted"], 1);
}
