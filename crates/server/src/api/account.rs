//! `/api/v1/me`, `/api/v1/sessions`, `/api/v1/audit-log`: what the signed-in user sees of their
//! own account.

use auth::OpaqueToken;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::Email;
use domain::{SessionId, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{AuditRecord, EmailChangeOutcome, NewEmailChange, PreferencesUpdate, SessionRecord, UserRecord};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ApiError;
use crate::api::auth::{mail_budget_left, parse_email};
use crate::emails;
use crate::extract::{ApiJson, ApiQuery, ClientInfo, MaybeAuthed, SecretInput, StepUp};
use crate::session::{self, Authed};
use crate::state::AppState;

pub fn me_json(user: &UserRecord) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "email_verified": user.email_verified_at.is_some(),
        "email_verified_at": user.email_verified_at,
        "totp_enabled": user.totp_enabled,
        "hide_balances": user.hide_balances,
        "anti_phishing_code": user.anti_phishing_code,
        "operator": user.operator,
        "created_at": user.created_at,
    })
}

/// The longest anti-phishing code, in characters.
pub const ANTI_PHISHING_MAX_CHARS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    #[serde(default)]
    hide_balances: Option<bool>,
    /// Absent: unchanged. `null` or blank: cleared. Otherwise the new code.
    #[serde(default, deserialize_with = "present")]
    anti_phishing_code: Option<Option<String>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`, via `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A code of 1 to 32 printable characters; blank clears it.
fn anti_phishing_code(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let code = raw.trim();
    if code.is_empty() {
        return Ok(None);
    }
    if code.chars().count() > ANTI_PHISHING_MAX_CHARS || code.chars().any(char::is_control) {
        return Err(ApiError::InvalidInput {
            field: "anti_phishing_code",
            message: format!(
                "The anti-phishing code is up to {ANTI_PHISHING_MAX_CHARS} characters on one line, such as a word only you would pick."
            ),
        });
    }
    Ok(Some(code.to_owned()))
}

/// `PATCH /api/v1/me/preferences`: hide balances, anti-phishing code. Answers with `/me`.
pub async fn update_preferences(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    ApiJson(body): ApiJson<PreferencesBody>,
) -> Result<Response, ApiError> {
    let update = PreferencesUpdate {
        hide_balances: body.hide_balances,
        anti_phishing_code: body.anti_phishing_code.map(anti_phishing_code).transpose()?,
    };
    let detail = json!({
        "hide_balances": update.hide_balances,
        "anti_phishing_code": update.anti_phishing_code.as_ref().map(|c| if c.is_some() { "set" } else { "cleared" }),
    });
    let audit = state.audit(Some(authed.user.id), "account.preferences_changed", &client, detail);
    let user =
        state.store.update_preferences(authed.user.id, &update, &audit).await?.ok_or(ApiError::Unauthenticated)?;
    Ok(axum::Json(me_json(&user)).into_response())
}

/// `GET /api/v1/me`.
pub async fn me(authed: Authed) -> Response {
    axum::Json(me_json(&authed.user)).into_response()
}

pub fn session_json(session: &SessionRecord, current: SessionId) -> Value {
    json!({
        "id": session.id,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "ip": session.ip,
        "user_agent": session.user_agent,
        "current": session.id == current,
    })
}

/// `GET /api/v1/sessions`: the user's live sessions, most recently used first.
pub async fn sessions(State(state): State<AppState>, authed: Authed) -> Result<Response, ApiError> {
    let list = live_sessions(&state, &authed).await?;
    let body: Vec<Value> = list.iter().map(|s| session_json(s, authed.session.id)).collect();
    Ok(axum::Json(body).into_response())
}

/// The user's sessions that have neither idled out nor passed their end.
pub async fn live_sessions(state: &AppState, authed: &Authed) -> Result<Vec<SessionRecord>, ApiError> {
    let now = state.now();
    let idle = state.config.session_idle;
    Ok(state
        .store
        .sessions_for_user(authed.user.id)
        .await?
        .into_iter()
        .filter(|s| now < s.expires_at && now < s.last_seen_at.plus(idle))
        .collect())
}

