//! The REST client: one [`BinanceClient`] per venue URL (it owns the IP-wide weight budget and the
//! clock-skew estimate), and one [`BinanceAccount`] per API key, which is the port's `Exchange`.
//! The user data stream is in the `stream` module; its listen-key requests go through this client.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{Clock, Pair, Timestamp};
use exchange::{
    Balance, Candle, Credentials, Exchange, ExchangeError, KeyPermissions, Market, OrderAmount, OrderEventStream,
    OrderReport, OrderRequest, OrderType, Ticker, Trade, VenueOrderRef,
};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use url::Url;

use crate::limits::{ClockSkew, WeightBudget};
use crate::sign::{SignedEndpoint, USER_DATA_STREAM, encode_params, signed_query};
use crate::stream::ListenKey;
use crate::wire;

/// Binance's REST hosts for spot, whose user data stream is at [`BINANCE_STREAM_URL`].
const BINANCE_REST_HOSTS: [&str; 6] = [
    "api.binance.com",
    "api-gcp.binance.com",
    "api1.binance.com",
    "api2.binance.com",
    "api3.binance.com",
    "api4.binance.com",
];
/// Binance's WebSocket base for user data streams (`user-data-stream.md`).
const BINANCE_STREAM_URL: &str = "wss://stream.binance.com:9443";
/// Request weight of each USER_STREAM request (`POST`/`PUT /api/v3/userDataStream`).
const USER_STREAM_WEIGHT: u32 = 2;

/// Operator settings for the `binance` venue.
#[derive(Debug, Clone)]
pub struct BinanceConfig {
    /// `BULWARK_BINANCE_URL`; users never choose it.
    pub base_url: Url,
    /// `recvWindow` sent with every signed request: at most 5 s (EX-5).
    pub recv_window: Duration,
    /// How long to wait for any answer. A placement that times out is resolved by lookup.
    pub request_timeout: Duration,
    /// Request weight per minute this client allows itself (Binance's limit is 6,000 per IP).
    pub weight_budget: u32,
    /// Pause between lookups while resolving a placement whose answer was lost.
    pub lookup_interval: Duration,
    /// Failed lookups (no answer, rate limit) before a lost placement is reported as
    /// `OutcomeUnknown`. "Not found" answers do not count: they end when the receive window has.
    pub max_lookups: u32,
    /// The user data stream's WebSocket base URL. `None`: `wss://stream.binance.com:9443` for
    /// Binance's own REST hosts, otherwise the REST URL's origin with `http`→`ws`, `https`→`wss`
    /// (where exchange-sim serves it). `ws://` only to a loopback address.
    pub stream_url: Option<Url>,
    /// How often a stream's listen key is kept alive (`PUT`): Binance drops a key 60 minutes after
    /// its creation or last keepalive and recommends one every 30 minutes.
    pub listen_key_keepalive: Duration,
}

impl BinanceConfig {
    pub fn new(base_url: Url) -> BinanceConfig {
        BinanceConfig {
            base_url,
            recv_window: Duration::from_millis(5_000),
            request_timeout: Duration::from_secs(10),
            weight_budget: 4_800,
            lookup_interval: Duration::from_millis(500),
            max_lookups: 20,
            stream_url: None,
            listen_key_keepalive: Duration::from_secs(30 * 60),
        }
    }

