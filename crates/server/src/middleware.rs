//! Middleware on every request: security headers (SE-5), cross-origin refusal (SE-4), the
//! up-front body-size check and load shedding (NET-1).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use crate::state::AppState;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// Adds the security headers of `spec/api.md` to every response, errors included.
pub async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    // Over a TLS connection this server terminated, or behind a proxy that serves the public
    // `https://` URL; never over plain HTTP to a plain-HTTP address.
    let over_tls = request.extensions().get::<crate::edge::ServedOverTls>().is_some() || state.config.is_https();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set("content-security-policy", CONTENT_SECURITY_POLICY);
    set("x-content-type-options", "nosniff");
    set("referrer-policy", "no-referrer");
    set("cross-origin-opener-policy", "same-origin");
    set("cross-origin-resource-policy", "same-origin");
    set("x-frame-options", "DENY");
    set("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()");
    if !is_asset {
        set("cache-control", "no-store");
    }
    if over_tls {
        set("strict-transport-security", "max-age=63072000; includeSubDomains");
    }
    response
}

/// Refuses state-changing requests that a browser sent from another origin (SE-4).
///
/// A browser marks every request with `Sec-Fetch-Site`, and older ones at least send `Origin` on a
/// cross-origin POST: either must name our own origin. A request with neither header did not come
/// from a browser and so cannot be a cross-site forgery (the same rule as Go's
/// `http.CrossOriginProtection`). All state changes take JSON bodies, which a cross-site form cannot
/// send without a CORS preflight that we never approve.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    // The webhook routes take no session: their secret is in the body, so another origin gains
    // nothing by posting to them (and a sender may well carry an `Origin` of its own).
    if matches!(request.uri().path(), "/trade_signal/trading_view" | "/signal_bots/webhooks") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let allowed = match headers.get("sec-fetch-site").map(HeaderValue::to_str) {
        Some(Ok("same-origin" | "none")) => true,
        Some(_) => false,
        None => match headers.get(header::ORIGIN) {
            Some(origin) => origin.to_str().is_ok_and(|o| o == state.config.origin()),
            None => true,
        },
    };
    if !allowed {
        tracing::warn!(path = %request.uri().path(), "cross-origin state change refused");
        return ApiError::CsrfRejected.into_response();
    }
    next.run(request).await
}

/// The slots of requests being handled: one pool for the pages and the API, one for the webhook
/// routes. `/healthz` and `/metrics` take none (a load balancer must see a busy node as alive, and
/// a busy node is when its metrics matter most).
#[derive(Debug)]
pub struct InFlight {
    general: std::sync::Arc<tokio::sync::Semaphore>,
    webhooks: std::sync::Arc<tokio::sync::Semaphore>,
}

impl InFlight {
    pub fn new(config: &crate::config::ServerConfig) -> InFlight {
        InFlight {
            general: std::sync::Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
            webhooks: std::sync::Arc::new(tokio::sync::Semaphore::new(config.webhook_max_in_flight.max(1))),
        }
    }
}

/// Load shedding: a request that finds every slot of its pool taken is answered 503 `overloaded`
/// with `Retry-After: 1` at once, before any work, instead of waiting in a queue that makes every
/// answer late. The slot is held until the handler has answered.
pub async fn load_shed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let pool = match path {
        "/healthz" | "/metrics" => return next.run(request).await,
        "/trade_signal/trading_view" | "/signal_bots/webhooks" => &state.in_flight.webhooks,
        _ => &state.in_flight.general,
    };
    let Ok(_slot) = std::sync::Arc::clone(pool).try_acquire_owned() else {
        tracing::warn!(path, "load shedding: every request slot is taken");
        state.metrics.shed();
        return ApiError::Overloaded.into_response();
    };
    next.run(request).await
}

/// Refuses a body whose declared length is over the limit before reading any of it.
pub async fn body_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let limit = u64::try_from(state.config.max_body_bytes).unwrap_or(u64::MAX);
    if declared.is_some_and(|len| len > limit) {
        return ApiError::BodyTooLarge.into_response();
    }
    next.run(request).await
}
