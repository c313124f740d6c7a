//! The authorization matrix: every endpoint × every role × no token, with the
//! exact status each must get, against a real `vigil serve`.
//!
//! The endpoint list is checked against the served OpenAPI document, so a new
//! endpoint without a row here (or a row for an endpoint that is gone) fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vigil_store::testing::TempDatabase;

const ROLES: [&str; 4] = ["viewer", "analyst", "admin", "ingest"];

/// One endpoint: how to call it, who may, and what they get.
struct Row {
    method: &'static str,
    /// The OpenAPI path template.
    template: &'static str,
    /// The path called (templates filled in) with its query string.
    call: String,
    body: Option<Value>,
    /// Roles allowed, and the exact status they get for this request.
    allowed: &'static [&'static str],
    ok: u16,
    /// Status without a token (401 everywhere but /health).
    anonymous: u16,
}

fn row(
    method: &'static str,
    template: &'static str,
    call: &str,
    body: Option<Value>,
    allowed: &'static [&'static str],
    ok: u16,
) -> Row {
    Row { method, template, call: call.to_string(), body, allowed, ok, anonymous: 401 }
}

const READ: &[&str] = &["viewer", "analyst", "admin"];
const CHANGE: &[&str] = &["analyst", "admin"];
const ALL: &[&str] = &["viewer", "analyst", "admin", "ingest"];

fn matrix() -> Vec<Row> {
    let event = {
        let mut e = vigil_event::Event::new(vigil_event::Kind::Log, "authz", chrono::Utc::now(), b"authz-1");
        e.message = "authorization matrix".into();
        serde_json::to_string(&e).unwrap()
    };
    let nobody = uuid::Uuid::new_v4();
    let hunt = json!({"name": "authz {n}", "query": "kind:auth user:root", "schedule": "*/5 * * * *",
        "severity": "high", "group_by": ["host"], "suppression": "1h"});
    vec![
        Row { anonymous: 200, ..row("GET", "/health", "/health", None, ALL, 200) },
        // Ingest-only tokens have no use for the server's internals.
        row("GET", "/metrics", "/metrics", None, READ, 200),
        row("GET", "/api/openapi.json", "/api/openapi.json", None, READ, 200),
        row("GET", "/api/v1/session", "/api/v1/session", None, ALL, 200),
        row("POST", "/api/v1/ingest", "/api/v1/ingest", Some(Value::String(event)), &["ingest", "admin"], 200),
        row("POST", "/api/v1/search", "/api/v1/search", Some(json!({"query": "in:events"})), READ, 200),
        row("POST", "/api/v1/search/explain", "/api/v1/search/explain", Some(json!({"query": "in:events"})), READ, 200),
        row("GET", "/api/v1/fields", "/api/v1/fields", None, READ, 200),
        row("GET", "/api/v1/tail", "/api/v1/tail?query=host:authz", None, READ, 200),
        row("GET", "/api/v1/agents", "/api/v1/agents", None, READ, 200),
        row("GET", "/api/v1/vulnerabilities", "/api/v1/vulnerabilities", None, READ, 200),
        // No NATS in this server: an allowed caller learns that (503).
        row(
            "POST",
            "/api/v1/agents/{id}/commands",
            "/api/v1/agents/web-01/commands",
            Some(json!({"command": "snapshot_now"})),
            CHANGE,
            503,
        ),
        row("GET", "/api/v1/agents/{id}/commands", "/api/v1/agents/web-01/commands", None, READ, 200),
        // An unknown node: allowed callers get 404, the others never learn that.
        row("GET", "/api/v1/graph/blast-radius", "/api/v1/graph/blast-radius?from=10.99.0.1", None, READ, 404),
        row("GET", "/api/v1/graph/paths", "/api/v1/graph/paths?from=10.99.0.1&to=10.99.0.2", None, READ, 404),
        row("GET", "/api/v1/graph/neighbourhood", "/api/v1/graph/neighbourhood?node=10.99.0.1", None, READ, 404),
        row("GET", "/api/v1/hunts", "/api/v1/hunts", None, READ, 200),
        // `{n}` makes each call's hunt name unique.
        row("POST", "/api/v1/hunts", "/api/v1/hunts", Some(hunt.clone()), CHANGE, 201),
        row("GET", "/api/v1/hunts/{id}", &format!("/api/v1/hunts/{nobody}"), None, READ, 404),
        row("PUT", "/api/v1/hunts/{id}", &format!("/api/v1/hunts/{nobody}"), Some(hunt), CHANGE, 404),
        row("DELETE", "/api/v1/hunts/{id}", &format!("/api/v1/hunts/{nobody}"), None, CHANGE, 404),
        row("GET", "/api/v1/hunts/{id}/runs", &format!("/api/v1/hunts/{nobody}/runs"), None, READ, 404),
        row("POST", "/api/v1/hunts/{id}/run", &format!("/api/v1/hunts/{nobody}/run"), None, CHANGE, 404),
        row(
            "POST",
            "/api/v1/sigma/import",
            "/api/v1/sigma/import",
            Some(
                json!({"rules": ["title: authz\nlogsource: {product: linux, service: sshd}\ndetection:\n  k: [x]\n  condition: k\n"], "dry_run": true}),
            ),
            CHANGE,
            200,
        ),
        row("GET", "/api/v1/alerts", "/api/v1/alerts?status=open", None, READ, 200),
        row("GET", "/api/v1/alerts/{id}", &format!("/api/v1/alerts/{nobody}"), None, READ, 404),
        row(
            "POST",
            "/api/v1/alerts/{id}/acknowledge",
            &format!("/api/v1/alerts/{nobody}/acknowledge"),
            None,
            CHANGE,
            404,
        ),
        row(
            "POST",
            "/api/v1/alerts/{id}/assign",
            &format!("/api/v1/alerts/{nobody}/assign"),
            Some(json!({"assignee": "bob"})),
            CHANGE,
            404,
        ),
        row(
            "POST",
            "/api/v1/alerts/{id}/close",
            &format!("/api/v1/alerts/{nobody}/close"),
            Some(json!({"reason": "test"})),
            CHANGE,
            404,
        ),
    ]
}

