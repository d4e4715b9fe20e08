//! User data streams: listen keys, and the events pushed to the WebSocket connections that name
//! them (binance-spot-api-docs `user-data-stream.md`, and the listen-key endpoints of `rest-api.md`).
//!
//! An account has at most one live listen key: `POST /api/v3/userDataStream` returns the live one
//! (extending it) or makes a new one, `PUT` extends it, `DELETE` closes it. A key lives 60 minutes
//! after its creation or last keepalive on the simulator's clock; one found expired is dropped, and
//! its connections hear `listenKeyExpired` and are closed. Listen keys are not kept in the state
//! file: they are lost on restart, as Binance's may be.
//!
//! Events are collected while the state lock is held and sent after it is released:
//!
//! - the matching engine reports every order change to the account's [`Outbox`] (one line at
//!   placement, execution and close), which keeps them only while the account has a live key;
//! - when a [`crate::state::StateGuard`] is dropped, [`collect`] takes every outbox's reports,
//!   adds one `outboundAccountPosition` per account with the assets they touched, and expires keys;
//! - the guard releases the lock, then [`Outgoing`] serializes the events and sends them to each
//!   key's broadcast channel, under a second lock that keeps batches in the order they were
//!   collected.

use std::collections::BTreeSet;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::order::{OrderType, SimOrder, SimTrade};
use crate::state::SimState;
use crate::wire::amount;

/// A listen key lives this long after its creation or last keepalive.
pub(crate) const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1_000;
/// Binance's spot listen keys are 60 letters and digits.
const LISTEN_KEY_LEN: usize = 60;
/// Events a connection may fall behind by before it is closed.
const CHANNEL_CAPACITY: usize = 1_024;

/// What an order change was, for its `executionReport`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Execution<'a> {
    /// Accepted by the engine (`x: NEW`).
    New,
    /// Part or all of it executed in `trade` (`x: TRADE`).
    Trade(&'a SimTrade),
    /// Ended without further execution: canceled or expired (`x` is the order's new status).
    Ended,
}

/// The events of one account waiting for the state lock to be released. It collects only while the
/// account has a live listen key, so an account nobody listens to costs nothing.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    enabled: bool,
    reports: Vec<ExecutionReport>,
    /// Assets whose balance the reported changes may have moved.
    touched: BTreeSet<String>,
    /// The ignored `I` field: a counter of the account's reports.
    sequence: u64,
}

impl Outbox {
    /// Records an order change (the hook the matching engine calls).
    pub(crate) fn order_event(&mut self, order: &SimOrder, execution: Execution<'_>) {
        if !self.enabled {
            return;
        }
        self.sequence += 1;
        self.touched.insert(order.reserved_asset.clone());
        if let Execution::Trade(trade) = execution {
            self.touched.insert(trade.commission_asset.clone());
        }
        self.reports.push(ExecutionReport::new(order, execution, self.sequence));
    }

    /// Names the cancel request in the report of the cancel just recorded for `order`: Binance
    /// reports a cancel with the cancel's client order id in `c` and the order's in `C`.
    pub(crate) fn name_cancel(&mut self, order: &SimOrder, cancel_client_order_id: &str) {
        let report = self.reports.iter_mut().rev().find(|report| {
            report.order_id == order.order_id && report.symbol == order.symbol && report.execution_type == "CANCELED"
        });
        if let Some(report) = report {
            report.original_client_order_id =
                std::mem::replace(&mut report.client_order_id, cancel_client_order_id.to_owned());
        }
    }

    fn start(&mut self) {
        self.enabled = true;
    }

    fn stop(&mut self) {
        *self = Self { sequence: self.sequence, ..Self::default() };
    }

    fn take(&mut self) -> (Vec<ExecutionReport>, BTreeSet<String>) {
        (std::mem::take(&mut self.reports), std::mem::take(&mut self.touched))
    }
}

/// The listen keys of all accounts.
#[derive(Debug, Default)]
pub(crate) struct UserStreams {
    live: Vec<ListenKey>,
    /// Keys found expired whose connections have not yet been told.
    expired: Vec<ListenKey>,
}

struct ListenKey {
    key: String,
    account: usize,
    expires_ms: i64,
    sender: broadcast::Sender<Utf8Bytes>,
}

impl std::fmt::Debug for ListenKey {
    /// Without the key: whoever has it can read the account's stream.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenKey").field("account", &self.account).field("expires_ms", &self.expires_ms).finish()
    }
}

