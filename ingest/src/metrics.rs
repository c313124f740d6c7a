//! Per-stage counters, Vector style: what each stage received, wrote,
//! dropped and why, rendered in the Prometheus text format for `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds of the batch-size histogram buckets.
const BATCH_BUCKETS: [u64; 7] = [1, 10, 100, 500, 1_000, 5_000, 10_000];

#[derive(Debug, Default)]
struct LaneCounters {
    received: AtomicU64,
    written: AtomicU64,
    duplicates: AtomicU64,
    batches: AtomicU64,
    batch_events: AtomicU64,
    batch_buckets: [AtomicU64; 7],
    write_errors: AtomicU64,
}

/// Ingest counters shared by every lane and channel.
#[derive(Debug, Default)]
pub struct Metrics {
    lanes: Mutex<BTreeMap<String, std::sync::Arc<LaneCounters>>>,
    dead_lettered: Mutex<BTreeMap<(String, String), u64>>,
    lag: Mutex<BTreeMap<String, i64>>,
    redelivered: AtomicU64,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn lane(&self, lane: &str) -> std::sync::Arc<LaneCounters> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes.entry(lane.to_string()).or_default().clone()
    }

    pub fn received(&self, lane: &str, n: u64) {
        self.lane(lane).received.fetch_add(n, Ordering::Relaxed);
    }

    /// A batch was committed: `written` new rows, `duplicates` already stored.
    pub fn batch(&self, lane: &str, size: u64, written: u64, duplicates: u64) {
        let l = self.lane(lane);
        l.written.fetch_add(written, Ordering::Relaxed);
        l.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        l.batches.fetch_add(1, Ordering::Relaxed);
        l.batch_events.fetch_add(size, Ordering::Relaxed);
        for (i, b) in BATCH_BUCKETS.iter().enumerate() {
            if size <= *b {
                l.batch_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn write_error(&self, lane: &str) {
        self.lane(lane).write_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dead_lettered(&self, channel: &str, reason: &str) {
        let mut m = self.dead_lettered.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((channel.to_string(), reason.to_string())).or_default() += 1;
    }

    pub fn redelivered(&self, n: u64) {
        self.redelivered.fetch_add(n, Ordering::Relaxed);
    }

    /// Messages waiting in a consumer (JetStream `num_pending`).
    pub fn set_lag(&self, consumer: &str, pending: i64) {
        self.lag.lock().unwrap_or_else(|p| p.into_inner()).insert(consumer.to_string(), pending);
    }

    /// Totals for tests and summaries: (received, written, duplicates) over all lanes.
    pub fn totals(&self) -> (u64, u64, u64) {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes.values().fold((0, 0, 0), |(r, w, d), l| {
            (
                r + l.received.load(Ordering::Relaxed),
                w + l.written.load(Ordering::Relaxed),
                d + l.duplicates.load(Ordering::Relaxed),
            )
        })
    }

    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let counter = |out: &mut String, name: &str, help: &str, get: &dyn Fn(&LaneCounters) -> u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (lane, c) in &lanes {
                let _ = writeln!(out, "{name}{{lane=\"{lane}\"}} {}", get(c));
            }
        };
        counter(&mut out, "vigil_ingest_received_total", "Events received by the ingest stage.", &|c| {
            c.received.load(Ordering::Relaxed)
        });
        counter(&mut out, "vigil_ingest_written_total", "Events written to the events table.", &|c| {
            c.written.load(Ordering::Relaxed)
        });
        counter(&mut out, "vigil_ingest_duplicates_total", "Events already stored, skipped.", &|c| {
            c.duplicates.load(Ordering::Relaxed)
        });
        counter(&mut out, "vigil_ingest_write_errors_total", "Batch writes that failed and were retried.", &|c| {
            c.write_errors.load(Ordering::Relaxed)
        });
        let _ = writeln!(
            out,
            "# HELP vigil_ingest_batch_size Events per committed batch.\n# TYPE vigil_ingest_batch_size histogram"
        );
        for (lane, c) in &lanes {
            for (i, b) in BATCH_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "vigil_ingest_batch_size_bucket{{lane=\"{lane}\",le=\"{b}\"}} {}",
                    c.batch_buckets[i].load(Ordering::Relaxed)
                );
            }
            let n = c.batches.load(Ordering::Relaxed);
            let _ = writeln!(out, "vigil_ingest_batch_size_bucket{{lane=\"{lane}\",le=\"+Inf\"}} {n}");
            let _ = writeln!(
                out,
                "vigil_ingest_batch_size_sum{{lane=\"{lane}\"}} {}",
                c.batch_events.load(Ordering::Relaxed)
            );
            let _ = writeln!(out, "vigil_ingest_batch_size_count{{lane=\"{lane}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP vigil_ingest_dead_lettered_total Inputs refused, by channel and reason.\n# TYPE vigil_ingest_dead_lettered_total counter");
        for ((channel, reason), n) in self.dead_lettered.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "vigil_ingest_dead_lettered_total{{channel=\"{channel}\",reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP vigil_ingest_redelivered_total Messages JetStream delivered more than once.\n# TYPE vigil_ingest_redelivered_total counter");
        let _ = writeln!(out, "vigil_ingest_redelivered_total {}", self.redelivered.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP vigil_ingest_lag_messages Messages waiting in each JetStream consumer.\n# TYPE vigil_ingest_lag_messages gauge");
        for (consumer, n) in self.lag.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "vigil_ingest_lag_messages{{consumer=\"{consumer}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_reasons() {
        let m = Metrics::new();
        m.received("bulk", 120);
        m.batch("bulk", 100, 90, 10);
        m.batch("bulk", 20, 20, 0);
        m.dead_lettered("nats", "invalid_json");
        m.set_lag("vigil-ingest-bulk", 42);
        let text = m.render();
        assert!(text.contains("vigil_ingest_received_total{lane=\"bulk\"} 120"), "{text}");
        assert!(text.contains("vigil_ingest_written_total{lane=\"bulk\"} 110"));
        assert!(text.contains("vigil_ingest_duplicates_total{lane=\"bulk\"} 10"));
        assert!(text.contains("vigil_ingest_batch_size_bucket{lane=\"bulk\",le=\"10\"} 0"));
        assert!(text.contains("vigil_ingest_batch_size_bucket{lane=\"bulk\",le=\"100\"} 2"));
        assert!(text.contains("vigil_ingest_batch_size_count{lane=\"bulk\"} 2"));
        assert!(text.contains("vigil_ingest_dead_lettered_total{channel=\"nats\",reason=\"invalid_json\"} 1"));
        assert!(text.contains("vigil_ingest_lag_messages{consumer=\"vigil-ingest-bulk\"} 42"));
        assert_eq!(m.totals(), (120, 110, 10));
    }
}
