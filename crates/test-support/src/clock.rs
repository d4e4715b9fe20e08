//! A clock tests move by hand.

use std::sync::Mutex;
use std::time::Duration;

use domain::{Clock, Timestamp};

#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<Timestamp>,
}

impl FakeClock {
    /// Starts at 2026-11-25T12:00:00Z.
    pub fn new() -> FakeClock {
        FakeClock { now: Mutex::new(Timestamp::from_unix_millis(1_795_608_000_000)) }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.plus(by);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
