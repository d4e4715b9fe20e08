//! `/api/v1/operator/*`: the install's settings, for its operator (the first account created on
//! it; issue 8, "safe defaults"). There is no default account: whoever registers first on a fresh
//! install holds these, and no one else ever does.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{OperatorSettings, Registration, SettingsWrite};

use crate::ApiError;
use crate::extract::{ApiJson, ClientInfo, Operator, OperatorStepUp};
use crate::state::AppState;

fn settings_json(settings: &OperatorSettings) -> Value {
    json!({ "registration": settings.registration.as_str() })
}

/// `GET /api/v1/operator/settings` (operator only).
pub async fn settings(State(state): State<AppState>, Operator(_): Operator) -> Result<Response, ApiError> {
    let settings = state.store.operator_settings().await?;
    Ok(axum::Json(settings_json(&settings)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// Read as any JSON value (`null` included) so a wrong one gets a sentence naming the
    /// choices; absent leaves the setting as it is.
    #[serde(default, deserialize_with = "present")]
    registration: Option<Value>,
}

/// Tells an explicit `null` (`Some(Value::Null)`, refused) from an absent field (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn registration(raw: &Value) -> Result<Registration, ApiError> {
    raw.as_str().and_then(Registration::parse).ok_or_else(|| ApiError::InvalidInput {
        field: "registration",
        message: "registration is \"open\" (anyone who reaches this server may create an account) or \"closed\" \
            (no new accounts)."
            .to_owned(),
    })
}

/// `PUT /api/v1/operator/settings` (operator only, *step-up*): the fields given replace the
/// current ones. A change is audited `operator.settings_changed` with the old and new values; a
/// request that changes nothing writes nothing.
pub async fn update_settings(
    State(state): State<AppState>,
    client: ClientInfo,
    OperatorStepUp(authed): OperatorStepUp,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Response, ApiError> {
    let wanted = body.registration.as_ref().map(registration).transpose()?;
    // A change that came first (another tab, another node) makes the write stale: read again, so
    // the audit row names exactly what was replaced.
    for _ in 0..3 {
        let old = state.store.operator_settings().await?;
        let new = OperatorSettings { registration: wanted.unwrap_or(old.registration) };
        if new == old {
            return Ok(axum::Json(settings_json(&new)).into_response());
        }
        let detail = json!({ "old": settings_json(&old), "new": settings_json(&new) });
        let audit = state.audit(Some(authed.user.id), "operator.settings_changed", &client, detail);
        match state.store.set_operator_settings(authed.user.id, &old, &new, state.now(), &audit).await? {
            SettingsWrite::Written => {
                tracing::info!(user = %authed.user.id, registration = new.registration.as_str(), "operator settings changed");
                return Ok(axum::Json(settings_json(&new)).into_response());
            }
            SettingsWrite::NotOperator => return Err(ApiError::Forbidden),
            SettingsWrite::Stale => {}
        }
    }
    Err(ApiError::Conflict {
        code: "settings_changed",
        message: "The settings kept changing while this change was being saved. Reload and try again.",
    })
}
