//! Operations metrics in the Prometheus text format (exposition format 0.0.4) at `GET /metrics`.
//!
//! A small registry of atomics held by `AppState` (no global state, no lock on the request path):
//! HTTP requests by route class and status code, requests in flight, a request-duration
//! histogram, shed and rate-limited requests, the edge's connections, webhook verdicts and orders
//! sent to venues. Labels are chosen from fixed sets in this file (a route class, a status code, an
//! error code, a venue name from the server's own list): never a path, an id, a query, a user or a
//! secret.
//!
//! Access (`endpoint`): with a token configured (`ServerConfig::metrics_token`), only a request
//! bearing it (`Authorization: Bearer`, compared in constant time); without one, only a request whose
//! TCP peer is a loopback address that is not a trusted proxy. Anything else gets the very 404 of an
//! unknown route.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::config::MetricsToken;
use crate::state::AppState;

/// What a request was for, from its path alone: the only request label (paths hold ids and tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Api,
    Page,
    Webhook,
    Asset,
    Health,
    Metrics,
}

impl RouteClass {
    pub const ALL: [RouteClass; 6] = [
        RouteClass::Api,
        RouteClass::Page,
        RouteClass::Webhook,
        RouteClass::Asset,
        RouteClass::Health,
        RouteClass::Metrics,
    ];

    pub fn of(path: &str) -> RouteClass {
        match path {
            "/healthz" => RouteClass::Health,
            "/metrics" => RouteClass::Metrics,
            "/trade_signal/trading_view" | "/signal_bots/webhooks" => RouteClass::Webhook,
            p if p == "/api" || p.starts_with("/api/") => RouteClass::Api,
            p if p.starts_with("/assets/") => RouteClass::Asset,
            _ => RouteClass::Page,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Api => "api",
            RouteClass::Page => "page",
            RouteClass::Webhook => "webhook",
            RouteClass::Asset => "asset",
            RouteClass::Health => "health",
            RouteClass::Metrics => "metrics",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds of the request-duration histogram's buckets, in seconds (Prometheus' defaults).
pub const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Status codes 100..=599 each have a counter; anything else (hyper allows up to 999) counts as 599.
const STATUS_SLOTS: usize = 500;

/// Per route class: requests by status code and the duration histogram.
#[derive(Debug)]
struct RouteMetrics {
    by_status: Box<[AtomicU64]>,
    /// Non-cumulative bucket counts; the last slot is `+Inf` only.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_sum_nanos: AtomicU64,
    rate_limited: AtomicU64,
}

impl RouteMetrics {
    fn new() -> RouteMetrics {
        RouteMetrics {
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            duration_sum_nanos: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }
}

/// Why the edge closed a connection at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// `EdgeConfig::max_connections`.
    TotalCap,
    /// `EdgeConfig::max_connections_per_ip`.
    AddressCap,
}

/// How a TLS handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    Error,
    Timeout,
}

/// Who asked for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSource {
    /// The bot runner.
    Bot,
    /// A user's manual order through the API.
    Manual,
}

/// The two webhook formats (`/trade_signal/trading_view`, `/signal_bots/webhooks`).
const WEBHOOK_FORMATS: [&str; 2] = ["dca", "signal"];

/// The refusal codes a webhook can answer with; any other counts as `other`.
const WEBHOOK_CODES: [&str; 15] = [
    "rate_limited",
    "body_too_large",
    "invalid_json",
    "invalid_signal",
    "invalid_token",
    "invalid_signature",
    "stale_signal",
    "source_not_allowed",
    "duplicate_signal",
    "unsupported_media_type",
    "vault_sealed",
    "unavailable",
    "overloaded",
    "internal_error",
    "other",
];

/// Why an order handed to a venue did not come back placed.
const ORDER_FAILURES: [&str; 6] = ["refused", "rate_limited", "unreachable", "not_placed", "unknown", "other"];

fn order_failure(err: &exchange::ExchangeError) -> usize {
    use exchange::ExchangeError as E;
    let name = match err {
        E::FilterFailure(_)
        | E::OrderRejected { .. }
        | E::InvalidRequest { .. }
        | E::InvalidApiKey { .. }
        | E::InvalidSignature
        | E::ClockSkew => "refused",
        E::RateLimited { .. } | E::IpBanned { .. } => "rate_limited",
        E::Unreachable(_) => "unreachable",
        E::NotPlaced => "not_placed",
        E::OutcomeUnknown { .. } | E::Protocol(_) => "unknown",
        _ => "other",
    };
    ORDER_FAILURES.iter().position(|n| *n == name).unwrap_or(ORDER_FAILURES.len() - 1)
}

