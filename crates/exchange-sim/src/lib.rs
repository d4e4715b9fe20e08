//! `exchange-sim`: a Binance-spot-compatible exchange that runs in process on loopback.
//!
//! Tests of the Binance adapter spawn it with [`ExchangeSim::spawn`] and talk to it over real HTTP
//! at [`ExchangeSim::base_url`]; the `bulwark exchange-sim` command serves it with
//! [`ExchangeSim::serve`]. It speaks the subset of Binance's REST API that Bulwark uses, on the wire
//! as Binance does (paths, parameter names, JSON shapes, amounts as 8-decimal strings, error codes,
//! HTTP statuses and rate-limit headers):
//!
//! - market data: `ping`, `time`, `exchangeInfo`, `ticker/price`, `ticker/24hr`, `depth`;
//! - SIGNED: `account`, `sapi/v1/account/apiRestrictions`, new / query / cancel order,
//!   `openOrders`, `myTrades`, with real HMAC-SHA256 and Ed25519 verification and the timestamp /
//!   `recvWindow` rule;
//! - request weight per IP and minute, order counts per account, 429 with `Retry-After`;
//! - one-shot injected [`Fault`]s: 5xx, 429, 418, latency, timeouts and responses lost after the
//!   request was performed.
//!
//! Matching is deliberately simple: the book has unlimited depth at the current price, so market
//! and marketable limit orders fill completely at once and resting limit orders fill completely
//! when [`ExchangeSim::set_price`] reaches their price. Balances are reserved by open orders and
//! released on fill or cancel; fees are charged in the received asset.
//!
//! Not there yet: partial fills, stop and take-profit orders, a price random walk or candle replay,
//! `klines`, user data streams and WebSocket market streams, RSA keys, and IP allow lists (every
//! loopback client is allowed; `ipRestrict` is only reported).

mod account;
mod auth;
mod clock;
mod config;
mod endpoint;
mod error;
mod faults;
mod handlers;
mod market;
mod matching;
mod order;
mod params;
mod rng;
mod routes;
mod server;
mod state;
mod weights;
mod wire;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::account::SimBalance;
pub use crate::config::{SimAccount, SimConfig, SimKey, SimLimits, SimPermissions, SimSymbol};
pub use crate::error::{ConfigError, SimError};
pub use crate::faults::{Fault, LostReply};
pub use crate::order::{OrderStatus, OrderType, Side, SimOrder, SimTrade, TimeInForce};
use crate::server::{ConnInfo, SimListener};
pub use crate::state::RequestRecord;
use crate::state::Shared;

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct ExchangeSim {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
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

    /// Validates `config` and serves on `listener` in a background task. Call it from within a
    /// Tokio runtime (it spawns the server task there).
    ///
    /// # Errors
    ///
    /// `InvalidInput` (wrapping a [`ConfigError`]) for an invalid configuration, or the error of
    /// reading the listener's address.
    pub fn start(config: SimConfig, listener: TcpListener) -> io::Result<Self> {
        config.validate().map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(&config, stopped));
        let app = Router::new().fallback(routes::handle).with_state(Arc::clone(&shared));
        let service = app.into_make_service_with_connect_info::<ConnInfo>();
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(SimListener::new(listener), service).await {
                tracing::error!(%error, "exchange-sim: server stopped");
            }
        });
        Ok(Self { shared, local_addr, shutdown, server })
    }

    /// Serves `config` on `listener` until the task is cancelled (for the `bulwark exchange-sim`
    /// command, which binds the address it was given).
    ///
    /// # Errors
    ///
    /// As [`ExchangeSim::start`].
    pub async fn serve(config: SimConfig, listener: TcpListener) -> io::Result<()> {
        let mut sim = Self::start(config, listener)?;
        (&mut sim.server).await.map_err(io::Error::other)
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

    /// Moves the clock forward by `ms` (frozen or not).
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

    /// Replaces the permissions of an API key.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownApiKey`].
    pub fn set_permissions(&self, api_key: &str, permissions: SimPermissions) -> Result<(), SimError> {
        self.with_account(api_key, |account| account.permissions = permissions)
    }

    /// Revokes an API key: every later SIGNED request with it gets -2015.
    ///
    /// # Errors
    ///
    /// [`SimError::UnknownApiKey`].
    pub fn revoke_key(&self, api_key: &str) -> Result<(), SimError> {
        self.with_account(api_key, |account| account.revoked = true)
    }

    /// Queues a one-shot fault for the next request it matches.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// How many injected faults have not fired yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
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
        // Hanging requests end, and no new connection is accepted.
        self.shutdown.send_replace(true);
        self.server.abort();
    }
}