async fn call(client: &reqwest::Client, base: &str, r: &Row, token: Option<&str>) -> u16 {
    let url = format!("{base}{}", r.call);
    let mut req = match r.method {
        "GET" => client.get(&url),
        "POST" => client.post(&url),
        "PUT" => client.put(&url),
        "PATCH" => client.patch(&url),
        "DELETE" => client.delete(&url),
        m => panic!("method {m}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string();
    req = match &r.body {
        Some(Value::String(raw)) => req.body(raw.clone()),
        Some(v) => req.json(&serde_json::from_str::<Value>(&v.to_string().replace("{n}", &n)).unwrap()),
        None => req,
    };
    // Status only: a live tail's stream is dropped unread.
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_endpoint_by_every_role_and_without_a_token() {
    let db = TempDatabase::create().await.unwrap();
    // Every row tries an unknown token: no limit on failed token checks either.
    let limits = [("VIGIL_RATE_LIMIT", "0"), ("VIGIL_AUTH_FAILURE_LIMIT", "0")];
    let (_server, base) = common::serve(&db.url, &limits).await;
    let tokens: Vec<(&str, String)> =
        ROLES.iter().map(|r| (*r, common::token(&db.url, r, &format!("authz-{r}")))).collect();
    let client = reqwest::Client::new();
    let rows = matrix();

    // The matrix covers exactly the documented endpoints.
    let doc: Value = common::get_json(&format!("{base}/api/openapi.json"), &tokens[0].1).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), p.clone())))
        .collect();
    let tested: BTreeSet<(String, String)> =
        rows.iter().map(|r| (r.method.to_string(), r.template.to_string())).collect();
    assert_eq!(tested, documented, "the matrix and the OpenAPI document list different endpoints");

    let mut wrong = Vec::new();
    for r in &rows {
        let got = call(&client, &base, r, None).await;
        if got != r.anonymous {
            wrong.push(format!("{} {} without a token: {got}, expected {}", r.method, r.call, r.anonymous));
        }
        for (role, token) in &tokens {
            let want = if r.allowed.contains(role) { r.ok } else { 403 };
            let got = call(&client, &base, r, Some(token)).await;
            if got != want {
                wrong.push(format!("{} {} as {role}: {got}, expected {want}", r.method, r.call));
            }
        }
        let got = call(&client, &base, r, Some("vgl_not-a-real-token")).await;
        if got != r.anonymous {
            wrong.push(format!("{} {} with an unknown token: {got}, expected {}", r.method, r.call, r.anonymous));
        }
    }
    assert!(wrong.is_empty(), "{} wrong statuses:\n{}", wrong.len(), wrong.join("\n"));
}

/// What `/api/v1/session` says a role may do is what the server lets it do:
/// the UI hides exactly the actions the matrix forbids.
#[tokio::test]
async fn session_permissions_agree_with_the_matrix() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_RATE_LIMIT", "0")]).await;
    let rows = matrix();
    let allowed = |method: &str, template: &str, role: &str| {
        rows.iter().find(|r| r.method == method && r.template == template).unwrap().allowed.contains(&role)
    };
    for role in ROLES {
        let token = common::token(&db.url, role, &format!("session-{role}"));
        let session = common::get_json(&format!("{base}/api/v1/session"), &token).await;
        assert_eq!(session["role"], role);
        assert_eq!(session["name"], format!("session-{role}"));
        let has = |p: &str| session["permissions"].as_array().unwrap().iter().any(|v| v == p);
        let checks = [
            ("search", "POST", "/api/v1/search"),
            ("tail", "GET", "/api/v1/tail"),
            ("graph", "GET", "/api/v1/graph/blast-radius"),
            ("alerts:read", "GET", "/api/v1/alerts"),
            ("alerts:write", "POST", "/api/v1/alerts/{id}/acknowledge"),
            ("hunts:read", "GET", "/api/v1/hunts"),
            ("hunts:write", "POST", "/api/v1/hunts"),
            ("inventory", "GET", "/api/v1/vulnerabilities"),
            ("server:read", "GET", "/metrics"),
            ("server:read", "GET", "/api/openapi.json"),
            ("agents:command", "POST", "/api/v1/agents/{id}/commands"),
            ("ingest", "POST", "/api/v1/ingest"),
        ];
        for (permission, method, template) in checks {
            assert_eq!(
                has(permission),
                allowed(method, template, role),
                "{role}: `{permission}` vs {method} {template}"
            );
        }
    }
}
