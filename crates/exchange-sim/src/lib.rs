//! `exchange-sim`: a Binance-spot-compatible exchange that runs in process on loopback.
//!
//! Tests of the Binance adapter spawn it with [`ExchangeSim::spawn`] and talk to it over real HTTP
//! at [`ExchangeSim::base_url`]; the `bulwark exchange-sim` command serves it with
//! [`ExchangeSim::serve`]. It speaks the subset of Binance's REST API that Bulwark uses, on the wire
//! as Binance does (paths, parameter names, JSON shapes, amounts as 8-decimal strings, error codes,
//! HTTP statuses and rate-limit headers):
//!
//! - market data: `ping`, `time`, `exchangeInfo`, `ticker/price`, `ticker/24hr`, `depth`,
//!   `klines`;
//! - SIGNED: `account`, `sapi/v1/account/apiRestrictions`, new / query / cancel order,
//!   `openOrders`, `myTrades`, with real HMAC-SHA256 and Ed25519 verification and the timestamp /
//!   `recvWindow` rule;
//! - request weight per IP and minute, order counts per account, 429 with `Retry-After`;
//! - one-shot injected [`Fault`]s: 5xx, 429, 418, latency, timeouts and responses lost after the
//!   request was performed; and faults drawn at random at configured [`FaultRates`];
//! - per symbol a [`PricePath`]: still (the default, moved by hand), a seeded random walk, or a
//!   replay of one-minute candles, stepping on the simulator's clock;
//! - a state file that keeps accounts, orders, trades and prices across restarts;
//! - the user data stream: listen keys (`/api/v3/userDataStream`) and `/ws/<listenKey>` pushing
//!   `executionReport`, `outboundAccountPosition` and `listenKeyExpired`.
//!
//! Matching is deliberately simple: takers find ample liquidity, so market and marketable limit
//! orders fill completely at once at the current price; resting limit orders fill at their limit
//! price when a candle's path reaches them, together at most the candle's volume (partial fills),
//! or completely when [`ExchangeSim::set_price`] reaches them. Balances are reserved by open
//! orders and released on fill or cancel; fees are charged per fill in the received asset.
//!
//! Not there yet: stop and take-profit orders, WebSocket market streams,
//! RSA keys, and IP allow lists (every loopback client is allowed; `ipRestrict` is only reported).

mod account;
mod accounts_file;
mod auth;
mod candles;
mod clock;
mod config;
mod endpoint;
mod error;
mod faults;
mod handlers;
mod market;
mod matching;
mod order;
mod paper;
mod params;
mod persist;
mod pricepath;
mod rng;
mod routes;
mod server;
mod state;
mod stream;
mod weights;
mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::account::SimBalance;
pub use crate::candles::Candle;
pub use crate::config::{SimAccount, SimConfig, SimKey, SimLimits, SimPermissions, SimSymbol};
pub use crate::error::{ConfigError, SimError};
pub use crate::faults::{Fault, FaultRates, LostReply};
pub use crate::order::{OrderParams, OrderStatus, OrderType, Side, SimOrder, SimTrade, TimeInForce};
pub use crate::paper::{PAPER_VENUE, RemotePaperMarket, random_alnum};
pub use crate::pricepath::PricePath;
use crate::server::{ConnInfo, SimListener};
pub use crate::state::RequestRecord;
use crate::state::Shared;

/// A running simulator. Dropping it stops the server and writes the state file, if configured.
#[derive(Debug)]
pub struct ExchangeSim {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    /// Writes the state file periodically, when one is configured.
    saver: Option<JoinHandle<()>>,
    stopped: bool,
}

