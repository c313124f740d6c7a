//! Sigma import over HTTP and with `vigil sigma import`, against a real
//! server and PostgreSQL: conversion summary, failures by reason, hunts
//! created then replaced (by Sigma id), metadata on the hunt and on its
//! alerts, an evtx import matched by the imported rule, and roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};
use vigil_store::testing::TempDatabase;

const RULE: &str = r#"
title: Whoami Execution
id: e2c3a1b0-1111-4222-8333-944455556666
status: test
description: whoami run
author: Tester
references: [https://example.invalid/whoami]
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\whoami.exe'
    condition: selection
falsepositives: [Admins]
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

const EVENT: &str = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"TimeCreated":{"#attributes":{"SystemTime":"TIME"}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"ws-01"},"EventData":{"Image":"C:\\Windows\\System32\\WHOAMI.EXE","CommandLine":"whoami /all","ProcessId":4242,"User":"WS-01\\alice"}}}"##;

#[tokio::test]
async fn sigma_import_over_http_and_cli() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_HUNT_SETTLE_S", "0")]).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let viewer = common::token(&db.url, "viewer", "victor");
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/sigma/import");
    let body = json!({"rules": [RULE, BAD], "schedule": "0 0 1 1 *"});

    assert_eq!(http.post(&url).json(&body).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.post(&url).bearer_auth(&viewer).json(&body).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // Dry run: converted and validated, nothing stored.
    let mut dry = body.clone();
    dry["dry_run"] = json!(true);
    let r: Value = common::post_json(&url, &analyst, &dry).await;
    assert_eq!(r["summary"]["converted"], 1, "{r}");
    assert_eq!(r["converted"][0]["action"], "validated");
    assert!(common::get_json(&format!("{base}/api/v1/hunts"), &analyst).await["hunts"].as_array().unwrap().is_empty());

    let r = http.post(&url).bearer_auth(&analyst).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["summary"]["converted"], 1);
    assert_eq!(r["summary"]["failed"], 1);
    assert_eq!(r["summary"]["by_reason"], json!({"unsupported_modifier": 1}));
    let f = &r["failed"][0];
    assert_eq!((f["rule"].as_str(), f["reason"].as_str()), (Some("rules[1]"), Some("unsupported_modifier")));
    assert!(f["message"].as_str().unwrap().contains("expand"), "{f}");
    assert_eq!(f["title"], "Expanded placeholder");
    let c = &r["converted"][0];
    assert_eq!(
        (c["action"].as_str(), c["sigma_id"].as_str()),
        (Some("created"), Some("e2c3a1b0-1111-4222-8333-944455556666"))
    );
    let id = c["id"].as_str().unwrap().to_string();

    let h = common::get_json(&format!("{base}/api/v1/hunts/{id}"), &analyst).await;
    assert_eq!(h["name"], "Whoami Execution (e2c3a1b0)");
    assert_eq!(h["severity"], "high");
    assert_eq!(h["schedule"], "0 0 1 1 *");
    assert_eq!(h["meta"]["sigma"]["tags"], json!(["attack.discovery", "attack.t1033"]));
    assert_eq!(h["meta"]["sigma"]["author"], "Tester");
    assert_eq!(h["meta"]["sigma"]["references"], json!(["https://example.invalid/whoami"]));
    assert_eq!(h["meta"]["sigma"]["falsepositives"], json!(["Admins"]));

    // Importing again replaces the hunt with the same Sigma id.
    let again = json!({"rules": [RULE.replace("level: high", "level: critical")], "schedule": "0 0 1 1 *"});
    let r: Value = common::post_json(&url, &analyst, &again).await;
    assert_eq!(r["converted"][0]["action"], "replaced");
    assert_eq!(r["converted"][0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(common::get_json(&format!("{base}/api/v1/hunts/{id}"), &analyst).await["severity"], "critical");
    assert_eq!(common::get_json(&format!("{base}/api/v1/hunts"), &analyst).await["hunts"].as_array().unwrap().len(), 1);

    // A correlation rule and its base rule (by name): one hunt with a
    // `correlation` object, the base rule not a hunt of its own (generate: false).
    let corr = format!(
        "{}name: whoami_exec\n---\ntitle: Whoami burst\nid: cccccccc-1111-4222-8333-944455556666\ncorrelation:\n  type: event_count\n  rules: [whoami_exec]\n  group-by: [Computer]\n  timespan: 10m\n  condition: {{gte: 3}}\nlevel: medium\n",
        RULE.replace("e2c3a1b0-1111", "bbbbbbbb-1111")
    );
    let r: Value = common::post_json(&url, &analyst, &json!({"rules": [corr], "schedule": "0 0 1 1 *"})).await;
    assert_eq!(r["summary"]["converted"], 1, "{r}");
    assert_eq!(r["summary"]["referenced_only"], 1, "{r}");
    assert_eq!(r["converted"][0]["correlation"], true);
    let cid = r["converted"][0]["id"].as_str().unwrap();
    let ch = common::get_json(&format!("{base}/api/v1/hunts/{cid}"), &analyst).await;
    assert_eq!(ch["correlation"]["type"], "event_count", "{ch}");
    assert_eq!(ch["correlation"]["group_by"], json!(["host"]));
    http.delete(format!("{base}/api/v1/hunts/{cid}")).bearer_auth(&analyst).send().await.unwrap();

    // A Windows event imported from evtx JSON, and the hunt run on demand:
    // the alert carries the rule's metadata.
    let dir = std::env::temp_dir().join(format!("vigil-sigma-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let evtx = dir.join("whoami.json");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    std::fs::write(&evtx, EVENT.replace("TIME", &now)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["import", evtx.to_str().unwrap(), "--database-url", &db.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("evtx-json") && stdout.contains("1 stored"), "{stdout}");
    let run = http.post(format!("{base}/api/v1/hunts/{id}/run")).bearer_auth(&analyst).send().await.unwrap();
    assert_eq!(run.status(), StatusCode::OK);
    let run: Value = run.json().await.unwrap();
    assert_eq!(run["matches"], 1, "{run}");
    let alerts = common::get_json(&format!("{base}/api/v1/alerts?hunt={id}"), &analyst).await;
    let a = &alerts["alerts"][0];
    assert_eq!(a["meta"]["sigma"]["id"], "e2c3a1b0-1111-4222-8333-944455556666");
    assert_eq!(a["host"], "ws-01");

    // The CLI: a directory of rules, dry run without a database, then for real.
    let rules = dir.join("rules");
    std::fs::create_dir_all(rules.join("sub")).unwrap();
    std::fs::write(rules.join("a.yml"), RULE.replace("e2c3a1b0", "11111111")).unwrap();
    std::fs::write(rules.join("sub/b.yaml"), BAD).unwrap();
    std::fs::write(rules.join("notes.txt"), "not a rule").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["sigma", "import", rules.to_str().unwrap(), "--dry-run", "--show-queries"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("converted 1, failed 1"), "{stdout}");
    assert!(stdout.contains("unsupported_modifier: 1") && stdout.contains("sub/b.yaml"), "{stdout}");
    assert!(stdout.contains(r#"process_path:"%\\whoami.exe""#), "{stdout}");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "sigma",
            "import",
            rules.to_str().unwrap(),
            "--database-url",
            &db.url,
            "--disabled",
            "--schedule",
            "0 * * * *",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("created") && stdout.contains("converted 1, failed 1"), "{stdout}");
    let hunts = common::get_json(&format!("{base}/api/v1/hunts"), &analyst).await;
    let cli = hunts["hunts"].as_array().unwrap().iter().find(|h| h["name"] == "Whoami Execution (11111111)").unwrap();
    assert_eq!((cli["enabled"].as_bool(), cli["schedule"].as_str()), (Some(false), Some("0 * * * *")));
    let _ = std::fs::remove_dir_all(&dir);

    // SigmaHQ's Linux rules in one request (326 KiB, over the 256 KiB of
    // other JSON bodies), dry run: the same counts as the conversion test
    // (one rule runs as 3 hunts).
    let Some(readme) = vigil_store::testing::shared_data("sigma/README.md") else { return };
    let mut files = Vec::new();
    let mut stack = vec![readme.parent().unwrap().join("rules_linux")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml") {
                files.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    let r = http.post(&url).bearer_auth(&analyst).json(&json!({"rules": files, "dry_run": true})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = r.json().await.unwrap();
    assert_eq!(
        (r["summary"]["converted"].as_u64(), r["summary"]["failed"].as_u64()),
        (Some(204), Some(44)),
        "{}",
        r["summary"]
    );
    assert_eq!(r["summary"]["hunts"], 206);
}
