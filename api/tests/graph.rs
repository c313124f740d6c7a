//! The connection graph end to end on real data: a labelled Zeek capture of
//! an NjRAT infection (`../shared/data/stratosphere_njrat_zeek`) imported with
//! `vigil import`, folded into edges by the server's graph worker, and asked
//! through `GET /api/v1/graph/…` and SRQL's `| blast_radius`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_store::testing::TempDatabase;

use common::BIN;
const INFECTED: &str = "192.168.1.115";
const C2: &str = "41.108.179.197";

fn capture() -> Option<PathBuf> {
    vigil_store::testing::shared_data("stratosphere_njrat_zeek/labeled-conn.log")
}

fn vigil(db_url: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", db_url)
        // The capture is from 2017: let the graph reach that far back.
        .env("VIGIL_GRAPH_WINDOW_DAYS", "36500")
        .env("VIGIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "vigil {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[tokio::test]
async fn njrat_c2_is_one_hop_from_the_infected_host_over_the_api_and_srql() {
    let Some(file) = capture() else { return };
    let db = TempDatabase::create().await.unwrap();
    vigil(&db.url, &["migrate"]);
    // The capture's times are from 1970: history imported on purpose.
    vigil(&db.url, &["import", file.to_str().unwrap(), "--oldest", "any"]);
    let viewer =
        String::from_utf8(vigil(&db.url, &["token", "create", "--role", "viewer", "--name", "analyst-1"]).stdout)
            .unwrap();
    let ingest =
        String::from_utf8(vigil(&db.url, &["token", "create", "--role", "ingest", "--name", "sensor-1"]).stdout)
            .unwrap();
    let (viewer, ingest) = (viewer.trim().to_string(), ingest.trim().to_string());
    let (_server, base) = common::serve(&db.url, &[("VIGIL_GRAPH_WINDOW_DAYS", "36500")]).await;
    let client = reqwest::Client::new();
    let blast = format!("{base}/api/v1/graph/blast-radius?from={INFECTED}&hops=1&direction=out");

    // The worker folds the events into edges (after its settle window) and the graph refreshes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let v: Value = loop {
        let r = client.get(&blast).bearer_auth(&viewer).send().await.unwrap();
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            if v["result"]["reached"].as_array().is_some_and(|a| a.iter().any(|n| n["ip"] == C2)) {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "the C2 never appeared in the blast radius");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let c2 = v["result"]["reached"].as_array().unwrap().iter().find(|n| n["ip"] == C2).unwrap().clone();
    assert_eq!(c2["hops"], 1, "{c2}");
    let path = c2["path"].as_array().unwrap();
    assert_eq!(path.len(), 1);
    assert_eq!((path[0]["from"].as_str(), path[0]["to"].as_str()), (Some(INFECTED), Some(C2)));
    assert_eq!((path[0]["dst_port"].as_u64(), path[0]["protocol"].as_str()), (Some(1177), Some("tcp")));
    // Every node one hop out is a destination the host really contacted in the capture.
    let contacted = destinations_of(INFECTED);
    for n in v["result"]["reached"].as_array().unwrap() {
        let ip = n["ip"].as_str().unwrap();
        assert!(contacted.contains(ip), "{ip} is not a destination of {INFECTED} in the capture");
    }
    assert_eq!(v["result"]["total_reached"].as_u64().unwrap() as usize, contacted.len());

    // Inbound from the C2: the infected host reached it.
    let r: Value =
        common::get_json(&format!("{base}/api/v1/graph/blast-radius?from={C2}&hops=1&direction=in"), &viewer).await;
    assert!(r["result"]["reached"].as_array().unwrap().iter().any(|n| n["ip"] == INFECTED), "{r}");

    // Paths: the direct one first.
    let r: Value = common::get_json(&format!("{base}/api/v1/graph/paths?from={INFECTED}&to={C2}&k=2"), &viewer).await;
    let first = &r["paths"][0];
    assert_eq!(first["nodes"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(first["hops"][0]["dst_port"], 1177);

    // Neighbourhood for the graph view: both nodes and the edge between them.
    let r: Value =
        common::get_json(&format!("{base}/api/v1/graph/neighbourhood?node={INFECTED}&hops=1"), &viewer).await;
    let edge = r["result"]["edges"].as_array().unwrap().iter().find(|e| e["source"] == INFECTED && e["target"] == C2);
    let edge = edge.unwrap_or_else(|| panic!("no edge {INFECTED} -> {C2}: {r}"));
    assert!(edge["ports"].as_array().unwrap().contains(&Value::from(1177)));
    assert!(edge["count"].as_i64().unwrap() > 0);

    // Tokens and roles, and errors that name the problem.
    assert_eq!(client.get(&blast).send().await.unwrap().status(), 401);
    assert_eq!(client.get(&blast).bearer_auth(&ingest).send().await.unwrap().status(), 403);
    let r = client
        .get(format!("{base}/api/v1/graph/blast-radius?from=10.255.0.1&hops=1"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("10.255.0.1"), "{e}");
    let r = client
        .get(format!("{base}/api/v1/graph/blast-radius?from={INFECTED}&hops=9"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("hops"));
    let r = client
        .get(format!("{base}/api/v1/graph/blast-radius?from={INFECTED}&ports=http"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // SRQL: the hosts of the left side's events are the start points (the capture's clock starts at 0).
    let out = vigil(
        &db.url,
        &[
            "query",
            "--format",
            "json",
            &format!("src_ip:{INFECTED} dst_port:1177 time:[1970-01-01, 1970-01-02] | blast_radius hops:1 port:1177"),
        ],
    );
    let rows: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!rows.is_empty(), "blast_radius returned nothing");
    let c2 = rows.iter().find(|r| r["ip"] == C2).unwrap_or_else(|| panic!("no C2 row: {rows:?}"));
    assert_eq!(c2["hops"], 1);
    assert!(c2["path"].as_str().unwrap().contains(&format!("{INFECTED} -> {C2}:1177/tcp")), "{c2}");
    // With port 1177 only, nothing but the C2 is reached.
    assert!(rows.iter().all(|r| r["ip"] == C2), "{rows:?}");
}

/// Destinations `src` contacted in the capture, read straight from the file.
fn destinations_of(src: &str) -> std::collections::HashSet<String> {
    let text = std::fs::read_to_string(capture().unwrap()).unwrap();
    let mut fields: Vec<String> = Vec::new();
    let mut out = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields") {
            fields = f.split('\t').filter(|s| !s.is_empty()).map(str::to_string).collect();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let get = |name: &str| fields.iter().position(|f| f == name).and_then(|i| cols.get(i).copied());
        if get("id.orig_h") == Some(src) {
            if let Some(dst) = get("id.resp_h") {
                // Broadcast and multicast destinations are not nodes of the graph.
                if !dst.parse().is_ok_and(vigil_graph::model::is_excluded) {
                    out.insert(dst.to_string());
                }
            }
        }
    }
    out
}