    /// The user data stream's WebSocket base URL: [`BinanceConfig::stream_url`], or the one derived
    /// from [`BinanceConfig::base_url`].
    ///
    /// # Errors
    /// `ExchangeError::InvalidRequest` (code 0) for a URL that is neither `wss://` nor `ws://` to a
    /// loopback address, or that carries credentials, a query or a fragment.
    pub fn stream_base_url(&self) -> Result<Url, ExchangeError> {
        let refused = |why: &str| ExchangeError::InvalidRequest { code: 0, message: format!("stream URL: {why}") };
        let url = match &self.stream_url {
            Some(url) => url.clone(),
            None if self.base_url.host_str().is_some_and(|host| BINANCE_REST_HOSTS.contains(&host)) => {
                Url::parse(BINANCE_STREAM_URL).map_err(|_| refused("unreadable"))?
            }
            None => {
                let origin = self.base_url.origin().ascii_serialization();
                let derived = if let Some(rest) = origin.strip_prefix("https://") {
                    format!("wss://{rest}")
                } else if let Some(rest) = origin.strip_prefix("http://") {
                    format!("ws://{rest}")
                } else {
                    return Err(refused("the REST URL is neither http:// nor https://"));
                };
                Url::parse(&derived).map_err(|_| refused("cannot be derived from the REST URL"))?
            }
        };
        match url.scheme() {
            "wss" => {}
            "ws" if is_loopback(&url) => {}
            "ws" => return Err(refused("ws:// is accepted only for a loopback address; use wss://")),
            _ => return Err(refused("must be wss://, or ws:// to a loopback address")),
        }
        if url.host().is_none() {
            return Err(refused("names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(refused("must not carry credentials, a query or a fragment"));
        }
        Ok(url)
    }
}

/// Whether `url` names this machine's loopback interface.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// The shared part of the adapter: HTTP, the weight budget and the clock skew for one venue URL.
#[derive(Debug)]
pub struct BinanceClient {
    pub(crate) config: BinanceConfig,
    /// [`BinanceConfig::stream_base_url`], checked once.
    stream_base: Url,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    weights: WeightBudget,
    skew: ClockSkew,
}

/// Why a request got no usable answer: the difference matters for an order placement.
enum Failure {
    /// The request may have been processed (timeout after sending, 5xx, dropped answer).
    Lost(String),
    /// The venue answered, or the request never left.
    Known(ExchangeError),
}

impl From<ExchangeError> for Failure {
    fn from(err: ExchangeError) -> Failure {
        Failure::Known(err)
    }
}

impl Failure {
    fn into_error(self) -> ExchangeError {
        match self {
            Failure::Lost(why) => ExchangeError::Unreachable(why),
            Failure::Known(err) => err,
        }
    }
}

impl BinanceClient {
    /// # Errors
    /// `ExchangeError::Unreachable` when the HTTP client cannot be built (TLS roots);
    /// `ExchangeError::InvalidRequest` for a refused stream URL ([`BinanceConfig::stream_base_url`]).
    pub fn new(config: BinanceConfig, clock: Arc<dyn Clock>) -> Result<BinanceClient, ExchangeError> {
        let stream_base = config.stream_base_url()?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("bulwark/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ExchangeError::Unreachable(format!("cannot build the HTTP client: {err}")))?;
        let weights = WeightBudget::new(config.weight_budget);
        Ok(BinanceClient { config, stream_base, http, clock, weights, skew: ClockSkew::default() })
    }

    /// The port for one API key.
    pub fn account(self: &Arc<Self>, credentials: Arc<dyn Credentials>) -> BinanceAccount {
        BinanceAccount { client: Arc::clone(self), credentials }
    }

    /// Venue clock minus ours, in ms, once measured.
    pub fn clock_skew_ms(&self) -> Option<i64> {
        self.skew.offset_ms()
    }

    /// The request weight used in the current minute, as last seen.
    pub fn used_weight(&self) -> u32 {
        self.weights.used()
    }

    /// Measures the clock skew against `GET /api/v3/time` and returns it.
    ///
    /// # Errors
    /// What the request reports.
    pub async fn sync_clock(&self) -> Result<i64, ExchangeError> {
        let sent = self.clock.now();
        let time: wire::ServerTime = self.public("/api/v3/time", &[], 1).await?;
        let offset = self.skew.record(sent, self.clock.now(), time.server_time);
        if offset.abs() > 1_000 {
            tracing::warn!(
                venue = "binance",
                skew_ms = offset,
                "the local clock differs from the exchange's; correcting for it"
            );
        }
        Ok(offset)
    }

    /// The user data stream's WebSocket base URL.
    pub fn stream_base_url(&self) -> &Url {
        &self.stream_base
    }

    /// `POST /api/v3/userDataStream`: the account's listen key (the live one, extended, or a new
    /// one). USER_STREAM: the API key header alone, never signed, so not on the signing allowlist.
    pub(crate) async fn new_listen_key(&self, api_key: &str) -> Result<ListenKey, ExchangeError> {
        let reply: wire::ListenKeyReply = self
            .send(reqwest::Method::POST, USER_DATA_STREAM, "", Some(api_key), USER_STREAM_WEIGHT)
            .await
            .map_err(Failure::into_error)?;
        Ok(ListenKey::new(reply.listen_key))
    }

    /// `PUT /api/v3/userDataStream?listenKey=`: keeps `listen_key` alive for another 60 minutes.
    /// USER_STREAM, like [`BinanceClient::new_listen_key`].
    pub(crate) async fn keep_listen_key_alive(
        &self,
        api_key: &str,
        listen_key: &ListenKey,
    ) -> Result<(), ExchangeError> {
        let query = encode_params(&[("listenKey", listen_key.expose().to_owned())]);
        let _: serde::de::IgnoredAny = self
            .send(reqwest::Method::PUT, USER_DATA_STREAM, &query, Some(api_key), USER_STREAM_WEIGHT)
            .await
            .map_err(Failure::into_error)?;
        Ok(())
    }

    async fn venue_timestamp(&self) -> Result<i64, ExchangeError> {
        if self.skew.offset_ms().is_none() {
            self.sync_clock().await?;
        }
        Ok(self.skew.venue_now(self.clock.now()))
    }

    async fn public<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        weight: u32,
    ) -> Result<T, ExchangeError> {
        let query = encode_params(params);
        self.send(reqwest::Method::GET, path, &query, None, weight).await.map_err(Failure::into_error)
    }

    /// One signed request with a fresh timestamp; on `-1021` the skew is measured again and the
    /// request is signed and sent once more (the first was refused, so this cannot duplicate it).
    async fn signed<T: DeserializeOwned>(
        &self,
        credentials: &dyn Credentials,
        endpoint: SignedEndpoint,
        params: &[(&str, String)],
    ) -> Result<T, Failure> {
        match self.signed_once(credentials, endpoint, params, self.venue_timestamp().await?).await {
            Err(Failure::Known(ExchangeError::ClockSkew)) => {
                self.sync_clock().await?;
                let timestamp = self.skew.venue_now(self.clock.now());
                self.signed_once(credentials, endpoint, params, timestamp).await
            }
            other => other,
        }
    }

    async fn signed_once<T: DeserializeOwned>(
        &self,
        credentials: &dyn Credentials,
        endpoint: SignedEndpoint,
        params: &[(&str, String)],
        timestamp: i64,
    ) -> Result<T, Failure> {
        let mut all: Vec<(&str, String)> = params.to_vec();
        all.push(("recvWindow", self.config.recv_window.as_millis().to_string()));
        all.push(("timestamp", timestamp.to_string()));
        let query = {
            // The secret exists in plaintext only inside this block (SEC-6).
            let secret = credentials.secret().await?;
            signed_query(endpoint, credentials.kind(), &secret, &all)?
        };
        let method = reqwest::Method::from_bytes(endpoint.method().as_bytes())
            .map_err(|_| ExchangeError::PathNotAllowed(endpoint.path().to_owned()))?;
        self.send(method, endpoint.path(), &query, Some(credentials.api_key()), endpoint.weight()).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &str,
        api_key: Option<&str>,
        weight: u32,
    ) -> Result<T, Failure> {
        self.weights.reserve(weight, self.clock.now())?;
        let mut url = self.config.base_url.clone();
        url.set_path(path);
        url.set_query((!query.is_empty()).then_some(query));
        let mut request = self.http.request(method, url);
        if let Some(api_key) = api_key {
            request = request.header("X-MBX-APIKEY", api_key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            // The connection was never made: nothing reached the venue.
            Err(err) if err.is_connect() => {
                return Err(ExchangeError::Unreachable(format!("cannot connect to the exchange at {path}")).into());
            }
            Err(err) if err.is_timeout() => return Err(Failure::Lost(format!("no answer from {path} in time"))),
            Err(_) => return Err(Failure::Lost(format!("the answer from {path} was lost"))),
        };
        let now = self.clock.now();
        if let Some(used) = header_u32(response.headers(), "x-mbx-used-weight-1m") {
            self.weights.observe_used(used, now);
        }
        let status = response.status();
        let retry_after = header_u32(response.headers(), "retry-after").map(|s| Duration::from_secs(u64::from(s)));
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(_) => return Err(Failure::Lost(format!("the answer from {path} was cut off"))),
        };
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|err| Failure::Known(ExchangeError::Protocol(format!("{path}: {err}"))));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::IM_A_TEAPOT {
            let banned = status == StatusCode::IM_A_TEAPOT;
            let retry_after = retry_after.unwrap_or(Duration::from_secs(60));
            self.weights.pause(retry_after, banned, now);
            tracing::warn!(venue = "binance", %path, banned, retry_after_s = retry_after.as_secs(), "the exchange asked us to slow down");
            return Err(Failure::Known(if banned {
                ExchangeError::IpBanned { retry_after }
            } else {
                ExchangeError::RateLimited { retry_after }
            }));
        }
        if status.is_server_error() {
            return Err(Failure::Lost(format!("{path} answered HTTP {}", status.as_u16())));
        }
        match serde_json::from_slice::<wire::ErrorBody>(&body) {
            Ok(error) => Err(Failure::Known(map_error(error.code, error.msg))),
            Err(_) => Err(Failure::Known(ExchangeError::Protocol(format!("{path} answered HTTP {}", status.as_u16())))),
        }
    }

    /// A placement whose answer was lost: look it up by client order id until it is found, or until
    /// the venue's clock is past the request's receive window (after which the venue can no longer
    /// accept it), and never send it again.
    async fn resolve_lost_order(
        &self,
        credentials: &dyn Credentials,
        symbol: &str,
        client_order_id: &str,
        sent_timestamp: i64,
    ) -> Result<OrderReport, ExchangeError> {
        let recv_window = i64::try_from(self.config.recv_window.as_millis()).unwrap_or(i64::MAX);
        // One second of margin past the window for a request still queued inside the venue.
        let deadline = sent_timestamp.saturating_add(recv_window).saturating_add(1_000);
        let params = [("symbol", symbol.to_owned()), ("origClientOrderId", client_order_id.to_owned())];
        // "Not found" before the deadline is bounded by the deadline; failed lookups by `max_lookups`.
        let mut failed_lookups = 0;
        while failed_lookups < self.config.max_lookups {
            match self.signed::<wire::Order>(credentials, SignedEndpoint::QueryOrder, &params).await {
                Ok(order) => return order.into_report(),
                Err(Failure::Known(ExchangeError::OrderNotFound)) => {
                    let venue_now = match self.public::<wire::ServerTime>("/api/v3/time", &[], 1).await {
                        Ok(time) => time.server_time,
                        Err(_) => self.skew.venue_now(self.clock.now()),
                    };
                    if venue_now > deadline {
                        tracing::info!(
                            venue = "binance",
                            client_order_id,
                            "a placement whose answer was lost never reached the book"
                        );
                        return Err(ExchangeError::NotPlaced);
                    }
                }
                Err(Failure::Lost(_)) => failed_lookups += 1,
                Err(Failure::Known(err)) if err.is_transient() => failed_lookups += 1,
                Err(Failure::Known(_)) => break,
            }
            tokio::time::sleep(self.config.lookup_interval).await;
        }
        tracing::warn!(
            venue = "binance",
            client_order_id,
            "could not tell whether an order was placed; the reconciler will look again"
        );
        Err(ExchangeError::OutcomeUnknown { client_order_id: client_order_id.to_owned() })
    }
}

/// Binance's error codes (`errors.md`) as the port's errors.
pub fn map_error(code: i64, message: String) -> ExchangeError {
    match code {
        -1003 => ExchangeError::RateLimited { retry_after: Duration::from_secs(60) },
        -1021 => ExchangeError::ClockSkew,
        -1022 => ExchangeError::InvalidSignature,
        -2014 | -2015 | -1002 => ExchangeError::InvalidApiKey { code, message },
        -1013 => ExchangeError::FilterFailure(message),
        -2010 if message.starts_with("Filter failure") => ExchangeError::FilterFailure(message),
        -2010 => ExchangeError::OrderRejected { code, message },
        -2011 => ExchangeError::CancelRejected(message),
        -2013 => ExchangeError::OrderNotFound,
        -1199..=-1100 => ExchangeError::InvalidRequest { code, message },
        _ if code <= -2000 => ExchangeError::OrderRejected { code, message },
        _ => ExchangeError::InvalidRequest { code, message },
    }
}

fn header_u32(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u32> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Binance writes a pair as base then quote: `BTCUSDT`.
pub fn binance_symbol(pair: &Pair) -> String {
    format!("{}{}", pair.base, pair.quote)
}

fn order_params(order: &OrderRequest) -> Vec<(&'static str, String)> {
    let mut params = vec![("symbol", binance_symbol(&order.pair)), ("side", order.side.as_str().to_owned())];
    match order.order_type {
        OrderType::Limit { price, time_in_force } => {
            params.push(("type", "LIMIT".to_owned()));
            params.push(("timeInForce", time_in_force.as_str().to_owned()));
            params.push(("price", price.get().to_string()));
        }
        OrderType::LimitMaker { price } => {
            params.push(("type", "LIMIT_MAKER".to_owned()));
            params.push(("price", price.get().to_string()));
        }
        OrderType::Market => params.push(("type", "MARKET".to_owned())),
    }
    match order.amount {
        OrderAmount::Base(qty) => params.push(("quantity", qty.get().to_string())),
        OrderAmount::Quote(qty) => params.push(("quoteOrderQty", qty.get().to_string())),
    }
    params.push(("newClientOrderId", order.client_order_id.as_str().to_owned()));
    params.push(("newOrderRespType", "FULL".to_owned()));
    params
}

fn order_ref_params(pair: &Pair, order: &VenueOrderRef) -> Vec<(&'static str, String)> {
    let mut params = vec![("symbol", binance_symbol(pair))];
    match order {
        VenueOrderRef::VenueId(id) => params.push(("orderId", id.clone())),
        VenueOrderRef::Client(id) => params.push(("origClientOrderId", id.as_str().to_owned())),
    }
    params
}

/// A Binance-speaking venue for [`exchange::Venues`] under `name` (`binance`, or `paper` for the
/// built-in paper market, which speaks Binance's API): every account shares this client.
#[derive(Debug, Clone)]
pub struct BinanceVenue {
    pub name: &'static str,
    pub client: Arc<BinanceClient>,
}

impl exchange::Venues for BinanceVenue {
    fn names(&self) -> Vec<&'static str> {
        vec![self.name]
    }

    fn account(&self, venue: &str, credentials: Arc<dyn Credentials>) -> Option<Arc<dyn Exchange>> {
        (venue == self.name).then(|| Arc::new(self.client.account(credentials)) as Arc<dyn Exchange>)
    }
}

/// One API key at Binance: the port.
#[derive(Debug, Clone)]
pub struct BinanceAccount {
    client: Arc<BinanceClient>,
    credentials: Arc<dyn Credentials>,
}

impl BinanceAccount {
    async fn signed<T: DeserializeOwned>(
        &self,
        endpoint: SignedEndpoint,
        params: &[(&str, String)],
    ) -> Result<T, ExchangeError> {
        self.client.signed(self.credentials.as_ref(), endpoint, params).await.map_err(Failure::into_error)
    }
}

#[async_trait]
impl Exchange for BinanceAccount {
    fn venue(&self) -> &'static str {
        "binance"
    }

