//! `/api/v1/me`, `/api/v1/sessions`, `/api/v1/audit-log`: what the signed-in user sees of their
//! own account.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{SessionId, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{AuditRecord, SessionRecord, UserRecord};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ApiError;
use crate::extract::{ApiQuery, ClientInfo};
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
        "created_at": user.created_at,
    })
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
