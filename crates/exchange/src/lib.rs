//! The exchange port: what Bulwark asks of a venue, over normalized types.
//!
//! An [`Exchange`] is one account at one venue. It can read markets, prices, balances and the key's
//! own permissions, and place, cancel and look up spot orders. There is deliberately no withdrawal,
//! transfer, sub-account or key-management operation (ARCHITECTURE.md invariant 4; `spec/security.md`
//! EX-2): the trait cannot express one, and each adapter's signer refuses any path not on its
//! allowlist.
//!
//! Secrets reach an adapter only through [`Credentials::secret`], called just before a request is
//! signed; the plaintext lives in a zeroizing buffer for the length of one signature.
//!
//! Order updates a venue pushes arrive as [`OrderEvent`]s through [`Exchange::order_events`]; the
//! stream ends with one error when its connection does, and polling [`Exchange::query_order`] is
//! the fallback while there is none.

mod events;
mod keys;
mod orders;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use domain::{Asset, Decimal, MarketFilters, Pair, Timestamp};

pub use events::{OrderEvent, OrderEventStream};
pub use keys::{Credentials, KeyKind, KeyPermissions, KeyRefusal, PlainCredentials, api_key_hint};
pub use orders::{
    ClientOrderId, ClientOrderIdError, Fill, OrderAmount, OrderReport, OrderRequest, OrderType, TimeInForce, Trade,
    VenueOrderRef,
};

/// One market (a spot pair) as the venue describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    pub pair: Pair,
    /// The venue's own name for it, e.g. Binance `BTCUSDT`.
    pub venue_symbol: String,
    /// Open for trading now.
    pub trading: bool,
    pub filters: MarketFilters,
}

/// What the account holds of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub asset: Asset,
    pub free: Decimal,
    pub locked: Decimal,
}

/// Last price and 24-hour activity of one market (the order guard's reference price and liquidity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticker {
    pub pair: Pair,
    pub last_price: Decimal,
    pub quote_volume_24h: Decimal,
    pub price_change_percent_24h: Decimal,
}

/// One minute of a market: open time and OHLC prices with the base volume traded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candle {
    pub open_time: Timestamp,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

/// What went wrong, phrased as what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The venue could not be reached or answered 5xx. Safe to retry a read; an order placement in
    /// this state is resolved by lookup, never resent (see [`ExchangeError::OutcomeUnknown`]).
    #[error("the exchange is unreachable: {0}")]
    Unreachable(String),
    /// Our own or the venue's request-weight budget is spent; try again after the pause.
    #[error("the exchange's rate limit is reached; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The venue banned this IP address for repeated rate-limit violations (Binance HTTP 418).
    #[error("the exchange has banned this IP address for {retry_after:?}")]
    IpBanned { retry_after: Duration },
    /// The request's timestamp was outside the receive window even after re-measuring clock skew.
    #[error("the exchange rejected the request's timestamp (clock skew)")]
    ClockSkew,
    /// The venue did not accept the signature: the secret does not belong to the API key.
    #[error("the exchange rejected the request signature")]
    InvalidSignature,
    /// The key is unknown, revoked, malformed, not allowed from this IP, or lacks the permission.
    #[error("the exchange rejected the API key ({code}: {message})")]
    InvalidApiKey { code: i64, message: String },
    /// The order breaks a market filter (price grid, lot size, notional).
    #[error("the exchange refused the order: {0}")]
    FilterFailure(String),
    /// The venue refused a new order (e.g. insufficient balance).
    #[error("the exchange refused the order ({code}: {message})")]
    OrderRejected { code: i64, message: String },
    /// The venue refused a cancel (already filled or canceled, or unknown).
    #[error("the exchange refused the cancel: {0}")]
    CancelRejected(String),
    /// No such order at the venue.
    #[error("the exchange does not know this order")]
    OrderNotFound,
    /// A parameter was missing, malformed or named an unknown market.
    #[error("the exchange refused the request ({code}: {message})")]
    InvalidRequest { code: i64, message: String },
    /// A placement whose answer was lost was looked up and provably never reached the book: its
    /// receive window has closed, so the venue can no longer accept it. Placing it again is safe.
    #[error("the order was not placed")]
    NotPlaced,
    /// A placement's answer was lost and the lookup could not tell whether it was placed; the
    /// reconciler must look again by client order id before anything is resent.
    #[error("the outcome of order {client_order_id} is unknown")]
    OutcomeUnknown { client_order_id: String },
    /// The venue answered something this adapter cannot read.
    #[error("unexpected answer from the exchange: {0}")]
    Protocol(String),
    /// The adapter was asked to sign a request outside its allowlist. A bug, never a venue answer.
    #[error("refused to sign a request to {0}: not on the allowlist")]
    PathNotAllowed(String),
    /// The secret could not be opened (the vault is sealed or the blob does not authenticate).
    #[error("the API secret is unavailable: {0}")]
    SecretUnavailable(String),
    /// The stored secret is not a key of the kind the venue expects (e.g. an unreadable PEM).
    #[error("the API secret is not a valid {0} key")]
    BadSecret(&'static str),
}