    async fn server_time(&self) -> Result<Timestamp, ExchangeError> {
        let time: wire::ServerTime = self.client.public("/api/v3/time", &[], 1).await?;
        Ok(Timestamp::from_unix_millis(time.server_time))
    }

    async fn markets(&self, pairs: &[Pair]) -> Result<Vec<Market>, ExchangeError> {
        let params = match pairs {
            [] => vec![],
            [one] => vec![("symbol", binance_symbol(one))],
            many => {
                let names: Vec<String> = many.iter().map(binance_symbol).collect();
                let list = serde_json::to_string(&names).map_err(|err| ExchangeError::Protocol(err.to_string()))?;
                vec![("symbols", list)]
            }
        };
        let info: wire::ExchangeInfo = self.client.public("/api/v3/exchangeInfo", &params, 20).await?;
        info.symbols.into_iter().map(wire::SymbolInfo::into_market).collect()
    }

    async fn ticker(&self, pair: &Pair) -> Result<Ticker, ExchangeError> {
        let stats: wire::Ticker24h =
            self.client.public("/api/v3/ticker/24hr", &[("symbol", binance_symbol(pair))], 2).await?;
        Ok(Ticker {
            pair: pair.clone(),
            last_price: stats.last_price,
            quote_volume_24h: stats.quote_volume,
            price_change_percent_24h: stats.price_change_percent,
        })
    }

