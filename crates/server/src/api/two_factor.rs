//! `/api/v1/2fa/*`: TOTP setup, confirmation and removal, backup codes (AU-6, AU-7, AU-8), and
//! the second-factor check shared by sign-in, re-authentication and password reset.

use auth::Password;
use auth::totp::{self, TotpCode, TotpSecret};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use store::{BackupCodeRecord, EnableTotp, SealedBlob, SecondFactorUse, UserRecord};
use vault::VaultError;
use vault::envelope::Binding;
use zeroize::Zeroizing;

use crate::api::auth::{account_key, confirm_password, ensure_not_blocked, hit};
use crate::extract::{ApiJson, ClientInfo, SecretInput, StepUp};
use crate::live_vault::SealError;
use crate::session::Authed;
use crate::state::AppState;
use crate::{ApiError, emails};

const ISSUER: &str = "Bulwark";

fn binding(user: &UserRecord) -> Binding {
    Binding::totp_seed(&user.id.to_string())
}

async fn seal(state: &AppState, user: &UserRecord, secret: &TotpSecret) -> Result<SealedBlob, ApiError> {
    state.vault.seal(&binding(user), secret.expose()).await.map_err(|err| match err {
        SealError::Vault(VaultError::Sealed) => ApiError::VaultSealed,
        other => ApiError::internal(other),
    })
}

/// Opens a seed; a seed sealed under a KEK version this node has not loaded yet (a rotation on
/// another node) reloads the ring and opens (SEC-4).
async fn open(state: &AppState, user: &UserRecord, sealed: &[u8]) -> Result<TotpSecret, ApiError> {
    let seed = state.vault.open_with_reload(&binding(user), sealed).await.map_err(|err| match err {
        VaultError::Sealed => ApiError::VaultSealed,
        other => ApiError::internal(format!("opening the TOTP seed of {}: {other}", user.id)),
    })?;
    Ok(TotpSecret::from_bytes(seed))
}

fn unix_secs(state: &AppState) -> u64 {
    u64::try_from(state.now().as_unix_millis() / 1000).unwrap_or(0)
}

/// A QR code of `text` as a standalone SVG document (no XML prolog), drawn by us.
fn qr_svg(text: &str) -> Result<String, ApiError> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(ApiError::internal)?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").ok_or_else(|| ApiError::internal("QR renderer gave no <svg>"))?;
    Ok(svg[start..].to_owned())
}

/// What a user typed as a second factor.
enum Factor {
    Totp(TotpCode),
    Backup(Zeroizing<String>),
}

/// Parses the code fields of a request: `totp_code` (six digits) or `backup_code`
/// (`xxxxx-xxxxx`). A malformed code is 422 and never counts as anything.
fn parse_factor(totp_code: Option<&str>, backup_code: Option<&str>) -> Result<Option<Factor>, ApiError> {
    fn present(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.trim().is_empty())
    }
    if let Some(raw) = present(totp_code) {
        return TotpCode::parse(raw).map(|c| Some(Factor::Totp(c))).map_err(|_| ApiError::InvalidInput {
            field: "totp_code",
            message: "The code is the six digits your authenticator app shows.".to_owned(),
        });
    }
    if let Some(raw) = present(backup_code) {
        return totp::normalize_backup_code(raw).map(|c| Some(Factor::Backup(c))).ok_or(ApiError::InvalidInput {
            field: "backup_code",
            message: "A backup code looks like abcde-23456.".to_owned(),
        });
    }
    Ok(None)
}

/// A single `code` field that may be either kind (disabling two-factor sign-in).
fn parse_any_code(raw: &str) -> Result<Factor, ApiError> {
    if let Ok(code) = TotpCode::parse(raw) {
        return Ok(Factor::Totp(code));
    }
    totp::normalize_backup_code(raw).map(Factor::Backup).ok_or(ApiError::InvalidInput {
        field: "code",
        message: "Enter the six digits from your authenticator app or a backup code (abcde-23456).".to_owned(),
    })
}