/// A listen key that is not live (never made, closed, expired, or another account's): -1125.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSuchListenKey;

impl UserStreams {
    /// How many WebSocket connections listen to `account`'s live keys.
    pub(crate) fn listeners(&self, account: usize) -> usize {
        self.live.iter().filter(|key| key.account == account).map(|key| key.sender.receiver_count()).sum()
    }

    /// Moves the keys that expired by `now_ms` to the ones whose connections are still to be told.
    fn sweep(&mut self, now_ms: i64) {
        if self.live.iter().any(|key| key.expires_ms <= now_ms) {
            let (live, expired): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.live).into_iter().partition(|key| key.expires_ms > now_ms);
            self.live = live;
            self.expired.extend(expired);
        }
    }

    fn live_mut(&mut self, account: usize, listen_key: &str) -> Result<&mut ListenKey, NoSuchListenKey> {
        self.live.iter_mut().find(|key| key.account == account && key.key == listen_key).ok_or(NoSuchListenKey)
    }

    fn has_live(&self, account: usize) -> bool {
        self.live.iter().any(|key| key.account == account)
    }
}

/// `POST /api/v3/userDataStream`: the account's live listen key, extended, or a new one.
///
/// # Errors
///
/// The OS random source failed.
pub(crate) fn open(state: &mut SimState, account: usize) -> Result<String, String> {
    let now_ms = state.clock.now_ms();
    state.streams.sweep(now_ms);
    if let Some(key) = state.streams.live.iter_mut().find(|key| key.account == account) {
        key.expires_ms = now_ms.saturating_add(LISTEN_KEY_TTL_MS);
        return Ok(key.key.clone());
    }
    let key = crate::paper::random_alnum(LISTEN_KEY_LEN)?.as_str().to_owned();
    let (sender, _) = broadcast::channel(CHANNEL_CAPACITY);
    state.streams.live.push(ListenKey {
        key: key.clone(),
        account,
        expires_ms: now_ms.saturating_add(LISTEN_KEY_TTL_MS),
        sender,
    });
    if let Some(account) = state.exchange.accounts.get_mut(account) {
        account.outbox.start();
    }
    Ok(key)
}

/// `PUT /api/v3/userDataStream`: extends the account's live `listen_key` by 60 minutes.
///
/// # Errors
///
/// [`NoSuchListenKey`].
pub(crate) fn keep_alive(state: &mut SimState, account: usize, listen_key: &str) -> Result<(), NoSuchListenKey> {
    let now_ms = state.clock.now_ms();
    state.streams.sweep(now_ms);
    state.streams.live_mut(account, listen_key)?.expires_ms = now_ms.saturating_add(LISTEN_KEY_TTL_MS);
    Ok(())
}

/// `DELETE /api/v3/userDataStream`: closes the account's live `listen_key`; its connections are
/// closed without `listenKeyExpired`.
///
/// # Errors
///
/// [`NoSuchListenKey`].
pub(crate) fn close(state: &mut SimState, account: usize, listen_key: &str) -> Result<(), NoSuchListenKey> {
    let now_ms = state.clock.now_ms();
    state.streams.sweep(now_ms);
    state.streams.live_mut(account, listen_key)?;
    state.streams.live.retain(|key| key.key != listen_key);
    if !state.streams.has_live(account)
        && let Some(account) = state.exchange.accounts.get_mut(account)
    {
        account.outbox.stop();
    }
    Ok(())
}

/// A receiver for a WebSocket connection to `listen_key` (`/ws/<listenKey>`).
///
/// # Errors
///
/// [`NoSuchListenKey`].
pub(crate) fn subscribe(
    state: &mut SimState,
    listen_key: &str,
) -> Result<broadcast::Receiver<Utf8Bytes>, NoSuchListenKey> {
    let now_ms = state.clock.now_ms();
    state.streams.sweep(now_ms);
    let key = state.streams.live.iter().find(|key| key.key == listen_key).ok_or(NoSuchListenKey)?;
    Ok(key.sender.subscribe())
}

