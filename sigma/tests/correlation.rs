//! Sigma correlation rules → hunts with a `correlation` object (the shape
//! the hunts crate runs), their base rules resolved by name or id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use vigil_sigma::{convert, convert_all, Mapping, Options, Source};

const BASE: &str = r#"
title: Failed logon
id: 11111111-2222-3333-4444-555555555555
name: failed_logon
status: test
author: Someone
references: [https://example.invalid/x]
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4625}
    condition: selection
level: low
"#;

#[test]
fn event_count_with_group_by() {
    let yaml = format!(
        "{BASE}---
title: Many failed logons
id: aaaaaaaa-2222-3333-4444-555555555555
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [Computer, User]
    timespan: 5m
    condition: {{gte: 10}}
level: high
tags: [attack.t1110]
"
    );
    let out = convert(&yaml, &Mapping::builtin()).unwrap();
    assert_eq!(out.len(), 2);
    let corr = out.iter().find(|c| c.correlation).unwrap();
    assert_eq!(corr.name, "Many failed logons (aaaaaaaa)");
    let base_query = out.iter().find(|c| !c.correlation).unwrap().query.clone();
    assert_eq!(corr.spec["query"], json!(base_query));
    assert_eq!(
        corr.spec["correlation"],
        json!({"type": "event_count", "rules": [{"name": "failed_logon", "query": base_query}],
               "group_by": ["host", "user"], "timespan": "5m",
               "condition": {"gte": 10}})
    );
    assert_eq!(corr.spec["severity"], "high");
    assert_eq!(corr.spec["meta"]["sigma"]["tags"], json!(["attack.t1110"]));

    // generate: false (the default) keeps the base rule out of the hunts.
    let r = convert_all(&[Source { origin: "x.yml", yaml: &yaml }], &Mapping::builtin(), &Options::default());
    assert_eq!((r.converted.len(), r.referenced_only.len(), r.failed.len()), (1, 1, 0));
    let with = yaml.replace("timespan: 5m", "timespan: 5m\n    generate: true");
    let r = convert_all(&[Source { origin: "x.yml", yaml: &with }], &Mapping::builtin(), &Options::default());
    assert_eq!((r.converted.len(), r.referenced_only.len()), (2, 0));
}

#[test]
fn value_count_temporal_and_references_across_files() {
    let second = r#"
title: Process started
id: 99999999-2222-3333-4444-555555555555
logsource: {product: windows, category: process_creation}
detection:
    selection: {Image|endswith: '\whoami.exe'}
    condition: selection
"#;
    let vc = r#"
title: Many users
correlation:
    type: value_count
    rules: [11111111-2222-3333-4444-555555555555]
    group-by: [Computer]
    timespan: 1h
    condition: {field: User, gt: 3}
"#;
    let temporal = r#"
title: Logon failure then whoami
correlation:
    type: temporal_ordered
    rules: [failed_logon, 99999999-2222-3333-4444-555555555555]
    group-by: [Computer]
    timespan: 10m
"#;
    let sources = [
        Source { origin: "base.yml", yaml: BASE },
        Source { origin: "second.yml", yaml: second },
        Source { origin: "vc.yml", yaml: vc },
        Source { origin: "t.yml", yaml: temporal },
    ];
    let r = convert_all(&sources, &Mapping::builtin(), &Options { schedule: "0 * * * *".into(), enabled: false });
    assert!(r.failed.is_empty(), "{}", r.render());
    let vc = r.converted.iter().find(|c| c.title == "Many users").unwrap();
    assert_eq!(vc.spec["correlation"]["field"], "user");
    assert_eq!(vc.spec["correlation"]["condition"], json!({"gt": 3}));
    assert_eq!(vc.spec["schedule"], "0 * * * *");
    assert_eq!(vc.spec["enabled"], false);
    for c in &r.converted {
        let spec: vigil_hunts::HuntSpec = serde_json::from_value(c.spec.clone()).unwrap();
        spec.validate(10_000, &vigil_hunts::DeliveryConfig::default()).unwrap_or_else(|e| panic!("{}: {e}", c.title));
    }
    let t = r.converted.iter().find(|c| c.title.starts_with("Logon failure")).unwrap();
    assert_eq!(t.spec["correlation"]["type"], "temporal_ordered");
    assert_eq!(t.spec["correlation"]["rules"].as_array().unwrap().len(), 2);
    assert_eq!(t.spec["correlation"]["condition"], json!({"gte": 2}));
}