impl ExchangeError {
    /// Whether the same read may simply be tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExchangeError::Unreachable(_)
                | ExchangeError::RateLimited { .. }
                | ExchangeError::IpBanned { .. }
                | ExchangeError::ClockSkew
        )
    }

    /// Whether the venue said this key cannot be used (revoked, wrong secret, IP, permissions).
    pub fn is_key_rejected(&self) -> bool {
        matches!(self, ExchangeError::InvalidApiKey { .. } | ExchangeError::InvalidSignature)
    }
}

/// Opens accounts at the venues this node is configured for. The binary names the adapters (one
/// shared client per venue URL); the server asks only for "this venue, these credentials".
pub trait Venues: Send + Sync + fmt::Debug {
    /// Venue names that accept API keys, as the API spells them (`binance`).
    fn names(&self) -> Vec<&'static str>;

    /// The port for one key at `venue`; `None` for a venue this node does not serve.
    fn account(
        &self,
        venue: &str,
        credentials: std::sync::Arc<dyn Credentials>,
    ) -> Option<std::sync::Arc<dyn Exchange>>;
}

/// A set of venues seen as one: asks each in turn.
#[derive(Debug, Default)]
pub struct VenueSet(pub Vec<std::sync::Arc<dyn Venues>>);

impl Venues for VenueSet {
    fn names(&self) -> Vec<&'static str> {
        self.0.iter().flat_map(|venues| venues.names()).collect()
    }

    fn account(
        &self,
        venue: &str,
        credentials: std::sync::Arc<dyn Credentials>,
    ) -> Option<std::sync::Arc<dyn Exchange>> {
        self.0.iter().find_map(|venues| venues.account(venue, std::sync::Arc::clone(&credentials)))
    }
}

/// A simulated market in which Bulwark opens paper accounts itself. The account is then used
/// through the same adapter and port as a real one, with an API key and secret like any other.
#[async_trait]
pub trait PaperMarket: Send + Sync + fmt::Debug {
    /// The venue name paper accounts are reached under (`paper`).
    fn venue(&self) -> &'static str;

    /// Opens an account holding `balances` and returns its API key and HMAC secret.
    ///
    /// # Errors
    /// `ExchangeError::InvalidRequest` for balances the market refuses; `Unreachable`.
    async fn open_account(
        &self,
        balances: &[(Asset, Decimal)],
    ) -> Result<(String, zeroize::Zeroizing<Vec<u8>>), ExchangeError>;

    /// Starts the account of `credentials` over: its open orders are canceled and its balances
    /// replaced. Returns how many orders were canceled. A shared market checks the request is
    /// signed with the account's own secret.
    ///
    /// # Errors
    /// `ExchangeError::InvalidRequest` for an unknown account or a refused balance; `Unreachable`.
    async fn reset_account(
        &self,
        credentials: &dyn Credentials,
        balances: &[(Asset, Decimal)],
    ) -> Result<usize, ExchangeError>;
}

/// One account at one venue. Implementations hold their [`Credentials`] and open the secret only
/// to sign a request.
#[async_trait]
pub trait Exchange: Send + Sync + fmt::Debug {
    /// The venue's name as the API spells it (`binance`).
    fn venue(&self) -> &'static str;

