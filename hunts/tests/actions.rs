//! Actions on new alerts against local HTTP(S) servers: retries with backoff
//! on 5xx, none on 4xx, every attempt recorded, the AWX launch call; and
//! where actions may go: the webhook allow-list (when saved, before sending,
//! on the resolved address), AWX only at `VIGIL_AWX_URL`'s origin, no
//! redirects, error bodies neither shown nor read whole, https with an extra
//! CA, and HMAC-signed deliveries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use vigil_hunts::actions::{self, AllowList, DeliveryConfig, Secret};
use vigil_hunts::{alerts, hunt, HuntError, HuntSpec, ManualClock, Runner, Settings};
use vigil_store::testing::{migrated, TempDatabase};
use vigil_store::{Pool, TimescaleChoice};

/// A request the test server received: path, Authorization header, body.
type Seen = (String, Option<String>, Value);

/// A request's signature header and the exact bytes of its body.
type Raw = (Option<String>, Bytes);

/// What the test server received, and the statuses it answers with in turn
/// (the last one repeats).
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    raw: Arc<Mutex<Vec<Raw>>>,
    answers: Arc<Vec<u16>>,
}

async fn hook(State(r): State<Recorder>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    r.raw.lock().unwrap().push((header("x-vigil-signature-256"), body.clone()));
    let mut seen = r.seen.lock().unwrap();
    seen.push((uri.path().to_string(), header("authorization"), serde_json::from_slice(&body).unwrap_or_default()));
    let code = r.answers.get(seen.len() - 1).or(r.answers.last()).copied().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn server(answers: &[u16]) -> (String, Recorder) {
    let rec = Recorder { seen: Default::default(), raw: Default::default(), answers: Arc::new(answers.to_vec()) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, recording(&rec)).into_future());
    (base, rec)
}

fn recording(rec: &Recorder) -> axum::Router {
    axum::Router::new().fallback(axum::routing::any(hook)).with_state(rec.clone())
}

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap()
}

/// A hunt with `actions`, one matching event, and its first run done: the alert's id.
async fn alert_with(actions: Value, delivery: DeliveryConfig) -> (TempDatabase, Pool, Uuid) {
    alert_saved_under(actions, &delivery.clone(), delivery, false).await
}

/// [`alert_with`], the hunt saved under the configuration `saved` and run
/// (on its schedule, or by hand when `manual`) under `delivery`: a server
/// restarted with other settings.
async fn alert_saved_under(
    actions: Value,
    saved: &DeliveryConfig,
    delivery: DeliveryConfig,
    manual: bool,
) -> (TempDatabase, Pool, Uuid) {
    let (db, pool) = migrated(TimescaleChoice::Auto).await;
    let clock = Arc::new(ManualClock::new(t(12, 0)));
    let settings = Settings { settle: TimeDelta::seconds(10), delivery, ..Default::default() };
    let runner = Runner::new(pool.clone(), settings, clock.clone());
    let spec: HuntSpec = serde_json::from_value(json!({
        "name": "root logins", "query": "kind:auth user:root", "schedule": "*/5 * * * *", "severity": "critical",
        "group_by": ["host"], "actions": actions}))
    .unwrap();
    let h = hunt::create(&pool, &spec.validate(1000, saved).unwrap(), None, t(12, 0), TimeDelta::seconds(10))
        .await
        .unwrap();
    pool.get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO events (time, event_id, kind, source, host, class_uid, category_uid, message, user_name,
                                 schema_version, ingested_at)
             VALUES (now(), $1, 'auth', 'sshd', 'web-01', 3002, 3, 'Accepted password', 'root', 1, $2)",
            &[&Uuid::new_v4(), &t(12, 2)],
        )
        .await
        .unwrap();
    clock.set(t(12, 5));
    let r = if manual { vec![runner.run_now(h.id).await.unwrap()] } else { runner.tick().await.unwrap() };
    assert_eq!(r[0].alerts_created, 1);
    assert_eq!(r[0].hunt_id, h.id);
    (db, pool, r[0].new_alerts[0])
}