#[test]
fn correlation_failures_are_named() {
    let fail = |corr: &str| {
        let yaml = format!("{BASE}---\ntitle: C\ncorrelation:\n{corr}");
        let r = convert_all(&[Source { origin: "x", yaml: &yaml }], &Mapping::builtin(), &Options::default());
        r.failed.iter().map(|f| f.error.reason()).collect::<Vec<_>>()
    };
    assert_eq!(
        fail("    type: value_sum\n    rules: [failed_logon]\n    timespan: 5m\n    condition: {gte: 1}\n"),
        ["unsupported_correlation"]
    );
    assert_eq!(
        fail("    type: event_count\n    rules: [nope]\n    timespan: 5m\n    condition: {gte: 1}\n"),
        ["unknown_rule_reference"]
    );
    assert_eq!(
        fail("    type: event_count\n    rules: [failed_logon]\n    timespan: soon\n    condition: {gte: 1}\n"),
        ["bad_correlation"]
    );
    assert_eq!(
        fail("    type: value_count\n    rules: [failed_logon]\n    timespan: 5m\n    condition: {gte: 1}\n"),
        ["bad_correlation"]
    );
    assert_eq!(fail("    type: temporal\n    rules: [failed_logon]\n    timespan: 5m\n"), ["bad_correlation"]);
    // Upper bounds are refused (the hunts crate cannot run them).
    assert_eq!(
        fail("    type: event_count\n    rules: [failed_logon]\n    timespan: 5m\n    condition: {gte: 1, lte: 9}\n"),
        ["bad_correlation"]
    );
    assert_eq!(
        fail("    type: event_count\n    rules: [failed_logon]\n    timespan: 5m\n    condition: {eq: 3}\n"),
        ["bad_correlation"]
    );
    // Raw fields cannot be grouped by; event_count counts one rule.
    assert_eq!(
        fail("    type: event_count\n    rules: [failed_logon]\n    group-by: [TargetUserName]\n    timespan: 5m\n    condition: {gte: 1}\n"),
        ["bad_correlation"]
    );
    assert_eq!(
        fail("    type: event_count\n    rules: [failed_logon, failed_logon]\n    timespan: 5m\n    condition: {gte: 1}\n"),
        ["bad_correlation"]
    );
    // A base rule that fails makes its correlation fail too, naming it.
    let broken = BASE.replace("EventID: 4625", "EventID|expand: X");
    let yaml = format!("{broken}---\ntitle: C\ncorrelation:\n    type: event_count\n    rules: [failed_logon]\n    timespan: 5m\n    condition: {{gte: 1}}\n");
    let r = convert_all(&[Source { origin: "x", yaml: &yaml }], &Mapping::builtin(), &Options::default());
    let mut reasons: Vec<_> = r.failed.iter().map(|f| f.error.reason()).collect();
    reasons.sort();
    assert_eq!(reasons, ["base_rule_failed", "unsupported_modifier"]);
}

#[test]
fn metadata_and_collections() {
    let out = convert(BASE, &Mapping::builtin()).unwrap();
    let s = &out[0].spec;
    assert_eq!(s["name"], "Failed logon (11111111)");
    assert_eq!(s["severity"], "low");
    assert_eq!(s["schedule"], "*/5 * * * *");
    assert_eq!(s["group_by"], json!([]));
    let m = &s["meta"]["sigma"];
    assert_eq!(m["id"], "11111111-2222-3333-4444-555555555555");
    assert_eq!(m["author"], "Someone");
    assert_eq!(m["references"], json!(["https://example.invalid/x"]));
    assert_eq!(m["logsource"], json!({"product": "windows", "service": "security"}));
    assert!(s["description"].as_str().unwrap().contains("Someone"));
    // informational → info
    let info = BASE.replace("level: low", "level: informational");
    assert_eq!(convert(&info, &Mapping::builtin()).unwrap()[0].spec["severity"], "info");
    // A legacy collection: `action: global` then two rules.
    let coll = r#"
action: global
title: Collection
logsource: {product: windows, category: process_creation}
detection:
    condition: selection
---
id: c1
detection:
    selection: {Image|endswith: '\a.exe'}
---
id: c2
detection:
    selection: {Image|endswith: '\b.exe'}
"#;
    let out = convert(coll, &Mapping::builtin()).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[1].query.ends_with(r#"process_path:"%\\b.exe""#), "{}", out[1].query);
    // A user mapping replaces the built-in one.
    let m = Mapping::from_yaml("logsources:\n  - product: windows\n    service: security\n    filter: 'source:security'\n    fallback: 'raw.{field}'\n").unwrap();
    let out = convert(BASE, &m).unwrap();
    assert_eq!(out[0].query, r#"(source:security) AND raw.EventID:"4625""#);
    assert!(Mapping::from_yaml("logsources: [{filter: x}]").is_err());
    assert_eq!(convert("title: x\n", &Mapping::builtin()).unwrap_err().error.reason(), "unsupported_rule_type");
    assert_eq!(convert(":\n  - [", &Mapping::builtin()).unwrap_err().error.reason(), "invalid_yaml");
}

#[test]
fn oversized_rules_split_into_parts() {
    let values: Vec<String> = (0..1500).map(|i| format!("            - 'package-number-{i}@1.0.{i}'")).collect();
    let rule = format!(
        "title: Big\nid: big00000-1111\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n    img: {{Image|endswith: '\\node.exe'}}\n    pkgs:\n        CommandLine|contains:\n{}\n    condition: img and pkgs\n",
        values.join("\n")
    );
    let out = convert(&rule, &Mapping::builtin()).unwrap();
    assert!(out.len() >= 3, "{}", out.len());
    let n = out.len();
    for (k, c) in out.iter().enumerate() {
        assert!(c.query.len() <= 16 * 1024);
        assert!(c.query.contains(r#"process_path:"%\\node.exe""#));
        assert_eq!(c.part, Some([k + 1, n]));
        assert_eq!(c.spec["meta"]["sigma"]["part"], json!({"index": k + 1, "of": n}));
        assert!(c.name.ends_with(&format!("[{}/{n}]", k + 1)), "{}", c.name);
    }
    // Every value is in exactly one part.
    for i in [0, 749, 1499] {
        let needle = format!("\"package-number-{i}@1.0.{i}\"");
        assert_eq!(out.iter().filter(|c| c.query.contains(&needle)).count(), 1, "{needle}");
    }
    // A large list under `not` cannot be split: the union would not be the rule.
    let negated = rule.replace("img and pkgs", "img and not pkgs");
    assert_eq!(convert(&negated, &Mapping::builtin()).unwrap_err().error.reason(), "too_complex");
}
