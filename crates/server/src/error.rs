//! The one error type of the HTTP layer. It renders the error shape of `spec/api.md`:
//! `{"error": "<code>", "message": "<sentence>"}` (plus `"field"` for input errors). A 5xx body is
//! generic; its cause goes to the log with its chain and never to the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON: {0}")]
    InvalidJson(String),
    #[error("invalid input in {field}: {message}")]
    InvalidInput { field: &'static str, message: String },
    #[error("invalid email")]
    InvalidEmail(String),
    #[error("weak password in {field}")]
    WeakPassword { field: &'static str, reason: String },
    #[error("body too large")]
    BodyTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("second factor required")]
    SecondFactorRequired,
    #[error("invalid second factor")]
    InvalidSecondFactor,
    #[error("two-factor sign-in is already on")]
    AlreadyEnabled,
    #[error("the vault is sealed")]
    VaultSealed,
    #[error("conflict: {code}")]
    Conflict { code: &'static str, message: &'static str },
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("the email address is not verified")]
    EmailNotVerified,
    #[error("exchange key refused: {code}")]
    KeyRefused { code: &'static str, message: &'static str },
    #[error("the exchange rejected the API key")]
    InvalidApiKey,
    #[error("the exchange could not be reached")]
    ExchangeUnreachable,
    #[error("order rejected: {0}")]
    OrderRejected(String),
    /// A request the state of things does not allow, with its own status, code and sentence
    /// (the order guard's refusals, a deal that is no longer open, ...).
    #[error("refused: {code}")]
    Refused { status: StatusCode, code: &'static str, message: String },
    #[error("re-authentication required")]
    ReauthRequired,
    /// The route is for the install's operator and the user is not it.
    #[error("forbidden")]
    Forbidden,
    /// The operator closed registration.
    #[error("registration closed")]
    RegistrationClosed,
    #[error("cross-origin request refused")]
    CsrfRejected,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    #[error("locked after too many failures")]
    Locked,
    /// The request body did not arrive within `EdgeConfig::body_read_timeout`.
    #[error("request body timed out")]
    RequestTimeout,
    /// Load shedding: every slot for requests of this kind is taken.
    #[error("overloaded")]
    Overloaded,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) | ApiError::InvalidToken => StatusCode::BAD_REQUEST,
            ApiError::InvalidInput { .. }
            | ApiError::InvalidEmail(_)
            | ApiError::WeakPassword { .. }
            | ApiError::KeyRefused { .. }
            | ApiError::InvalidApiKey
            | ApiError::OrderRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::EmailNotVerified => StatusCode::FORBIDDEN,
            ApiError::ExchangeUnreachable => StatusCode::BAD_GATEWAY,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidCredentials
            | ApiError::SecondFactorRequired
            | ApiError::InvalidSecondFactor
            | ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::AlreadyEnabled | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Refused { status, .. } => *status,
            ApiError::ReauthRequired | ApiError::CsrfRejected | ApiError::Forbidden | ApiError::RegistrationClosed => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited(_) | ApiError::Locked => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Store(StoreError::Unavailable(_)) | ApiError::VaultSealed | ApiError::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of `spec/api.md`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidInput { .. } => "invalid_input",
            ApiError::InvalidEmail(_) => "invalid_email",
            ApiError::WeakPassword { .. } => "weak_password",
            ApiError::BodyTooLarge => "body_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::InvalidToken => "invalid_token",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::SecondFactorRequired => "second_factor_required",
            ApiError::InvalidSecondFactor => "invalid_second_factor",
            ApiError::AlreadyEnabled => "already_enabled",
            ApiError::Conflict { code, .. } | ApiError::Refused { code, .. } => code,
            ApiError::VaultSealed => "vault_sealed",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::EmailNotVerified => "email_not_verified",
            ApiError::KeyRefused { code, .. } => code,
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::ExchangeUnreachable => "exchange_unreachable",
            ApiError::OrderRejected(_) => "order_rejected",
            ApiError::ReauthRequired => "reauth_required",
            ApiError::Forbidden => "forbidden",
            ApiError::RegistrationClosed => "registration_closed",
            ApiError::CsrfRejected => "csrf_rejected",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited(_) | ApiError::Locked => "rate_limited",
            ApiError::Store(StoreError::Unavailable(_)) => "unavailable",
            ApiError::Overloaded => "overloaded",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Store(_) | ApiError::Internal(_) => "internal_error",
        }
    }

    /// The sentence shown to the user. Never includes a cause from inside the server.
    pub fn message(&self) -> String {
        match self {
            ApiError::InvalidJson(why) => format!("The request body is not valid JSON: {why}"),
            ApiError::InvalidInput { message, .. } => message.clone(),
            ApiError::InvalidEmail(why) | ApiError::WeakPassword { reason: why, .. } => why.clone(),
            ApiError::BodyTooLarge => "The request body is too large.".to_owned(),
            ApiError::UnsupportedMediaType => "Send the body as JSON with Content-Type: application/json.".to_owned(),
            ApiError::InvalidToken => "This link is invalid, already used or expired. Ask for a new one.".to_owned(),
            ApiError::InvalidCredentials => "The email or password is not right.".to_owned(),
            ApiError::SecondFactorRequired => {
                "Enter the code from your authenticator app, or one of your backup codes.".to_owned()
            }
            ApiError::InvalidSecondFactor => "That code is not right, or it was already used.".to_owned(),
            ApiError::AlreadyEnabled => "Two-factor sign-in is already on.".to_owned(),
            ApiError::Conflict { message, .. } => (*message).to_owned(),
            ApiError::VaultSealed => {
                "This server's vault is sealed (its root key is missing), so stored secrets cannot be used \
                right now: codes from an authenticator app cannot be checked (a backup code works) and exchange \
                keys cannot be connected or used. Ask your operator."
                    .to_owned()
            }
            ApiError::Unauthenticated => "Sign in to continue.".to_owned(),
            ApiError::EmailNotVerified => {
                "Confirm your email address first (use the link we sent), then connect the key.".to_owned()
            }
            ApiError::KeyRefused { message, .. } => (*message).to_owned(),
            ApiError::OrderRejected(message) | ApiError::Refused { message, .. } => message.clone(),
            ApiError::InvalidApiKey => "The exchange did not accept this API key and secret: check that both were \
                pasted completely, that the key is not deleted, and that its IP restriction includes this server."
                .to_owned(),
            ApiError::ExchangeUnreachable => {
                "The exchange could not be reached or did not answer properly. Nothing was stored; try again shortly."
                    .to_owned()
            }
            ApiError::ReauthRequired => {
                "Confirm your password (and code, if two-factor sign-in is on) to continue.".to_owned()
            }
            ApiError::CsrfRejected => "This request did not come from Bulwark's own pages.".to_owned(),
            ApiError::Forbidden => "Only the operator of this Bulwark server can do this.".to_owned(),
            ApiError::RegistrationClosed => {
                "This Bulwark server does not take new accounts. Ask its operator for one.".to_owned()
            }
            ApiError::NotFound => "Nothing here.".to_owned(),
            ApiError::MethodNotAllowed => "This method is not allowed here.".to_owned(),
            ApiError::RateLimited(wait) => {
                format!("Too many attempts. Try again in {}.", human_duration(*wait))
            }
            ApiError::Locked => "Too many failed sign-ins: password sign-in for this account is locked. \
                Reset the password by mail to unlock it."
                .to_owned(),
            ApiError::Store(StoreError::Unavailable(_)) => {
                "The service is temporarily unavailable. Try again shortly.".to_owned()
            }
            ApiError::Overloaded => "The server is busy right now. Try again in a second.".to_owned(),
            ApiError::RequestTimeout => "The request body did not arrive in time.".to_owned(),
            ApiError::Store(_) | ApiError::Internal(_) => "Something went wrong on our side.".to_owned(),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::InvalidInput { field, .. } => Some(field),
            ApiError::InvalidEmail(_) => Some("email"),
            ApiError::WeakPassword { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(what.to_string())
    }
}

fn human_duration(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    match secs {
        1 => "a second".to_owned(),
        2..=119 => format!("{secs} seconds"),
        120..=7199 => format!("{} minutes", secs.div_ceil(60)),
        _ => format!("{} hours", secs.div_ceil(3600)),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
        }
        let mut body = json!({ "error": self.code(), "message": self.message() });
        if let Some(field) = self.field() {
            body["field"] = json!(field);
        }
        let mut response = (status, axum::Json(body)).into_response();
        let retry = match &self {
            ApiError::RateLimited(wait) => Some(*wait),
            // A lock has no end of its own; ask clients to come back no sooner than a day.
            ApiError::Locked => Some(Duration::from_secs(86_400)),
            ApiError::Overloaded => Some(Duration::from_secs(1)),
            _ => None,
        };
        if let Some(wait) = retry {
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_never_show_their_cause() {
        let err = ApiError::Store(StoreError::Other("relation users: password_phc=$argon2id$secret".into()));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.message().contains("argon2"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_millis(10)), "a second");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human_duration(Duration::from_secs(900)), "15 minutes");
        assert_eq!(human_duration(Duration::from_secs(86_400)), "24 hours");
    }
}
