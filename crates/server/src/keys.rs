//! Exchange keys at rest and in use: the binding a sealed secret carries, the credentials that open
//! it only to sign one request, and the permission check shared by the API's re-check and the
//! daily background check.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{ExchangeAccountId, Timestamp, UserId};
use exchange::{Credentials, Exchange, ExchangeError, KeyKind, KeyPermissions, api_key_hint};
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{ExchangeAccountRecord, ExchangeAccountStatus, KeyCheck, StoredKeyPermissions, UserRecord};
use vault::envelope::{Binding, SecretPurpose};
use zeroize::Zeroizing;

use crate::ApiError;
use crate::emails;
use crate::extract::ClientInfo;
use crate::live_vault::LiveVault;
use crate::state::AppState;

/// How often a key's permissions are checked again without anyone asking (EX-1: every 24 h).
pub const RECHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// SHA-256 of the public API key: the binding's fingerprint and the "one key, one place" rule.
pub fn api_key_fingerprint(api_key: &str) -> [u8; 32] {
    Sha256::digest(api_key.as_bytes()).into()
}

pub fn purpose_of(kind: KeyKind) -> SecretPurpose {
    match kind {
        KeyKind::Hmac => SecretPurpose::ExchangeApiSecret,
        KeyKind::Ed25519 => SecretPurpose::ExchangePrivateKey,
    }
}

/// The associated data an exchange secret is sealed with (SEC-2): its purpose, owner, row, venue
/// and API key fingerprint.
pub fn binding(
    purpose: SecretPurpose,
    user: UserId,
    account: ExchangeAccountId,
    venue: &str,
    fingerprint: [u8; 32],
) -> Binding {
    Binding {
        purpose,
        user_id: user.to_string(),
        credential_id: account.to_string(),
        exchange: venue.to_owned(),
        api_key_fingerprint: fingerprint,
    }
}

pub fn stored_permissions(permissions: &KeyPermissions) -> StoredKeyPermissions {
    StoredKeyPermissions {
        spot_trading: permissions.spot_trading,
        withdrawals: permissions.withdrawals,
        transfers: permissions.internal_transfer || permissions.universal_transfer,
        ip_restricted: permissions.ip_restricted,
    }
}

/// A stored key: the public API key in the clear, the secret sealed. The secret is opened for one
/// signature at a time and zeroized when the signer drops it.
///
/// The blob read with the account may be rewrapped by a key rotation while this value lives; when
/// it names a KEK version that is gone, the current blob is read again from the store.
pub struct SealedCredentials {
    api_key: String,
    kind: KeyKind,
    binding: Binding,
    sealed: std::sync::Mutex<Vec<u8>>,
    account: (UserId, ExchangeAccountId),
    vault: Arc<LiveVault>,
    store: Arc<dyn store::Store>,
}

impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedCredentials")
            .field("api_key", &api_key_hint(&self.api_key))
            .field("kind", &self.kind)
            .field("credential", &self.binding.credential_id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Credentials for SealedCredentials {
    fn api_key(&self) -> &str {
        &self.api_key
    }

    fn kind(&self) -> KeyKind {
        self.kind
    }

    async fn secret(&self) -> Result<Zeroizing<Vec<u8>>, ExchangeError> {
        let unavailable = |err: vault::VaultError| ExchangeError::SecretUnavailable(err.to_string());
        let sealed = self.sealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match self.vault.open_with_reload(&self.binding, &sealed).await {
            Err(vault::VaultError::UnknownKeyVersion(_)) => {
                let (user, id) = self.account;
                let current = match self.store.exchange_account(user, id).await {
                    Ok(Some(account)) => account.secret_sealed,
                    Ok(None) => return Err(ExchangeError::SecretUnavailable("the account was removed".to_owned())),
                    Err(err) => return Err(ExchangeError::SecretUnavailable(err.to_string())),
                };
                let opened = self.vault.open_with_reload(&self.binding, &current).await.map_err(unavailable)?;
                *self.sealed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = current;
                Ok(opened)
            }
            other => other.map_err(unavailable),
        }
    }
}

/// The credentials of a stored account: the secret stays sealed until a signature needs it.
///
/// # Errors
/// `ApiError::Internal` when the row names a key type this node does not know.
pub fn credentials_for(state: &AppState, account: &ExchangeAccountRecord) -> Result<Arc<SealedCredentials>, ApiError> {
    let kind =
        KeyKind::parse(&account.key_kind).ok_or_else(|| ApiError::internal("unknown key type in a stored account"))?;
    Ok(Arc::new(SealedCredentials {
        api_key: account.api_key.clone(),
        kind,
        binding: binding(purpose_of(kind), account.user_id, account.id, &account.exchange, account.api_key_fingerprint),
        sealed: std::sync::Mutex::new(account.secret_sealed.clone()),
        account: (account.user_id, account.id),
        vault: Arc::clone(&state.vault),
        store: Arc::clone(&state.store),
    }))
}

/// The port for a stored account.
///
/// # Errors
/// `ApiError::Internal` when the row names a key type or venue this node does not know.
pub fn open_account(state: &AppState, account: &ExchangeAccountRecord) -> Result<Arc<dyn Exchange>, ApiError> {
    let credentials = credentials_for(state, account)?;
    state
        .venues
        .account(&account.exchange, credentials)
        .ok_or_else(|| ApiError::internal("a stored account names a venue this node does not serve"))
}

/// What to tell a user whose key could not be checked while connecting it.
pub fn connect_error(err: &ExchangeError, secret_field: &'static str) -> ApiError {
    match err {
        ExchangeError::BadSecret(_) => ApiError::InvalidInput {
            field: secret_field,
            message: "This is not a valid Ed25519 private key: paste the PKCS#8 PEM file's whole text.".to_owned(),
        },
        other => venue_error(other),
    }
}

/// What to tell a user when the venue could not be used for their account.
pub fn venue_error(err: &ExchangeError) -> ApiError {
    match err {
        err if err.is_key_rejected() => ApiError::InvalidApiKey,
        ExchangeError::SecretUnavailable(_) => ApiError::VaultSealed,
        _ => ApiError::ExchangeUnreachable,
    }
}

/// The audit client of work nobody asked for in a request (the daily check).
fn scheduled_client() -> ClientInfo {
    ClientInfo { ip: IpAddr::from([0, 0, 0, 0]), user_agent: "bulwark (scheduled key check)".to_owned() }
}

/// Asks the venue what the key may do now, records the answer and the account's resulting status,
/// and mails the user when the account is paused by it. A key that gained a forbidden permission
/// or that the venue no longer accepts pauses the account; a key that is fine again reactivates it.
///
/// # Errors
/// `ExchangeUnreachable` (nothing recorded) when the venue could not answer, or a store error.
pub async fn check_and_record(
    state: &AppState,
    account: &ExchangeAccountRecord,
    client: Option<&ClientInfo>,
    user: &UserRecord,
) -> Result<ExchangeAccountRecord, ApiError> {
    let exchange = open_account(state, account)?;
    let (permissions, reason) = match exchange.key_permissions().await {
        Ok(permissions) => {
            let refusal = permissions.refusal(!account.ip_restriction_waived);
            (stored_permissions(&permissions), refusal.map(|r| r.code()))
        }
        Err(err) if err.is_key_rejected() => (account.permissions, Some("key_rejected")),
        Err(err) => {
            tracing::warn!(exchange_account = %account.id, error = %err, "checking an exchange key failed");
            return Err(venue_error(&err));
        }
    };
    let status = if reason.is_some() { ExchangeAccountStatus::Paused } else { ExchangeAccountStatus::Active };
    let now = state.now();
    let check =
        KeyCheck { account: account.id, permissions, status, status_reason: reason.map(str::to_owned), at: now };
    let detail = json!({
        "exchange_account_id": account.id, "exchange": account.exchange, "api_key_hint": api_key_hint(&account.api_key),
        "status": status.as_str(), "reason": reason, "scheduled": client.is_none(),
    });
    let fallback = scheduled_client();
    let audit = state.audit(Some(account.user_id), "exchange_key.checked", client.unwrap_or(&fallback), detail);
    state.store.record_key_check(&check, &audit).await?;
    if status == ExchangeAccountStatus::Paused && account.status != ExchangeAccountStatus::Paused {
        let why = reason.unwrap_or("key_rejected");
        state.send_user_mail(
            user,
            emails::exchange_key_paused(&state.config, user.email.as_str(), &account.name, &account.exchange, why),
        );
    }
    state.store.exchange_account(account.user_id, account.id).await?.ok_or(ApiError::NotFound)
}

/// Checks every account not checked for [`RECHECK_EVERY`], a batch at a time. Run by the
/// housekeeping loop; with several nodes each may pick the same account, which only checks it
/// twice.
pub async fn recheck_due(state: &AppState) {
    let cutoff: Timestamp = state.now().minus(RECHECK_EVERY);
    let due = match state.store.exchange_accounts_due_for_check(cutoff, 50).await {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(error = %err, "listing exchange keys due for a check failed");
            return;
        }
    };
    for account in due {
        let user = match state.store.user_by_id(account.user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "loading the owner of an exchange key failed");
                continue;
            }
        };
        if let Err(err) = check_and_record(state, &account, None, &user).await {
            tracing::warn!(exchange_account = %account.id, error = %err, "the scheduled key check did not complete");
        }
    }
}