/// Checks a second factor of `user` without spending it. A wrong code counts against the
/// account like a wrong password and is audited; the caller spends the returned factor (in the
/// same transaction as the sign-in, or with `spend_second_factor`).
async fn check(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRecord,
    factor: Factor,
    throttle: &Throttle,
) -> Result<SecondFactorUse, ApiError> {
    let matched = match factor {
        Factor::Totp(code) => {
            let sealed = user.totp_seed_sealed.as_deref().ok_or_else(|| ApiError::internal("2FA on without a seed"))?;
            let secret = open(state, user, sealed).await?;
            secret.verify(&code, unix_secs(state), user.totp_last_step).map(SecondFactorUse::TotpStep)
        }
        Factor::Backup(code) => {
            let stored = state.store.unused_backup_codes(user.id).await?;
            state.hashes.find_match(Password::new(&code), stored).await?.map(SecondFactorUse::BackupCode)
        }
    };
    match matched {
        Some(used) => Ok(used),
        None => Err(second_factor_failed(state, client, user, throttle).await?),
    }
}

/// Which throttle key a wrong code counts against. Sign-in, re-authentication and the 2FA
/// routes share the account's sign-in key with the password, so guesses of either add up; a
/// password reset has its own key without the hard lock, because a reset is how a locked
/// account is unlocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    SignIn,
    Reset,
}

impl Throttle {
    pub fn key(self, user: &UserRecord) -> String {
        match self {
            Throttle::SignIn => account_key("login", &user.email),
            Throttle::Reset => account_key("reset", &user.email),
        }
    }

    pub fn rule(self, state: &AppState) -> store::ThrottleRule {
        let rule = state.config.throttles.login_account.clone();
        match self {
            Throttle::SignIn => rule,
            Throttle::Reset => store::ThrottleRule { lock_after: None, ..rule },
        }
    }
}

/// Counts and audits a wrong or replayed code; returns the error to answer with.
pub async fn second_factor_failed(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRecord,
    throttle: &Throttle,
) -> Result<ApiError, ApiError> {
    hit(state, &throttle.key(user), &throttle.rule(state)).await?;
    let audit = state.audit(Some(user.id), "auth.second_factor_failed", client, json!({}));
    state.store.append_audit(&audit).await?;
    Ok(ApiError::InvalidSecondFactor)
}

/// The second factor a request must carry when `user` has two-factor sign-in on: `None` when it
/// is off, 401 `second_factor_required` when no code came, 422 for a malformed one, 401
/// `invalid_second_factor` for a wrong one.
pub async fn required_factor(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRecord,
    totp_code: Option<&SecretInput>,
    backup_code: Option<&SecretInput>,
    throttle: Throttle,
) -> Result<Option<SecondFactorUse>, ApiError> {
    if !user.totp_enabled {
        return Ok(None);
    }
    let factor = parse_factor(totp_code.map(SecretInput::expose), backup_code.map(SecretInput::expose))?
        .ok_or(ApiError::SecondFactorRequired)?;
    ensure_not_blocked(state, &[&throttle.key(user)]).await?;
    check(state, client, user, factor, &throttle).await.map(Some)
}

/// Outside a sign-in (re-authentication, password reset): requires the second factor when
/// two-factor sign-in is on, and spends it. `codes` are the request's `totp_code` and `backup_code`.
pub async fn require_and_spend(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRecord,
    codes: (Option<&SecretInput>, Option<&SecretInput>),
    throttle: Throttle,
) -> Result<(), ApiError> {
    match required_factor(state, client, user, codes.0, codes.1, throttle).await? {
        Some(factor) => spend(state, client, user, factor, throttle).await,
        None => Ok(()),
    }
}

/// Spends `factor` outside a sign-in; a replay that slipped between check and spend is refused.
pub async fn spend(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRecord,
    factor: SecondFactorUse,
    throttle: Throttle,
) -> Result<(), ApiError> {
    let kind = match factor {
        SecondFactorUse::TotpStep(_) => "totp",
        SecondFactorUse::BackupCode(_) => "backup_code",
    };
    let audit = state.audit(Some(user.id), "auth.second_factor_used", client, json!({ "factor": kind }));
    if !state.store.spend_second_factor(user.id, factor, state.now(), &audit).await? {
        return Err(second_factor_failed(state, client, user, &throttle).await?);
    }
    after_spend(state, client, user, factor).await
}

