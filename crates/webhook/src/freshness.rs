//! Whether a signal is still worth acting on: its `timestamp` against `max_lag` and the current time.
//!
//! The rules (`spec/webhooks.md` 4, 422 `stale_signal`):
//!
//! - No timestamp: `Undated`. Nothing can be judged; the server accepts it for the Signal format
//!   and refuses it for a DCA bot whose settings require a timestamp.
//! - More than `MAX_FUTURE_SKEW` (60 s) ahead of now: `Stale(Ahead)`. TradingView's `{{timenow}}`
//!   is the moment the alert fired, so it cannot be ahead of our clock by more than clock skew; a
//!   later one would keep a captured body "fresh" for as long as it is ahead.
//! - Older than `max_lag` (now > timestamp + max_lag): `Stale(TooOld)`. Exactly at the limit is
//!   still fresh.
//! - A timestamp without a `max_lag` is checked for the future only: 3Commas drops nothing without
//!   one. The server passes the bot's own lag setting instead when it has one.
//!
//! Now is a parameter: this crate never reads the clock.

use std::time::Duration;

use domain::Timestamp;

/// How far ahead of now a signal's timestamp may be, for the sender's and our clock's skew.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);

/// The verdict on a signal's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within `max_lag` (or no lag given) and not ahead of now by more than the skew.
    Fresh,
    /// The signal carries no timestamp.
    Undated,
    Stale(Stale),
}

/// Why a signal is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Older than its `max_lag`, by `past` beyond it.
    TooOld { past: Duration },
    /// Dated `ahead` after now, more than `MAX_FUTURE_SKEW`.
    Ahead { ahead: Duration },
}

impl Freshness {
    /// Judges a signal dated `timestamp` with `max_lag` at `now`; see the module's rules.
    pub fn check(timestamp: Option<Timestamp>, max_lag: Option<Duration>, now: Timestamp) -> Freshness {
        let Some(timestamp) = timestamp else {
            return Freshness::Undated;
        };
        let ahead = timestamp.since(now);
        if ahead > MAX_FUTURE_SKEW {
            return Freshness::Stale(Stale::Ahead { ahead });
        }
        match max_lag {
            Some(max_lag) if now.since(timestamp) > max_lag => {
                Freshness::Stale(Stale::TooOld { past: now.since(timestamp) - max_lag })
            }
            _ => Freshness::Fresh,
        }
    }

    pub fn is_stale(self) -> bool {
        matches!(self, Freshness::Stale(_))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000); // 2026-01-01T00:00:00Z
    const LAG: Option<Duration> = Some(Duration::from_secs(300));

    fn secs_before(secs: u64) -> Option<Timestamp> {
        Some(NOW.minus(Duration::from_secs(secs)))
    }

    #[test]
    fn undated_is_not_judged() {
        assert_eq!(Freshness::check(None, LAG, NOW), Freshness::Undated);
        assert_eq!(Freshness::check(None, None, NOW), Freshness::Undated);
    }

    #[test]
    fn within_the_lag_is_fresh_and_past_it_stale() {
        assert_eq!(Freshness::check(secs_before(0), LAG, NOW), Freshness::Fresh);
        assert_eq!(Freshness::check(secs_before(299), LAG, NOW), Freshness::Fresh);
        assert_eq!(Freshness::check(secs_before(300), LAG, NOW), Freshness::Fresh);
        let one_ms_late = Some(NOW.minus(Duration::from_millis(300_001)));
        assert_eq!(
            Freshness::check(one_ms_late, LAG, NOW),
            Freshness::Stale(Stale::TooOld { past: Duration::from_millis(1) })
        );
        assert!(Freshness::check(secs_before(3600), LAG, NOW).is_stale());
    }

    #[test]
    fn without_a_lag_only_the_future_is_checked() {
        assert_eq!(Freshness::check(secs_before(86_400 * 365), None, NOW), Freshness::Fresh);
        assert!(Freshness::check(Some(NOW.plus(Duration::from_secs(61))), None, NOW).is_stale());
    }

    #[test]
    fn a_little_ahead_is_skew_and_more_is_stale() {
        assert_eq!(Freshness::check(Some(NOW.plus(MAX_FUTURE_SKEW)), LAG, NOW), Freshness::Fresh);
        let ahead = MAX_FUTURE_SKEW + Duration::from_millis(1);
        assert_eq!(Freshness::check(Some(NOW.plus(ahead)), LAG, NOW), Freshness::Stale(Stale::Ahead { ahead }));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let far_past = Some(Timestamp::from_unix_millis(i64::MIN));
        let far_future = Some(Timestamp::from_unix_millis(i64::MAX));
        assert!(Freshness::check(far_past, LAG, NOW).is_stale());
        assert!(Freshness::check(far_future, LAG, NOW).is_stale());
        assert!(Freshness::check(far_past, Some(Duration::MAX), NOW) == Freshness::Fresh);
    }

    proptest! {
        #[test]
        fn fresh_exactly_when_inside_the_window(offset_ms in -1_000_000i64..1_000_000, lag_s in 0u64..1_000) {
            let timestamp = Timestamp::from_unix_millis(NOW.as_unix_millis() + offset_ms);
            let fresh = offset_ms <= 60_000 && -offset_ms <= i64::try_from(lag_s * 1000).unwrap();
            let verdict = Freshness::check(Some(timestamp), Some(Duration::from_secs(lag_s)), NOW);
            prop_assert_eq!(verdict == Freshness::Fresh, fresh);
            prop_assert_eq!(verdict.is_stale(), !fresh);
        }
    }
}