/// Takes every event collected since the last call, and expires the keys due by the clock: what
/// the state guard sends once the lock is released.
pub(crate) fn collect(state: &mut SimState) -> Vec<Pending> {
    let streams = &mut state.streams;
    if streams.live.is_empty() && streams.expired.is_empty() {
        return Vec::new();
    }
    let now_ms = state.clock.now_ms();
    streams.sweep(now_ms);
    let mut pending = Vec::new();
    let accounts = &mut state.exchange.accounts;
    for key in &streams.live {
        if let Some(account) = accounts.get_mut(key.account) {
            drain(account, &key.sender, now_ms, &mut pending);
        }
    }
    for key in std::mem::take(&mut streams.expired) {
        if !streams.live.iter().any(|live| live.account == key.account)
            && let Some(account) = accounts.get_mut(key.account)
        {
            drain(account, &key.sender, now_ms, &mut pending);
            account.outbox.stop();
        }
        let event = Event::Expired(ListenKeyExpired {
            event_type: "listenKeyExpired",
            event_time: now_ms.to_string(),
            listen_key: key.key,
        });
        pending.push(Pending { sender: key.sender, event });
    }
    pending
}

/// The account's reports, then one `outboundAccountPosition` with the assets they touched.
fn drain(
    account: &mut crate::account::Account,
    sender: &broadcast::Sender<Utf8Bytes>,
    now_ms: i64,
    pending: &mut Vec<Pending>,
) {
    let (reports, touched) = account.outbox.take();
    for mut report in reports {
        report.event_time = now_ms;
        pending.push(Pending { sender: sender.clone(), event: Event::Report(Box::new(report)) });
    }
    if touched.is_empty() {
        return;
    }
    let balances = touched
        .into_iter()
        .map(|asset| {
            let balance = account.balances.get(&asset).copied().unwrap_or_default();
            PositionBalance { asset, free: amount(balance.free), locked: amount(balance.locked) }
        })
        .collect();
    let position = AccountPosition {
        event_type: "outboundAccountPosition",
        event_time: now_ms,
        last_update_time: account.update_time,
        balances,
    };
    pending.push(Pending { sender: sender.clone(), event: Event::Position(position) });
}

/// One event for one listen key's connections.
#[derive(Debug)]
pub(crate) struct Pending {
    sender: broadcast::Sender<Utf8Bytes>,
    event: Event,
}

/// Sends what [`collect`] took when dropped; holding `_order` (a lock taken before the state lock
/// was released) keeps batches in the order they were collected.
#[derive(Debug, Default)]
pub(crate) struct Outgoing<'a> {
    pending: Vec<Pending>,
    /// Released after the sends, when the fields drop.
    _order: Option<std::sync::MutexGuard<'a, ()>>,
}

impl<'a> Outgoing<'a> {
    pub(crate) fn new(pending: Vec<Pending>, order: std::sync::MutexGuard<'a, ()>) -> Self {
        Self { pending, _order: Some(order) }
    }
}

impl Drop for Outgoing<'_> {
    fn drop(&mut self) {
        for Pending { sender, event } in self.pending.drain(..) {
            match serde_json::to_string(&event) {
                // No connection listening is not an error: the event is simply not heard.
                Ok(text) => drop(sender.send(Utf8Bytes::from(text))),
                Err(error) => tracing::error!(%error, "exchange-sim: a stream event does not serialize"),
            }
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Event {
    Report(Box<ExecutionReport>),
    Position(AccountPosition),
    Expired(ListenKeyExpired),
}

/// `executionReport`, with the fields binance-spot-api-docs shows for every order (the
/// conditional ones of trailing-stop and strategy orders never apply here).
#[derive(Debug, Clone, Serialize)]
struct ExecutionReport {
    #[serde(rename = "e")]
    event_type: &'static str,
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "c")]
    client_order_id: String,
    #[serde(rename = "S")]
    side: &'static str,
    #[serde(rename = "o")]
    order_type: &'static str,
    #[serde(rename = "f")]
    time_in_force: &'static str,
    #[serde(rename = "q")]
    quantity: String,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "P")]
    stop_price: String,
    #[serde(rename = "F")]
    iceberg_quantity: String,
    #[serde(rename = "g")]
    order_list_id: i64,
    #[serde(rename = "C")]
    original_client_order_id: String,
    #[serde(rename = "x")]
    execution_type: &'static str,
    #[serde(rename = "X")]
    order_status: &'static str,
    #[serde(rename = "r")]
    reject_reason: &'static str,
    #[serde(rename = "i")]
    order_id: u64,
    #[serde(rename = "l")]
    last_executed_quantity: String,
    #[serde(rename = "z")]
    cumulative_filled_quantity: String,
    #[serde(rename = "L")]
    last_executed_price: String,
    #[serde(rename = "n")]
    commission: String,
    #[serde(rename = "N")]
    commission_asset: Option<String>,
    #[serde(rename = "T")]
    transaction_time: i64,
    #[serde(rename = "t")]
    trade_id: i64,
    #[serde(rename = "I")]
    ignored_sequence: u64,
    #[serde(rename = "w")]
    on_book: bool,
    #[serde(rename = "m")]
    maker: bool,
    #[serde(rename = "M")]
    ignored_flag: bool,
    #[serde(rename = "O")]
    creation_time: i64,
    #[serde(rename = "Z")]
    cumulative_quote_quantity: String,
    #[serde(rename = "Y")]
    last_quote_quantity: String,
    #[serde(rename = "Q")]
    quote_order_quantity: String,
    /// Only for orders placed on the book (not market orders).
    #[serde(rename = "W", skip_serializing_if = "Option::is_none")]
    working_time: Option<i64>,
    #[serde(rename = "V")]
    self_trade_prevention_mode: &'static str,
}

