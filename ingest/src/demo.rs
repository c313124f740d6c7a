//! The demo dataset `vigil up` loads into an empty database: real public logs
//! from `shared/data` when they are present (loghub OpenSSH and Linux syslog,
//! a labeled Zeek conn.log from an NjRAT infection), moved in time so they end
//! a few minutes ago, plus a day of generated telemetry from 50 hosts.
//! Each real record keeps its dataset and licence in `raw.dataset`.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use vigil_event::Event;

use crate::formats::Format;
use crate::generate::{Generator, GeneratorConfig};
use crate::import::LineParser;

/// A real dataset the demo draws on, with its attribution.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    pub path: &'static str,
    pub format: Format,
    pub name: &'static str,
    pub license: &'static str,
}

pub const DATASETS: &[Dataset] = &[
    Dataset {
        path: "loghub/OpenSSH/OpenSSH_2k.log",
        format: Format::Syslog,
        name: "loghub OpenSSH_2k (https://github.com/logpai/loghub)",
        license: "loghub terms: research use, cite the loghub paper",
    },
    Dataset {
        path: "loghub/Linux/Linux_2k.log",
        format: Format::Syslog,
        name: "loghub Linux_2k (https://github.com/logpai/loghub)",
        license: "loghub terms: research use, cite the loghub paper",
    },
    Dataset {
        path: "stratosphere_njrat_zeek/labeled-conn.log",
        format: Format::ZeekConnTsv,
        name: "Stratosphere CTU-Malware-Capture-Botnet-230-1 (NjRAT), labeled conn.log",
        license: "GPL-2.0",
    },
];

/// Where the shared data usually is: `$VIGIL_DEMO_DATA`, else `../shared/data`
/// from the working directory or from the source tree.
pub fn find_shared_data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("VIGIL_DEMO_DATA").map(PathBuf::from),
        Some(PathBuf::from("../shared/data")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

/// What went into the demo dataset.
#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    /// (dataset name, events) for each real dataset used.
    pub datasets: Vec<(String, usize)>,
    pub generated: usize,
}

/// Builds the demo events: `generated` synthetic events over the last 24 h
/// ending at `now`, plus the real datasets under `shared` if given.
pub fn build(shared: Option<&Path>, now: DateTime<Utc>, generated: u64) -> (Vec<Event>, DemoSummary) {
    let mut summary = DemoSummary::default();
    let mut events: Vec<Event> = Generator::new(GeneratorConfig::recent(generated, Duration::hours(24), now)).collect();
    summary.generated = events.len();
    if let Some(dir) = shared {
        for (i, ds) in DATASETS.iter().enumerate() {
            let Ok(text) = fs::read_to_string(dir.join(ds.path)) else {
                continue;
            };
            // Each dataset ends a few minutes before now, staggered so they interleave.
            let end = now - Duration::minutes(5 + 7 * i as i64);
            let real = load_rebased(&text, ds, end);
            summary.datasets.push((ds.name.to_string(), real.len()));
            events.extend(real);
        }
    }
    (events, summary)
}

fn load_rebased(text: &str, ds: &Dataset, end: DateTime<Utc>) -> Vec<Event> {
    let mut parser = LineParser::new(ds.format, end);
    let mut events: Vec<Event> =
        text.lines().enumerate().filter_map(|(i, l)| parser.line(l, i + 1).ok().flatten()).collect();
    let Some(last) = events.iter().map(|e| e.time).max() else {
        return events;
    };
    let shift = end - last;
    for e in &mut events {
        e.time += shift;
        if let Some(raw) = e.raw.as_object_mut() {
            raw.insert(
                "dataset".into(),
                json!({"name": ds.name, "license": ds.license, "time_shifted_by_s": shift.num_seconds()}),
            );
        }
    }
    events
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_only_when_no_shared_data() {
        let (events, summary) = build(None, Utc::now(), 1_000);
        assert_eq!(events.len(), 1_000);
        assert!(summary.datasets.is_empty());
    }

    #[test]
    fn real_datasets_are_rebased_to_recent_time() {
        let Some(dir) = find_shared_data() else {
            eprintln!("skipped: shared/data not found (set VIGIL_DEMO_DATA)");
            return;
        };
        let now = Utc::now();
        let (events, summary) = build(Some(&dir), now, 0);
        let names: Vec<&str> = summary.datasets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(summary.datasets.iter().any(|(n, c)| n.contains("OpenSSH") && *c == 2_000));
        assert!(summary.datasets.iter().any(|(n, c)| n.contains("NjRAT") && *c == 992));
        assert!(events.iter().all(|e| e.time <= now && e.time > now - Duration::days(400)));
        let c2 = events.iter().filter(|e| e.dst.map(|d| d.ip.to_string()) == Some("41.108.179.197".into())).count();
        assert!(c2 >= 237, "the NjRAT C2 flows are there: {c2}");
        assert!(events.iter().all(|e| e.raw.get("dataset").is_some()), "every real record names its dataset");
    }
}