    async fn candles(&self, pair: &Pair, limit: u16) -> Result<Vec<Candle>, ExchangeError> {
        let params = [
            ("symbol", binance_symbol(pair)),
            ("interval", "1m".to_owned()),
            ("limit", limit.clamp(1, 1000).to_string()),
        ];
        let rows: Vec<Vec<serde_json::Value>> = self.client.public("/api/v3/klines", &params, 2).await?;
        rows.iter().map(|row| wire::kline(row)).collect()
    }

    async fn balances(&self) -> Result<Vec<Balance>, ExchangeError> {
        let account: wire::Account =
            self.signed(SignedEndpoint::Account, &[("omitZeroBalances", "true".to_owned())]).await?;
        account
            .balances
            .into_iter()
            .filter(|b| !(b.free.is_zero() && b.locked.is_zero()))
            .map(wire::BalanceEntry::into_balance)
            .collect()
    }

    async fn key_permissions(&self) -> Result<KeyPermissions, ExchangeError> {
        let restrictions: wire::ApiRestrictions = self.signed(SignedEndpoint::ApiRestrictions, &[]).await?;
        Ok(restrictions.into())
    }

    async fn place_order(&self, order: &OrderRequest) -> Result<OrderReport, ExchangeError> {
        let params = order_params(order);
        let client = &self.client;
        let credentials = self.credentials.as_ref();
        let mut timestamp = client.venue_timestamp().await?;
        let mut first = true;
        loop {
            match client.signed_once::<wire::Order>(credentials, SignedEndpoint::NewOrder, &params, timestamp).await {
                Ok(placed) => return placed.into_report(),
                // Refused for its timestamp: it was not placed, so one fresh attempt is safe.
                Err(Failure::Known(ExchangeError::ClockSkew)) if first => {
                    first = false;
                    client.sync_clock().await?;
                    timestamp = client.skew.venue_now(client.clock.now());
                }
                Err(Failure::Known(err)) => return Err(err),
                Err(Failure::Lost(why)) => {
                    tracing::warn!(venue = "binance", client_order_id = %order.client_order_id, %why, "an order placement's answer was lost; looking it up instead of resending");
                    let symbol = binance_symbol(&order.pair);
                    return client
                        .resolve_lost_order(credentials, &symbol, order.client_order_id.as_str(), timestamp)
                        .await;
                }
            }
        }
    }

