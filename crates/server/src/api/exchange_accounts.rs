//! `/api/v1/exchange-accounts`: connecting exchange API keys that can trade and never withdraw.
//!
//! A key is checked against the venue's own key-introspection endpoint *before* anything is stored
//! (EX-1, EX-3): a key that can withdraw or transfer, cannot trade spot, or (in strict mode) works
//! from any IP address is refused with a named code and a sentence on how to fix it, and its secret
//! is dropped. An accepted secret is sealed by the vault, bound to its user, row, venue and key
//! fingerprint (SEC-1, SEC-2), and never leaves the server again: no response, log line or error
//! carries it (SEC-5). Deleting the account deletes the sealed secret.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{Decimal, ExchangeAccountId};
use exchange::{Credentials, KeyKind, PlainCredentials, api_key_hint};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{ExchangeAccountRecord, NewExchangeAccount};
use zeroize::Zeroizing;

use crate::ApiError;
use crate::api::auth::{ensure_not_blocked, hit};
use crate::emails;
use crate::extract::{ApiJson, ApiQuery, ClientInfo, SecretInput, StepUp, decimal_text};
use crate::keys;
use crate::live_vault::SealError;
use crate::session::Authed;
use crate::state::AppState;

/// The longest account name, in characters.
pub const NAME_MAX_CHARS: usize = 64;
/// The longest public API key accepted (Binance's are 64 characters).
pub const API_KEY_MAX_LEN: usize = 256;
/// The longest secret accepted, in bytes (an Ed25519 PKCS#8 PEM is about 120).
pub const SECRET_MAX_LEN: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectBody {
    exchange: String,
    name: String,
    #[serde(default)]
    api_key: Option<String>,
    /// An HMAC key's secret.
    #[serde(default)]
    api_secret: Option<SecretInput>,
    /// An Ed25519 key's private key, PKCS#8 PEM.
    #[serde(default)]
    private_key: Option<SecretInput>,
    /// Strict mode's opt-out for users on dynamic IP addresses: deliberate and audited.
    #[serde(default)]
    waive_ip_restriction: bool,
    /// A paper account's starting balances, `{"USDT": "10000"}` (strings or numbers).
    #[serde(default)]
    balances: Option<serde_json::Map<String, Value>>,
}

/// The most assets a paper account starts with, and the largest starting amount of one.
pub const PAPER_MAX_ASSETS: usize = 20;
const PAPER_MAX_AMOUNT: i64 = 1_000_000_000_000;

/// A paper account's starting balances: 10,000 USDT unless given.
fn paper_balances(raw: Option<&serde_json::Map<String, Value>>) -> Result<Vec<(domain::Asset, Decimal)>, ApiError> {
    let bad = || {
        invalid(
            "balances",
            "Give starting balances as {\"ASSET\": amount}: up to 20 assets, each amount from 0 to 1,000,000,000,000.",
        )
    };
    let Some(raw) = raw else {
        return Ok(vec![(domain::Asset::parse("USDT").map_err(|_| bad())?, Decimal::new(10_000, 0))]);
    };
    if raw.is_empty() || raw.len() > PAPER_MAX_ASSETS {
        return Err(bad());
    }
    raw.iter()
        .map(|(asset, amount)| {
            let asset = domain::Asset::parse(asset).map_err(|_| bad())?;
            let text = decimal_text(amount).ok_or_else(bad)?;
            let amount = text.parse::<Decimal>().map_err(|_| bad())?;
            if amount.is_sign_negative() || amount > Decimal::new(PAPER_MAX_AMOUNT, 0) {
                return Err(bad());
            }
            Ok((asset, amount.normalize()))
        })
        .collect()
}

pub fn account_json(account: &ExchangeAccountRecord) -> Value {
    json!({
        "id": account.id,
        "exchange": account.exchange,
        "name": account.name,
        "api_key_hint": api_key_hint(&account.api_key),
        "key_type": account.key_kind,
        "permissions": {
            "spot_trading": account.permissions.spot_trading,
            "withdrawals": account.permissions.withdrawals,
            "transfers": account.permissions.transfers,
            "ip_restricted": account.permissions.ip_restricted,
        },
        "ip_restriction_waived": account.ip_restriction_waived,
        "status": account.status.as_str(),
        "status_reason": account.status_reason,
        "last_checked_at": account.last_checked_at,
        "created_at": account.created_at,
    })
}

fn invalid(field: &'static str, message: &str) -> ApiError {
    ApiError::InvalidInput { field, message: message.to_owned() }
}