/// `DELETE /api/v1/sessions/{id}`: revokes one of the user's own sessions (404 for anyone else's).
pub async fn revoke_session(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: SessionId = id.parse().map_err(|_| ApiError::NotFound)?;
    let audit = state.audit(Some(authed.user.id), "auth.session_revoked", &client, json!({ "session_id": id }));
    if !state.store.delete_session(authed.user.id, id, &audit).await? {
        return Err(ApiError::NotFound);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if id == authed.session.id {
        response.headers_mut().insert(header::SET_COOKIE, session::clear_cookie());
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
    before: Option<String>,
}

pub fn audit_json(record: &AuditRecord) -> Value {
    json!({
        "id": record.id,
        "at": record.at,
        "kind": record.kind,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "detail": serde_json::from_str::<Value>(&record.detail).unwrap_or(Value::Null),
    })
}

/// `GET /api/v1/audit-log?limit=&before=`: the user's own events, newest first. `before` is the
/// `at` of the last row of the previous page (RFC 3339).
pub async fn audit_log(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::InvalidInput { field: "limit", message: "limit is between 1 and 200.".to_owned() });
    }
    let before = match query.before.as_deref() {
        None => None,
        Some(raw) => {
            let parsed = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| ApiError::InvalidInput {
                field: "before",
                message: "before is an RFC 3339 time such as 2026-11-25T14:00:00Z.".to_owned(),
            })?;
            let millis = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
            Some(Timestamp::from_unix_millis(millis))
        }
    };
    let rows = state.store.audit_for_user(authed.user.id, before, limit).await?;
    Ok(axum::Json(rows.iter().map(audit_json).collect::<Vec<_>>()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailBody {
    new_email: String,
}

/// `POST /api/v1/me/email` (step-up): mails a confirmation link to the new address and a notice to
/// the current one. The answer is the same whether or not the new address is free (no
/// enumeration); a taken address gets a notice instead of a link.
pub async fn change_email(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
    ApiJson(body): ApiJson<ChangeEmailBody>,
) -> Result<Response, ApiError> {
    let user = &authed.user;
    let new_email = parse_email(&body.new_email).map_err(|err| match err {
        ApiError::InvalidEmail(message) => ApiError::InvalidInput { field: "new_email", message },
        other => other,
    })?;
    if new_email.canonical() == user.email.canonical() {
        return Err(ApiError::InvalidInput {
            field: "new_email",
            message: "That is already your email address.".to_owned(),
        });
    }
    let now = state.now();
    let taken = state.store.user_by_email(&new_email.canonical()).await?.is_some();
    let audit =
        state.audit(Some(user.id), "account.email_change_requested", &client, json!({ "to": new_email.as_str() }));
    let token = OpaqueToken::generate(&*state.random);
    if taken {
        state.store.append_audit(&audit).await?;
    } else {
        let change = NewEmailChange {
            hash: *token.hash().as_bytes(),
            user_id: user.id,
            new_email: new_email.clone(),
            created_at: now,
            expires_at: now.plus(state.config.email_change_ttl),
        };
        state.store.request_email_change(&change, &audit).await?;
    }
    if mail_budget_left(&state, &new_email).await? {
        state.send_mail(if taken {
            emails::email_change_to_taken_address(&state.config, new_email.as_str())
        } else {
            emails::confirm_email_change(&state.config, new_email.as_str(), token.expose())
        });
    }
    if mail_budget_left(&state, &user.email).await? {
        let ip = client.ip.to_string();
        state.send_user_mail(
            user,
            emails::email_change_requested(&state.config, user.email.as_str(), new_email.as_str(), &ip),
        );
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "status": "confirmation_sent" }))).into_response())
}

/// Consumes an email-change token: shared by the API route and the page behind the mailed link.
/// The confirming browser's session survives when it is the user's; every other one ends.
pub async fn confirm_email_change_token(
    state: &AppState,
    client: &ClientInfo,
    raw: &str,
    current: Option<&Authed>,
) -> Result<Email, ApiError> {
    let token = OpaqueToken::parse(raw).map_err(|_| ApiError::InvalidToken)?;
    let audit = state.audit(None, "account.email_changed", client, json!({}));
    let keep = current.map(|a| a.session.id);
    match state.store.confirm_email_change(token.hash().as_bytes(), state.now(), keep, &audit).await? {
        EmailChangeOutcome::Changed { user, old_email, new_email } => {
            if let Some(record) = state.store.user_by_id(user).await? {
                let old = UserRecord { email: old_email.clone(), ..record };
                state
                    .send_user_mail(&old, emails::email_changed(&state.config, old_email.as_str(), new_email.as_str()));
            }
            Ok(new_email)
        }
        EmailChangeOutcome::InvalidToken => Err(ApiError::InvalidToken),
        EmailChangeOutcome::Taken { .. } => Err(ApiError::Conflict {
            code: "email_taken",
            message: "This address already has a Bulwark account, so it cannot become yours.",
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct EmailTokenBody {
    token: SecretInput,
}

/// `POST /api/v1/me/email/confirm` `{"token"}`.
pub async fn confirm_email_change(
    State(state): State<AppState>,
    client: ClientInfo,
    MaybeAuthed(authed): MaybeAuthed,
    ApiJson(body): ApiJson<EmailTokenBody>,
) -> Result<Response, ApiError> {
    let email = confirm_email_change_token(&state, &client, body.token.expose(), authed.as_ref()).await?;
    Ok(axum::Json(json!({ "status": "changed", "email": email })).into_response())
}
