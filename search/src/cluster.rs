//! `| cluster`: merges the per-text rows the SQL returns into groups of
//! semantically similar texts (greedy leader clustering by cosine similarity,
//! largest texts first, so each group is led by its most common pattern).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// One distinct embedded text among the query's events.
#[derive(Debug, Clone)]
pub(crate) struct TextRow {
    pub pattern: String,
    pub embedding: Vec<f32>,
    pub count: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub example: Uuid,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub pattern: String,
    pub count: i64,
    pub texts: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub example: Uuid,
    leader: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Vectors are unit length, so the dot product is the cosine.
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn cluster(mut rows: Vec<TextRow>, threshold: f64) -> Vec<Group> {
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.pattern.cmp(&b.pattern)));
    let mut groups: Vec<Group> = Vec::new();
    for r in rows {
        let best = groups
            .iter_mut()
            .map(|g| (cosine(&g.leader, &r.embedding), g))
            .filter(|(s, _)| f64::from(*s) >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((_, g)) => {
                g.count += r.count;
                g.texts += 1;
                g.first_seen = g.first_seen.min(r.first_seen);
                g.last_seen = g.last_seen.max(r.last_seen);
            }
            None => groups.push(Group {
                pattern: r.pattern,
                count: r.count,
                texts: 1,
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                example: r.example,
                leader: r.embedding,
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

impl Group {
    /// Values in the order of the planner's cluster columns.
    pub(crate) fn values(&self) -> Vec<Value> {
        let t = |t: &DateTime<Utc>| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        vec![
            Value::String(self.pattern.clone()),
            Value::from(self.count),
            Value::from(self.texts),
            t(&self.first_seen),
            t(&self.last_seen),
            Value::String(self.example.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: &str, v: [f32; 2], count: i64) -> TextRow {
        let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
        TextRow {
            pattern: p.into(),
            embedding: vec![v[0] / n, v[1] / n],
            count,
            first_seen: DateTime::UNIX_EPOCH,
            last_seen: DateTime::UNIX_EPOCH,
            example: Uuid::nil(),
        }
    }

    #[test]
    fn merges_near_texts_under_the_most_common_one() {
        let g = cluster(vec![row("a2", [1.0, 0.1], 5), row("a1", [1.0, 0.0], 50), row("b", [0.0, 1.0], 7)], 0.9);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].pattern.as_str(), g[0].count, g[0].texts), ("a1", 55, 2));
        assert_eq!((g[1].pattern.as_str(), g[1].count, g[1].texts), ("b", 7, 1));
    }

    #[test]
    fn a_threshold_of_one_keeps_texts_apart() {
        let g = cluster(vec![row("a1", [1.0, 0.0], 1), row("a2", [1.0, 0.1], 1)], 1.0);
        assert_eq!(g.len(), 2);
    }
}