/// `POST /api/v1/exchange-accounts` (*step-up*, verified email).
pub async fn connect(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
    ApiJson(body): ApiJson<ConnectBody>,
) -> Result<Response, ApiError> {
    if authed.user.email_verified_at.is_none() {
        return Err(ApiError::EmailNotVerified);
    }
    // A sealed node could check the key but never store it: say so before asking the venue.
    if state.vault.is_sealed() {
        return Err(ApiError::VaultSealed);
    }
    let venues = state.venues.names();
    let venue = venues.iter().copied().find(|name| *name == body.exchange).ok_or_else(|| {
        invalid("exchange", &format!("Choose an exchange this server connects to: {}.", venues.join(", ")))
    })?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(invalid("name", "Give the account a name of 1 to 64 characters on one line."));
    }
    let throttle = format!("keys:user:{}", authed.user.id);
    let paper = state.paper.as_ref().filter(|paper| paper.venue() == venue);
    let (api_key, kind, secret, field) = match paper {
        Some(paper) => {
            if body.api_key.is_some() || body.api_secret.is_some() || body.private_key.is_some() {
                return Err(invalid("api_key", "A paper account needs no key: Bulwark opens one in its paper market."));
            }
            let balances = paper_balances(body.balances.as_ref())?;
            let (api_key, secret) = paper.open_account(&balances).await.map_err(|err| {
                tracing::warn!(error = %err, "the paper market refused to open an account");
                invalid("balances", "The paper market refused these balances.")
            })?;
            (api_key, KeyKind::Hmac, secret, "api_secret")
        }
        None => {
            if body.balances.is_some() {
                return Err(invalid("balances", "Starting balances are for paper accounts only."));
            }
            let api_key = body.api_key.as_deref().map(str::trim).unwrap_or_default();
            if api_key.is_empty() || api_key.len() > API_KEY_MAX_LEN || !api_key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid("api_key", "Paste the API key exactly as the exchange shows it."));
            }
            let (kind, secret, field) = match (&body.api_secret, &body.private_key) {
                (Some(secret), None) => (KeyKind::Hmac, secret.expose().trim(), "api_secret"),
                (None, Some(pem)) => (KeyKind::Ed25519, pem.expose().trim(), "private_key"),
                _ => {
                    return Err(invalid(
                        "api_secret",
                        "Paste the key's secret (api_secret), or for an Ed25519 key its private key (private_key), not both.",
                    ));
                }
            };
            if secret.is_empty() || secret.len() > SECRET_MAX_LEN {
                return Err(invalid(
                    field,
                    "Paste the secret exactly as the exchange showed it when the key was created.",
                ));
            }
            ensure_not_blocked(&state, &[&throttle]).await?;
            (api_key.to_owned(), kind, Zeroizing::new(secret.as_bytes().to_vec()), field)
        }
    };
    let api_key = api_key.as_str();
    let fingerprint = keys::api_key_fingerprint(api_key);
    let hint = api_key_hint(api_key);
    if state.store.api_key_connected(&fingerprint).await? {
        return Err(key_already_connected());
    }

    // Ask the venue what this key may do before anything is stored.
    let candidate: Arc<dyn Credentials> = Arc::new(PlainCredentials::new(api_key, kind, secret.clone()));
    let exchange = state.venues.account(venue, candidate).ok_or_else(|| ApiError::internal("venue vanished"))?;
    let permissions = match exchange.key_permissions().await {
        Ok(permissions) => permissions,
        Err(err) => {
            let api_error = keys::connect_error(&err, field);
            if matches!(api_error, ApiError::InvalidApiKey | ApiError::InvalidInput { .. }) {
                hit(&state, &throttle, &state.config.throttles.key_connect_user).await?;
            }
            let detail = json!({ "exchange": venue, "api_key_hint": hint, "reason": api_error.code() });
            state
                .store
                .append_audit(&state.audit(Some(authed.user.id), "exchange_key.refused", &client, detail))
                .await?;
            tracing::info!(exchange = venue, error = %err, "an exchange key could not be checked");
            return Err(api_error);
        }
    };
    if let Some(refusal) = permissions.refusal(!body.waive_ip_restriction) {
        hit(&state, &throttle, &state.config.throttles.key_connect_user).await?;
        let detail =
            json!({ "exchange": venue, "api_key_hint": hint, "reason": refusal.code(), "permissions": permissions });
        state.store.append_audit(&state.audit(Some(authed.user.id), "exchange_key.refused", &client, detail)).await?;
        state.send_user_mail(
            &authed.user,
            emails::exchange_key_refused(
                &state.config,
                authed.user.email.as_str(),
                venue,
                &hint,
                refusal.explanation(),
            ),
        );
        return Err(ApiError::KeyRefused { code: refusal.code(), message: refusal.explanation() });
    }

    let id = ExchangeAccountId::from_random_bytes(state.random_16());
    let binding = keys::binding(keys::purpose_of(kind), authed.user.id, id, venue, fingerprint);
    let sealed = state.vault.seal(&binding, &secret).await.map_err(|err| match err {
        SealError::Vault(vault::VaultError::Sealed) => ApiError::VaultSealed,
        other => ApiError::internal(other),
    })?;
    drop(secret);
    let now = state.now();
    let account = NewExchangeAccount {
        id,
        user_id: authed.user.id,
        exchange: venue.to_owned(),
        name: name.to_owned(),
        api_key: api_key.to_owned(),
        api_key_fingerprint: fingerprint,
        key_kind: kind.as_str().to_owned(),
        secret_sealed: sealed,
        permissions: keys::stored_permissions(&permissions),
        ip_restriction_waived: body.waive_ip_restriction,
        created_at: now,
    };
    let detail = json!({
        "exchange_account_id": id, "exchange": venue, "api_key_hint": hint, "key_type": kind.as_str(),
        "permissions": permissions, "ip_restriction_waived": body.waive_ip_restriction,
    });
    let audit = state.audit(Some(authed.user.id), "exchange_key.added", &client, detail);
    match state.store.insert_exchange_account(&account, &audit).await {
        Ok(()) => {}
        Err(store::StoreError::Conflict(_)) => return Err(key_already_connected()),
        Err(err) => return Err(err.into()),
    }
    if body.waive_ip_restriction {
        let detail = json!({ "exchange_account_id": id, "ip_restricted": permissions.ip_restricted });
        state
            .store
            .append_audit(&state.audit(Some(authed.user.id), "exchange_key.ip_restriction_waived", &client, detail))
            .await?;
    }
    state.send_user_mail(
        &authed.user,
        emails::exchange_key_added(&state.config, authed.user.email.as_str(), venue, name, &hint),
    );
    let record = state.store.exchange_account(authed.user.id, id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, axum::Json(account_json(&record))).into_response())
}

