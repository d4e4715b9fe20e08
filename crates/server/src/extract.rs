//! Request extractors: JSON bodies with our error codes, the client's address, and the session.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::ApiError;
use crate::session::{self, Authed};
use crate::state::AppState;

/// `axum::Json` with the rejections mapped to `invalid_json`, `invalid_input`, `body_too_large`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonDataError(err)) => Err(ApiError::InvalidInput {
                field: "body",
                message: format!("The request body does not have the expected fields: {}", err.body_text()),
            }),
            Err(JsonRejection::JsonSyntaxError(_)) => {
                Err(ApiError::InvalidJson("check the brackets, quotes and commas".to_owned()))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(err)) if err.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::BodyTooLarge)
            }
            Err(other) => Err(ApiError::InvalidJson(other.body_text())),
        }
    }
}

/// `axum::extract::Query` with a bad query string mapped to 422 `invalid_input`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(err) => Err(ApiError::InvalidInput {
                field: "query",
                message: format!("The query string is not valid: {}", err.body_text()),
            }),
        }
    }
}

/// A secret string from a request body (a password, a token). Redacted in `Debug`, zeroized on
/// drop; it is turned into its domain type right away.
pub struct SecretInput(Zeroizing<String>);

impl SecretInput {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretInput(***)")
    }
}

impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SecretInput(Zeroizing::new(s)))
    }
}

/// The text of a decimal field, which `spec/api.md` lets a client send as a JSON string or a JSON
/// number; `None` for any other JSON type. Callers parse it with the rules of their field.
pub fn decimal_text(raw: &serde_json::Value) -> Option<String> {
    match raw {
        serde_json::Value::String(text) => Some(text.trim().to_owned()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The client as far as we can tell: the socket peer, or the first untrusted hop of
/// `X-Forwarded-For` when the peer is a configured proxy. The header is ignored otherwise.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
}

impl ClientInfo {
    pub fn from_parts(parts: &Parts, state: &AppState) -> ClientInfo {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
        let trusted = |ip: &IpAddr| state.config.trusted_proxies.iter().any(|net| net.contains(ip));
        let mut ip = peer;
        if trusted(&peer) {
            let hops: Vec<IpAddr> = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|hop| hop.trim().parse().ok())
                .collect();
            // Walk from the nearest hop back; the first address that is not one of our proxies
            // is the client. Anything further left could have been written by the client itself.
            for hop in hops.iter().rev() {
                ip = *hop;
                if !trusted(hop) {
                    break;
                }
            }
        }
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        ClientInfo { ip, user_agent }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo::from_parts(parts, state))
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        session::authenticate(parts, state).await?.ok_or(ApiError::Unauthenticated)
    }
}

/// The session if there is a valid one, without failing the request when there is none.
#[derive(Debug)]
pub struct MaybeAuthed(pub Option<Authed>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuthed(session::authenticate(parts, state).await?))
    }
}

/// A session that confirmed the password (and second factor) within the re-authentication window:
/// the guard of every *step-up* route (AU-8). 401 without a session, 403 `reauth_required` when
/// the last confirmation is older than the window.
#[derive(Debug)]
pub struct StepUp(pub Authed);

impl FromRequestParts<AppState> for StepUp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let authed = Authed::from_request_parts(parts, state).await?;
        if !authed.recently_authenticated(state) {
            return Err(ApiError::ReauthRequired);
        }
        Ok(StepUp(authed))
    }
}

/// The session of the install's operator (its first account): the guard of the operator's routes.
/// 401 without a session, 403 `forbidden` for any other account.
#[derive(Debug)]
pub struct Operator(pub Authed);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let authed = Authed::from_request_parts(parts, state).await?;
        if !authed.user.operator {
            return Err(ApiError::Forbidden);
        }
        Ok(Operator(authed))
    }
}

/// The operator, re-authenticated within the window: the guard of the operator's changes
/// (AU-8, like [`StepUp`]). Another account gets 403 `forbidden` first, so it is never asked to
/// confirm its password for something it cannot do.
#[derive(Debug)]
pub struct OperatorStepUp(pub Authed);

impl FromRequestParts<AppState> for OperatorStepUp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Operator(authed) = Operator::from_request_parts(parts, state).await?;
        if !authed.recently_authenticated(state) {
            return Err(ApiError::ReauthRequired);
        }
        Ok(OperatorStepUp(authed))
    }
}
