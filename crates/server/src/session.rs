//! Browser sessions (SE-1..3): an opaque 256-bit token in the `__Host-bulwark_session` cookie,
//! stored only as its SHA-256, with an idle and an absolute timeout checked on every request.

use std::time::Duration;

use auth::OpaqueToken;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use store::{SessionRecord, UserRecord};

use crate::ApiError;
use crate::state::AppState;

pub const COOKIE_NAME: &str = "__Host-bulwark_session";

/// `last_seen_at` is written at most this often per session, so reading pages does not turn into a
/// write per request; the idle timeout is therefore exact to within this much.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A request made inside a live session.
#[derive(Debug, Clone)]
pub struct Authed {
    pub session: SessionRecord,
    pub user: UserRecord,
}

impl Authed {
    /// Whether the session confirmed the password within the re-authentication window.
    pub fn recently_authenticated(&self, state: &AppState) -> bool {
        self.session.reauth_at.is_some_and(|at| state.now() < at.plus(state.config.reauth_window))
    }
}

/// The session token from the `Cookie` header, if it has the shape of one.
pub fn token_from_headers(headers: &HeaderMap) -> Option<OpaqueToken> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| OpaqueToken::parse(value.trim()).ok())
}

/// Looks the session up and checks both timeouts; touches `last_seen_at` when due.
///
/// # Errors
/// Only when the store fails; a missing, unknown or expired session is `Ok(None)`.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<Authed>, ApiError> {
    let Some(token) = token_from_headers(&parts.headers) else {
        return Ok(None);
    };
    let Some((session, user)) = state.store.session_by_token(token.hash().as_bytes()).await? else {
        return Ok(None);
    };
    let now = state.now();
    let idle_end = session.last_seen_at.plus(state.config.session_idle);
    if now >= session.expires_at || now >= idle_end {
        return Ok(None);
    }
    // Each signed-in request spends from its account's bucket, wherever it comes from (NET-1).
    if let Err(refusal) = state.request_rates.per_account.hit(&user.id, state.request_rates.now()) {
        if refusal.first {
            tracing::warn!(user = %user.id, "rate limited: too many requests for one account");
        }
        return Err(ApiError::RateLimited(refusal.retry_after));
    }
    if now.since(session.last_seen_at) >= TOUCH_EVERY {
        state.store.touch_session(session.id, now).await?;
    }
    Ok(Some(Authed { session, user }))
}

/// `Set-Cookie` for a new session. `__Host-` requires `Secure`, `Path=/` and no `Domain` (SE-3);
/// browsers accept `Secure` cookies from `http://localhost` and `127.0.0.1`.
pub fn set_cookie(token: &OpaqueToken, lifetime: Duration) -> HeaderValue {
    let value = format!(
        "{COOKIE_NAME}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        token.expose(),
        lifetime.as_secs()
    );
    // A base64url token and fixed attributes are always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-bulwark_session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}