/// After a backup code is spent: a notice by mail with how many are left (AU-9).
pub async fn after_spend(
    state: &AppState,
    client: &ClientInfo,
    user: &UserRecord,
    factor: SecondFactorUse,
) -> Result<(), ApiError> {
    if let SecondFactorUse::BackupCode(_) = factor {
        let left = state.store.unused_backup_codes(user.id).await?.len();
        state.send_user_mail(
            user,
            emails::backup_code_used(&state.config, user.email.as_str(), &client.ip.to_string(), left),
        );
    }
    Ok(())
}

/// Ten fresh backup codes: the plain codes for the user (shown once) and their Argon2id hashes.
async fn new_backup_codes(state: &AppState) -> Result<(Vec<Zeroizing<String>>, Vec<BackupCodeRecord>), ApiError> {
    let codes = totp::generate_backup_codes(&*state.random);
    let passwords: Vec<Password> =
        codes.iter().filter_map(|c| totp::normalize_backup_code(c)).map(|normal| Password::new(&normal)).collect();
    let hashes = state.hashes.hash_many(passwords).await?;
    let records = hashes
        .into_iter()
        .map(|hash| BackupCodeRecord {
            id: domain::BackupCodeId::from_random_bytes(state.random_16()),
            phc: hash.as_phc().to_owned(),
        })
        .collect();
    Ok((codes, records))
}

fn codes_json(codes: &[Zeroizing<String>]) -> serde_json::Value {
    json!({ "backup_codes": codes.iter().map(|c| c.as_str()).collect::<Vec<_>>() })
}

