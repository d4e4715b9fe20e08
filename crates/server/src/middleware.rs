//! Middleware on every request: security headers (SE-5), cross-origin refusal (SE-4), the
//! up-front body-size check, the body read deadline, per-address request rates and load shedding
//! (NET-1).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};

use crate::ApiError;
use crate::metrics::RouteClass;
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
    if RouteClass::of(request.uri().path()) == RouteClass::Webhook {
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
    let pool = match RouteClass::of(path) {
        RouteClass::Health | RouteClass::Metrics => return next.run(request).await,
        RouteClass::Webhook => &state.in_flight.webhooks,
        RouteClass::Api | RouteClass::Page | RouteClass::Asset => &state.in_flight.general,
    };
    let Ok(_slot) = std::sync::Arc::clone(pool).try_acquire_owned() else {
        tracing::warn!(path, "load shedding: every request slot is taken");
        state.metrics.shed();
        return ApiError::Overloaded.into_response();
    };
    next.run(request).await
}

/// Refuses a body whose declared length is over the limit before reading any of it, and a body
/// without a declared length: a request with `Transfer-Encoding` is answered 411
/// `length_required` and its connection closed. Chunked request bodies are what makes framing
/// ambiguous — beside a `Content-Length`, hyper goes by the chunks (and drops the length) while a
/// proxy in front may have gone by the length, which is how a second request is smuggled past it
/// — and no client of ours needs them (browsers, TradingView and the usual HTTP libraries send a
/// length).
pub async fn body_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.headers().contains_key(header::TRANSFER_ENCODING) {
        tracing::info!(path = %request.uri().path(), "a request with Transfer-Encoding refused (411)");
        let mut response = ApiError::Refused {
            status: axum::http::StatusCode::LENGTH_REQUIRED,
            code: "length_required",
            message: "Send the request body with a Content-Length; chunked request bodies are not accepted.".to_owned(),
        }
        .into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let limit = u64::try_from(state.config.max_body_bytes).unwrap_or(u64::MAX);
    if declared.is_some_and(|len| len > limit) {
        return ApiError::BodyTooLarge.into_response();
    }
    next.run(request).await
}

/// Per-address request rate of the pages and the API (NET-1): beyond it, 429 `rate_limited` with
/// `Retry-After` before any work. The client address is the socket peer, or the first untrusted
/// hop of `X-Forwarded-For` behind a trusted proxy. `/healthz`, `/metrics`, the static assets and
/// the webhook routes (limited per address and per bot on their own) take nothing from it. The
/// per-account rate is spent where the session is read (`session::authenticate`).
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match RouteClass::of(request.uri().path()) {
        RouteClass::Health | RouteClass::Metrics | RouteClass::Asset | RouteClass::Webhook => {
            return next.run(request).await;
        }
        RouteClass::Api | RouteClass::Page => {}
    }
    let (parts, body) = request.into_parts();
    let ip = crate::extract::ClientInfo::from_parts(&parts, &state).ip;
    if let Err(refusal) = state.request_rates.per_ip.hit(&ip, state.request_rates.now()) {
        if refusal.first {
            tracing::warn!(%ip, "rate limited: too many requests from one address");
        }
        return ApiError::RateLimited(refusal.retry_after).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A deadline on the whole request body, counted from when the headers were read (NET-1: a client
/// that sends its body a byte at a time would otherwise hold a request slot for as long as it
/// likes; hyper's header timeout ends at the headers). A body not all there by then is answered
/// 408 `request_timeout` and the connection is closed. A body that has arrived is never refused,
/// however late the handler reads it.
pub async fn body_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let sleep = Box::pin(tokio::time::sleep(state.config.edge.body_read_timeout));
    let flag = Arc::clone(&timed_out);
    let request = request.map(|inner| Body::new(DeadlineBody { inner, sleep, timed_out: flag }));
    let response = next.run(request).await;
    if timed_out.load(Ordering::Acquire) {
        tracing::info!("a request body did not arrive within the body read timeout; connection closed");
        let mut response = ApiError::RequestTimeout.into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    response
}

/// A request body that fails once its deadline has passed while more of it is awaited.
struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a `DeadlineBody` ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body read timeout")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            ready => return ready,
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
