//! Per-stage counters, Vector style: what each stage received, wrote,
//! dropped and why, registered in the server's metrics registry
//! ([`Metrics::register`]) that `/metrics` encodes.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the batch-size histogram buckets.
const BATCH_BUCKETS: [f64; 7] = [1.0, 10.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabel {
    lane: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLetterLabels {
    channel: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabel {
    consumer: String,
}

fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

/// One lane's series, looked up once per lane.
#[derive(Debug, Clone)]
struct Lane {
    received: Counter,
    written: Counter,
    duplicates: Counter,
    write_errors: Counter,
    batch_size: Histogram,
}

/// Ingest counters shared by every lane and channel.
#[derive(Debug)]
pub struct Metrics {
    received: Family<LaneLabel, Counter>,
    written: Family<LaneLabel, Counter>,
    duplicates: Family<LaneLabel, Counter>,
    write_errors: Family<LaneLabel, Counter>,
    batch_size: Family<LaneLabel, Histogram, fn() -> Histogram>,
    dead_lettered: Family<DeadLetterLabels, Counter>,
    redelivered: Counter,
    lag: Family<ConsumerLabel, Gauge>,
    lanes: Mutex<HashMap<String, Lane>>,
    /// Every dead letter, whatever its channel and reason (for summaries; not exported).
    dead_lettered_sum: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            received: Family::default(),
            written: Family::default(),
            duplicates: Family::default(),
            write_errors: Family::default(),
            batch_size: Family::new_with_constructor(batch_histogram),
            dead_lettered: Family::default(),
            redelivered: Counter::default(),
            lag: Family::default(),
            lanes: Mutex::default(),
            dead_lettered_sum: Counter::default(),
        }
    }
}

impl Metrics {
    /// Counters in no registry (a command that only prints [`Metrics::totals`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters registered in `registry` as `<prefix>_ingest_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("ingest");
        r.register("received", "Events received by the ingest stage", m.received.clone());
        r.register("written", "Events written to the events table", m.written.clone());
        r.register("duplicates", "Events already stored, skipped", m.duplicates.clone());
        r.register("write_errors", "Batch writes that failed and were retried", m.write_errors.clone());
        r.register("batch_size", "Events per committed batch", m.batch_size.clone());
        r.register("dead_lettered", "Inputs refused, by channel and reason", m.dead_lettered.clone());
        r.register("redelivered", "Messages JetStream delivered more than once", m.redelivered.clone());
        r.register("lag_messages", "Messages waiting in each JetStream consumer", m.lag.clone());
        m
    }

    fn lane(&self, lane: &str) -> Lane {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = lanes.get(lane) {
            return l.clone();
        }
        let label = LaneLabel { lane: lane.to_string() };
        let l = Lane {
            received: self.received.get_or_create_owned(&label),
            written: self.written.get_or_create_owned(&label),
            duplicates: self.duplicates.get_or_create_owned(&label),
            write_errors: self.write_errors.get_or_create_owned(&label),
            batch_size: self.batch_size.get_or_create_owned(&label),
        };
        lanes.insert(label.lane, l.clone());
        l
    }

    pub fn received(&self, lane: &str, n: u64) {
        self.lane(lane).received.inc_by(n);
    }

    /// A batch was committed: `written` new rows, `duplicates` already stored.
    pub fn batch(&self, lane: &str, size: u64, written: u64, duplicates: u64) {
        let l = self.lane(lane);
        l.written.inc_by(written);
        l.duplicates.inc_by(duplicates);
        l.batch_size.observe(size as f64);
    }

    pub fn write_error(&self, lane: &str) {
        self.lane(lane).write_errors.inc();
    }

    pub fn dead_lettered(&self, channel: &str, reason: &str) {
        let labels = DeadLetterLabels { channel: channel.to_string(), reason: reason.to_string() };
        self.dead_lettered.get_or_create(&labels).inc();
        self.dead_lettered_sum.inc();
    }

    pub fn redelivered(&self, n: u64) {
        self.redelivered.inc_by(n);
    }

    /// Messages waiting in a consumer (JetStream `num_pending`).
    pub fn set_lag(&self, consumer: &str, pending: i64) {
        self.lag.get_or_create(&ConsumerLabel { consumer: consumer.to_string() }).set(pending);
    }

    /// Totals for tests and summaries: (received, written, duplicates) over all lanes.
    pub fn totals(&self) -> (u64, u64, u64) {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .values()
            .fold((0, 0, 0), |(r, w, d), l| (r + l.received.get(), w + l.written.get(), d + l.duplicates.get()))
    }

    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered_sum.get()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn registers_counters_histogram_and_reasons() {
        let mut registry = Registry::with_prefix("vigil");
        let m = Metrics::register(&mut registry);
        m.received("bulk", 120);
        m.batch("bulk", 100, 90, 10);
        m.batch("bulk", 20, 20, 0);
        m.dead_lettered("nats", "invalid_json");
        m.set_lag("vigil-ingest-bulk", 42);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("vigil_ingest_received_total{lane=\"bulk\"} 120"), "{text}");
        assert!(text.contains("vigil_ingest_written_total{lane=\"bulk\"} 110"));
        assert!(text.contains("vigil_ingest_duplicates_total{lane=\"bulk\"} 10"));
        assert!(text.contains("vigil_ingest_batch_size_bucket{lane=\"bulk\",le=\"10\"} 0"));
        assert!(text.contains("vigil_ingest_batch_size_bucket{lane=\"bulk\",le=\"100\"} 2"));
        assert!(text.contains("vigil_ingest_batch_size_count{lane=\"bulk\"} 2"));
        assert!(text.contains("vigil_ingest_dead_lettered_total{channel=\"nats\",reason=\"invalid_json\"} 1"));
        assert!(text.contains("vigil_ingest_lag_messages{consumer=\"vigil-ingest-bulk\"} 42"));
        assert_eq!(m.totals(), (120, 110, 10));
        assert_eq!(m.dead_lettered_total(), 1);
    }
}
