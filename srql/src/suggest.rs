//! "Did you mean": nearest names by edit distance.

/// Levenshtein distance, case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to three candidates close to `name`: within a third of its length in
/// edits, or sharing a prefix/suffix with it.
pub fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(1) + 1;
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = distance(name, c);
            let related = lower.len() >= 3 && (c.starts_with(&lower) || c.ends_with(&lower) || lower.contains(c));
            (d <= limit || related).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    // Only the closest few: a near miss should not be drowned by far ones.
    let best = scored.first().map(|s| s.0).unwrap_or(0);
    scored.into_iter().filter(|(d, _)| *d <= best + 1).take(3).map(|(_, c)| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let fields = ["host", "hostname", "severity", "src_ip", "dst_ip"];
        assert_eq!(nearest("hots", fields.iter().copied())[0], "host");
        assert_eq!(nearest("sevrity", fields.iter().copied()), vec!["severity"]);
        assert!(nearest("banana", fields.iter().copied()).is_empty());
    }
}
