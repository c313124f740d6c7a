#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The evtx JSON format against SigmaHQ's regression events
//! (`shared/data/sigma/regression`, the upstream JSON rendering of real
//! `.evtx` files): every file parses into valid events, one per record, and
//! `vigil import`'s path detects and stores a pretty-printed multi-record file.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use vigil_event::Kind;
use vigil_ingest::formats::evtx;
use vigil_ingest::import::import;
use vigil_ingest::Format;

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

#[test]
fn every_regression_event_parses() {
    let Some(csv) = vigil_store::testing::shared_data("sigma/regression/minisigma_baseline_results.csv") else {
        return;
    };
    let dir = csv.parent().unwrap();
    // events_in_json per rule id, from the CSV.
    let counts: std::collections::HashMap<String, usize> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_string(), f[5].trim().parse().unwrap())
        })
        .collect();
    let mut files = Vec::new();
    json_files(&dir.join("regression_data"), &mut files);
    assert_eq!(files.len(), 202);
    let (mut total, mut process, mut sysmon) = (0, 0, 0);
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap();
        assert!(evtx::looks_like(&text), "{}", p.display());
        // Pretty-printed: the first line alone is `{`, taken for a document.
        assert!(matches!(Format::detect(first), Some(Format::Trivy | Format::Evtx)), "{}", p.display());
        let events = evtx::parse_document(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let id = p.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(events.len(), counts[&id], "{}", p.display());
        for e in &events {
            assert_eq!(e.validate(), Ok(()), "{}", p.display());
            assert!(e.host.is_some(), "{}", p.display());
            assert!(e.raw["Event"]["System"]["Provider"]["Name"].is_string(), "{}", p.display());
            process += usize::from(e.kind == Kind::Process);
            sysmon += usize::from(e.source == "sysmon");
        }
        total += events.len();
    }
    println!("{total} events, {process} process, {sysmon} sysmon");
    assert_eq!(total, counts.values().sum::<usize>());
    assert!(process >= 136 && sysmon >= 190, "{process} process, {sysmon} sysmon");
}

#[tokio::test]
async fn import_detects_and_stores_a_multi_record_file() {
    let Some(csv) = vigil_store::testing::shared_data("sigma/regression/minisigma_baseline_results.csv") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&csv.parent().unwrap().join("regression_data"), &mut files);
    // NetExec's file indicators: 7 records, pretty-printed one after another.
    let p = files.iter().find(|p| p.ends_with("efc21479-9e83-41da-8cf1-122e06ba8db3.json")).unwrap();
    let (_db, pool) = vigil_store::testing::migrated(vigil_store::TimescaleChoice::Auto).await;
    let writer = vigil_store::EventWriter::new(pool);
    let run = || async {
        import(BufReader::new(File::open(p).unwrap()), None, &writer, 3, "netexec.json", |_| {}).await.unwrap()
    };
    let (format, s) = run().await;
    assert_eq!(format, Format::Evtx);
    assert_eq!((s.stored, s.rejected), (7, 0), "{:?}", s.errors);
    let (_, again) = run().await;
    assert_eq!((again.stored, again.duplicates), (0, 7), "a re-import adds nothing");
}