/// Venues get a slot each, claimed on their first order; more than `VENUE_SLOTS - 1` names share
/// the last one as `other`. Venue names are the server's own (`binance`, `paper`), never a user's.
const VENUE_SLOTS: usize = 8;

#[derive(Debug)]
struct VenueMetrics {
    name: OnceLock<String>,
    /// By `OrderSource`.
    sent: [AtomicU64; 2],
    /// By `OrderSource`, then `ORDER_FAILURES`.
    failed: [[AtomicU64; ORDER_FAILURES.len()]; 2],
}

impl VenueMetrics {
    fn new() -> VenueMetrics {
        VenueMetrics {
            name: OnceLock::new(),
            sent: std::array::from_fn(|_| AtomicU64::new(0)),
            failed: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

/// The registry. Every counter is a relaxed atomic: a scrape may see one request's counters a
/// moment apart, never a torn value.
#[derive(Debug)]
pub struct Metrics {
    started_unix_secs: f64,
    routes: [RouteMetrics; RouteClass::ALL.len()],
    in_flight: AtomicI64,
    shed: AtomicU64,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    /// By `ConnectionRefusal`.
    connections_refused: [AtomicU64; 2],
    /// By `HandshakeFailure`.
    tls_handshakes_failed: [AtomicU64; 2],
    header_timeouts: AtomicU64,
    webhooks_accepted: [AtomicU64; WEBHOOK_FORMATS.len()],
    webhooks_refused: [[AtomicU64; WEBHOOK_CODES.len()]; WEBHOOK_FORMATS.len()],
    venues: [VenueMetrics; VENUE_SLOTS],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Metrics {
            started_unix_secs: started.as_secs_f64(),
            routes: std::array::from_fn(|_| RouteMetrics::new()),
            in_flight: AtomicI64::new(0),
            shed: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_refused: std::array::from_fn(|_| AtomicU64::new(0)),
            tls_handshakes_failed: std::array::from_fn(|_| AtomicU64::new(0)),
            header_timeouts: AtomicU64::new(0),
            webhooks_accepted: std::array::from_fn(|_| AtomicU64::new(0)),
            webhooks_refused: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            venues: std::array::from_fn(|_| VenueMetrics::new()),
        }
    }

    /// A request answered: its class, status and how long it took.
    pub fn request(&self, class: RouteClass, status: StatusCode, took: Duration) {
        let route = &self.routes[class.index()];
        let slot = usize::from(status.as_u16()).saturating_sub(100).min(STATUS_SLOTS - 1);
        route.by_status[slot].fetch_add(1, Ordering::Relaxed);
        if status == StatusCode::TOO_MANY_REQUESTS {
            route.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let bucket = DURATION_BUCKETS.iter().position(|bound| secs <= *bound).unwrap_or(DURATION_BUCKETS.len());
        route.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        route.duration_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A request refused by load shedding (503 `overloaded`).
    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection the edge took; the gauge goes down when the returned guard is dropped.
    pub fn connection_opened(self: &std::sync::Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(std::sync::Arc::clone(self))
    }

    pub fn connection_refused(&self, why: ConnectionRefusal) {
        self.connections_refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn tls_handshake_failed(&self, how: HandshakeFailure) {
        self.tls_handshakes_failed[how as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn header_timeout(&self) {
        self.header_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook hit's verdict: `Ok` accepted, `Err(code)` refused with that API error code.
    pub fn webhook(&self, format: &str, verdict: Result<(), &str>) {
        let Some(f) = WEBHOOK_FORMATS.iter().position(|n| *n == format) else { return };
        match verdict {
            Ok(()) => {
                self.webhooks_accepted[f].fetch_add(1, Ordering::Relaxed);
            }
            Err(code) => {
                let c = WEBHOOK_CODES.iter().position(|n| *n == code).unwrap_or(WEBHOOK_CODES.len() - 1);
                self.webhooks_refused[f][c].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts an order handed to `venue` and, when `result` is an error, its failure; returns
    /// `result` untouched so the call wraps the placement in one line.
    ///
    /// # Errors
    /// `result`'s own.
    pub fn order<T>(
        &self,
        venue: &str,
        source: OrderSource,
        result: Result<T, exchange::ExchangeError>,
    ) -> Result<T, exchange::ExchangeError> {
        let slot = self.venue(venue);
        slot.sent[source as usize].fetch_add(1, Ordering::Relaxed);
        if let Err(err) = &result {
            slot.failed[source as usize][order_failure(err)].fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// `order` for the bot runner's placements.
    ///
    /// # Errors
    /// `result`'s own.
    pub fn bot_order<T>(
        &self,
        venue: &str,
        result: Result<T, exchange::ExchangeError>,
    ) -> Result<T, exchange::ExchangeError> {
        self.order(venue, OrderSource::Bot, result)
    }

    /// `order` for manual orders placed through the API.
    ///
    /// # Errors
    /// `result`'s own.
    pub fn manual_order<T>(
        &self,
        venue: &str,
        result: Result<T, exchange::ExchangeError>,
    ) -> Result<T, exchange::ExchangeError> {
        self.order(venue, OrderSource::Manual, result)
    }

    fn venue(&self, name: &str) -> &VenueMetrics {
        let (last, named) = self.venues.split_last().unwrap_or_else(|| unreachable!("VENUE_SLOTS > 0"));
        for slot in named {
            match slot.name.get() {
                Some(taken) if taken == name => return slot,
                Some(_) => {}
                // Claim it; if another order claimed it first, it may be for this same venue.
                None => {
                    let taken = slot.name.get_or_init(|| name.to_owned());
                    if taken == name {
                        return slot;
                    }
                }
            }
        }
        let _ = last.name.set("other".to_owned());
        last
    }

    /// The exposition text (format 0.0.4). `vault_sealed` is read by the caller at scrape time.
    pub fn render(&self, vault_sealed: bool) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let mut emit = Emitter { out: &mut out };
        emit.family("bulwark_build_info", "gauge", "The running version; always 1.");
        emit.sample("bulwark_build_info", &format!("version=\"{}\"", escape(env!("CARGO_PKG_VERSION"))), 1.0);
        emit.family("bulwark_process_start_time_seconds", "gauge", "When this server started, in Unix seconds.");
        emit.sample("bulwark_process_start_time_seconds", "", self.started_unix_secs);

        emit.family(
            "bulwark_http_requests_total",
            "counter",
            "HTTP requests answered, by route class (api, page, webhook, asset, health, metrics) and status code.",
        );
        for class in RouteClass::ALL {
            let route = &self.routes[class.index()];
            for (slot, count) in route.by_status.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let labels = format!("class=\"{}\",code=\"{}\"", class.as_str(), slot + 100);
                    emit.sample("bulwark_http_requests_total", &labels, count as f64);
                }
            }
        }

        emit.family(
            "bulwark_http_request_duration_seconds",
            "histogram",
            "Time from a request reaching the router to its answer, by route class.",
        );
        for class in RouteClass::ALL {
            let route = &self.routes[class.index()];
            let mut cumulative = 0u64;
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                cumulative += route.buckets[i].load(Ordering::Relaxed);
                let labels = format!("class=\"{}\",le=\"{bound}\"", class.as_str());
                emit.sample("bulwark_http_request_duration_seconds_bucket", &labels, cumulative as f64);
            }
            cumulative += route.buckets[DURATION_BUCKETS.len()].load(Ordering::Relaxed);
            let labels = format!("class=\"{}\",le=\"+Inf\"", class.as_str());
            emit.sample("bulwark_http_request_duration_seconds_bucket", &labels, cumulative as f64);
            let class_label = format!("class=\"{}\"", class.as_str());
            let sum = route.duration_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            emit.sample("bulwark_http_request_duration_seconds_sum", &class_label, sum);
            emit.sample("bulwark_http_request_duration_seconds_count", &class_label, cumulative as f64);
        }

        emit.family("bulwark_http_requests_in_flight", "gauge", "HTTP requests being handled now.");
        emit.sample("bulwark_http_requests_in_flight", "", self.in_flight.load(Ordering::Relaxed) as f64);

        emit.family(
            "bulwark_http_requests_shed_total",
            "counter",
            "Requests refused at once with 503 overloaded because every request slot of their pool was taken.",
        );
        emit.sample("bulwark_http_requests_shed_total", "", self.shed.load(Ordering::Relaxed) as f64);

        emit.family(
            "bulwark_http_requests_rate_limited_total",
            "counter",
            "Requests answered 429 rate_limited (throttles, webhook limits, the password-hash queue), by route class.",
        );
        for class in RouteClass::ALL {
            let count = self.routes[class.index()].rate_limited.load(Ordering::Relaxed);
            emit.sample(
                "bulwark_http_requests_rate_limited_total",
                &format!("class=\"{}\"", class.as_str()),
                count as f64,
            );
        }

        emit.family("bulwark_connections_open", "gauge", "TCP connections open at the edge now.");
        emit.sample("bulwark_connections_open", "", self.connections_open.load(Ordering::Relaxed) as f64);
        emit.family("bulwark_connections_accepted_total", "counter", "TCP connections taken by the edge.");
        emit.sample("bulwark_connections_accepted_total", "", self.connections_accepted.load(Ordering::Relaxed) as f64);
        emit.family(
            "bulwark_connections_refused_total",
            "counter",
            "TCP connections closed at once by the edge's caps: total (all connections) or per_address.",
        );
        for (i, reason) in ["total", "per_address"].into_iter().enumerate() {
            let count = self.connections_refused[i].load(Ordering::Relaxed);
            emit.sample("bulwark_connections_refused_total", &format!("cap=\"{reason}\""), count as f64);
        }
        emit.family(
            "bulwark_tls_handshakes_failed_total",
            "counter",
            "TLS handshakes that failed (error) or did not finish in time (timeout).",
        );
        for (i, reason) in ["error", "timeout"].into_iter().enumerate() {
            let count = self.tls_handshakes_failed[i].load(Ordering::Relaxed);
            emit.sample("bulwark_tls_handshakes_failed_total", &format!("reason=\"{reason}\""), count as f64);
        }
        emit.family(
            "bulwark_http_header_timeouts_total",
            "counter",
            "Connections closed because a request's headers did not arrive within the header-read timeout.",
        );
        emit.sample("bulwark_http_header_timeouts_total", "", self.header_timeouts.load(Ordering::Relaxed) as f64);

        emit.family(
            "bulwark_webhook_signals_accepted_total",
            "counter",
            "Webhook signals recorded and answered 202, by format.",
        );
        for (f, format) in WEBHOOK_FORMATS.iter().enumerate() {
            let count = self.webhooks_accepted[f].load(Ordering::Relaxed);
            emit.sample("bulwark_webhook_signals_accepted_total", &format!("format=\"{format}\""), count as f64);
        }
        emit.family(
            "bulwark_webhook_signals_refused_total",
            "counter",
            "Webhook hits refused, by format and the error code they were answered with.",
        );
        for (f, format) in WEBHOOK_FORMATS.iter().enumerate() {
            for (c, code) in WEBHOOK_CODES.iter().enumerate() {
                let count = self.webhooks_refused[f][c].load(Ordering::Relaxed);
                if count > 0 {
                    let labels = format!("format=\"{format}\",code=\"{code}\"");
                    emit.sample("bulwark_webhook_signals_refused_total", &labels, count as f64);
                }
            }
        }

        emit.family(
            "bulwark_orders_sent_total",
            "counter",
            "Order placements handed to a venue's adapter, by venue and source (bot or manual).",
        );
        for slot in &self.venues {
            let Some(venue) = slot.name.get() else { continue };
            for (s, source) in ["bot", "manual"].into_iter().enumerate() {
                let count = slot.sent[s].load(Ordering::Relaxed);
                let labels = format!("venue=\"{}\",source=\"{source}\"", escape(venue));
                emit.sample("bulwark_orders_sent_total", &labels, count as f64);
            }
        }
        emit.family(
            "bulwark_orders_failed_total",
            "counter",
            "Order placements that did not come back placed, by venue, source and reason (refused by the venue, \
             rate_limited, unreachable, not_placed, unknown: left to reconciliation, other).",
        );
        for slot in &self.venues {
            let Some(venue) = slot.name.get() else { continue };
            for (s, source) in ["bot", "manual"].into_iter().enumerate() {
                for (r, reason) in ORDER_FAILURES.iter().enumerate() {
                    let count = slot.failed[s][r].load(Ordering::Relaxed);
                    if count > 0 {
                        let labels = format!("venue=\"{}\",source=\"{source}\",reason=\"{reason}\"", escape(venue));
                        emit.sample("bulwark_orders_failed_total", &labels, count as f64);
                    }
                }
            }
        }

        emit.family(
            "bulwark_vault_sealed",
            "gauge",
            "1 when this node's vault is sealed (no usable root key), else 0.",
        );
        emit.sample("bulwark_vault_sealed", "", if vault_sealed { 1.0 } else { 0.0 });
        out
    }
}

/// Escapes a label value (backslash, quote, newline), though every value here is the server's own.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Emitter<'a> {
    out: &'a mut String,
}

impl Emitter<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Held while the edge serves a connection: the open-connections gauge counts it.
#[derive(Debug)]
pub struct ConnectionGuard(std::sync::Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts every request: in flight while it is handled, then by class and status with its
/// duration. Outside load shedding, so shed requests are counted too.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let class = RouteClass::of(request.uri().path());
    let started = Instant::now();
    let _in_flight = InFlightGuard::enter(&state.metrics);
    let response = next.run(request).await;
    state.metrics.request(class, response.status(), started.elapsed());
    response
}

struct InFlightGuard<'a>(&'a Metrics);

impl<'a> InFlightGuard<'a> {
    fn enter(metrics: &'a Metrics) -> InFlightGuard<'a> {
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(metrics)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a request may read the metrics: with a token configured, only with that token as a
/// bearer token; without one, only from a loopback peer that is not a trusted proxy (a proxy's
/// connection carries other clients' requests; a forwarded header never counts).
pub fn allowed(
    peer: Option<IpAddr>,
    trusted_proxies: &[IpNet],
    token: Option<&MetricsToken>,
    headers: &HeaderMap,
) -> bool {
    match token {
        Some(token) => bearer(headers).is_some_and(|presented| token.matches(presented)),
        None => peer.is_some_and(|ip| {
            let ip = ip.to_canonical();
            ip.is_loopback() && !trusted_proxies.iter().any(|net| net.contains(&ip))
        }),
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case, RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = (bytes.get(..7)?, bytes.get(7..)?);
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

/// `GET /metrics`; every other method, and every request not `allowed`, gets the 404 of an
/// unknown route.
pub async fn endpoint(State(state): State<AppState>, request: Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let permitted = matches!(*request.method(), Method::GET | Method::HEAD)
        && allowed(peer, &state.config.trusted_proxies, state.config.metrics_token.as_ref(), request.headers());
    if !permitted {
        tracing::debug!("metrics request refused (answered as an unknown route)");
        return crate::pages::not_found(request.uri().clone()).await;
    }
    let body = state.metrics.render(state.vault.is_sealed());
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> MetricsToken {
        MetricsToken::parse(text).expect("a valid token")
    }

    #[test]
    fn route_classes_come_from_the_path_alone() {
        assert_eq!(RouteClass::of("/api/v1/bots/123"), RouteClass::Api);
        assert_eq!(RouteClass::of("/api"), RouteClass::Api);
        assert_eq!(RouteClass::of("/apiary"), RouteClass::Page);
        assert_eq!(RouteClass::of("/bots/123"), RouteClass::Page);
        assert_eq!(RouteClass::of("/assets/app.css"), RouteClass::Asset);
        assert_eq!(RouteClass::of("/healthz"), RouteClass::Health);
        assert_eq!(RouteClass::of("/metrics"), RouteClass::Metrics);
        assert_eq!(RouteClass::of("/metrics/x"), RouteClass::Page);
        assert_eq!(RouteClass::of("/signal_bots/webhooks"), RouteClass::Webhook);
    }

    #[test]
    fn without_a_token_only_a_loopback_peer_that_is_no_proxy_may_read() {
        let none = HeaderMap::new();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(allowed(Some(loopback), &[], None, &none));
        assert!(allowed(Some("::1".parse().unwrap()), &[], None, &none));
        assert!(allowed(Some("::ffff:127.0.0.1".parse().unwrap()), &[], None, &none), "IPv4-mapped loopback");
        assert!(!allowed(Some("192.0.2.7".parse().unwrap()), &[], None, &none));
        assert!(!allowed(Some("::ffff:192.0.2.7".parse().unwrap()), &[], None, &none));
        assert!(!allowed(None, &[], None, &none), "no peer known");
        let proxies = ["127.0.0.0/8".parse().unwrap()];
        assert!(!allowed(Some(loopback), &proxies, None, &none), "a proxy's connection is not the operator's");
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        assert!(!allowed(Some("192.0.2.7".parse().unwrap()), &proxies, None, &forwarded));
    }

    #[test]
    fn with_a_token_only_that_bearer_token_reads_from_anywhere() {
        let secret = "s3cret-metrics-token-0123456789abcdef";
        let t = token(secret);
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        let remote = Some("192.0.2.7".parse().unwrap());
        let loopback = Some("127.0.0.1".parse().unwrap());
        assert!(allowed(remote, &[], Some(&t), &with(&format!("Bearer {secret}"))));
        assert!(allowed(remote, &[], Some(&t), &with(&format!("bearer {secret}"))));
        assert!(!allowed(loopback, &[], Some(&t), &HeaderMap::new()), "loopback needs the token too");
        assert!(!allowed(remote, &[], Some(&t), &with(&format!("Bearer {secret}x"))));
        assert!(!allowed(remote, &[], Some(&t), &with(&format!("Bearer {}", &secret[1..]))));
        assert!(!allowed(remote, &[], Some(&t), &with(&format!("Basic {secret}"))));
        assert!(!allowed(remote, &[], Some(&t), &with(secret)));
        let mut two = with(&format!("Bearer {secret}"));
        two.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        assert!(!allowed(remote, &[], Some(&t), &two), "two Authorization headers are refused");
    }

    #[test]
    fn counters_histograms_and_venues_render() {
        let metrics = Metrics::new();
        metrics.request(RouteClass::Page, StatusCode::NOT_FOUND, Duration::from_millis(3));
        metrics.request(RouteClass::Api, StatusCode::TOO_MANY_REQUESTS, Duration::from_millis(30));
        metrics.request(RouteClass::Api, StatusCode::OK, Duration::from_secs(20));
        metrics.webhook("dca", Err("invalid_token"));
        metrics.webhook("signal", Err("something_new"));
        metrics.webhook("dca", Ok(()));
        let _ = metrics.order::<()>("binance", OrderSource::Bot, Ok(()));
        let _ = metrics.order::<()>("paper", OrderSource::Manual, Err(exchange::ExchangeError::NotPlaced));
        for i in 0..VENUE_SLOTS + 2 {
            let _ = metrics.order::<()>(&format!("v{i}"), OrderSource::Bot, Ok(()));
        }
        let text = metrics.render(false);
        for line in [
            "bulwark_http_requests_total{class=\"page\",code=\"404\"} 1",
            "bulwark_http_requests_total{class=\"api\",code=\"429\"} 1",
            "bulwark_http_requests_rate_limited_total{class=\"api\"} 1",
            "bulwark_http_request_duration_seconds_bucket{class=\"page\",le=\"0.005\"} 1",
            "bulwark_http_request_duration_seconds_bucket{class=\"api\",le=\"0.025\"} 0",
            "bulwark_http_request_duration_seconds_bucket{class=\"api\",le=\"0.05\"} 1",
            "bulwark_http_request_duration_seconds_bucket{class=\"api\",le=\"10\"} 1",
            "bulwark_http_request_duration_seconds_bucket{class=\"api\",le=\"+Inf\"} 2",
            "bulwark_http_request_duration_seconds_count{class=\"api\"} 2",
            "bulwark_webhook_signals_accepted_total{format=\"dca\"} 1",
            "bulwark_webhook_signals_refused_total{format=\"dca\",code=\"invalid_token\"} 1",
            "bulwark_webhook_signals_refused_total{format=\"signal\",code=\"other\"} 1",
            "bulwark_orders_sent_total{venue=\"binance\",source=\"bot\"} 1",
            "bulwark_orders_sent_total{venue=\"paper\",source=\"manual\"} 1",
            "bulwark_orders_failed_total{venue=\"paper\",source=\"manual\",reason=\"not_placed\"} 1",
            "bulwark_orders_sent_total{venue=\"other\",source=\"bot\"} 5",
            "bulwark_vault_sealed 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
        assert!(text.contains("bulwark_http_request_duration_seconds_sum{class=\"api\"} 20.03"), "{text}");
    }

    #[test]
    fn the_token_is_redacted_and_checked_whole() {
        let t = token("s3cret-metrics-token-0123456789abcdef");
        assert_eq!(format!("{t:?}"), "MetricsToken(***)");
        assert!(t.matches(b"s3cret-metrics-token-0123456789abcdef"));
        assert!(!t.matches(b"s3cret-metrics-token-0123456789abcde"));
        assert!(!t.matches(b""));
    }
}