    async fn cancel_order(&self, pair: &Pair, order: &VenueOrderRef) -> Result<OrderReport, ExchangeError> {
        let canceled: wire::Order = self.signed(SignedEndpoint::CancelOrder, &order_ref_params(pair, order)).await?;
        canceled.into_report()
    }

    async fn query_order(&self, pair: &Pair, order: &VenueOrderRef) -> Result<OrderReport, ExchangeError> {
        let found: wire::Order = self.signed(SignedEndpoint::QueryOrder, &order_ref_params(pair, order)).await?;
        found.into_report()
    }

    async fn open_orders(&self, pair: &Pair) -> Result<Vec<OrderReport>, ExchangeError> {
        let open: Vec<wire::Order> =
            self.signed(SignedEndpoint::OpenOrders, &[("symbol", binance_symbol(pair))]).await?;
        open.into_iter().map(wire::Order::into_report).collect()
    }

    async fn my_trades(&self, pair: &Pair, after: Option<&str>) -> Result<Vec<Trade>, ExchangeError> {
        let mut params = vec![("symbol", binance_symbol(pair)), ("limit", "1000".to_owned())];
        if let Some(after) = after {
            let after: i64 = after.parse().map_err(|_| ExchangeError::Protocol("a trade id is a number".to_owned()))?;
            params.push(("fromId", (after + 1).to_string()));
        }
        let trades: Vec<wire::MyTrade> = self.signed(SignedEndpoint::MyTrades, &params).await?;
        trades.into_iter().map(wire::MyTrade::into_trade).collect()
    }

