//! Fuzz `vigil_srql::parse` and `vigil_srql::compile` with arbitrary text.
//!
//! Invariants checked (any violation panics, which libFuzzer reports as a crash):
//! * neither `parse`, `compile` nor the AST's `Display` panics;
//! * an error's span satisfies `start <= end <= input.len()` and both ends are
//!   char boundaries of the input (so `SrqlError::render` and callers can slice);
//! * a compiled query's SQL references only `$1..=$params.len()` and every one
//!   of them at least once;
//! * a parsed query printed with `Display` parses again (AST equality is not
//!   asserted here). Set `SRQL_FUZZ_SKIP_REPRINT=1` to leave this check out,
//!   e.g. to fuzz the planner past known Display bugs (see README.md).
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use vigil_srql::{Config, SrqlError, MAX_QUERY_BYTES};

fn check_reprint() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SRQL_FUZZ_SKIP_REPRINT").is_none_or(|v| v.is_empty() || v == "0"))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).single().expect("fixed now")
}

fn check_span(input: &str, e: &SrqlError, what: &str) {
    let (s, t) = (e.span.start, e.span.end);
    assert!(s <= t, "{what}: span start {s} > end {t}: {e:?} for {input:?}");
    assert!(t <= input.len(), "{what}: span end {t} > input len {}: {e:?} for {input:?}", input.len());
    assert!(input.is_char_boundary(s), "{what}: span start {s} not a char boundary: {e:?} for {input:?}");
    assert!(input.is_char_boundary(t), "{what}: span end {t} not a char boundary: {e:?} for {input:?}");
    // Rendering slices the input by the span: must not panic either.
    let _ = e.render(input);
}

/// Indices `n` of every `$n` placeholder in `sql` (a `$` not preceded by an
/// identifier character and followed by ASCII digits).
fn placeholders(sql: &str) -> Vec<usize> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 {
                let n: usize = sql[i + 1..j].parse().unwrap_or(usize::MAX);
                out.push(n);
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };

    match vigil_srql::parse(input) {
        Ok(query) => {
            let printed = format!("{query}");
            // The size limit applies to the printed text too; escaping can grow it.
            if check_reprint() && printed.len() <= MAX_QUERY_BYTES {
                if let Err(e) = vigil_srql::parse(&printed) {
                    panic!(
                        "Display output does not re-parse\n  input:   {input:?}\n  printed: {printed:?}\n  error:   {e}"
                    );
                }
            }
        }
        Err(e) => check_span(input, &e, "parse"),
    }

    match vigil_srql::compile(input, &Config::default(), now()) {
        Ok(c) => {
            let refs = placeholders(&c.sql);
            let n = c.params.len();
            for &r in &refs {
                assert!(
                    r >= 1 && r <= n,
                    "SQL references ${r} but there are {n} params\n  input: {input:?}\n  sql: {}",
                    c.sql
                );
            }
            for k in 1..=n {
                assert!(
                    refs.contains(&k),
                    "param ${k} of {n} is never referenced\n  input: {input:?}\n  sql: {}\n  params: {:?}",
                    c.sql,
                    c.params
                );
            }
        }
        Err(e) => check_span(input, &e, "compile"),
    }
});