/// Quick retries; webhooks allowed to 127.0.0.1 (where the test servers are).
fn fast(attempts: u32) -> DeliveryConfig {
    DeliveryConfig {
        max_attempts: attempts,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        webhook_allow: AllowList::parse("127.0.0.1").unwrap(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_webhook_is_retried_after_5xx_and_every_attempt_is_recorded() {
    let (base, rec) = server(&[500, 503, 200]).await;
    let url = format!("{base}/hooks/siem");
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), fast(5)).await;

    let acts = actions::for_alert(&pool, alert).await.unwrap();
    assert_eq!(acts.len(), 1);
    let a = &acts[0];
    assert_eq!((a.status.as_str(), a.attempts, a.last_status), ("delivered", 3, Some(200)));
    let codes: Vec<Option<i32>> = a.deliveries.iter().map(|d| d.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(503), Some(200)]);
    assert_eq!(a.deliveries.iter().map(|d| d.attempt).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(a.deliveries[0].error.as_deref().unwrap().contains("500"));
    assert!(a.deliveries[2].error.is_none());

    // The payload: the alert with its hunt, severity, group, count and links.
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let (path, auth, body) = &seen[2];
    assert_eq!(path, "/hooks/siem");
    assert!(auth.is_none());
    let al = &body["alert"];
    assert_eq!(body["source"], "vigil");
    assert_eq!(al["id"], alert.to_string());
    assert_eq!(al["hunt"]["name"], "root logins");
    assert_eq!(al["severity"], "critical");
    assert_eq!(al["group"], json!({"host": "web-01"}));
    assert_eq!(al["count"], 1);
    assert_eq!(al["event_ids"].as_array().unwrap().len(), 1);
    assert_eq!(al["links"]["alert"], format!("/api/v1/alerts/{alert}"));
    assert_eq!(alerts::get(&pool, alert).await.unwrap().count, 1);
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_exhausted_retries_fail() {
    let (base, rec) = server(&[400]).await;
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": base}]), fast(5)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts, a.last_status), ("failed", 1, Some(400)));
    assert_eq!(rec.seen.lock().unwrap().len(), 1);

    // Always 502: tried max_attempts times, then given up.
    let (base, rec) = server(&[502]).await;
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": base}]), fast(3)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts, a.deliveries.len()), ("failed", 3, 3));
    assert_eq!(rec.seen.lock().unwrap().len(), 3);

    // Nobody listening: connection errors are retried and recorded.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_db, pool, alert) =
        alert_with(json!([{"type": "webhook", "url": format!("http://127.0.0.1:{port}/")}]), fast(2)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts), ("failed", 2));
    assert!(a.deliveries.iter().all(|d| d.status_code.is_none() && d.error.is_some()));
}

#[tokio::test]
async fn awx_launches_the_job_template_with_extra_vars_and_the_token() {
    let (base, rec) = server(&[201]).await;
    let delivery = DeliveryConfig {
        awx_url: Some(format!("{base}/").parse().unwrap()),
        awx_token: Some(Secret::new("s3cret")),
        ..fast(3)
    };
    let (_db, pool, alert) = alert_with(
        json!([{"type": "awx", "job_template_id": 42, "extra_vars": {"playbook_limit": "web-01", "isolate": true}}]),
        delivery,
    )
    .await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.kind.as_str(), a.status.as_str(), a.last_status), ("awx", "delivered", Some(201)));
    let seen = rec.seen.lock().unwrap().clone();
    let (path, auth, body) = &seen[0];
    assert_eq!(path, "/api/v2/job_templates/42/launch/");
    assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
    let vars = &body["extra_vars"];
    assert_eq!(vars["playbook_limit"], "web-01");
    assert_eq!(vars["isolate"], true);
    assert_eq!(vars["vigil_alert"]["id"], alert.to_string());
    assert_eq!(vars["vigil_alert"]["host"], "web-01");
    // The token is configuration, never stored.
    let stored: Value =
        pool.get().await.unwrap().query_one("SELECT to_jsonb(a) FROM alert_actions a", &[]).await.unwrap().get(0);
    assert!(!stored.to_string().contains("s3cret"));
    assert_eq!(
        actions::awx_launch_url("https://awx.example/", 7),
        "https://awx.example/api/v2/job_templates/7/launch/"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let c = DeliveryConfig {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        ..Default::default()
    };
    assert_eq!((1..=5).map(|n| c.backoff(n).as_millis()).collect::<Vec<_>>(), vec![100, 200, 400, 500, 500]);
}