fn key_already_connected() -> ApiError {
    ApiError::Conflict {
        code: "api_key_already_connected",
        message: "This API key is already connected to Bulwark. Use one key per service: create a separate key on \
                  the exchange for this account.",
    }
}

/// `GET /api/v1/exchange-accounts`: the user's accounts, never a secret.
pub async fn list(State(state): State<AppState>, authed: Authed) -> Result<Response, ApiError> {
    let accounts = state.store.exchange_accounts(authed.user.id).await?;
    Ok(axum::Json(accounts.iter().map(account_json).collect::<Vec<_>>()).into_response())
}

pub(crate) async fn owned(state: &AppState, authed: &Authed, id: &str) -> Result<ExchangeAccountRecord, ApiError> {
    let id: ExchangeAccountId = id.parse().map_err(|_| ApiError::NotFound)?;
    state.store.exchange_account(authed.user.id, id).await?.ok_or(ApiError::NotFound)
}

/// `GET /api/v1/exchange-accounts/{id}`.
pub async fn show(State(state): State<AppState>, authed: Authed, Path(id): Path<String>) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    Ok(axum::Json(account_json(&account)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancesQuery {
    #[serde(default)]
    reveal: Option<bool>,
}

/// `GET /api/v1/exchange-accounts/{id}/balances`: amounts as strings, masked as `"***"` while the
/// user hides balances, unless `?reveal=true`.
pub async fn balances(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<BalancesQuery>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let exchange = keys::open_account(&state, &account)?;
    let balances = exchange.balances().await.map_err(|err| keys::venue_error(&err))?;
    let amounts = crate::api::shown::Amounts::new(&authed, query.reveal);
    let body: Vec<Value> = balances
        .into_iter()
        .map(|b| json!({ "asset": b.asset, "free": amounts.show(b.free), "locked": amounts.show(b.locked) }))
        .collect();
    Ok(axum::Json(body).into_response())
}

/// `POST /api/v1/exchange-accounts/{id}/recheck`: asks the venue again what the key may do; pauses
/// the account if it gained a forbidden permission or was revoked.
pub async fn recheck(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let checked = keys::check_and_record(&state, &account, Some(&client), &authed.user).await?;
    Ok(axum::Json(account_json(&checked)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[serde(default)]
    balances: Option<serde_json::Map<String, Value>>,
}

/// `POST /api/v1/exchange-accounts/{id}/reset`: a paper account starts over with new balances
/// (10,000 USDT unless given); its open orders are canceled. Its trade history stays.
pub async fn reset(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let Some(paper) = state.paper.as_ref().filter(|paper| paper.venue() == account.exchange) else {
        return Err(ApiError::Conflict { code: "not_paper", message: "Only a paper account can be reset." });
    };
    let balances = paper_balances(body.balances.as_ref())?;
    let credentials = keys::credentials_for(&state, &account)?;
    let canceled = paper.reset_account(credentials.as_ref(), &balances).await.map_err(|err| {
        tracing::warn!(error = %err, "the paper market refused a reset");
        invalid("balances", "The paper market refused these balances.")
    })?;
    let shown: serde_json::Map<String, Value> =
        balances.iter().map(|(asset, amount)| (asset.to_string(), json!(amount.normalize().to_string()))).collect();
    let detail = json!({ "exchange_account_id": account.id, "balances": shown, "canceled_orders": canceled });
    state.store.append_audit(&state.audit(Some(authed.user.id), "paper.reset", &client, detail)).await?;
    Ok(axum::Json(account_json(&account)).into_response())
}

/// `DELETE /api/v1/exchange-accounts/{id}` (*step-up*): deletes the account and its sealed secret.
pub async fn remove(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let detail = json!({
        "exchange_account_id": account.id, "exchange": account.exchange, "api_key_hint": api_key_hint(&account.api_key),
    });
    let audit = state.audit(Some(authed.user.id), "exchange_key.removed", &client, detail);
    if !state.store.delete_exchange_account(authed.user.id, account.id, &audit).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
