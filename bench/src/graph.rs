//! `vigil bench graph`: the in-memory connection graph on a synthetic
//! enterprise network, from one run — generation, building it from every
//! row, memory, blast-radius and shortest-path latency over random start
//! hosts, and the cost of applying a refresh's worth of changed rows.
//! No database: rows come from `vigil_graph::synthetic`.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use vigil_graph::{synthetic, BlastQuery, Direction, Graph, Start};

use crate::percentile;

/// `vigil bench graph` options.
#[derive(Debug, clap::Args)]
pub(super) struct GraphArgs {
    /// Hosts in the synthetic network.
    #[arg(long, default_value_t = 100_000)]
    hosts: usize,
    /// `connections` rows (distinct keys) the graph is built from.
    #[arg(long, default_value_t = 1_000_000)]
    edges: usize,
    /// Queries per measurement (random start hosts or host pairs).
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// Seed for the rows and the query starts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Rows in the incremental update, half existing keys with new values and half new rows.
const UPDATE: usize = 10_000;

/// Resident set size (VmRSS) in MiB, when /proc says.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn fmt_mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |m| format!("{m:.0} MiB"))
}

/// A small deterministic PRNG (xorshift64*), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1) as u64) as usize
    }
}

/// A random host that is in the graph.
fn random_host(g: &Graph, hosts: usize, rng: &mut Rng) -> Option<String> {
    (0..100).map(|_| synthetic::host_name(rng.below(hosts))).find(|h| !g.host_ips(h).is_empty())
}

/// Latencies in ms, sorted.
fn sorted_ms(mut v: Vec<Duration>) -> Vec<f64> {
    v.sort_unstable();
    v.into_iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(super) fn run(a: GraphArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.hosts >= 2 && a.edges > 0 && a.queries > 0, "need --hosts >= 2, --edges > 0, --queries > 0");
    let now = Utc::now();
    println!(
        "vigil bench graph — {} hosts, {} connection rows, {} queries, seed {}",
        a.hosts, a.edges, a.queries, a.seed
    );

    let t = Instant::now();
    let records = synthetic::edges(a.hosts, a.edges, a.seed, now);
    let generated = t.elapsed();
    // The update batch: existing keys seen again (higher counts, seen now) and new rows.
    let stride = (records.len() / (UPDATE / 2)).max(1);
    let mut update: Vec<_> = records
        .iter()
        .step_by(stride)
        .take(UPDATE / 2)
        .map(|r| {
            let mut r = r.clone();
            r.count += 7;
            r.bytes += 7 * 512;
            r.last_seen = now;
            r
        })
        .collect();
    update.extend(synthetic::edges(a.hosts, UPDATE - update.len(), a.seed.wrapping_add(1), now));
    println!(
        "  generate         {:>8.0} ms  ({} rows, {:.0} rows/s)",
        ms(generated),
        records.len(),
        records.len() as f64 / generated.as_secs_f64()
    );
    let rss_rows = rss_mib();

    let rows = records.len();
    let t = Instant::now();
    let mut g = Graph::new();
    let built = g.upsert_many(records);
    let build = t.elapsed();
    println!(
        "  build            {:>8.0} ms  ({rows} rows, {:.2} M rows/s; goal < 2000 ms)",
        ms(build),
        rows as f64 / build.as_secs_f64() / 1e6
    );
    println!(
        "  graph            {} nodes, {} flows on {} links; {} rows ignored (multicast/broadcast)",
        g.node_count(),
        g.edge_count(),
        g.link_count(),
        built.ignored
    );
    println!(
        "  RSS              {} after generating, {} after build (rows dropped)",
        fmt_mib(rss_rows),
        fmt_mib(rss_mib())
    );

    let mut rng = Rng(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let starts: Vec<String> = (0..a.queries).filter_map(|_| random_host(&g, a.hosts, &mut rng)).collect();
    anyhow::ensure!(!starts.is_empty(), "no host of the synthetic network is in the graph");

    for (label, direction) in [("out ", Direction::Out), ("both", Direction::Both)] {
        let mut times = Vec::with_capacity(starts.len());
        let (mut reached, mut listed) = (0usize, 0usize);
        for h in &starts {
            let q = BlastQuery { hops: 3, direction, limit: 100, ..BlastQuery::new(Start::Host(h.clone())) };
            let t = Instant::now();
            let r = g.blast_radius(&q).with_context(|| format!("blast radius from {h}"))?;
            times.push(t.elapsed());
            reached += r.total_reached;
            listed += r.reached.len();
        }
        let s = sorted_ms(times);
        println!(
            "  blast 3 hops {label} p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  (avg {:.0} nodes reached, {:.0} listed{})",
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            s.last().copied().unwrap_or(f64::NAN),
            reached as f64 / starts.len() as f64,
            listed as f64 / starts.len() as f64,
            if direction == Direction::Out { "; goal p99 < 10 ms" } else { "" }
        );
    }

    for (label, direction, k) in [("shortest, both", Direction::Both, 1), ("top-5, out    ", Direction::Out, 5)] {
        let mut times = Vec::with_capacity(starts.len());
        let (mut found, mut hops) = (0usize, 0usize);
        for (i, from) in starts.iter().enumerate() {
            let to = &starts[(i * 7 + 1) % starts.len()];
            let (from_s, to_s) = (Start::Host(from.clone()), Start::Host(to.clone()));
            let t = Instant::now();
            let paths = g.paths(&from_s, &to_s, k, 6, direction).with_context(|| format!("paths {from} → {to}"))?;
            times.push(t.elapsed());
            if let Some(p) = paths.first() {
                found += 1;
                hops += p.len();
            }
        }
        let s = sorted_ms(times);
        println!(
            "  paths {label}  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms  ({found} of {} pairs connected, avg shortest {:.1} hops)",
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            s.last().copied().unwrap_or(f64::NAN),
            starts.len(),
            hops as f64 / found.max(1) as f64
        );
    }

    let n = update.len();
    let t = Instant::now();
    let applied = g.upsert_many(update);
    let took = t.elapsed();
    println!(
        "  update           {:>8.2} ms for {n} rows, {:.2} µs/row  ({} replaced, {} inserted, {} ignored)",
        ms(took),
        took.as_secs_f64() * 1e6 / n.max(1) as f64,
        applied.replaced,
        applied.inserted,
        applied.ignored
    );
    let t = Instant::now();
    let dropped = g.remove_older_than(now - chrono::Duration::hours(23));
    println!(
        "  expire 1 h       {:>8.2} ms  ({dropped} flows dropped; {} nodes, {} flows left)",
        ms(t.elapsed()),
        g.node_count(),
        g.edge_count()
    );
    Ok(())
}
