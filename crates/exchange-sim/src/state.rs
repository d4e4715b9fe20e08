//! The simulator's whole state behind one mutex, shared by the HTTP handlers and the handle.
//!
//! The lock is never held across an `.await`: a request takes it once to decide on faults, once
//! to be processed, and the handle takes it for each call. Taking it first brings the market up
//! to the clock (every price-path step due by now), so whatever reads the state sees the market
//! as of now, and the market moves exactly as the clock does. Releasing it sends what the user
//! data streams are to hear ([`StateGuard`]).

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::SimClock;
use crate::config::{SimConfig, SimLimits};
use crate::faults::FaultQueue;
use crate::matching::Exchange;
use crate::persist::SavedState;
use crate::stream::{self, Outgoing, UserStreams};
use crate::weights::{OrderCounter, WeightTracker};

/// One request as the simulator received it, for assertions such as "the order was placed exactly
/// once".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// E.g. `/api/v3/order`.
    pub path: String,
    /// The raw query string (without `?`), possibly empty.
    pub query: String,
    /// The raw body (lossily decoded as UTF-8), possibly empty.
    pub body: String,
    /// The `X-MBX-APIKEY` header, if sent.
    pub api_key: Option<String>,
    /// Whether the request carried a signature that verified.
    pub signed: bool,
    /// The HTTP status answered; `None` while in flight, or when no response was sent (dropped
    /// connection, hang).
    pub status: Option<u16>,
    /// When the simulator's handler got the request (headers and body read): the end of a
    /// benchmark's signal-to-order measurement (B4, B5).
    pub received_at: std::time::Instant,
}

#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) clock: SimClock,
    pub(crate) exchange: Exchange,
    pub(crate) faults: FaultQueue,
    pub(crate) weights: WeightTracker,
    pub(crate) order_counts: OrderCounter,
    pub(crate) limits: SimLimits,
    /// Listen keys (not kept in the state file).
    pub(crate) streams: UserStreams,
    log: Vec<RequestRecord>,
    /// How many records [`SimState::clear_log`] dropped; request ids count from the first request.
    log_dropped: usize,
}

impl SimState {
    /// The state `config` describes, with the state file's contents put in when there is one.
    ///
    /// # Errors
    ///
    /// Reading the state file failed, or it is not a state file this simulator writes.
    pub(crate) fn new(config: &SimConfig) -> io::Result<Self> {
        let clock = SimClock::new(config.frozen_clock_ms);
        let now_ms = clock.now_ms();
        let mut state = Self {
            exchange: Exchange::new(config, now_ms),
            clock,
            faults: FaultQueue::new(config.fault_rates, config.seed),
            weights: WeightTracker::default(),
            order_counts: OrderCounter::default(),
            limits: config.limits,
            streams: UserStreams::default(),
            log: Vec::new(),
            log_dropped: 0,
        };
        if let Some(saved) = config.state_file.as_deref().map(SavedState::load).transpose()?.flatten() {
            saved.restore_into(&mut state)?;
        }
        Ok(state)
    }

    /// Takes every price-path step due by the clock's now.
    pub(crate) fn catch_up(&mut self) {
        let now_ms = self.clock.now_ms();
        self.exchange.advance_market(now_ms);
    }

    /// Logs a request; returns its id for [`SimState::record_mut`].
    pub(crate) fn push_record(&mut self, record: RequestRecord) -> usize {
        self.log.push(record);
        self.log_dropped + self.log.len() - 1
    }

    /// The record of request `id`, unless the log was cleared since.
    pub(crate) fn record_mut(&mut self, id: usize) -> Option<&mut RequestRecord> {
        id.checked_sub(self.log_dropped).and_then(|index| self.log.get_mut(index))
    }

    pub(crate) fn log(&self) -> &[RequestRecord] {
        &self.log
    }

    pub(crate) fn clear_log(&mut self) {
        self.log_dropped += self.log.len();
        self.log.clear();
    }
}

/// What the handlers and the handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<SimState>,
    /// Turns `true` when the simulator shuts down; hanging requests end then.
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) hang_for: Duration,
    pub(crate) state_file: Option<PathBuf>,
    /// Held while the state file is written, so that two writes never share the temporary file.
    writing: Mutex<()>,
    /// Taken before the state lock is released and held while the stream events collected under it
    /// are sent, so that they go out in the order they happened.
    sending: Mutex<()>,
}

impl Shared {
    /// # Errors
    ///
    /// As [`SimState::new`].
    pub(crate) fn new(config: &SimConfig, shutdown: watch::Receiver<bool>) -> io::Result<Self> {
        Ok(Self {
            state: Mutex::new(SimState::new(config)?),
            shutdown,
            hang_for: config.hang_for,
            state_file: config.state_file.clone(),
            writing: Mutex::new(()),
            sending: Mutex::new(()),
        })
    }

    /// The state, with the market brought up to the clock. A panic while holding the lock cannot
    /// leave it half-updated in a way that matters more than losing the simulator, so a poisoned
    /// lock is used as is.
    pub(crate) fn lock(&self) -> StateGuard<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.catch_up();
        StateGuard { state, outgoing: Outgoing::default(), sending: &self.sending }
    }

    /// Writes the state file, if one is configured; `Ok(false)` when none is.
    ///
    /// # Errors
    ///
    /// The IO error of writing it.
    pub(crate) fn save(&self) -> io::Result<bool> {
        let Some(path) = &self.state_file else { return Ok(false) };
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let saved = {
            let state = self.lock();
            SavedState::of(&state, state.clock.now_ms())
        };
        saved.write(path)?;
        Ok(true)
    }

    /// Waits for `hang_for` or for shutdown, whichever comes first.
    pub(crate) async fn hang(&self) {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(self.hang_for) => {}
            _ = shutdown.wait_for(|stopped| *stopped) => {}
        }
    }
}

/// The locked state. Dropping it takes the user data stream events collected meanwhile (with the
/// lock held), releases the lock, and then sends them.
#[derive(Debug)]
pub(crate) struct StateGuard<'a> {
    // Fields drop in order after `drop`: the state is unlocked before `outgoing` sends.
    state: MutexGuard<'a, SimState>,
    outgoing: Outgoing<'a>,
    sending: &'a Mutex<()>,
}

impl Deref for StateGuard<'_> {
    type Target = SimState;

    fn deref(&self) -> &SimState {
        &self.state
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut SimState {
        &mut self.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let pending = stream::collect(&mut self.state);
        if !pending.is_empty() {
            let order = self.sending.lock().unwrap_or_else(PoisonError::into_inner);
            self.outgoing = Outgoing::new(pending, order);
        }
    }
}