    /// The venue's clock.
    async fn server_time(&self) -> Result<Timestamp, ExchangeError>;

    /// The markets named (all the venue lists when `pairs` is empty).
    async fn markets(&self, pairs: &[Pair]) -> Result<Vec<Market>, ExchangeError>;

    async fn ticker(&self, pair: &Pair) -> Result<Ticker, ExchangeError>;

    /// The last `limit` one-minute candles of `pair`, oldest first (the current one last).
    async fn candles(&self, pair: &Pair, limit: u16) -> Result<Vec<Candle>, ExchangeError>;

    /// Non-zero balances of the account.
    async fn balances(&self) -> Result<Vec<Balance>, ExchangeError>;

    /// What the API key may do, from the venue's own key-introspection endpoint (EX-1, EX-3).
    async fn key_permissions(&self) -> Result<KeyPermissions, ExchangeError>;

    /// Places an order. If the answer is lost (5xx, timeout), the adapter looks the order up by its
    /// client order id and never resends it: the result is then the order found,
    /// [`ExchangeError::NotPlaced`], or [`ExchangeError::OutcomeUnknown`].
    async fn place_order(&self, order: &OrderRequest) -> Result<OrderReport, ExchangeError>;

    async fn cancel_order(&self, pair: &Pair, order: &VenueOrderRef) -> Result<OrderReport, ExchangeError>;

    async fn query_order(&self, pair: &Pair, order: &VenueOrderRef) -> Result<OrderReport, ExchangeError>;

    async fn open_orders(&self, pair: &Pair) -> Result<Vec<OrderReport>, ExchangeError>;

    /// The account's fills on `pair`, oldest first, starting after trade id `after` when given.
    async fn my_trades(&self, pair: &Pair, after: Option<&str>) -> Result<Vec<Trade>, ExchangeError>;

    /// The account's order updates as the venue pushes them, until the connection ends (the stream then
    /// yields one `Err` and finishes; the caller reconnects and polls meanwhile). `Ok(None)` when the
    /// venue offers no stream.
    async fn order_events(&self) -> Result<Option<OrderEventStream>, ExchangeError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An implementor that does not override `order_events`.
    #[derive(Debug)]
    struct Polled;

    fn none<T>() -> Result<T, ExchangeError> {
        Err(ExchangeError::Unreachable("not in this test".to_owned()))
    }

    #[async_trait]
    impl Exchange for Polled {
        fn venue(&self) -> &'static str {
            "polled"
        }
        async fn server_time(&self) -> Result<Timestamp, ExchangeError> {
            none()
        }
        async fn markets(&self, _: &[Pair]) -> Result<Vec<Market>, ExchangeError> {
            none()
        }
        async fn ticker(&self, _: &Pair) -> Result<Ticker, ExchangeError> {
            none()
        }
        async fn candles(&self, _: &Pair, _: u16) -> Result<Vec<Candle>, ExchangeError> {
            none()
        }
        async fn balances(&self) -> Result<Vec<Balance>, ExchangeError> {
            none()
        }
        async fn key_permissions(&self) -> Result<KeyPermissions, ExchangeError> {
            none()
        }
        async fn place_order(&self, _: &OrderRequest) -> Result<OrderReport, ExchangeError> {
            none()
        }
        async fn cancel_order(&self, _: &Pair, _: &VenueOrderRef) -> Result<OrderReport, ExchangeError> {
            none()
        }
        async fn query_order(&self, _: &Pair, _: &VenueOrderRef) -> Result<OrderReport, ExchangeError> {
            none()
        }
        async fn open_orders(&self, _: &Pair) -> Result<Vec<OrderReport>, ExchangeError> {
            none()
        }
        async fn my_trades(&self, _: &Pair, _: Option<&str>) -> Result<Vec<Trade>, ExchangeError> {
            none()
        }
    }

    #[test]
    fn a_venue_without_a_stream_says_so_by_default() {
        let answer = futures_util::FutureExt::now_or_never(Polled.order_events()).expect("ready at once");
        assert!(matches!(answer, Ok(None)));
    }
}