/// `POST /api/v1/2fa/totp/setup` (step-up): a fresh seed, awaiting confirmation. Calling it
/// again before confirming replaces the pending seed.
pub async fn setup(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
) -> Result<Response, ApiError> {
    let user = &authed.user;
    if user.totp_enabled {
        return Err(ApiError::AlreadyEnabled);
    }
    let secret = TotpSecret::generate(&*state.random);
    let sealed = seal(&state, user, &secret).await?;
    let audit = state.audit(Some(user.id), "2fa.setup_started", &client, json!({}));
    if !state.store.begin_totp_setup(user.id, &sealed, state.now(), &audit).await? {
        return Err(ApiError::AlreadyEnabled);
    }
    let uri = secret.otpauth_uri(ISSUER, user.email.as_str());
    let svg = qr_svg(&uri)?;
    Ok(axum::Json(json!({
        "secret": secret.to_base32().as_str(),
        "otpauth_uri": uri.as_str(),
        "qr_svg": svg,
        "expires_in_seconds": state.config.totp_setup_ttl.as_secs(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    code: SecretInput,
}

/// `POST /api/v1/2fa/totp/confirm`: a valid code from the pending seed turns two-factor sign-in
/// on, ends the other sessions and returns the backup codes, once.
pub async fn confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Response, ApiError> {
    let user = &authed.user;
    let code = TotpCode::parse(body.code.expose()).map_err(|_| ApiError::InvalidInput {
        field: "code",
        message: "The code is the six digits your authenticator app shows.".to_owned(),
    })?;
    if user.totp_enabled {
        return Err(ApiError::AlreadyEnabled);
    }
    let now = state.now();
    let Some((sealed, started)) =
        user.totp_pending.clone().filter(|(_, at)| now < at.plus(state.config.totp_setup_ttl))
    else {
        return Err(ApiError::Conflict {
            code: "setup_required",
            message: "Start the setup again: there is no pending two-factor setup, or it expired.",
        });
    };
    ensure_not_blocked(&state, &[&Throttle::SignIn.key(user)]).await?;
    let secret = open(&state, user, &sealed).await?;
    let Some(step) = secret.verify(&code, unix_secs(&state), None) else {
        return Err(second_factor_failed(&state, &client, user, &Throttle::SignIn).await?);
    };
    let (codes, records) = new_backup_codes(&state).await?;
    let enable = EnableTotp {
        user: user.id,
        sealed_seed: sealed,
        step,
        backup_codes: records,
        keep_session: authed.session.id,
        now,
        audit: state.audit(
            Some(user.id),
            "2fa.enabled",
            &client,
            json!({ "setup_started_at": started, "backup_codes": codes.len() }),
        ),
    };
    if !state.store.enable_totp(&enable).await? {
        return Err(ApiError::AlreadyEnabled);
    }
    state.send_user_mail(user, emails::two_factor_enabled(&state.config, user.email.as_str(), &client.ip.to_string()));
    Ok(axum::Json(codes_json(&codes)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    password: SecretInput,
    code: SecretInput,
}

fn not_enabled() -> ApiError {
    ApiError::Conflict { code: "not_enabled", message: "Two-factor sign-in is not on." }
}

/// `POST /api/v1/2fa/totp/disable` (step-up): needs the password and a current code (or a
/// backup code); ends the other sessions and tells the user by mail.
pub async fn disable(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<Response, ApiError> {
    let user = &authed.user;
    let factor = parse_any_code(body.code.expose())?;
    if !user.totp_enabled {
        return Err(not_enabled());
    }
    confirm_password(&state, &client, &authed, body.password.expose()).await?;
    let used = check(&state, &client, user, factor, &Throttle::SignIn).await?;
    spend(&state, &client, user, used, Throttle::SignIn).await?;
    let audit = state.audit(Some(user.id), "2fa.disabled", &client, json!({}));
    if !state.store.disable_totp(user.id, authed.session.id, &audit).await? {
        return Err(not_enabled());
    }
    state.send_user_mail(user, emails::two_factor_disabled(&state.config, user.email.as_str(), &client.ip.to_string()));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/2fa/backup-codes/regenerate` (step-up): ten new codes; the old ones stop working.
pub async fn regenerate_backup_codes(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
) -> Result<Response, ApiError> {
    let user = &authed.user;
    if !user.totp_enabled {
        return Err(not_enabled());
    }
    let (codes, records) = new_backup_codes(&state).await?;
    let audit =
        state.audit(Some(user.id), "2fa.backup_codes_regenerated", &client, json!({ "backup_codes": codes.len() }));
    if !state.store.replace_backup_codes(user.id, &records, state.now(), &audit).await? {
        return Err(not_enabled());
    }
    state.send_user_mail(
        user,
        emails::backup_codes_regenerated(&state.config, user.email.as_str(), &client.ip.to_string()),
    );
    Ok(axum::Json(codes_json(&codes)).into_response())
}

/// `GET /api/v1/2fa/status`: whether two-factor sign-in is on and how many backup codes are left.
pub async fn status(State(state): State<AppState>, authed: Authed) -> Result<Response, ApiError> {
    let left = if authed.user.totp_enabled { state.store.unused_backup_codes(authed.user.id).await?.len() } else { 0 };
    Ok(axum::Json(json!({ "totp_enabled": authed.user.totp_enabled, "backup_codes_left": left })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_document() {
        let svg = qr_svg("otpauth://totp/Bulwark:a%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Bulwark").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn codes_are_parsed_strictly() {
        assert!(matches!(parse_factor(Some("123 456"), None), Ok(Some(Factor::Totp(_)))));
        assert!(matches!(parse_factor(None, Some("ABCDE-23456")), Ok(Some(Factor::Backup(_)))));
        assert!(matches!(parse_factor(Some(""), Some(" ")), Ok(None)));
        for bad in ["12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert!(
                matches!(parse_factor(Some(bad), None), Err(ApiError::InvalidInput { field: "totp_code", .. })),
                "{bad}"
            );
        }
        assert!(matches!(parse_factor(None, Some("abcde-2345")), Err(ApiError::InvalidInput { .. })));
        assert!(matches!(parse_any_code("000000"), Ok(Factor::Totp(_))));
        assert!(matches!(parse_any_code("abcde-23456"), Ok(Factor::Backup(_))));
        assert!(matches!(parse_any_code("abc"), Err(ApiError::InvalidInput { field: "code", .. })));
    }
}
