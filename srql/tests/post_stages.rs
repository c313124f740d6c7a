//! The stage the executor runs after the SQL: at most one of `SIMILAR_TO`,
//! `| cluster` and `| blast_radius`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use vigil_srql::{compile, Cluster, Config, ErrorKind, PostStage};

#[test]
fn cluster_and_blast_radius_cannot_follow_similar_to() {
    for (query, pipe) in [
        (r#"| SIMILAR_TO("reverse shell") | cluster"#, "cluster"),
        (r#"| SIMILAR_TO("reverse shell") | where score:>0.5 | blast_radius hops:2"#, "blast_radius hops:2"),
    ] {
        let err = compile(query, &Config::default(), Utc::now()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadOperator, "{query}: {err:?}");
        assert!(err.message.contains("cannot follow `SIMILAR_TO`"), "{query}: {}", err.message);
        assert_eq!(&query[err.span.start..err.span.end], pipe, "{query}");
    }
}

#[test]
fn the_executor_pipe_is_the_post_stage() {
    let post = |q: &str| compile(q, &Config::default(), Utc::now()).unwrap().post;
    assert_eq!(post("host:web-01 | stats count() by user"), PostStage::None);
    assert!(
        matches!(post(r#"| SIMILAR_TO("x", k:5) | stats count() by host"#), PostStage::Similar(s) if s.text == "x" && s.k == 5)
    );
    // A later SIMILAR_TO replaces an earlier one.
    assert!(matches!(post(r#"| SIMILAR_TO("a") | SIMILAR_TO("b")"#), PostStage::Similar(s) if s.text == "b"));
    assert_eq!(post("limit:7 | cluster 0.9"), PostStage::Cluster(Cluster { threshold: 0.9, limit: 7 }));
    assert!(
        matches!(post("host:web-01 | blast_radius hops:3"), PostStage::BlastRadius(b) if b.hops == 3 && b.limit == 100)
    );
}
