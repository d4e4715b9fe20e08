//! The simulator's clock: real time (or a frozen instant) plus a settable offset.
//!
//! Tests move `serverTime` away from the client's clock with an offset to exercise clock-skew
//! handling, and freeze the clock when an assertion depends on a time window (request weight per
//! minute, order counts per 10 s) so that it cannot straddle a boundary.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as the simulator sees them.
#[derive(Debug, Clone, Default)]
pub(crate) struct SimClock {
    /// When set, the clock stands still at this instant (before the offset).
    frozen_at_ms: Option<i64>,
    offset_ms: i64,
}

impl SimClock {
    pub(crate) fn new(frozen_at_ms: Option<i64>) -> Self {
        Self { frozen_at_ms, offset_ms: 0 }
    }

    /// `serverTime`: the base instant plus the offset.
    pub(crate) fn now_ms(&self) -> i64 {
        self.frozen_at_ms.unwrap_or_else(system_now_ms).saturating_add(self.offset_ms)
    }

    pub(crate) fn set_offset_ms(&mut self, offset_ms: i64) {
        self.offset_ms = offset_ms;
    }

    pub(crate) fn advance_ms(&mut self, ms: i64) {
        self.offset_ms = self.offset_ms.saturating_add(ms);
    }

    pub(crate) fn freeze_at(&mut self, instant_ms: i64) {
        self.frozen_at_ms = Some(instant_ms);
        self.offset_ms = 0;
    }

    /// The frozen instant and the offset, for the state file.
    pub(crate) fn parts(&self) -> (Option<i64>, i64) {
        (self.frozen_at_ms, self.offset_ms)
    }

    /// Restores what [`SimClock::parts`] returned.
    pub(crate) fn restore(&mut self, frozen_at_ms: Option<i64>, offset_ms: i64) {
        self.frozen_at_ms = frozen_at_ms;
        self.offset_ms = offset_ms;
    }
}

/// The real clock in milliseconds; a clock set before 1970 reads as 0.
pub(crate) fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_by_offset_and_advance() {
        let mut clock = SimClock::new(Some(1_000_000));
        assert_eq!(clock.now_ms(), 1_000_000);
        clock.set_offset_ms(-5_000);
        assert_eq!(clock.now_ms(), 995_000);
        clock.advance_ms(10_000);
        assert_eq!(clock.now_ms(), 1_005_000);
        clock.freeze_at(7);
        assert_eq!(clock.now_ms(), 7);
    }

    #[test]
    fn the_running_clock_adds_the_offset_to_real_time() {
        let mut clock = SimClock::new(None);
        clock.set_offset_ms(3_600_000);
        let before = system_now_ms();
        let now = clock.now_ms();
        let after = system_now_ms();
        assert!(now >= before + 3_600_000 && now <= after + 3_600_000);
    }
}