    /// The user data stream: a listen key (USER_STREAM, unsigned), a WebSocket to
    /// `<stream base>/ws/<listenKey>` kept alive every [`BinanceConfig::listen_key_keepalive`], and
    /// each `executionReport` as an `OrderEvent` (the `stream` module).
    async fn order_events(&self) -> Result<Option<OrderEventStream>, ExchangeError> {
        crate::stream::open(Arc::clone(&self.client), Arc::clone(&self.credentials)).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_what_the_caller_should_do() {
        let msg = || "m".to_owned();
        assert_eq!(map_error(-1021, msg()), ExchangeError::ClockSkew);
        assert_eq!(map_error(-1022, msg()), ExchangeError::InvalidSignature);
        assert!(map_error(-2014, msg()).is_key_rejected());
        assert!(map_error(-2015, msg()).is_key_rejected());
        assert_eq!(map_error(-2013, msg()), ExchangeError::OrderNotFound);
        assert_eq!(map_error(-2011, msg()), ExchangeError::CancelRejected("m".to_owned()));
        assert!(matches!(map_error(-2010, msg()), ExchangeError::OrderRejected { code: -2010, .. }));
        assert!(matches!(map_error(-2010, "Filter failure: LOT_SIZE".to_owned()), ExchangeError::FilterFailure(_)));
        assert!(matches!(map_error(-1013, msg()), ExchangeError::FilterFailure(_)));
        assert!(matches!(map_error(-1102, msg()), ExchangeError::InvalidRequest { code: -1102, .. }));
        assert!(matches!(map_error(-1121, msg()), ExchangeError::InvalidRequest { code: -1121, .. }));
        assert!(map_error(-1003, msg()).is_transient());
    }
}
