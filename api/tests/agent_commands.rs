//! Commands to agents through the API: roles, validation, the record of who
//! sent what, and the answer of a responder on `vigil.commands.agent.<id>`,
//! against a real `vigil serve`, NATS server and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::StreamExt;
use serde_json::{json, Value};
use vigil_embedded::EmbeddedNats;
use vigil_store::testing::TempDatabase;

#[tokio::test]
async fn commands_reach_the_agent_and_are_recorded_with_who_sent_them() {
    let scratch = std::env::temp_dir().join(format!("vigil-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let nats = EmbeddedNats::start(&scratch).unwrap().expect("nats-server is installed by scripts/setup.sh");
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("NATS_URL", &nats.url())]).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let viewer = common::token(&db.url, "viewer", "victor");
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/agents/web-01/commands");
    let block = json!({"command": "block_ip", "args": {"ip": "203.0.113.9"}});

    // Roles and validation first.
    assert_eq!(client.post(&url).json(&block).send().await.unwrap().status(), 401);
    assert_eq!(client.post(&url).bearer_auth(&viewer).json(&block).send().await.unwrap().status(), 403);
    let r = client.post(&url).bearer_auth(&analyst).json(&json!({"command": "reboot"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("reboot"));
    let r = client
        .post(format!("{base}/api/v1/agents/bad%20id/commands"))
        .bearer_auth(&analyst)
        .json(&block)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No agent listening: a clear error, and the attempt is on record.
    let r = client.post(&url).bearer_auth(&analyst).json(&block).send().await.unwrap();
    assert_eq!(r.status(), 502, "{:?}", r.text().await);

    // An agent answering on its command subject.
    let nc = async_nats::connect(nats.url()).await.unwrap();
    let mut sub = nc.subscribe("vigil.commands.agent.web-01").await.unwrap();
    let responder = {
        let nc = nc.clone();
        tokio::spawn(async move {
            if let Some(msg) = sub.next().await {
                let req: Value = serde_json::from_slice(&msg.payload).unwrap();
                let reply = json!({"id": req["id"], "ok": true, "result": {"blocked": [req["args"]["ip"]], "by": req["sent_by"]}});
                nc.publish(msg.reply.unwrap(), reply.to_string().into()).await.unwrap();
                nc.flush().await.unwrap();
                req
            } else {
                Value::Null
            }
        })
    };
    nc.flush().await.unwrap();
    let r = client.post(&url).bearer_auth(&analyst).json(&block).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["reply"]["result"]["blocked"][0], "203.0.113.9");
    let req = responder.await.unwrap();
    assert_eq!((req["command"].as_str(), req["sent_by"].as_str()), (Some("block_ip"), Some("alice")));

    // The history says who sent what and what came back, newest first.
    let h: Value = common::get_json(&url, &viewer).await;
    let cmds = h["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 2, "{h}");
    assert_eq!((cmds[0]["sent_by"].as_str(), cmds[0]["ok"].as_bool()), (Some("alice"), Some(true)));
    assert_eq!(cmds[0]["args"]["ip"], "203.0.113.9");
    assert!(cmds[1]["error"].as_str().unwrap().contains("not reachable"), "{}", cmds[1]);
    // The audit log has both, with their outcomes.
    let c = vigil_store::connect(&db.url, 1).unwrap().get().await.unwrap();
    let audited: Vec<(String, Option<String>, String)> = c
        .query("SELECT token_name, target, outcome FROM audit_log WHERE action = 'agent.command' ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited.iter().any(|a| a.2 == "ok") && audited.iter().any(|a| a.2 == "agent_unreachable"), "{audited:?}");
    assert!(audited.iter().all(|a| a.0 == "alice"), "{audited:?}");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test]
async fn without_nats_commands_are_unavailable() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[]).await;
    let analyst = common::token(&db.url, "analyst", "alice");
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/agents/web-01/commands"))
        .bearer_auth(&analyst)
        .json(&json!({"command": "snapshot_now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("NATS"));
}
