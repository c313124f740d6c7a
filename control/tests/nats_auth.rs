//! A real nats-server configured with an [`IdentityDir`]'s authorization:
//! each identity can do what it must and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use vigil_control::{agent_inbox_prefix, IdentityDir, NatsSecurity};
use vigil_embedded::{free_port, EmbeddedNats};

const STREAM: &str = "VIGIL_EVENTS";

async fn connect(url: &str, creds: &Path, inbox: Option<String>) -> async_nats::Client {
    let security = NatsSecurity { credentials: Some(creds.to_path_buf()), inbox_prefix: inbox, ..Default::default() };
    security.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(url).await.unwrap()
}

fn js(client: &async_nats::Client) -> jetstream::Context {
    jetstream::context::ContextBuilder::new().timeout(Duration::from_secs(1)).build(client.clone())
}

async fn nothing_arrives(sub: &mut async_nats::Subscriber) -> bool {
    tokio::time::timeout(Duration::from_millis(700), sub.next()).await.is_err()
}

struct World {
    _dir: tempfile::TempDir,
    nats: EmbeddedNats,
    ids: IdentityDir,
    agent_a: std::path::PathBuf,
    agent_b: std::path::PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityDir::open(&dir.path().join("nats-auth"), STREAM).unwrap();
    let mut creds = Vec::new();
    for agent in ["agent-a", "agent-b"] {
        let path = dir.path().join(format!("{agent}.nk"));
        vigil_control::files::write_secret(&path, ids.enroll_agent(agent).unwrap().as_bytes()).unwrap();
        creds.push(path);
    }
    let nats = EmbeddedNats::start_configured(dir.path(), free_port().unwrap(), None, Some(&ids.authorization_file()))
        .unwrap()
        .expect("nats-server is installed by scripts/setup.sh");
    let agent_b = creds.pop().unwrap();
    let agent_a = creds.pop().unwrap();
    World { _dir: dir, nats, ids, agent_a, agent_b }
}

#[tokio::test]
async fn a_client_without_credentials_cannot_connect() {
    let w = world();
    let e = async_nats::ConnectOptions::new().connect(w.nats.url()).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("authorization"), "{e}");
    let stranger = tempfile::tempdir().unwrap();
    let seed = nkeys::KeyPair::new_user().seed().unwrap();
    let path = stranger.path().join("stranger.nk");
    vigil_control::files::write_secret(&path, seed.as_bytes()).unwrap();
    let security = NatsSecurity { credentials: Some(path), ..Default::default() };
    let e = security.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(w.nats.url()).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("authorization"), "an unenrolled key: {e}");
}

#[tokio::test]
async fn an_agent_publishes_only_its_own_events_and_reads_none() {
    let w = world();
    let server = connect(&w.nats.url(), &w.ids.service_credentials(), None).await;
    let server_js = js(&server);
    let config = jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec!["vigil.events.>".into()],
        ..Default::default()
    };
    let mut stream = server_js.create_stream(config).await.unwrap();
    let a = connect(&w.nats.url(), &w.agent_a, Some(agent_inbox_prefix("agent-a"))).await;
    let a_js = js(&a);

    a_js.publish("vigil.events.process.agent-a", "{}".into()).await.unwrap().await.expect("its own subject");
    for forged in ["vigil.events.process.agent-b", "vigil.events.process", "vigil.deadletter.process"] {
        let acked = match a_js.publish(forged, "{}".into()).await {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        assert!(!acked, "agent-a may not publish {forged}");
    }
    assert_eq!(stream.info().await.unwrap().state.messages, 1, "only agent-a's own event is stored");

    let mut snoop = a.subscribe("vigil.events.>").await.unwrap();
    server.publish("vigil.events.process", "secret".into()).await.unwrap();
    server.flush().await.unwrap();
    assert!(nothing_arrives(&mut snoop).await, "an agent cannot read the events of others");
}

#[tokio::test]
async fn only_the_addressed_agent_takes_and_answers_its_commands() {
    let w = world();
    let server = connect(&w.nats.url(), &w.ids.service_credentials(), None).await;
    let a = connect(&w.nats.url(), &w.agent_a, Some(agent_inbox_prefix("agent-a"))).await;
    let b = connect(&w.nats.url(), &w.agent_b, Some(agent_inbox_prefix("agent-b"))).await;

    let mut a_cmds = a.subscribe("vigil.commands.agent.agent-a").await.unwrap();
    let mut b_steals = b.subscribe("vigil.commands.agent.agent-a").await.unwrap();
    let mut b_inbox_snoop = b.subscribe("_INBOX.>").await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    // A flush does not wait for the server to take the subscription: probe until it has.
    loop {
        server.publish("vigil.commands.agent.agent-a", "probe".into()).await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), a_cmds.next()).await {
            break;
        }
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), a_cmds.next()).await {}
    let stolen = tokio::time::timeout(Duration::from_millis(10), b_steals.next()).await;
    assert!(!matches!(stolen, Ok(Some(_))), "agent-b received agent-a's commands");

    // The server asks agent-a on its own reply subject; agent-b tries to answer first.
    let reply_to = server.new_inbox();
    let mut answers = server.subscribe(reply_to.clone()).await.unwrap();
    server.flush().await.unwrap();
    server.publish_with_reply("vigil.commands.agent.agent-a", reply_to.clone(), "order".into()).await.unwrap();
    server.flush().await.unwrap();
    b.publish(reply_to.clone(), "forged answer".into()).await.unwrap();
    b.flush().await.unwrap();

    let order = tokio::time::timeout(Duration::from_secs(5), a_cmds.next()).await.unwrap().unwrap();
    a.publish(order.reply.clone().unwrap(), "real answer".into()).await.unwrap();
    a.flush().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), answers.next()).await.unwrap().unwrap();
    assert_eq!(&first.payload[..], b"real answer", "agent-b's forged answer never reached the server");
    assert!(nothing_arrives(&mut answers).await);
    assert!(nothing_arrives(&mut b_steals).await, "agent-b cannot take agent-a's commands");
    assert!(nothing_arrives(&mut b_inbox_snoop).await, "agent-b cannot read the server's replies");

    // An answer is allowed once.
    a.publish(order.reply.unwrap(), "second answer".into()).await.unwrap();
    a.flush().await.unwrap();
    assert!(nothing_arrives(&mut answers).await);
}

#[tokio::test]
async fn a_revoked_agent_is_refused_after_a_reload() {
    let w = world();
    connect(&w.nats.url(), &w.agent_b, Some(agent_inbox_prefix("agent-b"))).await;
    assert!(w.ids.revoke_agent("agent-b").unwrap());
    w.nats.reload().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let security = NatsSecurity { credentials: Some(w.agent_b.clone()), ..Default::default() };
    let e = security.apply(async_nats::ConnectOptions::new()).await.unwrap().connect(w.nats.url()).await.unwrap_err();
    assert!(e.to_string().to_lowercase().contains("authorization"), "{e}");
}
