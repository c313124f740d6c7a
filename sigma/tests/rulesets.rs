//! Converts every Sigma rule of the shared data set (SigmaHQ's Linux and
//! Zeek rules, and the 202 rules with regression tests): each converts to a
//! query that compiles, or fails with a documented reason. The converted
//! counts are pinned so that a regression shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vigil_sigma::{convert_all, Mapping, Options, Report, Source, REASONS};

fn sigma_dir() -> Option<PathBuf> {
    vigil_store::testing::shared_data("sigma/README.md").map(|p| p.parent().unwrap().to_path_buf())
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

fn convert_dir(dir: &Path) -> (usize, Report) {
    let mut files = Vec::new();
    yaml_files(dir, &mut files);
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read_to_string(p).unwrap()))
        .collect();
    let sources: Vec<Source<'_>> = texts.iter().map(|(o, y)| Source { origin: o, yaml: y }).collect();
    (files.len(), convert_all(&sources, &Mapping::builtin(), &Options::default()))
}

fn check(name: &str, dir: &Path, files: usize, converted: usize) -> Report {
    let (n, report) = convert_dir(dir);
    println!("{name}: {n} files\n{}", report.render());
    println!("by reason: {:?}", report.by_detail());
    assert_eq!(n, files, "{name}: file count");
    // A rule too large for one query becomes several hunts (parts); count rules.
    let rules = report.converted.iter().filter(|c| c.part.is_none_or(|[k, _]| k == 1)).count();
    assert_eq!(rules + report.failed.len(), files, "{name}: every rule converts or fails");
    for f in &report.failed {
        assert!(REASONS.contains(&f.error.reason()), "{}: undocumented reason {}", f.origin, f.error.reason());
    }
    for c in &report.converted {
        vigil_sigma::validate_query(&c.query).unwrap();
        assert_eq!(c.spec["meta"]["sigma"]["id"].as_str(), c.sigma_id.as_deref());
    }
    assert_eq!(rules, converted, "{name}: converted count changed");
    report
}

#[test]
fn linux_rules_convert_or_fail_with_a_reason() {
    let Some(dir) = sigma_dir() else { return };
    check("rules_linux", &dir.join("rules_linux"), 248, 204);
}

#[test]
fn zeek_rules_convert_or_fail_with_a_reason() {
    let Some(dir) = sigma_dir() else { return };
    check("rules_zeek", &dir.join("rules_zeek"), 24, 23);
}

#[test]
fn regression_rules_convert() {
    let Some(dir) = sigma_dir() else { return };
    // Every one converts (the two `fieldref` rules compare fields with SRQL's `field:$other`).
    let r = check("rules_under_test", &dir.join("regression/rules_under_test"), 202, 202);
    assert!(r.failed.is_empty());
    // One lists ~700 npm packages (twice SRQL's 16 KiB): it runs as 3 hunts.
    let parts: Vec<_> = r.converted.iter().filter_map(|c| c.part).collect();
    assert_eq!(parts, [[1, 3], [2, 3], [3, 3]]);
}