/// The code and message a hunt with `actions` is refused with under `cfg`.
fn refused(actions: Value, cfg: &DeliveryConfig) -> (&'static str, String) {
    let spec: HuntSpec = serde_json::from_value(json!({
        "name": "n", "query": "kind:auth", "schedule": "*/5 * * * *", "actions": actions}))
    .unwrap();
    match spec.validate(1000, cfg) {
        Err(HuntError::Invalid { field, code, message }) => {
            assert_eq!(field, "actions");
            (code, message)
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_webhook_to_loopback_is_refused_unless_allowed() {
    let (base, rec) = server(&[200]).await;
    let url = format!("{base}/hook");
    // Nothing listed: refused when saved, naming the field.
    let (code, msg) = refused(json!([{"type": "webhook", "url": url}]), &DeliveryConfig::default());
    assert_eq!(code, "webhook_not_allowed");
    assert!(
        msg.contains("actions[0].url") && msg.contains("127.0.0.1") && msg.contains("VIGIL_WEBHOOK_ALLOW"),
        "{msg}"
    );
    // The metadata address and other spellings of loopback too, with a public host listed.
    let cfg = DeliveryConfig { webhook_allow: AllowList::parse("hooks.example.com").unwrap(), ..fast(1) };
    for u in ["http://169.254.169.254/latest", "http://2130706433/", "http://[::ffff:127.0.0.1]/"] {
        assert_eq!(refused(json!([{"type": "webhook", "url": u}]), &cfg).0, "webhook_not_allowed", "{u}");
    }
    assert!(rec.seen.lock().unwrap().is_empty());

    // Listed: delivered.
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), fast(1)).await;
    assert_eq!(actions::for_alert(&pool, alert).await.unwrap()[0].status, "delivered");
    assert_eq!(rec.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_listed_name_that_resolves_to_loopback_is_refused_at_connect_time() {
    let (base, rec) = server(&[200]).await;
    let port = base.rsplit(':').next().unwrap();
    let url = format!("http://localhost:{port}/hook");
    // `localhost` is listed, so the hunt saves; its addresses are not.
    let cfg = DeliveryConfig { webhook_allow: AllowList::parse("localhost").unwrap(), ..fast(3) };
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), cfg).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts), ("failed", 1), "a refusal is not retried");
    let err = a.last_error.as_deref().unwrap();
    assert!(err.starts_with("refused") && err.contains("localhost"), "{err}");
    assert!(rec.seen.lock().unwrap().is_empty());

    // With loopback listed as well, the same name is reached.
    let cfg = DeliveryConfig { webhook_allow: AllowList::parse("localhost, 127.0.0.0/8").unwrap(), ..fast(3) };
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), cfg).await;
    assert_eq!(actions::for_alert(&pool, alert).await.unwrap()[0].status, "delivered");
    assert_eq!(rec.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_run_cannot_reach_what_the_server_no_longer_allows() {
    // Saved while 127.0.0.1 was allowed; the server now allows nothing. A
    // manual run (which fires at once) and a scheduled one alike send nothing.
    let (base, rec) = server(&[200]).await;
    for manual in [true, false] {
        let now = DeliveryConfig { webhook_allow: AllowList::default(), ..fast(3) };
        let (_db, pool, alert) =
            alert_saved_under(json!([{"type": "webhook", "url": base}]), &fast(3), now, manual).await;
        let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
        assert_eq!((a.status.as_str(), a.attempts), ("failed", 1));
        assert!(a.last_error.as_deref().unwrap().contains("VIGIL_WEBHOOK_ALLOW"), "{:?}", a.last_error);
    }
    assert!(rec.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_awx_base_url_elsewhere_never_receives_the_token() {
    let (awx, awx_rec) = server(&[201]).await;
    let (elsewhere, elsewhere_rec) = server(&[201]).await;
    let cfg = |u: &str| DeliveryConfig {
        awx_url: Some(u.parse().unwrap()),
        awx_token: Some(Secret::new("awx-token")),
        ..fast(3)
    };
    let action = json!([{"type": "awx", "job_template_id": 7, "base_url": elsewhere}]);
    // Refused when saved, naming the field.
    let (code, msg) = refused(action.clone(), &cfg(&awx));
    assert_eq!(code, "awx_origin");
    assert!(msg.contains("actions[0].base_url") && msg.contains(&awx), "{msg}");
    let (code, _) = refused(action.clone(), &DeliveryConfig::default());
    assert_eq!(code, "awx_not_configured");

    // Saved when VIGIL_AWX_URL was `elsewhere`, fired after it became `awx`:
    // neither is called, the token goes nowhere.
    let (_db, pool, alert) = alert_saved_under(action, &cfg(&elsewhere), cfg(&awx), true).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.attempts), ("failed", 1));
    assert!(a.last_error.as_deref().unwrap().contains("origin"), "{:?}", a.last_error);
    assert!(elsewhere_rec.seen.lock().unwrap().is_empty());
    assert!(awx_rec.seen.lock().unwrap().is_empty());

    // A base_url at the configured origin (another path) gets it.
    let (_db, pool, alert) =
        alert_with(json!([{"type": "awx", "job_template_id": 7, "base_url": format!("{awx}/tower")}]), cfg(&awx)).await;
    assert_eq!(actions::for_alert(&pool, alert).await.unwrap()[0].status, "delivered");
    let seen = awx_rec.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/tower/api/v2/job_templates/7/launch/");
    assert_eq!(seen[0].1.as_deref(), Some("Bearer awx-token"));
}

#[tokio::test]
async fn a_redirect_to_loopback_is_not_followed() {
    let (target, target_rec) = server(&[200]).await;
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let from = format!("http://{}/hook", redirector.local_addr().unwrap());
    let location = format!("{target}/stolen");
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { (StatusCode::FOUND, [("location", location)]) }
    });
    tokio::spawn(axum::serve(redirector, app).into_future());

    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": from}]), fast(3)).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.last_status, a.attempts), ("failed", Some(302), 1));
    assert!(a.last_error.as_deref().unwrap().contains("not followed"));
    assert!(target_rec.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn error_bodies_are_neither_shown_nor_read_whole() {
    // A 500 whose body starts with internal detail and never ends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async {
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("db password=hunter2 "))]);
        let endless = futures_util::stream::repeat_with(|| Ok(Bytes::from(vec![b'x'; 4096])));
        let slow = futures_util::StreamExt::then(endless, |c| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            c
        });
        (StatusCode::INTERNAL_SERVER_ERROR, axum::body::Body::from_stream(futures_util::StreamExt::chain(first, slow)))
    });
    tokio::spawn(axum::serve(listener, app).into_future());

    let cfg = DeliveryConfig { timeout: Duration::from_secs(5), ..fast(1) };
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), cfg).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    // The status only: what a viewer of the alert sees holds nothing of the body.
    assert_eq!((a.status.as_str(), a.last_status, a.last_error.as_deref()), ("failed", Some(500), Some("HTTP 500")));
    assert_eq!(a.deliveries[0].error.as_deref(), Some("HTTP 500"));
    // And the endless body was not read to the timeout.
    assert!(a.deliveries[0].duration_ms < 3000, "{} ms", a.deliveries[0].duration_ms);
}

