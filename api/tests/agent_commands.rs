//! Commands to agents through the API: roles, validation, the record of who
//! sent what, and the answer of a responder on `vigil.commands.agent.<id>`,
//! against a real `vigil serve`, a NATS server that admits only enrolled
//! identities, and PostgreSQL. The responder checks the order's signature
//! as an agent does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::StreamExt;
use serde_json::{json, Value};
use vigil_control::{CommandSigner, CommandVerifier, IdentityDir, NatsSecurity};
use vigil_embedded::EmbeddedNats;
use vigil_store::testing::TempDatabase;

#[tokio::test]
async fn commands_reach_the_agent_and_are_recorded_with_who_sent_them() {
    let scratch = std::env::temp_dir().join(format!("vigil-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let ids = IdentityDir::open(&scratch.join("nats-auth"), "VIGIL_EVENTS").unwrap();
    let agent_creds = scratch.join("web-01.nk");
    vigil_control::files::write_secret(&agent_creds, ids.enroll_agent("web-01").unwrap().as_bytes()).unwrap();
    let port = vigil_embedded::free_port().unwrap();
    let nats = EmbeddedNats::start_configured(&scratch, port, None, Some(&ids.authorization_file()))
        .unwrap()
        .expect("nats-server is installed by scripts/setup.sh");
    let key_file = scratch.join("command-signing.nk");
    let server_key = CommandSigner::load_or_create(&key_file).unwrap().public_key();
    let db = TempDatabase::create().await.unwrap();
    let service_creds = ids.service_credentials();
    let env = [
        ("NATS_URL", nats.url()),
        ("VIGIL_NATS_CREDS", service_creds.display().to_string()),
        ("VIGIL_COMMAND_KEY", key_file.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_server, base) = common::serve(&db.url, &env).await;
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

    // Without credentials nothing reaches NATS at all.
    assert!(async_nats::ConnectOptions::new().connect(nats.url()).await.is_err());

    // Agent web-01, with its own identity, answering on its command subject
    // what it verified with the server's public key.
    let security = NatsSecurity {
        credentials: Some(agent_creds),
        inbox_prefix: Some(vigil_control::agent_inbox_prefix("web-01")),
        ..Default::default()
    };
    let nc = security.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(nats.url()).await.unwrap();
    let mut sub = nc.subscribe("vigil.commands.agent.web-01").await.unwrap();
    // A flush does not wait for the server to take the subscription: probe
    // (as the server's identity) until it has.
    let probe = NatsSecurity { credentials: Some(service_creds.clone()), ..Default::default() };
    let probe = probe.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(nats.url()).await.unwrap();
    loop {
        probe.publish("vigil.commands.agent.web-01", "probe".into()).await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await {
            break;
        }
    }
    while let Ok(Some(_)) = tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await {}
    let verifier = CommandVerifier::new(&server_key, "web-01", chrono::Utc::now()).unwrap();
    let responder = {
        let nc = nc.clone();
        tokio::spawn(async move {
            if let Some(msg) = sub.next().await {
                let order = verifier.verify(&msg.payload, chrono::Utc::now()).expect("an order signed by the server");
                assert!(order.expires_at - order.issued_at <= chrono::Duration::seconds(60));
                let req = serde_json::to_value(&order).unwrap();
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
