//! Commands to agents through the API: roles, validation, the record of who
//! sent what, and the answer of a responder on `vigil.commands.agent.<id>`,
//! against a real `vigil serve`, NATS server and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use vigil_api::embedded::EmbeddedNats;
use vigil_store::testing::TempDatabase;

const BIN: &str = env!("CARGO_BIN_EXE_vigil");

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn token(db_url: &str, role: &str, name: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "create", "--role", role, "--name", name])
        .env("DATABASE_URL", db_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn serve(db_url: &str, nats_url: Option<&str>) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db_url)
        .env("VIGIL_MODEL_DIR", "/nonexistent")
        .env("VIGIL_LOG", "warn")
        .stdout(Stdio::null());
    match nats_url {
        Some(u) => cmd.env("NATS_URL", u),
        None => cmd.env_remove("NATS_URL"),
    };
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/health")).await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (Server(child), base)
}

#[tokio::test]
async fn commands_reach_the_agent_and_are_recorded_with_who_sent_them() {
    let scratch = std::env::temp_dir().join(format!("vigil-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let nats = EmbeddedNats::start(&scratch).unwrap().expect("nats-server is installed by scripts/setup.sh");
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = serve(&db.url, Some(&nats.url())).await;
    let analyst = token(&db.url, "analyst", "alice");
    let viewer = token(&db.url, "viewer", "victor");
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
    let h: Value = client.get(&url).bearer_auth(&viewer).send().await.unwrap().json().await.unwrap();
    let cmds = h["commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 2, "{h}");
    assert_eq!((cmds[0]["sent_by"].as_str(), cmds[0]["ok"].as_bool()), (Some("alice"), Some(true)));
    assert_eq!(cmds[0]["args"]["ip"], "203.0.113.9");
    assert!(cmds[1]["error"].as_str().unwrap().contains("not reachable"), "{}", cmds[1]);
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test]
async fn without_nats_commands_are_unavailable() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = serve(&db.url, None).await;
    let analyst = token(&db.url, "analyst", "alice");
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