#[tokio::test]
async fn deliveries_carry_an_hmac_of_the_exact_body() {
    use hmac::{Hmac, Mac};
    let (base, rec) = server(&[200]).await;
    let secret = "0123456789abcdef-hook-secret";
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": base, "secret": secret}]), fast(1)).await;
    assert_eq!(actions::for_alert(&pool, alert).await.unwrap()[0].status, "delivered");
    let (sig, body) = rec.raw.lock().unwrap()[0].clone();
    let hex = sig.as_deref().and_then(|s| s.strip_prefix("sha256=")).expect("a sha256= signature header");
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    // As a receiver checks it: HMAC-SHA256 over the bytes received.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&body);
    mac.verify_slice(&bytes).expect("the signature verifies");
    let mut other = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"another secret of 16+").unwrap();
    other.update(&body);
    assert!(other.verify_slice(&bytes).is_err());
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["alert"]["id"], alert.to_string());

    // The secret is stored, never shown: the API's view and debug output.
    let h = &hunt::list(&pool).await.unwrap()[0];
    let shown = serde_json::to_value(h).unwrap();
    assert_eq!(shown["actions"], json!([{"type": "webhook", "url": base, "has_secret": true}]));
    assert!(!format!("{h:?}").contains(secret));

    // Replaced without the secret (as the UI does): it stays; `""` removes it.
    let spec = |a: Value| -> HuntSpec {
        serde_json::from_value(json!({"name": "root logins", "query": "kind:auth user:root",
            "schedule": "*/5 * * * *", "group_by": ["host"], "actions": a}))
        .unwrap()
    };
    let v = spec(json!([{"type": "webhook", "url": base}])).validate(1000, &fast(1)).unwrap();
    let kept = hunt::update(&pool, h.id, &v).await.unwrap();
    assert_eq!(kept.actions, vec![actions::Action::Webhook { url: base.clone(), secret: Some(Secret::new(secret)) }]);
    let v = spec(json!([{"type": "webhook", "url": base, "secret": ""}])).validate(1000, &fast(1)).unwrap();
    let cleared = hunt::update(&pool, h.id, &v).await.unwrap();
    assert_eq!(cleared.actions, vec![actions::Action::Webhook { url: base.clone(), secret: None }]);
    let (code, msg) = refused(json!([{"type": "webhook", "url": base, "secret": "short"}]), &fast(1));
    assert_eq!(code, "bad_action");
    assert!(msg.contains("actions[0].secret"), "{msg}");
}

