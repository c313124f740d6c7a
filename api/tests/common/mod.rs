//! What the API tests share: a real `vigil serve` child process and tokens
//! made with `vigil token create`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vigil");

/// A running `vigil serve`, killed when dropped.
pub struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new token of `role` named `name`, as `vigil token create` prints it.
pub fn token(db_url: &str, role: &str, name: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "create", "--role", role, "--name", name])
        .env("DATABASE_URL", db_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(t.starts_with("vgl_") && t.len() > 60, "{t}");
    t
}

/// Starts `vigil serve` on a free port against `db_url`, with `env` set (an
/// empty value removes the variable), and waits for `/health`; returns the
/// server and its base URL. No NATS and no embedding model unless `env` says.
pub async fn serve(db_url: &str, env: &[(&str, &str)]) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", db_url)
        .env_remove("NATS_URL")
        .env("VIGIL_MODEL_DIR", "/nonexistent")
        .env("VIGIL_LOG", "warn")
        .stdout(Stdio::null());
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let child = cmd.spawn().unwrap();
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/health")).await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (server, base)
}

/// `POST url` with `token` and a JSON `body`, the answer as JSON.
pub async fn post_json(url: impl reqwest::IntoUrl, token: &str, body: &serde_json::Value) -> serde_json::Value {
    reqwest::Client::new().post(url).bearer_auth(token).json(body).send().await.unwrap().json().await.unwrap()
}

/// `GET url` with `token`, the answer as JSON (the caller checks its fields).
pub async fn get_json(url: &str, token: &str) -> serde_json::Value {
    reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}
