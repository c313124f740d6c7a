//! Graph model and queries on hand-built fixtures with known answers, plus
//! cross-checks against naive reference searches on synthetic graphs.

#![allow(clippy::type_complexity)] // table-driven cases read best inline

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use vigil_graph::query::{MAX_HOPS, MAX_PATHS};
use vigil_graph::{synthetic, BlastQuery, Direction, EdgeRecord, Graph, GraphError, Hop, RiskFacts, Start, Upsert};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).single().unwrap_or_default()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("bad ip {s}"))
}

/// Fixture addresses by short name.
fn n(name: &str) -> IpAddr {
    ip(match name {
        "a" => "10.0.0.1",
        "a2" => "10.0.1.1", // host a's second address
        "b" => "10.0.0.2",
        "c" => "10.0.0.3",
        "d" => "10.0.0.4",
        "e" => "10.0.0.5",
        "f" => "10.0.0.6",
        "g" => "10.0.0.7",
        "h" => "10.0.0.8",
        "k" => "10.0.0.11",
        "s" => "10.1.0.1",
        "x1" => "10.1.0.2",
        "x2" => "10.1.0.3",
        "y" => "10.1.0.4",
        "z" => "10.1.0.5",
        "w" => "10.1.0.7",
        "t" => "10.1.0.9",
        other => other,
    })
}

/// The host name of a fixture node (`a2` belongs to host `a`).
fn host_of(name: &str) -> Option<String> {
    match name {
        "a2" => Some("a".into()),
        _ if name.parse::<IpAddr>().is_ok() => None,
        _ => Some(name.into()),
    }
}

fn rec(src: &str, dst: &str, port: u16, proto: &str, process: &str, ago_hours: i64) -> EdgeRecord {
    let last = now() - Duration::hours(ago_hours);
    EdgeRecord {
        src_ip: n(src),
        src_host: host_of(src),
        src_process: process.into(),
        dst_ip: n(dst),
        dst_host: host_of(dst),
        dst_port: port,
        protocol: proto.into(),
        first_seen: last - Duration::hours(1),
        last_seen: last,
        count: 10,
        bytes: 1000,
    }
}

/// ```text
///   g ──3389──▶ a ──22,3389──▶ b ──5432──▶ c ──443──▶ d
///               │ (old 443)    │ ▲          │
///               └────▶ e ◀─53──┘ └──445── f ◀─445─┘      (cycle b → c → f → b)
///   a2 (host a) ──80──▶ h
///   a, b, k ──▶ multicast / broadcast / loopback (never stored)
/// ```
/// `a → e` was last seen 3 days ago and `g → a` 2 days ago; the rest within hours.
fn fixture() -> Graph {
    let mut g = Graph::new();
    let records = vec![
        rec("a", "b", 22, "tcp", "ssh", 1),
        rec("a", "b", 3389, "tcp", "mstsc", 2),
        rec("b", "c", 5432, "tcp", "app", 1),
        rec("c", "d", 443, "tcp", "curl", 1),
        rec("b", "e", 53, "udp", "resolver", 1),
        rec("c", "f", 445, "tcp", "smb", 1),
        rec("f", "b", 445, "tcp", "smb", 1),
        rec("a", "e", 443, "tcp", "chrome", 72),
        rec("g", "a", 3389, "tcp", "mstsc", 48),
        rec("a2", "h", 80, "tcp", "wget", 1),
        // Noise: never nodes.
        rec("a", "224.0.0.251", 5353, "udp", "avahi", 1),
        rec("b", "224.0.0.251", 5353, "udp", "avahi", 1),
        rec("k", "224.0.0.251", 5353, "udp", "avahi", 1),
        rec("k", "255.255.255.255", 67, "udp", "dhclient", 1),
        rec("0.0.0.0", "k", 67, "udp", "dhcp", 1),
        rec("a", "127.0.0.1", 5432, "tcp", "psql", 1),
        rec("k", "ff02::fb", 5353, "udp", "avahi", 1),
        rec("k", "::", 1, "udp", "x", 1),
        rec("k", "::ffff:239.255.255.250", 1900, "udp", "ssdp", 1),
        rec("a", "a", 8080, "tcp", "self", 1),
    ];
    let summary = g.upsert_many(records);
    assert_eq!((summary.inserted, summary.ignored), (10, 10), "{summary:?}");
    g
}

fn blast(start: &str, hops: u32, direction: Direction) -> BlastQuery {
    BlastQuery { hops, direction, limit: 100, ..BlastQuery::new(start.parse().unwrap_or(Start::Host(start.into()))) }
}

