//! Rate limits: request weight per IP and minute (`X-MBX-USED-WEIGHT-1M`, 429 and -1003 past the
//! limit), SAPI weight per IP and minute (`X-SAPI-USED-IP-WEIGHT-1M`), and new orders per account
//! per 10 seconds and per day (`X-MBX-ORDER-COUNT-10S`, `X-MBX-ORDER-COUNT-1D`, -1015).
//!
//! Windows are fixed and aligned to the clock (minute `now / 60000`, and so on), which is how
//! Binance's counters reset.

use std::collections::HashMap;
use std::net::IpAddr;

const MINUTE_MS: i64 = 60_000;
const TEN_SECONDS_MS: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;

/// A counter over one fixed window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    index: i64,
    count: u32,
}

impl Window {
    fn current(&mut self, now_ms: i64, length_ms: i64) -> &mut u32 {
        let index = now_ms.div_euclid(length_ms);
        if index != self.index {
            *self = Self { index, count: 0 };
        }
        &mut self.count
    }
}

/// Seconds until the window containing `now_ms` ends, at least 1.
fn seconds_left(now_ms: i64, length_ms: i64) -> u64 {
    let left_ms = length_ms - now_ms.rem_euclid(length_ms);
    u64::try_from((left_ms + 999) / 1000).unwrap_or(1).max(1)
}

/// Which weight budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// `/api/` endpoints.
    Api,
    /// `/sapi/` endpoints.
    Sapi,
}

/// The weight used by each IP in the current minute, per budget.
#[derive(Debug, Default)]
pub(crate) struct WeightTracker {
    api: HashMap<IpAddr, Window>,
    sapi: HashMap<IpAddr, Window>,
}

/// The outcome of charging a request's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    /// The weight used in this minute, this request included.
    pub(crate) used: u32,
    /// `Some(seconds)` when the limit is exceeded: answer 429 with this `Retry-After`.
    pub(crate) retry_after: Option<u64>,
}

impl WeightTracker {
    /// Adds `weight` for `ip` and tells whether the request is over the limit.
    pub(crate) fn charge(&mut self, budget: Budget, ip: IpAddr, weight: u32, limit: u32, now_ms: i64) -> Charge {
        let window = self.windows(budget).entry(ip).or_default();
        let count = window.current(now_ms, MINUTE_MS);
        *count = count.saturating_add(weight);
        let used = *count;
        Charge { used, retry_after: (used > limit).then(|| seconds_left(now_ms, MINUTE_MS)) }
    }

    /// The weight `ip` has used in the current minute.
    pub(crate) fn used(&mut self, budget: Budget, ip: IpAddr, now_ms: i64) -> u32 {
        self.windows(budget).get_mut(&ip).map_or(0, |window| *window.current(now_ms, MINUTE_MS))
    }

    fn windows(&mut self, budget: Budget) -> &mut HashMap<IpAddr, Window> {
        match budget {
            Budget::Api => &mut self.api,
            Budget::Sapi => &mut self.sapi,
        }
    }
}

/// New orders per account in the current 10 s and day windows.
#[derive(Debug, Default)]
pub(crate) struct OrderCounter {
    per_account: HashMap<usize, (Window, Window)>,
}

/// Order counts after a successful order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderCounts {
    pub(crate) ten_seconds: u32,
    pub(crate) day: u32,
}

/// Which order-count limit a new order would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderLimitHit {
    pub(crate) limit: u32,
    /// `10 SECOND` or `1 DAY`, as in Binance's message.
    pub(crate) interval: &'static str,
    pub(crate) retry_after: u64,
}

impl OrderCounter {
    /// Whether one more order fits in both windows.
    pub(crate) fn check(
        &mut self,
        account: usize,
        per_10s: u32,
        per_day: u32,
        now_ms: i64,
    ) -> Result<(), OrderLimitHit> {
        let (ten, day) = self.per_account.entry(account).or_default();
        if *ten.current(now_ms, TEN_SECONDS_MS) >= per_10s {
            return Err(OrderLimitHit {
                limit: per_10s,
                interval: "10 SECOND",
                retry_after: seconds_left(now_ms, TEN_SECONDS_MS),
            });
        }
        if *day.current(now_ms, DAY_MS) >= per_day {
            return Err(OrderLimitHit { limit: per_day, interval: "1 DAY", retry_after: seconds_left(now_ms, DAY_MS) });
        }
        Ok(())
    }

    /// Counts a placed order.
    pub(crate) fn record(&mut self, account: usize, now_ms: i64) -> OrderCounts {
        let (ten, day) = self.per_account.entry(account).or_default();
        let ten = ten.current(now_ms, TEN_SECONDS_MS);
        *ten = ten.saturating_add(1);
        let ten_seconds = *ten;
        let day = day.current(now_ms, DAY_MS);
        *day = day.saturating_add(1);
        OrderCounts { ten_seconds, day: *day }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn weight_accumulates_within_a_minute_and_resets_after() {
        let mut tracker = WeightTracker::default();
        let start = 1_700_000_020_000; // 40 s into a minute
        assert_eq!(tracker.charge(Budget::Api, IP, 20, 30, start).used, 20);
        let over = tracker.charge(Budget::Api, IP, 20, 30, start + 1_500);
        assert_eq!(over, Charge { used: 40, retry_after: Some(19) });
        assert_eq!(tracker.used(Budget::Sapi, IP, start), 0, "SAPI weight is separate");
        assert_eq!(tracker.charge(Budget::Api, IP, 1, 30, start + 20_000).used, 1, "a new minute");
    }

    #[test]
    fn orders_are_limited_per_ten_seconds_and_per_day() {
        let mut counter = OrderCounter::default();
        let now = 1_700_000_000_000;
        assert_eq!(counter.check(0, 2, 3, now), Ok(()));
        assert_eq!(counter.record(0, now), OrderCounts { ten_seconds: 1, day: 1 });
        assert_eq!(counter.record(0, now), OrderCounts { ten_seconds: 2, day: 2 });
        assert_eq!(counter.check(0, 2, 3, now).map_err(|hit| hit.interval), Err("10 SECOND"));
        assert_eq!(counter.check(1, 2, 3, now), Ok(()), "per account");
        assert_eq!(counter.record(0, now + 10_000), OrderCounts { ten_seconds: 1, day: 3 });
        assert_eq!(counter.check(0, 2, 3, now + 10_000).map_err(|hit| hit.interval), Err("1 DAY"));
    }
}