impl ExchangeSim {
    /// Validates `config`, binds `127.0.0.1:0` and serves in a background task.
    ///
    /// # Errors
    ///
    /// `InvalidInput` (wrapping a [`ConfigError`]) for an invalid configuration, or the bind error.
    pub async fn spawn(config: SimConfig) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Self::start(config, listener)
    }

    /// Validates `config`, loads the state file if one is configured and exists, and serves on
    /// `listener` in a background task. Call it from within a Tokio runtime (it spawns the server
    /// task there, and the task writing the state file).
    ///
    /// # Errors
    ///
    /// `InvalidInput` (wrapping a [`ConfigError`]) for an invalid configuration, the error of
    /// reading the state file (`InvalidData` for one that is not a state file), or the error of
    /// reading the listener's address.
    pub fn start(config: SimConfig, listener: TcpListener) -> io::Result<Self> {
        config.validate().map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(&config, stopped)?);
        let app = Router::new()
            .route("/ws/{listen_key}", axum::routing::get(handlers::stream::connect))
            .fallback(routes::handle)
            .with_state(Arc::clone(&shared));
        let service = app.into_make_service_with_connect_info::<ConnInfo>();
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(SimListener::new(listener), service).await {
                tracing::error!(%error, "exchange-sim: server stopped");
            }
        });
        let saver = config.state_file.is_some().then(|| {
            let shared = Arc::clone(&shared);
            let every = config.state_save_every;
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    ticks.tick().await;
                    let shared = Arc::clone(&shared);
                    match tokio::task::spawn_blocking(move || shared.save()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => tracing::error!(%error, "exchange-sim: writing the state file failed"),
                        Err(error) => tracing::error!(%error, "exchange-sim: the state writer stopped"),
                    }
                }
            })
        });
        Ok(Self { shared, local_addr, shutdown, server, saver, stopped: false })
    }

    /// Serves `config` on `listener` until the task is cancelled (for the `bulwark exchange-sim`
    /// command, which binds the address it was given).
    ///
    /// # Errors
    ///
    /// As [`ExchangeSim::start`].
    pub async fn serve(config: SimConfig, listener: TcpListener) -> io::Result<()> {
        Self::serve_until(config, listener, std::future::pending()).await
    }

    /// Serves `config` on `listener` until `shutdown` completes, then stops and writes the state
    /// file (if configured).
    ///
    /// # Errors
    ///
    /// As [`ExchangeSim::start`], the server task's failure, or the error of the final write of the
    /// state file.
    pub async fn serve_until(
        config: SimConfig,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut sim = Self::start(config, listener)?;
        let served = tokio::select! {
            served = &mut sim.server => served.map_err(io::Error::other),
            () = shutdown => Ok(()),
        };
        let saved = sim.stop();
        served.and(saved)
    }

    /// Completes when the server task ends, which it does only when it fails (or after
    /// [`ExchangeSim::stop`]).
    pub async fn closed(&mut self) {
        if !self.server.is_finished() {
            let _ = (&mut self.server).await;
        }
    }

    /// Stops serving (hanging requests end, no new connection is accepted) and writes the state
    /// file, if one is configured. Later calls do nothing; dropping the handle calls it.
    ///
    /// # Errors
    ///
    /// The error of writing the state file.
    pub fn stop(&mut self) -> io::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        self.shutdown.send_replace(true);
        self.server.abort();
        if let Some(saver) = &self.saver {
            saver.abort();
        }
        self.shared.save().map(drop)
    }

    /// Writes the state file now.
    ///
    /// # Errors
    ///
    /// [`SimError::NoStateFile`] (as `io::ErrorKind::InvalidInput`) when none is configured, or
    /// the IO error of writing it.
    pub fn save_state(&self) -> io::Result<()> {
        if self.shared.save()? {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidInput, SimError::NoStateFile))
        }
    }

    /// `http://127.0.0.1:PORT`, to use in place of `https://api.binance.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The simulator's `serverTime` now, in milliseconds.
    pub fn server_time_ms(&self) -> i64 {
        self.shared.lock().clock.now_ms()
    }

    /// Sets `serverTime = base time + offset` (to test a client's clock-skew handling).
    pub fn set_clock_offset_ms(&self, offset_ms: i64) {
        self.shared.lock().clock.set_offset_ms(offset_ms);
    }

    /// Stops the clock at `instant_ms` (offset reset to 0), so that time windows are under the
    /// test's control.
    pub fn freeze_clock_at(&self, instant_ms: i64) {
        self.shared.lock().clock.freeze_at(instant_ms);
    }

    /// Moves the clock forward by `ms` (frozen or not). Price-path steps that fall due by then
    /// are taken at the next look at the state (any request or handle call).
    pub fn advance_clock_ms(&self, ms: i64) {
        self.shared.lock().clock.advance_ms(ms);
    }

    /// The current price of `symbol`.
    pub fn price(&self, symbol: &str) -> Option<Decimal> {
        self.shared.lock().exchange.symbols.get(symbol).map(|state| state.price)
    }

    /// Moves the price of `symbol`; resting limit orders the price reaches fill at their limit
    /// price. Returns how many orders filled.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownSymbol`], or [`SimError::BadPrice`] for a price that is not positive.
    pub fn set_price(&self, symbol: &str, price: Decimal) -> Result<usize, SimError> {
        let mut state = self.shared.lock();
        let now_ms = state.clock.now_ms();
        state.exchange.set_price(symbol, price, now_ms)
    }

    /// Walks the price of `symbol` through `candle` as a price-path step does: resting orders the
    /// candle reaches fill at their limit price, in price-time priority, together at most its
    /// volume; the price ends at the close, and the candle is kept for `klines`. Returns how many
    /// fills it made.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownSymbol`], or [`SimError::BadCandle`] for inconsistent prices or volume.
    pub fn apply_candle(&self, symbol: &str, candle: &Candle) -> Result<usize, SimError> {
        let mut state = self.shared.lock();
        let now_ms = state.clock.now_ms();
        state.exchange.apply_candle(symbol, candle, now_ms)
    }

    /// The one-minute candles `symbol` went through so far (oldest first, at most a week's), as
    /// `klines` with `interval=1m` serves them; empty for an unknown symbol.
    pub fn candles(&self, symbol: &str) -> Vec<Candle> {
        self.shared.lock().exchange.symbols.get(symbol).map(|state| state.candles.all().to_vec()).unwrap_or_default()
    }

    /// Replaces the permissions of an API key.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownApiKey`].
    pub fn set_permissions(&self, api_key: &str, permissions: SimPermissions) -> Result<(), SimError> {
        self.with_account(api_key, |account| account.permissions = permissions)
    }

    /// Opens an account while the simulator runs (the paper accounts of `bulwark serve`). It is
    /// kept in the state file like the configured ones.
    ///
    /// # Errors
    ///
    /// [`SimError::BadAccount`] for a malformed key or balance, or an API key already in use.
    pub fn add_account(&self, account: SimAccount) -> Result<(), SimError> {
        account.validate().map_err(|err| SimError::BadAccount(err.to_string()))?;
        let mut state = self.shared.lock();
        if state.exchange.account_index(&account.api_key).is_some() {
            return Err(SimError::BadAccount("the API key is already in use".to_owned()));
        }
        let uid = state.exchange.accounts.iter().map(|a| a.uid).max().unwrap_or(0) + 1;
        let now_ms = state.clock.now_ms();
        state.exchange.accounts.push(account::Account::new(&account, uid, now_ms));
        Ok(())
    }

    /// Starts an account over (a paper account's "reset"): cancels its open orders and replaces its
    /// balances with `balances` (free, nothing locked). Returns how many orders were canceled.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownApiKey`]; [`SimError::BadAccount`] for a negative balance.
    pub fn reset_account(&self, api_key: &str, balances: &[(String, Decimal)]) -> Result<usize, SimError> {
        if balances.iter().any(|(_, amount)| amount.is_sign_negative()) {
            return Err(SimError::BadAccount("a balance is negative".to_owned()));
        }
        let mut state = self.shared.lock();
        let now_ms = state.clock.now_ms();
        let index = state.exchange.account_index(api_key).ok_or_else(|| SimError::UnknownApiKey(api_key.to_owned()))?;
        let canceled = handlers::sim_admin::reset(&mut state.exchange.accounts[index], balances, now_ms);
        Ok(canceled)
    }

    /// Revokes an API key: every later SIGNED request with it gets -2015.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownApiKey`].
    pub fn revoke_key(&self, api_key: &str) -> Result<(), SimError> {
        self.with_account(api_key, |account| account.revoked = true)
    }

    /// Places an order for `api_key` in process, without HTTP: the same code as
    /// `POST /api/v3/order` once the request is authenticated (the parameters' checks for the
    /// order's type, order-count limits, filters, balance reservation, matching, fills and fees),
    /// at the simulator's clock. There is no signature, timestamp, request weight, fault or request
    /// log entry. Returns the order as placed, fills applied; its trades are in [`Self::trades`].
    ///
    /// # Errors
    ///
    /// [`SimError::Refused`] with the status, code and message the HTTP request would get: -2014
    /// for a malformed key; -2015 for an unknown or revoked key or one not allowed to trade; and
    /// every refusal of the order itself (-1013 filter failure, -2010 insufficient balance or a
    /// duplicate client order id, -1102 / -1106 parameters, -1121 symbol, -1015 order count, ...).
    pub fn place_order_in_process(&self, api_key: &str, order: &OrderParams) -> Result<SimOrder, SimError> {
        let mut state = self.shared.lock();
        let account = handlers::trade::trading_account(&state, api_key)?;
        let now_ms = state.clock.now_ms();
        Ok(handlers::trade::new_order_in_process(&mut state, account, order, now_ms)?)
    }

    /// Cancels the open order `order_id` on `symbol` of `api_key` in process, as
    /// `DELETE /api/v3/order` with `orderId` does once authenticated; returns the canceled order
    /// (its reserved funds are free again).
    ///
    /// # Errors
    ///
    /// [`SimError::Refused`] as the HTTP request: -2014 / -2015 for the key, -1121 for an unknown
    /// symbol, -2011 for an order that is not open or not there.
    pub fn cancel_order_in_process(&self, api_key: &str, symbol: &str, order_id: u64) -> Result<SimOrder, SimError> {
        let mut state = self.shared.lock();
        let account = handlers::trade::trading_account(&state, api_key)?;
        let now_ms = state.clock.now_ms();
        Ok(handlers::trade::cancel_in_process(&mut state, account, symbol, order_id, now_ms)?)
    }

    /// Queues a one-shot fault for the next request it matches.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// How many injected faults have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// The API keys of every account, in the order they were added (the test handle's way to find
    /// accounts the paper market opened at run time).
    pub fn api_keys(&self) -> Vec<String> {
        let state = self.shared.lock();
        state.exchange.accounts.iter().map(|account| account.api_key.clone()).collect()
    }

    /// How many WebSocket connections listen to the account's user data stream (0 for an unknown
    /// key): a test waits for a client's stream before moving the price.
    pub fn stream_listeners(&self, api_key: &str) -> usize {
        let state = self.shared.lock();
        state.exchange.account_index(api_key).map_or(0, |index| state.streams.listeners(index))
    }

    /// All orders of the account, in placement order (empty for an unknown key).
    pub fn orders(&self, api_key: &str) -> Vec<SimOrder> {
        self.read_account(api_key, |account| account.orders.clone()).unwrap_or_default()
    }

    /// All trades of the account, oldest first (empty for an unknown key).
    pub fn trades(&self, api_key: &str) -> Vec<SimTrade> {
        self.read_account(api_key, |account| account.trades.clone()).unwrap_or_default()
    }

    /// The account's balances per asset (empty for an unknown key).
    pub fn balances(&self, api_key: &str) -> BTreeMap<String, SimBalance> {
        self.read_account(api_key, |account| account.balances.clone()).unwrap_or_default()
    }

    /// Every request received so far, oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.lock().log().to_vec()
    }

    /// Forgets the requests received so far.
    pub fn clear_request_log(&self) {
        self.shared.lock().clear_log();
    }

    fn with_account(&self, api_key: &str, change: impl FnOnce(&mut account::Account)) -> Result<(), SimError> {
        let mut state = self.shared.lock();
        let index = state.exchange.account_index(api_key).ok_or_else(|| SimError::UnknownApiKey(api_key.to_owned()))?;
        change(&mut state.exchange.accounts[index]);
        Ok(())
    }

    fn read_account<T>(&self, api_key: &str, read: impl FnOnce(&account::Account) -> T) -> Option<T> {
        let state = self.shared.lock();
        state.exchange.account_index(api_key).map(|index| read(&state.exchange.accounts[index]))
    }
}

impl Drop for ExchangeSim {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "exchange-sim: writing the state file on shutdown failed");
        }
    }
}