/// Accepts TLS connections for `axum::serve`.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            // A client that does not trust the certificate fails its handshake.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A recording https server for `localhost` with a certificate of a CA made
/// now: its `https://localhost:port` URL, the CA's PEM, and what it received.
async fn tls_server() -> (String, String, Recorder) {
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/hook", tcp.local_addr().unwrap().port());
    let listener = TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
    let rec = Recorder { seen: Default::default(), raw: Default::default(), answers: Arc::new(vec![200]) };
    tokio::spawn(axum::serve(listener, recording(&rec)).into_future());
    (url, ca.pem(), rec)
}

#[tokio::test]
async fn https_delivery_works_against_a_receiver_of_the_configured_ca() {
    let (url, ca_pem, rec) = tls_server().await;
    let allow = AllowList::parse("localhost, 127.0.0.1").unwrap();
    let cfg = DeliveryConfig {
        webhook_allow: allow.clone(),
        extra_roots: Some(actions::RootCerts::from_pem(ca_pem.as_bytes()).unwrap()),
        ..fast(1)
    };
    let (_db, pool, alert) = alert_with(json!([{"type": "webhook", "url": url}]), cfg).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.last_status), ("delivered", Some(200)), "{:?}", a.last_error);
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].2["alert"]["id"], alert.to_string());

    // Without the CA the receiver is not trusted, and nothing is received.
    let (_db, pool, alert) =
        alert_with(json!([{"type": "webhook", "url": url}]), DeliveryConfig { webhook_allow: allow, ..fast(1) }).await;
    let a = &actions::for_alert(&pool, alert).await.unwrap()[0];
    assert_eq!((a.status.as_str(), a.last_error.as_deref()), ("failed", Some("could not connect")));
    assert_eq!(rec.seen.lock().unwrap().len(), 1);
}
