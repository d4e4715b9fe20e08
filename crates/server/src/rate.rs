//! Token buckets kept in this node's memory: the webhook routes' per-address and per-bot limits
//! (NET-1, WH-1), and the per-address and per-account request rates of the pages and the API
//! (`RequestRates`, NET-1). They guard against floods and token guessing, which a node must answer at full
//! speed; they are not security counters that must survive a restart or add up across nodes (sign-in
//! throttles are, and live in the database: `throttles`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use domain::Timestamp;

/// A sustained rate and a burst: `burst` requests at once, then `per_minute` a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

/// One token in bucket units: a bucket gains `per_minute` units a millisecond, so a token a
/// minute is 60,000 units and no rate needs a fraction.
const TOKEN: u64 = 60_000;
/// Keys kept before full buckets (which hold nothing worth remembering) are forgotten.
const MAX_KEYS: usize = 100_000;
/// How often the refusal of one key is reported (`Refusal::first`).
const REPORT_EVERY_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    at_ms: i64,
    reported_ms: Option<i64>,
}

/// A refused hit: how long until a token is back, and whether this is the first refusal of the key
/// in the last minute (the one worth an audit row; the rest of a flood is counted in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: Duration,
    pub first: bool,
}

#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.rate.burst.max(1)) * TOKEN
    }

    /// Takes a token for `key` at `now`.
    ///
    /// # Errors
    /// A `Refusal` when the key's bucket is empty; nothing is taken then.
    pub fn hit(&self, key: &K, now: Timestamp) -> Result<(), Refusal> {
        self.take(key, now, true)
    }

    /// Whether `key` has a token at `now`, without taking it.
    ///
    /// # Errors
    /// A `Refusal` when the key's bucket is empty.
    pub fn check(&self, key: &K, now: Timestamp) -> Result<(), Refusal> {
        self.take(key, now, false)
    }

    fn take(&self, key: &K, now: Timestamp, spend: bool) -> Result<(), Refusal> {
        let now_ms = now.as_unix_millis();
        let capacity = self.capacity();
        let per_ms = u64::from(self.rate.per_minute);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                let elapsed = u64::try_from(now_ms - b.at_ms).unwrap_or(0);
                b.units.saturating_add(elapsed.saturating_mul(per_ms)) < capacity
            });
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { units: capacity, at_ms: now_ms, reported_ms: None });
        let elapsed = u64::try_from(now_ms - bucket.at_ms).unwrap_or(0);
        bucket.units = bucket.units.saturating_add(elapsed.saturating_mul(per_ms)).min(capacity);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.units >= TOKEN {
            if spend {
                bucket.units -= TOKEN;
            }
            return Ok(());
        }
        let missing = TOKEN - bucket.units;
        let retry_after =
            if per_ms == 0 { Duration::from_secs(3_600) } else { Duration::from_millis(missing.div_ceil(per_ms)) };
        let first = bucket.reported_ms.is_none_or(|at| now_ms - at >= REPORT_EVERY_MS);
        if first {
            bucket.reported_ms = Some(now_ms);
        }
        Err(Refusal { retry_after, first })
    }
}

/// The request rates of the pages and the API (the webhook routes have their own, `WebhookConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRateConfig {
    /// Requests from one client address (the first untrusted hop behind a trusted proxy).
    pub per_ip: Rate,
    /// Signed-in requests of one account, from anywhere.
    pub per_account: Rate,
}

impl Default for RequestRateConfig {
    /// 100 requests a second with bursts of 1,200, per address and per account: far above what a
    /// person with a browser or a trading script sends (a page load is a handful), low enough that
    /// one client cannot keep a node busy.
    fn default() -> Self {
        RequestRateConfig {
            per_ip: Rate { per_minute: 6_000, burst: 1_200 },
            per_account: Rate { per_minute: 6_000, burst: 1_200 },
        }
    }
}

/// The buckets of `RequestRateConfig`. They run on this process's monotonic clock, not the app's
/// `Clock`: they ration real time (dev-notes rule 22), and a test that moves the app's clock
/// neither refills nor drains them.
#[derive(Debug)]
pub struct RequestRates {
    pub per_ip: Limiter<std::net::IpAddr>,
    pub per_account: Limiter<domain::UserId>,
    started: std::time::Instant,
}

impl RequestRates {
    pub fn new(config: &RequestRateConfig) -> RequestRates {
        RequestRates {
            per_ip: Limiter::new(config.per_ip),
            per_account: Limiter::new(config.per_account),
            started: std::time::Instant::now(),
        }
    }

    /// Now on the buckets' clock: milliseconds since this process made them.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limiter = Limiter::new(Rate { per_minute: 60, burst: 3 });
        for _ in 0..3 {
            assert_eq!(limiter.hit(&"a", at(0)), Ok(()));
        }
        let refused = limiter.hit(&"a", at(0)).expect_err("the burst is spent");
        assert_eq!(refused, Refusal { retry_after: Duration::from_secs(1), first: true });
        assert!(!limiter.hit(&"a", at(400)).expect_err("still empty").first, "reported once a minute");
        assert_eq!(limiter.hit(&"b", at(400)), Ok(()), "another key has its own bucket");
        assert_eq!(limiter.hit(&"a", at(1_000)), Ok(()), "one token a second");
        assert!(limiter.hit(&"a", at(1_000)).is_err());
        assert_eq!(limiter.hit(&"a", at(600_000)), Ok(()), "refilled");
        assert!(limiter.hit(&"a", at(61_500)).is_ok(), "a clock that went back takes nothing extra");
        assert!(limiter.hit(&"a", at(61_500)).is_ok());
        assert!(limiter.hit(&"a", at(61_500)).is_err(), "never more than the burst");
    }

    #[test]
    fn check_takes_nothing() {
        let limiter = Limiter::new(Rate { per_minute: 1, burst: 1 });
        assert_eq!(limiter.check(&1, at(0)), Ok(()));
        assert_eq!(limiter.check(&1, at(0)), Ok(()));
        assert_eq!(limiter.hit(&1, at(0)), Ok(()));
        assert_eq!(limiter.check(&1, at(0)).expect_err("spent").retry_after, Duration::from_secs(60));
    }
}
