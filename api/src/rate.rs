//! Token buckets: requests per API token, so one busy script cannot crowd
//! out the analysts (or ingest) sharing the server, and failed token checks
//! per client address, so a flood of guessed tokens is refused before it
//! reaches the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Token buckets keyed by `K`: API token ids, or client addresses.
#[derive(Debug)]
pub struct RateLimiter<K = Uuid> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Failed token checks per client address.
pub type FailureLimiter = RateLimiter<IpAddr>;

/// Buckets kept before full (idle) ones are forgotten: a spray from many
/// addresses cannot grow the map without bound.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests per second and burst unless `VIGIL_RATE_LIMIT` says otherwise.
pub const DEFAULT_PER_SECOND: f64 = 50.0;
pub const DEFAULT_BURST: f64 = 200.0;
/// Failed token checks per address unless `VIGIL_AUTH_FAILURE_LIMIT` says otherwise.
pub const DEFAULT_FAILURES: &str = "1,20";

/// Requests per second and burst per token (`VIGIL_RATE_LIMIT`); 0 per
/// second is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl RateLimit {
    /// `<requests per second>[,<burst>]`, e.g. `20,50`; the burst defaults
    /// to four seconds' worth; `0` turns the limit off.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(',').map(str::trim);
        let per_second: f64 = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or("empty")?
            .parse()
            .map_err(|_| format!("{spec:?}: requests per second must be a number, e.g. 20 or 20,50"))?;
        let burst: f64 = match parts.next() {
            Some(b) => b.parse().map_err(|_| format!("{spec:?}: the burst after ',' must be a number"))?,
            None => (per_second * 4.0).max(1.0),
        };
        if parts.next().is_some() || per_second.is_nan() || per_second < 0.0 || burst.is_nan() || burst < 1.0 {
            return Err(format!("{spec:?}: expected `<per second>[,<burst>]` with per second ≥ 0 and burst ≥ 1"));
        }
        Ok(RateLimit { per_second, burst })
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: DEFAULT_PER_SECOND, burst: DEFAULT_BURST }
    }
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter { per_second: limit.per_second, burst: limit.burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    pub fn burst(&self) -> u64 {
        self.burst as u64
    }

    /// Takes one from `key`'s bucket, or says how long until one is free.
    pub fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |b| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }

    /// Whether `key`'s bucket has one left, without taking it (a key never
    /// seen has a full bucket), or how long until it has.
    pub fn admit(&self, key: K, now: Instant) -> Result<(), Duration> {
        self.with_bucket(key, now, |b| b.tokens >= 1.0)
    }

    /// Refills `key`'s bucket to `now` and runs `take` on it; `take` says
    /// whether the request may go on.
    fn with_bucket(&self, key: K, now: Instant, take: impl FnOnce(&mut Bucket) -> bool) -> Result<(), Duration> {
        if self.per_second == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_second;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if take(b) {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(RateLimit::default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_the_rate() {
        let r = RateLimiter::new(RateLimit { per_second: 10.0, burst: 3.0 });
        let (t, start) = (Uuid::new_v4(), Instant::now());
        assert!((0..3).all(|_| r.check(t, start).is_ok()));
        let wait = r.check(t, start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(r.check(t, start + Duration::from_millis(100)).is_ok());
        // Another token has its own bucket.
        assert!(r.check(Uuid::new_v4(), start).is_ok());
    }

    #[test]
    fn admit_looks_without_taking() {
        let r: FailureLimiter = RateLimiter::new(RateLimit { per_second: 1.0, burst: 2.0 });
        let (a, start) = (IpAddr::from([192, 0, 2, 1]), Instant::now());
        assert!((0..5).all(|_| r.admit(a, start).is_ok()));
        assert!(r.check(a, start).is_ok() && r.check(a, start).is_ok());
        assert!(r.admit(a, start).is_err());
        assert!(r.admit(IpAddr::from([192, 0, 2, 2]), start).is_ok());
        assert!(r.admit(a, start + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn parses_and_rejects_specs() {
        let limiter = |spec| RateLimit::parse(spec).map(RateLimiter::new);
        assert_eq!(limiter("20,50").unwrap().burst(), 50);
        assert_eq!(limiter("5").unwrap().burst(), 20);
        assert!(limiter("0").unwrap().check(Uuid::nil(), Instant::now()).is_ok());
        for bad in ["", "x", "1,y", "1,2,3", "-1", "1,0"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }
}
