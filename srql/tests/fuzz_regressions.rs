//! Inputs the fuzzer (srql/fuzz) found problems with, replayed on every test
//! run: no panic, spans on character boundaries that render, printed queries
//! that re-parse to the same tree, and no exponential parse time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use vigil_srql::{compile, parse, Config};

#[test]
fn fuzz_findings_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        n += 1;
        let started = Instant::now();
        match compile(text, &Config::default(), chrono::Utc::now()) {
            Ok(_) => {}
            Err(e) => {
                assert!(
                    e.span.start <= e.span.end && e.span.end <= text.len(),
                    "{}: span {:?}",
                    path.display(),
                    e.span
                );
                assert!(
                    text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end),
                    "{}: span {:?} splits a character",
                    path.display(),
                    e.span
                );
                let _ = e.render(text);
            }
        }
        if let Ok(q) = parse(text) {
            let printed = q.to_string();
            let back = parse(&printed)
                .unwrap_or_else(|e| panic!("{}: printed {printed:?} does not parse: {e}", path.display()));
            assert_eq!(back, q, "{}: printed as {printed:?}", path.display());
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{} took {:?}", path.display(), started.elapsed());
    }
    assert!(n >= 5, "the regression inputs are there ({n})");
}

#[test]
fn multibyte_values_never_split_characters() {
    for q in ["time:abcé", "time:>abcé", "time:[abcé,]", "stats:é", "stats:x", "sort:a\\ b:xé", "host:é*", "\"é", "(é"]
    {
        if let Err(e) = compile(q, &Config::default(), chrono::Utc::now()) {
            assert!(q.is_char_boundary(e.span.start) && q.is_char_boundary(e.span.end), "{q}: {:?}", e.span);
            assert!(e.render(q).contains('^'));
        }
    }
}
