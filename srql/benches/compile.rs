//! Parse + compile time for 20 representative queries (goal: p50 < 20 µs each).
//! `cargo bench -p vigil-srql --bench compile`

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_srql::{compile, Config};

pub const QUERIES: [&str; 20] = [
    "host:web-01",
    "host:web-01 AND severity:high",
    "kind:auth status:failure src_ip:203.0.113.0/24",
    "user:root AND (process:bash OR process:sh) AND NOT src_ip:10.0.0.0/8",
    "host:web-* cmdline:*shadow*",
    "\"Failed password\" time:last_7d",
    "dst_port:(22,80,443) protocol:tcp",
    "raw.process.parent.cmdline:\"bash -i\"",
    "time:[2026-01-01T00:00Z, 2026-01-02] severity:>=medium",
    "dst_ip:2001:db8::/32 dst_port:[1 TO 1023]",
    "cmdline:/tail -n [0-9]+ \\/etc\\/shadow/",
    "kind:process | stats count() by host",
    "kind:auth | stats count() as n, count_distinct(src_ip) as sources by host, user | sort -n | head 10",
    "| timechart span:5m count() by severity",
    "host:web-01 AND severity:high | SIMILAR_TO(\"privilege escalation via bash\", k:20)",
    "kind:process | dedup host | fields time, host, cmdline",
    "in:connections dst_port:4444 | stats sum(bytes) as bytes by src_host | sort -bytes",
    "in:vulnerabilities status:running severity:critical",
    "in:flows time:last_1h stats:\"sum(bytes_total) as total_bytes by dst_endpoint_ip\" sort:total_bytes:desc limit:20",
    "in:devices hostname:%web% !os:windows* sort:last_seen:desc limit:50",
];

fn bench(c: &mut Criterion) {
    let cfg = Config::default();
    let now = chrono::Utc::now();
    let mut group = c.benchmark_group("srql_parse_compile");
    for (i, q) in QUERIES.iter().enumerate() {
        assert!(compile(q, &cfg, now).is_ok(), "benchmark query {i} must compile: {q}");
        group.bench_function(format!("q{i:02}"), |b| b.iter(|| compile(std::hint::black_box(q), &cfg, now)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