impl ExecutionReport {
    fn new(order: &SimOrder, execution: Execution<'_>, sequence: u64) -> Self {
        let zero = amount(rust_decimal::Decimal::ZERO);
        let (execution_type, transaction_time) = match execution {
            Execution::New => ("NEW", order.time),
            Execution::Trade(trade) => ("TRADE", trade.time),
            Execution::Ended => (order.status.as_str(), order.update_time),
        };
        let trade = match execution {
            Execution::Trade(trade) => Some(trade),
            Execution::New | Execution::Ended => None,
        };
        let on_book = order.order_type != OrderType::Market;
        Self {
            event_type: "executionReport",
            event_time: transaction_time,
            symbol: order.symbol.clone(),
            client_order_id: order.client_order_id.clone(),
            side: order.side.as_str(),
            order_type: order.order_type.as_str(),
            time_in_force: order.time_in_force.as_str(),
            quantity: amount(order.orig_qty),
            price: amount(order.price),
            stop_price: zero.clone(),
            iceberg_quantity: zero.clone(),
            order_list_id: -1,
            original_client_order_id: String::new(),
            execution_type,
            order_status: order.status.as_str(),
            reject_reason: "NONE",
            order_id: order.order_id,
            last_executed_quantity: trade.map_or_else(|| zero.clone(), |trade| amount(trade.qty)),
            cumulative_filled_quantity: amount(order.executed_qty),
            last_executed_price: trade.map_or_else(|| zero.clone(), |trade| amount(trade.price)),
            // Binance writes a plain "0" and null when nothing was charged.
            commission: trade.map_or_else(|| "0".to_owned(), |trade| amount(trade.commission)),
            commission_asset: trade.map(|trade| trade.commission_asset.clone()),
            transaction_time,
            trade_id: trade.map_or(-1, |trade| i64::try_from(trade.id).unwrap_or(i64::MAX)),
            ignored_sequence: sequence,
            on_book: on_book && order.is_open(),
            maker: trade.is_some_and(|trade| trade.is_maker),
            ignored_flag: false,
            creation_time: order.time,
            cumulative_quote_quantity: amount(order.cummulative_quote_qty),
            last_quote_quantity: trade.map_or_else(|| zero.clone(), |trade| amount(trade.quote_qty)),
            quote_order_quantity: amount(order.orig_quote_order_qty),
            working_time: on_book.then_some(order.working_time),
            self_trade_prevention_mode: "NONE",
        }
    }
}

/// `outboundAccountPosition`.
#[derive(Debug, Serialize)]
struct AccountPosition {
    #[serde(rename = "e")]
    event_type: &'static str,
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "u")]
    last_update_time: i64,
    #[serde(rename = "B")]
    balances: Vec<PositionBalance>,
}

#[derive(Debug, Serialize)]
struct PositionBalance {
    #[serde(rename = "a")]
    asset: String,
    #[serde(rename = "f")]
    free: String,
    #[serde(rename = "l")]
    locked: String,
}

/// `listenKeyExpired`; the event time is a string, as Binance's documents show it for this event.
#[derive(Debug, Serialize)]
struct ListenKeyExpired {
    #[serde(rename = "e")]
    event_type: &'static str,
    #[serde(rename = "E")]
    event_time: String,
    #[serde(rename = "listenKey")]
    listen_key: String,
}