/// `(name, hops)` of every reached node, in result order.
fn reached(g: &Graph, q: &BlastQuery) -> Vec<(String, u32)> {
    let names: HashMap<IpAddr, &str> =
        ["a", "a2", "b", "c", "d", "e", "f", "g", "h", "k"].iter().map(|&s| (n(s), s)).collect();
    let r = g.blast_radius(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    r.reached.iter().map(|x| (names.get(&x.ip).copied().unwrap_or("?").to_string(), x.hops)).collect()
}

fn pairs(xs: &[(&str, u32)]) -> Vec<(String, u32)> {
    xs.iter().map(|(s, h)| (s.to_string(), *h)).collect()
}

#[test]
fn fixture_counts_nodes_flows_and_hosts() {
    let g = fixture();
    assert_eq!(g.node_count(), 9); // a, a2, b, c, d, e, f, g, h
    assert_eq!(g.edge_count(), 10);
    assert_eq!(g.link_count(), 9); // a → b holds two flows
    assert_eq!(g.host_ips("a"), vec![n("a"), n("a2")]);
    assert_eq!(g.host_ips("A "), vec![n("a"), n("a2")], "host names are case-insensitive");
    assert_eq!(g.host_of(n("a2")), Some("a"));
}

#[test]
fn broadcast_multicast_loopback_and_self_are_never_nodes() {
    let g = fixture();
    for addr in ["224.0.0.251", "255.255.255.255", "0.0.0.0", "127.0.0.1", "ff02::fb", "::", "::ffff:239.255.255.250"] {
        assert!(!g.contains_ip(ip(addr)), "{addr} stored");
    }
    // k only ever talked to noise, so it is not a node either.
    assert!(!g.contains_ip(n("k")));
    assert!(g.flows(n("a"), n("a")).is_empty());
    let mut g2 = Graph::new();
    assert_eq!(g2.upsert(rec("a", "239.1.2.3", 5000, "udp", "x", 1)), Upsert::Ignored);
    assert_eq!(g2.node_count(), 0);
    // Had the multicast group been a node, b and k would be two hops apart both ways.
    let both = reached(&g, &blast("a", 2, Direction::Both));
    assert!(both.iter().all(|(name, _)| name != "k" && name != "?"), "{both:?}");
    let err = g.blast_radius(&blast("224.0.0.251", 1, Direction::Out)).err();
    assert!(matches!(&err, Some(GraphError::UnknownStart(m)) if m.contains("multicast")), "{err:?}");
}

#[test]
fn blast_radius_hops_by_direction() {
    let g = fixture();
    let cases: &[(&str, &str, u32, Direction, &[(&str, u32)])] = &[
        (
            "out from host a (both its IPs)",
            "a",
            3,
            Direction::Out,
            &[("b", 1), ("e", 1), ("h", 1), ("c", 2), ("d", 3), ("f", 3)],
        ),
        ("out, 1 hop", "a", 1, Direction::Out, &[("b", 1), ("e", 1), ("h", 1)]),
        ("out from one IP only", "10.0.0.1", 2, Direction::Out, &[("b", 1), ("e", 1), ("c", 2)]),
        ("out through the cycle", "c", 6, Direction::Out, &[("d", 1), ("f", 1), ("b", 2), ("e", 3)]),
        ("in: who reaches c", "c", 3, Direction::In, &[("b", 1), ("a", 2), ("f", 2), ("g", 3)]),
        ("in from a leaf", "d", 1, Direction::In, &[("c", 1)]),
        ("both ways", "d", 2, Direction::Both, &[("c", 1), ("b", 2), ("f", 2)]),
        ("nothing out of a sink", "d", 3, Direction::Out, &[]),
    ];
    for (what, start, hops, dir, want) in cases {
        assert_eq!(reached(&g, &blast(start, *hops, *dir)), pairs(want), "{what}");
    }
}

#[test]
fn blast_radius_reports_the_path_to_each_node() {
    let g = fixture();
    let r = g.blast_radius(&blast("a", 3, Direction::Out)).unwrap_or_else(|e| panic!("{e}"));
    let starts: Vec<IpAddr> = r.starts.iter().map(|s| s.ip).collect();
    assert_eq!(starts, vec![n("a"), n("a2")]);
    assert!(r.starts.iter().all(|s| s.hops == 0 && s.path.is_empty()));
    let path = |to: &str| -> Vec<(IpAddr, IpAddr, u16, String, String, bool)> {
        let x = r.reached.iter().find(|x| x.ip == n(to)).unwrap_or_else(|| panic!("{to} not reached"));
        assert_eq!(x.path.len() as u32, x.hops);
        x.path
            .iter()
            .map(|h| (h.from, h.to, h.dst_port, h.protocol.clone(), h.src_process.clone(), h.reversed))
            .collect()
    };
    let hop = |from: &str, to: &str, port: u16, proto: &str, process: &str| {
        (n(from), n(to), port, proto.to_string(), process.to_string(), false)
    };
    // a → b holds ssh/22 (1 h ago) and mstsc/3389 (2 h ago): the most recent is shown.
    assert_eq!(path("b"), vec![hop("a", "b", 22, "tcp", "ssh")]);
    assert_eq!(path("h"), vec![hop("a2", "h", 80, "tcp", "wget")]);
    assert_eq!(path("e"), vec![hop("a", "e", 443, "tcp", "chrome")]);
    assert_eq!(
        path("f"),
        vec![hop("a", "b", 22, "tcp", "ssh"), hop("b", "c", 5432, "tcp", "app"), hop("c", "f", 445, "tcp", "smb")]
    );
    let d = r.reached.iter().find(|x| x.ip == n("d")).map(|x| x.path.clone()).unwrap_or_default();
    let labels: Vec<(Option<String>, Option<String>)> =
        d.iter().map(|h| (h.from_host.clone(), h.to_host.clone())).collect();
    assert_eq!(
        labels,
        vec![
            (Some("a".into()), Some("b".into())),
            (Some("b".into()), Some("c".into())),
            (Some("c".into()), Some("d".into()))
        ]
    );
}

#[test]
fn inbound_paths_are_reversed_hops_in_traversal_order() {
    let g = fixture();
    let r = g.blast_radius(&blast("c", 3, Direction::In)).unwrap_or_else(|e| panic!("{e}"));
    let gnode = r.reached.iter().find(|x| x.ip == n("g")).map(|x| x.path.clone()).unwrap_or_default();
    let want = vec![
        Hop {
            from: n("c"),
            from_host: Some("c".into()),
            to: n("b"),
            to_host: Some("b".into()),
            reversed: true,
            dst_port: 5432,
            protocol: "tcp".into(),
            src_process: "app".into(),
        },
        Hop {
            from: n("b"),
            from_host: Some("b".into()),
            to: n("a"),
            to_host: Some("a".into()),
            reversed: true,
            dst_port: 22,
            protocol: "tcp".into(),
            src_process: "ssh".into(),
        },
        Hop {
            from: n("a"),
            from_host: Some("a".into()),
            to: n("g"),
            to_host: Some("g".into()),
            reversed: true,
            dst_port: 3389,
            protocol: "tcp".into(),
            src_process: "mstsc".into(),
        },
    ];
    assert_eq!(gnode, want);
}

#[test]
fn blast_radius_filters() {
    let g = fixture();
    let since = now() - Duration::days(1);
    let cases: Vec<(&str, BlastQuery, Vec<(String, u32)>)> = vec![
        (
            "ports 22 and 5432 only",
            BlastQuery { ports: vec![22, 5432], ..blast("a", 3, Direction::Out) },
            pairs(&[("b", 1), ("c", 2)]),
        ),
        (
            "protocol udp (case-insensitive) from b",
            BlastQuery { protocols: vec!["UDP".into()], ..blast("b", 3, Direction::Out) },
            pairs(&[("e", 1)]),
        ),
        (
            "an unknown protocol matches nothing",
            BlastQuery { protocols: vec!["sctp".into()], ..blast("a", 3, Direction::Out) },
            pairs(&[]),
        ),
        (
            "since: the old a → e flow no longer counts, e is two hops away via b",
            BlastQuery { since: Some(since), ..blast("a", 2, Direction::Out) },
            pairs(&[("b", 1), ("h", 1), ("c", 2), ("e", 2)]),
        ),
        (
            "since inbound: g → a is too old",
            BlastQuery { since: Some(since), ..blast("c", 3, Direction::In) },
            pairs(&[("b", 1), ("a", 2), ("f", 2)]),
        ),
        (
            "process start follows only that process for the first hop",
            blast("a/ssh", 3, Direction::Out),
            pairs(&[("b", 1), ("c", 2), ("e", 2), ("d", 3), ("f", 3)]),
        ),
        ("process start, another process", blast("a/chrome", 3, Direction::Out), pairs(&[("e", 1)])),
        (
            "process start both ways: first hop still only outbound from the process",
            blast("b/resolver", 2, Direction::Both),
            pairs(&[("e", 1), ("a", 2)]),
        ),
    ];
    for (what, q, want) in cases {
        assert_eq!(reached(&g, &q), want, "{what}");
    }
    // The hop shows a flow that passed the filter, not merely the newest.
    let q = BlastQuery { ports: vec![3389], ..blast("a", 1, Direction::Out) };
    let r = g.blast_radius(&q).unwrap_or_else(|e| panic!("{e}"));
    let hop = &r.reached[0].path[0];
    assert_eq!((hop.dst_port, hop.src_process.as_str()), (3389, "mstsc"));
}

#[test]
fn blast_radius_orders_by_hops_then_risk_then_ip_and_truncates() {
    let mut g = fixture();
    let q = blast("a", 3, Direction::Out);
    let plain = pairs(&[("b", 1), ("e", 1), ("h", 1), ("c", 2), ("d", 3), ("f", 3)]);
    assert_eq!(reached(&g, &q), plain);

    g.set_host_risk("f", RiskFacts { running_vulnerable: 1, ..Default::default() }); // base 10
    g.set_host_risk("D", RiskFacts { critical_cves: 1, ..Default::default() }); // base 5
    g.set_host_risk("h", RiskFacts { high_cves: 1, recent_alerts: 1, ..Default::default() }); // base 5
    g.set_host_risk("a", RiskFacts { critical_cves: 2, ..Default::default() }); // a start: base 10
    assert_eq!(reached(&g, &q), pairs(&[("h", 1), ("b", 1), ("e", 1), ("c", 2), ("f", 3), ("d", 3)]));

    let r = g.blast_radius(&q).unwrap_or_else(|e| panic!("{e}"));
    let f = r.reached.iter().find(|x| x.ip == n("f")).map(|x| x.risk.clone());
    assert_eq!(f.as_ref().map(|f| (f.base, f.facts.running_vulnerable)), Some((10, 1)));
    assert!(f.is_some_and(|f| (f.score - 10.0 / 3.0).abs() < 1e-9));
    let h = r.reached.iter().find(|x| x.ip == n("h")).map(|x| (x.risk.base, x.risk.score));
    assert_eq!(h, Some((5, 5.0)));
    assert_eq!(r.starts[0].risk.base, 10, "a start's score is its base");
    assert_eq!(r.starts[0].risk.score, 10.0);

    let limited = g.blast_radius(&BlastQuery { limit: 2, ..q.clone() }).unwrap_or_else(|e| panic!("{e}"));
    let ips: Vec<IpAddr> = limited.reached.iter().map(|x| x.ip).collect();
    assert_eq!(ips, vec![n("h"), n("b")]);
    assert!(limited.truncated);
    assert_eq!(limited.total_reached, 6);
    let all = g.blast_radius(&q).unwrap_or_else(|e| panic!("{e}"));
    assert!(!all.truncated);

    g.clear_risk();
    assert_eq!(reached(&g, &q), plain);
    assert_eq!(g.host_risk("f"), RiskFacts::default());
}

#[test]
fn errors_name_what_is_wrong() {
    let g = fixture();
    let err = |q: BlastQuery| g.blast_radius(&q).err().map(|e| e.to_string()).unwrap_or_default();
    let cases: &[(&str, BlastQuery, &str)] = &[
        ("unknown host", blast("nope", 2, Direction::Out), "unknown start: no host named 'nope' in the graph"),
        ("unknown ip", blast("10.9.9.9", 2, Direction::Out), "unknown start: no node with IP 10.9.9.9 in the graph"),
        (
            "unknown process",
            blast("a/nope", 2, Direction::Out),
            "unknown start: no connections from process 'nope' on host 'a'",
        ),
        (
            "process on unknown host",
            blast("zz/ssh", 2, Direction::Out),
            "unknown start: no host named 'zz' in the graph",
        ),
        (
            "process that only receives",
            blast("b/ssh", 2, Direction::Out),
            "unknown start: no connections from process 'ssh' on host 'b'",
        ),
        ("hops 0", blast("a", 0, Direction::Out), "hops must be between 1 and 6, got 0"),
        ("hops 7", blast("a", 7, Direction::Out), "hops must be between 1 and 6, got 7"),
    ];
    for (what, q, want) in cases {
        assert_eq!(err(q.clone()), *want, "{what}");
    }
    assert!(matches!(g.blast_radius(&blast("a/ssh", 2, Direction::In)), Err(GraphError::InvalidQuery(_))));
    assert!(g.blast_radius(&blast("a", MAX_HOPS, Direction::Out)).is_ok());
}

#[test]
fn start_and_direction_parse() {
    let cases: &[(&str, Option<Start>)] = &[
        ("web-01", Some(Start::Host("web-01".into()))),
        ("  web-01 ", Some(Start::Host("web-01".into()))),
        ("10.0.0.5", Some(Start::Ip(ip("10.0.0.5")))),
        ("fe80::1", Some(Start::Ip(ip("fe80::1")))),
        ("web-01/sshd", Some(Start::Process { host: "web-01".into(), name: "sshd".into() })),
        ("web-01//usr/sbin/sshd", Some(Start::Process { host: "web-01".into(), name: "/usr/sbin/sshd".into() })),
        ("", None),
        ("   ", None),
        ("/sshd", None),
        ("web-01/", None),
    ];
    for (input, want) in cases {
        assert_eq!(input.parse::<Start>().ok(), *want, "{input:?}");
    }
    for s in ["web-01", "10.0.0.5", "web-01/sshd"] {
        assert_eq!(s.parse::<Start>().map(|x| x.to_string()).ok().as_deref(), Some(s));
    }
    let dirs: &[(&str, Option<Direction>)] = &[
        ("out", Some(Direction::Out)),
        ("Outbound", Some(Direction::Out)),
        ("in", Some(Direction::In)),
        ("INBOUND", Some(Direction::In)),
        ("both", Some(Direction::Both)),
        ("sideways", None),
    ];
    for (input, want) in dirs {
        assert_eq!(input.parse::<Direction>().ok(), *want, "{input:?}");
    }
    assert_eq!(
        "sideways".parse::<Direction>().err().map(|e| e.to_string()).as_deref(),
        Some("invalid direction 'sideways': expected out, in or both")
    );
}

#[test]
fn upsert_replaces_values_and_skips_stale_rows() {
    let mut g = fixture();
    let mut r = rec("a", "b", 22, "tcp", "ssh", 0);
    r.count = 99;
    r.bytes = 12345;
    assert_eq!(g.upsert(r.clone()), Upsert::Replaced);
    assert_eq!(g.edge_count(), 10, "same key, same flow");
    let flows = g.flows(n("a"), n("b"));
    let ssh = flows.iter().find(|f| f.dst_port == 22).cloned();
    assert_eq!(ssh.as_ref().map(|f| (f.count, f.bytes, f.last_seen)), Some((99, 12345, now())));

    // Protocol case does not make a new key.
    let mut upper = r.clone();
    upper.protocol = "TCP".into();
    upper.count = 100;
    assert_eq!(g.upsert(upper), Upsert::Replaced);
    assert_eq!(g.edge_count(), 10);

    // An older copy of the row is not applied.
    let mut old = rec("a", "b", 22, "tcp", "ssh", 5);
    old.count = 1;
    assert_eq!(g.upsert(old), Upsert::Stale);
    let ssh = g.flows(n("a"), n("b")).into_iter().find(|f| f.dst_port == 22).map(|f| f.count);
    assert_eq!(ssh, Some(100));

    // A new process on the same pair is a new flow on the same link.
    assert_eq!(g.upsert(rec("a", "b", 22, "tcp", "scp", 0)), Upsert::Inserted);
    assert_eq!((g.edge_count(), g.link_count()), (11, 9));
    assert_eq!(g.flows(n("a"), n("b")).len(), 3);
}

#[test]
fn host_labels_latest_non_empty_wins() {
    let mut g = Graph::new();
    let mut r = rec("a", "b", 22, "tcp", "ssh", 10);
    r.dst_host = Some("old-name".into());
    g.upsert(r);
    let mut r = rec("a", "b", 80, "tcp", "curl", 5);
    r.dst_host = Some("New-Name".into());
    g.upsert(r);
    assert_eq!(g.host_of(n("b")), Some("new-name"));
    assert!(g.host_ips("old-name").is_empty());
    assert_eq!(g.host_ips("new-name"), vec![n("b")]);
    // An older record does not relabel; an empty or missing name never does.
    for name in [Some("older"), Some("  "), None] {
        let mut r = rec("a", "b", 443, "tcp", "x", 7);
        r.dst_host = name.map(str::to_string);
        g.upsert(r);
        let mut r = rec("a", "b", 444, "tcp", "x", 0);
        r.dst_host = name.filter(|s| s.trim().is_empty()).map(str::to_string);
        g.upsert(r);
    }
    assert_eq!(g.host_of(n("b")), Some("new-name"));
    assert!(g.host_ips("older").is_empty());
    // The process start uses the labelled IPs.
    let q = blast("a/curl", 1, Direction::Out);
    assert_eq!(g.blast_radius(&q).map(|r| r.reached.len()).ok(), Some(1));
}

#[test]
fn remove_older_than_drops_flows_links_and_isolated_nodes() {
    let mut g = fixture();
    let dropped = g.remove_older_than(now() - Duration::days(1));
    assert_eq!(dropped, 2, "a → e (3 days) and g → a (2 days)");
    assert_eq!(g.edge_count(), 8);
    assert_eq!(g.link_count(), 7);
    assert!(!g.contains_ip(n("g")), "g had no other link");
    assert!(g.host_ips("g").is_empty());
    assert!(g.contains_ip(n("e")), "e is still linked from b");
    assert!(g.flows(n("a"), n("e")).is_empty());
    assert_eq!(g.node_count(), 8);
    assert_eq!(reached(&g, &blast("c", 3, Direction::In)), pairs(&[("b", 1), ("a", 2), ("f", 2)]));
    assert_eq!(reached(&g, &blast("a", 2, Direction::Out)), pairs(&[("b", 1), ("h", 1), ("c", 2), ("e", 2)]));
    // Dropping a flow of a two-flow link keeps the link.
    assert_eq!(g.remove_older_than(now() - Duration::minutes(90)), 1); // a → b mstsc (2 h)
    assert_eq!(g.flows(n("a"), n("b")).len(), 1);
    // Everything goes; the graph is empty and usable again.
    assert_eq!(g.remove_older_than(now() + Duration::hours(1)), 7);
    assert_eq!((g.node_count(), g.edge_count(), g.link_count()), (0, 0, 0));
    assert!(g.host_ips("a").is_empty());
    g.upsert(rec("b", "c", 1, "tcp", "p", 0));
    assert_eq!(reached(&g, &blast("b", 1, Direction::Out)), pairs(&[("c", 1)]));
}

#[test]
fn links_and_nodes_come_back_after_expiry() {
    let mut g = fixture();
    g.remove_older_than(now() - Duration::days(1)); // a → e and g → a (and with it g) go
    assert_eq!(g.upsert(rec("a", "e", 443, "tcp", "chrome", 0)), Upsert::Inserted);
    assert_eq!(g.upsert(rec("g", "a", 3389, "tcp", "mstsc", 0)), Upsert::Inserted);
    assert_eq!((g.node_count(), g.edge_count(), g.link_count()), (9, 10, 9));
    assert_eq!(g.host_ips("g"), vec![n("g")]);
    assert_eq!(reached(&g, &blast("a", 1, Direction::Out)), pairs(&[("b", 1), ("e", 1), ("h", 1)]));
    assert_eq!(reached(&g, &blast("a", 1, Direction::In)), pairs(&[("g", 1)]));
    assert_eq!(path_names(&g, "g", "e", 5, 3, Direction::Out), vec!["g a e", "g a b e"]);
}

/// After expiries (with and without compaction) and rows coming back, the
/// graph answers exactly like one built from scratch from the surviving rows.
#[test]
fn expiry_and_revival_match_a_fresh_build() {
    let mut records = synthetic::edges(2_000, 20_000, 5, now());
    let mut g = Graph::new();
    g.upsert_many(records.clone());
    // First a small expiry (no compaction), then a large one (compaction), with rows returning in between.
    for (cutoff, back) in [(now() - Duration::hours(23), 500), (now() - Duration::hours(6), 3_000)] {
        let dropped = g.remove_older_than(cutoff);
        assert_eq!(
            dropped,
            records.iter().filter(|r| r.last_seen < cutoff && !vigil_graph::model::is_excluded(r.dst_ip)).count()
        );
        records.retain(|r| r.last_seen >= cutoff);
        let mut returning = synthetic::edges(2_000, 20_000, 5, now());
        returning.retain(|r| r.last_seen < cutoff);
        returning.truncate(back);
        for r in &mut returning {
            r.last_seen = now();
        }
        g.upsert_many(returning.clone());
        records.extend(returning);
    }
    let mut fresh = Graph::new();
    fresh.upsert_many(records.clone());
    assert_eq!(
        (g.node_count(), g.edge_count(), g.link_count()),
        (fresh.node_count(), fresh.edge_count(), fresh.link_count())
    );
    for i in [3usize, 50, 400, 1_000, 1_999] {
        let host = synthetic::host_name(i);
        for dir in [Direction::Out, Direction::In, Direction::Both] {
            let q = BlastQuery { limit: usize::MAX, ..blast(&host, 3, dir) };
            let (a, b) = (g.blast_radius(&q), fresh.blast_radius(&q));
            let key = |r: &vigil_graph::BlastRadius| -> Vec<(IpAddr, u32)> {
                r.reached.iter().map(|x| (x.ip, x.hops)).collect()
            };
            assert_eq!(a.as_ref().map(key).ok(), b.as_ref().map(key).ok(), "{host} {dir}");
            assert_eq!(a.is_err(), b.is_err());
        }
        let to = Start::Host(synthetic::host_name(i * 7 % 2_000 + 1));
        let from = Start::Host(host);
        let ips = |g: &Graph| {
            g.paths(&from, &to, 10, 4, Direction::Both).map(|ps| ps.iter().map(|p| p.ips()).collect::<Vec<_>>()).ok()
        };
        assert_eq!(ips(&g), ips(&fresh));
    }
}

/// ```text
///   s ──p1──▶ x1 ──▶ t          w ──▶ s,  w ──▶ t  (only usable both ways)
///   s ──p2──▶ x2 ──▶ t
///   x1 ──▶ x2,  x2 ──▶ y
///   s ──p2──▶ y ──▶ z ──▶ t
/// ```
fn path_fixture() -> Graph {
    let mut g = Graph::new();
    for (a, b, process) in [
        ("s", "x1", "p1"),
        ("s", "x2", "p2"),
        ("s", "y", "p2"),
        ("x1", "t", "q"),
        ("x2", "t", "q"),
        ("x1", "x2", "q"),
        ("x2", "y", "q"),
        ("y", "z", "q"),
        ("z", "t", "q"),
        ("w", "s", "q"),
        ("w", "t", "q"),
    ] {
        g.upsert(rec(a, b, 443, "tcp", process, 1));
    }
    g
}

fn path_names(g: &Graph, from: &str, to: &str, k: usize, max_hops: u32, dir: Direction) -> Vec<String> {
    let names: HashMap<IpAddr, &str> =
        ["s", "x1", "x2", "y", "z", "w", "t", "a", "a2", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .map(|&s| (n(s), s))
            .collect();
    let parse = |s: &str| s.parse::<Start>().unwrap_or(Start::Host(s.into()));
    g.paths(&parse(from), &parse(to), k, max_hops, dir)
        .unwrap_or_else(|e| panic!("{from} → {to}: {e}"))
        .iter()
        .map(|p| {
            assert_eq!(p.nodes.len(), p.hops.len() + 1);
            p.ips().iter().map(|ip| names.get(ip).copied().unwrap_or("?")).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn shortest_and_top_k_paths() {
    let g = path_fixture();
    let all_out = ["s x1 t", "s x2 t", "s x1 x2 t", "s y z t", "s x2 y z t", "s x1 x2 y z t"];
    let all_in = ["t x1 s", "t x2 s", "t x2 x1 s", "t z y s", "t z y x2 s", "t z y x2 x1 s"];
    let cases: &[(&str, &str, &str, usize, u32, Direction, &[&str])] = &[
        ("shortest only", "s", "t", 1, 6, Direction::Out, &all_out[..1]),
        ("top 3", "s", "t", 3, 6, Direction::Out, &all_out[..3]),
        ("all, k larger than exists", "s", "t", 20, 6, Direction::Out, &all_out),
        ("bounded by max_hops", "s", "t", 20, 3, Direction::Out, &all_out[..4]),
        ("max_hops below the shortest", "s", "t", 5, 1, Direction::Out, &[]),
        ("inbound: against the connections", "t", "s", 20, 6, Direction::In, &all_in),
        ("no outbound way back", "t", "s", 5, 6, Direction::Out, &[]),
        ("both ways adds s ← w → t", "s", "t", 3, 6, Direction::Both, &["s x1 t", "s x2 t", "s w t"]),
        (
            "process start: first hop by p1 only",
            "s/p1",
            "t",
            20,
            6,
            Direction::Out,
            &["s x1 t", "s x1 x2 t", "s x1 x2 y z t"],
        ),
        ("by IP", "10.1.0.3", "10.1.0.9", 5, 6, Direction::Out, &["x2 t", "x2 y z t"]),
    ];
    for (what, from, to, k, max_hops, dir, want) in cases {
        assert_eq!(path_names(&g, from, to, *k, *max_hops, *dir), *want, "{what}");
    }
    // Both ways, the step through w runs against its connection.
    let both = g
        .paths(&Start::Host("s".into()), &Start::Host("t".into()), 3, 6, Direction::Both)
        .unwrap_or_else(|e| panic!("{e}"));
    let via_w: Vec<(bool, u16, String)> =
        both[2].hops.iter().map(|h| (h.reversed, h.dst_port, h.src_process.clone())).collect();
    assert_eq!(via_w, vec![(true, 443, "q".to_string()), (false, 443, "q".to_string())]);
    let first = g
        .paths(&"s/p1".parse().unwrap_or(Start::Host("s".into())), &Start::Host("t".into()), 1, 6, Direction::Out)
        .unwrap_or_default();
    assert_eq!(first.first().map(|p| p.hops[0].src_process.as_str()), Some("p1"));
}

#[test]
fn paths_between_multi_address_hosts_and_errors() {
    let g = fixture();
    assert_eq!(path_names(&g, "a", "h", 5, 6, Direction::Out), vec!["a2 h"]);
    assert_eq!(path_names(&g, "g", "a", 5, 6, Direction::Out), vec!["g a"], "stops at a's first address");
    let start = Start::Host("a".into());
    let cases: &[(Start, usize, u32, Direction, &str)] = &[
        (Start::Host("nope".into()), 1, 3, Direction::Out, "unknown target: no host named 'nope' in the graph"),
        (Start::Host("b".into()), 0, 3, Direction::Out, "k must be between 1 and 100, got 0"),
        (Start::Host("b".into()), MAX_PATHS + 1, 3, Direction::Out, "k must be between 1 and 100, got 101"),
        (Start::Host("b".into()), 1, 0, Direction::Out, "hops must be between 1 and 6, got 0"),
        (Start::Host("b".into()), 1, 7, Direction::Out, "hops must be between 1 and 6, got 7"),
    ];
    for (to, k, hops, dir, want) in cases {
        let got = g.paths(&start, to, *k, *hops, *dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(got, *want);
    }
    let proc_target = Start::Process { host: "b".into(), name: "app".into() };
    assert!(matches!(g.paths(&start, &proc_target, 1, 3, Direction::Out), Err(GraphError::InvalidQuery(_))));
    let from_unknown = g.paths(&Start::Ip(ip("10.9.9.9")), &start, 1, 3, Direction::Out).err();
    assert!(matches!(from_unknown, Some(GraphError::UnknownStart(_))));
}

#[test]
fn neighbourhood_for_the_ui() {
    let mut g = fixture();
    g.set_host_risk("f", RiskFacts { recent_alerts: 1, ..Default::default() });
    let hood = g.neighbourhood(&Start::Host("c".into()), 1, 50).unwrap_or_else(|e| panic!("{e}"));
    let nodes: Vec<(IpAddr, u32)> = hood.nodes.iter().map(|x| (x.ip, x.hops)).collect();
    assert_eq!(nodes, vec![(n("c"), 0), (n("f"), 1), (n("b"), 1), (n("d"), 1)]);
    let edges: Vec<(String, String, Vec<u16>)> =
        hood.edges.iter().map(|e| (e.source.clone(), e.target.clone(), e.ports.clone())).collect();
    let e = |a: &str, b: &str, p: u16| (n(a).to_string(), n(b).to_string(), vec![p]);
    assert_eq!(edges, vec![e("b", "c", 5432), e("c", "d", 443), e("c", "f", 445), e("f", "b", 445)]);
    assert!(!hood.truncated);
    let json = serde_json::to_value(&hood).unwrap_or_default();
    assert_eq!(json["nodes"][1]["id"], "10.0.0.6");
    assert_eq!(json["nodes"][1]["risk"]["facts"]["recent_alerts"], 1);
    assert_eq!(json["edges"][0]["source"], "10.0.0.2");
    assert_eq!(json["edges"][0]["protocols"][0], "tcp");

    // Two flows on a → b are summed into one edge.
    let hood = g.neighbourhood(&Start::Host("b".into()), 1, 50).unwrap_or_else(|e| panic!("{e}"));
    let ab = hood.edges.iter().find(|e| e.source == n("a").to_string() && e.target == n("b").to_string());
    assert_eq!(ab.map(|e| (e.ports.clone(), e.flows, e.count, e.bytes)), Some((vec![22, 3389], 2, 20, 2000)));
    assert_eq!(ab.map(|e| e.processes.clone()), Some(vec!["mstsc".to_string(), "ssh".to_string()]));

    let small = g.neighbourhood(&Start::Host("c".into()), 2, 2).unwrap_or_else(|e| panic!("{e}"));
    let nodes: Vec<IpAddr> = small.nodes.iter().map(|x| x.ip).collect();
    assert_eq!(nodes, vec![n("c"), n("f")]);
    assert!(small.truncated);
    assert_eq!(small.edges.len(), 1, "only c → f is between listed nodes");
    assert!(matches!(g.neighbourhood(&Start::Host("zz".into()), 1, 5), Err(GraphError::UnknownStart(_))));
    assert!(matches!(g.neighbourhood(&Start::Host("c".into()), 9, 5), Err(GraphError::HopsOutOfRange { .. })));
}

#[test]
fn synthetic_is_reproducible_and_enterprise_shaped() {
    let a = synthetic::edges(2_000, 20_000, 7, now());
    assert_eq!(a.len(), 20_000);
    assert_eq!(a, synthetic::edges(2_000, 20_000, 7, now()));
    assert_ne!(a, synthetic::edges(2_000, 20_000, 8, now()));
    let keys: HashSet<_> = a.iter().map(|r| (r.src_ip, &r.src_process, r.dst_ip, r.dst_port, &r.protocol)).collect();
    assert_eq!(keys.len(), a.len(), "distinct primary keys");
    for r in &a {
        assert!(r.last_seen <= now() && r.last_seen >= now() - Duration::hours(24), "{r:?}");
        assert!(r.first_seen <= r.last_seen && r.first_seen >= now() - Duration::hours(24), "{r:?}");
        assert!(matches!(r.src_ip, IpAddr::V4(v) if v.octets()[0] == 10));
        assert!(r.count >= 1 && r.bytes >= r.count);
        assert!(r.src_host.as_deref().is_some_and(|h| h.starts_with("host-") && h.len() >= 10));
    }
    // Most rows go to a small set of servers.
    let mut indegree: HashMap<IpAddr, usize> = HashMap::new();
    for r in &a {
        *indegree.entry(r.dst_ip).or_default() += 1;
    }
    let mut top: Vec<usize> = indegree.values().copied().collect();
    top.sort_unstable_by(|x, y| y.cmp(x));
    let top_share = top.iter().take(40).sum::<usize>() as f64 / a.len() as f64;
    assert!(top_share > 0.5, "top 2 % of destinations take {top_share:.2} of rows");

    let mut g = Graph::new();
    let s = g.upsert_many(a.clone());
    let noise = a.iter().filter(|r| vigil_graph::model::is_excluded(r.dst_ip)).count();
    assert!(noise > 0);
    assert_eq!((s.inserted, s.ignored, s.replaced, s.stale), (a.len() - noise, noise, 0, 0));
    assert!(g.node_count() > 1_900);
    assert!(g.host_ips(&synthetic::host_name(0)).len() <= 2);
    assert!(synthetic::edges(1, 10, 1, now()).is_empty());
    assert_eq!(synthetic::edges(5, 10, 1, now()).len(), 10);
}

/// Adjacency from records, the way the graph should see them.
fn adjacency(records: &[EdgeRecord]) -> (HashMap<IpAddr, BTreeSet<IpAddr>>, HashMap<IpAddr, BTreeSet<IpAddr>>) {
    let (mut out, mut inn): (HashMap<_, BTreeSet<_>>, HashMap<_, BTreeSet<_>>) = Default::default();
    for r in records {
        if vigil_graph::model::is_excluded(r.src_ip)
            || vigil_graph::model::is_excluded(r.dst_ip)
            || r.src_ip == r.dst_ip
        {
            continue;
        }
        out.entry(r.src_ip).or_default().insert(r.dst_ip);
        inn.entry(r.dst_ip).or_default().insert(r.src_ip);
    }
    (out, inn)
}

fn neighbours(
    adj: &(HashMap<IpAddr, BTreeSet<IpAddr>>, HashMap<IpAddr, BTreeSet<IpAddr>>),
    v: IpAddr,
    dir: Direction,
) -> BTreeSet<IpAddr> {
    let mut s = BTreeSet::new();
    if dir != Direction::In {
        s.extend(adj.0.get(&v).into_iter().flatten().copied());
    }
    if dir != Direction::Out {
        s.extend(adj.1.get(&v).into_iter().flatten().copied());
    }
    s
}

#[test]
fn blast_radius_matches_a_naive_bfs_on_synthetic_graphs() {
    let records = synthetic::edges(3_000, 15_000, 11, now());
    let mut g = Graph::new();
    g.upsert_many(records.clone());
    let keys: HashSet<(IpAddr, IpAddr, u16, &str)> =
        records.iter().map(|r| (r.src_ip, r.dst_ip, r.dst_port, r.src_process.as_str())).collect();
    let since = now() - Duration::hours(18);
    let ports = vec![53, 88, 389, 80, 443, 445, 22, 3389, 5432];
    // (host, direction, hops, filtered, at least this many reached — so no case is vacuous)
    let cases = [
        (5usize, Direction::Out, 3, false, 3),
        (77, Direction::In, 3, false, 4),
        (140, Direction::Both, 3, false, 2_900), // through the servers: the last level goes bottom-up
        (141, Direction::Both, 4, false, 2_900),
        (2_500, Direction::Out, 6, false, 50),
        (1_234, Direction::In, 5, false, 8),
        (140, Direction::Both, 3, true, 2_500),
        (141, Direction::Both, 4, true, 2_500), // filtered, the last level bottom-up
        (1_500, Direction::Out, 4, true, 6),
        (61, Direction::Out, 4, true, 300), // the scanner
        (7, Direction::In, 4, true, 190),
    ];
    for (i, dir, hops, filtered, at_least) in cases {
        let kept: Vec<EdgeRecord> = records
            .iter()
            .filter(|r| !filtered || (r.last_seen >= since && ports.contains(&r.dst_port)))
            .cloned()
            .collect();
        let adj = adjacency(&kept);
        let start = synthetic::host_ip(i);
        let mut dist: HashMap<IpAddr, u32> = HashMap::from([(start, 0)]);
        let mut q = VecDeque::from([start]);
        while let Some(v) = q.pop_front() {
            let d = dist[&v];
            if d == hops {
                continue;
            }
            for w in neighbours(&adj, v, dir) {
                dist.entry(w).or_insert_with(|| {
                    q.push_back(w);
                    d + 1
                });
            }
        }
        dist.remove(&start);
        let mut q = BlastQuery { limit: usize::MAX, ..blast(&start.to_string(), hops, dir) };
        if filtered {
            q.since = Some(since);
            q.ports = ports.clone();
        }
        let r = g.blast_radius(&q).unwrap_or_else(|e| panic!("{e}"));
        let got: HashMap<IpAddr, u32> = r.reached.iter().map(|x| (x.ip, x.hops)).collect();
        assert_eq!(got, dist, "start {start} {dir} {hops} filtered {filtered}");
        assert!(dist.len() >= at_least, "start {start} {dir}: only {} reached", dist.len());
        assert_eq!(r.total_reached, dist.len());
        for x in &r.reached {
            assert_eq!(x.path.len() as u32, x.hops);
            let mut at = start;
            for h in &x.path {
                assert_eq!(h.from, at);
                let (src, dst) = if h.reversed { (h.to, h.from) } else { (h.from, h.to) };
                assert!(keys.contains(&(src, dst, h.dst_port, h.src_process.as_str())), "hop {h:?} is not a record");
                assert!(!filtered || ports.contains(&h.dst_port), "hop {h:?} is not on a filtered port");
                at = h.to;
            }
            assert_eq!(at, x.ip);
        }
    }
}

#[test]
fn paths_match_a_naive_enumeration_on_synthetic_graphs() {
    let records = synthetic::edges(60, 240, 3, now());
    let adj = adjacency(&records);
    let mut g = Graph::new();
    g.upsert_many(records.clone());
    let ips: Vec<IpAddr> = {
        let mut v: Vec<IpAddr> =
            adj.0.keys().chain(adj.1.keys()).copied().collect::<BTreeSet<_>>().into_iter().collect();
        v.truncate(25);
        v
    };
    let mut compared = 0;
    for (i, &from) in ips.iter().enumerate() {
        for &to in ips.iter().skip(i + 1).step_by(3) {
            for dir in [Direction::Out, Direction::Both] {
                let max = if dir == Direction::Both { 3 } else { 4 };
                // Every loopless path of 1..=max hops, by length then addresses.
                let mut all: Vec<Vec<IpAddr>> = Vec::new();
                let mut stack = vec![vec![from]];
                while let Some(p) = stack.pop() {
                    let last = *p.last().unwrap_or(&from);
                    if last == to {
                        all.push(p);
                        continue;
                    }
                    if p.len() > max {
                        continue;
                    }
                    for w in neighbours(&adj, last, dir) {
                        if !p.contains(&w) {
                            let mut q = p.clone();
                            q.push(w);
                            stack.push(q);
                        }
                    }
                }
                all.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
                all.truncate(MAX_PATHS);
                let got: Vec<Vec<IpAddr>> = g
                    .paths(&Start::Ip(from), &Start::Ip(to), MAX_PATHS, max as u32, dir)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .iter()
                    .map(|p| p.ips())
                    .collect();
                assert_eq!(got, all, "{from} → {to} {dir}");
                compared += all.len();
            }
        }
    }
    assert!(compared > 50, "only {compared} paths compared");
}
