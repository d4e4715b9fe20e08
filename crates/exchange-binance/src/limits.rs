//! Staying inside Binance's limits: the request-weight budget, bans, and the clock-skew estimate.
//!
//! Binance counts request weight per IP per minute and reports it in `X-MBX-USED-WEIGHT-1M`. The
//! client keeps its own budget below the venue's limit and refuses locally when a request would
//! exceed it; after a 429 or 418 it refuses everything until the `Retry-After` pause has passed,
//! because hammering a venue that said stop turns a 429 into a ban.

use std::sync::Mutex;
use std::time::Duration;

use domain::Timestamp;
use exchange::ExchangeError;

const MINUTE_MS: i64 = 60_000;

#[derive(Debug)]
pub struct WeightBudget {
    budget: u32,
    state: Mutex<WeightState>,
}

#[derive(Debug, Default)]
struct WeightState {
    /// The minute (Unix ms / 60 000) the `used` figure belongs to.
    minute: i64,
    used: u32,
    /// No request before this instant (after a 429 or 418).
    paused_until: Option<(Timestamp, bool)>,
}

impl WeightBudget {
    /// `budget` is the weight per minute this client allows itself (below the venue's limit).
    pub fn new(budget: u32) -> WeightBudget {
        WeightBudget { budget, state: Mutex::new(WeightState::default()) }
    }

    /// Reserves `weight` for a request about to be sent at `now`.
    ///
    /// # Errors
    /// `RateLimited` / `IpBanned` with the time left when the request must not be sent.
    pub fn reserve(&self, weight: u32, now: Timestamp) -> Result<(), ExchangeError> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((until, banned)) = state.paused_until {
            if now < until {
                let retry_after = until.since(now);
                return Err(if banned {
                    ExchangeError::IpBanned { retry_after }
                } else {
                    ExchangeError::RateLimited { retry_after }
                });
            }
            state.paused_until = None;
        }
        let minute = now.as_unix_millis().div_euclid(MINUTE_MS);
        if minute != state.minute {
            state.minute = minute;
            state.used = 0;
        }
        if state.used.saturating_add(weight) > self.budget {
            let next_minute = Timestamp::from_unix_millis((minute + 1) * MINUTE_MS);
            return Err(ExchangeError::RateLimited { retry_after: next_minute.since(now) });
        }
        state.used = state.used.saturating_add(weight);
        Ok(())
    }

    /// Takes the venue's count from `X-MBX-USED-WEIGHT-1M` (it also counts other clients on this IP).
    pub fn observe_used(&self, used: u32, now: Timestamp) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let minute = now.as_unix_millis().div_euclid(MINUTE_MS);
        if minute != state.minute {
            state.minute = minute;
            state.used = used;
        } else {
            state.used = state.used.max(used);
        }
    }

    /// Stops all requests for `retry_after` (429) or marks a ban (418).
    pub fn pause(&self, retry_after: Duration, banned: bool, now: Timestamp) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = now.plus(retry_after);
        if state.paused_until.is_none_or(|(current, _)| current < until) {
            state.paused_until = Some((until, banned));
        }
    }

    /// The weight used in the current minute as last seen.
    pub fn used(&self) -> u32 {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).used
    }
}

/// The estimated offset of the venue's clock from ours, from `GET /api/v3/time` (EX-5).
#[derive(Debug, Default)]
pub struct ClockSkew {
    offset_ms: Mutex<Option<i64>>,
}

impl ClockSkew {
    /// The venue's time when we sent at `sent` and received `server_ms` at `received`: assumes the
    /// server stamped it halfway.
    pub fn record(&self, sent: Timestamp, received: Timestamp, server_ms: i64) -> i64 {
        let midpoint = sent.as_unix_millis() + (received.as_unix_millis() - sent.as_unix_millis()) / 2;
        let offset = server_ms - midpoint;
        *self.offset_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(offset);
        offset
    }

    /// The measured offset (venue minus local), or `None` before the first measurement.
    pub fn offset_ms(&self) -> Option<i64> {
        *self.offset_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Our clock corrected to the venue's.
    pub fn venue_now(&self, local: Timestamp) -> i64 {
        local.as_unix_millis() + self.offset_ms().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    #[test]
    fn the_budget_refuses_past_its_limit_until_the_next_minute() {
        let budget = WeightBudget::new(10);
        assert_eq!(budget.reserve(6, at(60_000)), Ok(()));
        assert_eq!(budget.reserve(4, at(60_500)), Ok(()));
        assert_eq!(
            budget.reserve(1, at(61_000)),
            Err(ExchangeError::RateLimited { retry_after: Duration::from_secs(59) })
        );
        assert_eq!(budget.reserve(10, at(120_000)), Ok(()));
    }

    #[test]
    fn the_venue_count_raises_ours() {
        let budget = WeightBudget::new(100);
        budget.reserve(1, at(0)).unwrap();
        budget.observe_used(99, at(10));
        assert!(budget.reserve(2, at(20)).is_err());
        assert!(budget.reserve(1, at(20)).is_ok());
    }

    #[test]
    fn a_pause_refuses_everything_until_it_ends() {
        let budget = WeightBudget::new(1000);
        budget.pause(Duration::from_secs(120), true, at(0));
        assert_eq!(
            budget.reserve(1, at(1_000)),
            Err(ExchangeError::IpBanned { retry_after: Duration::from_secs(119) })
        );
        budget.pause(Duration::from_secs(5), false, at(1_000)); // a shorter pause never shortens a ban
        assert!(matches!(budget.reserve(1, at(10_000)), Err(ExchangeError::IpBanned { .. })));
        assert_eq!(budget.reserve(1, at(120_000)), Ok(()));
    }

    #[test]
    fn skew_is_measured_against_the_round_trip_midpoint() {
        let skew = ClockSkew::default();
        assert_eq!(skew.venue_now(at(1_000)), 1_000);
        assert_eq!(skew.record(at(1_000), at(1_100), 4_050), 3_000);
        assert_eq!(skew.venue_now(at(2_000)), 5_000);
    }
}
