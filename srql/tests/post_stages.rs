//! The stage the executor runs after the SQL: at most one of `SIMILAR_TO`,
//! `| cluster` and `| blast_radius`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use vigil_srql::{compile, Config, ErrorKind};

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
