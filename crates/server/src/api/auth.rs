//! `/api/v1/auth/*`: registration, email verification, sign-in and out, re-authentication and
//! passwords (AU-1..5, AU-9, SE-1..3).

use auth::{OpaqueToken, Password, PasswordHash, Verification};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Email, SessionId, UserId};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{
    LoginWrite, NewEmailToken, NewSession, NewUser, Registration, SecondFactorUse, StoreError, ThrottleRule,
    TokenPurpose, UserRecord,
};

use crate::api::account::me_json;
use crate::api::two_factor::{self, Throttle};
use crate::extract::{ApiJson, ClientInfo, MaybeAuthed, SecretInput};
use crate::session::{self, Authed};
use crate::state::AppState;
use crate::{ApiError, emails};

/// Throttle keys carry a hash of the email, not the address.
pub(crate) fn account_key(prefix: &str, email: &Email) -> String {
    let digest = Sha256::digest(email.canonical().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}:acct:{hex}")
}

fn ip_key(prefix: &str, client: &ClientInfo) -> String {
    format!("{prefix}:ip:{}", client.ip)
}

/// Refuses with 429 while any of `keys` is blocked.
pub(crate) async fn ensure_not_blocked(state: &AppState, keys: &[&str]) -> Result<(), ApiError> {
    let now = state.now();
    for key in keys {
        if let Some(until) = state.store.throttle_blocked_until(key, now).await? {
            return Err(if store::is_lock(until) { ApiError::Locked } else { ApiError::RateLimited(until.since(now)) });
        }
    }
    Ok(())
}

pub(crate) async fn hit(state: &AppState, key: &str, rule: &ThrottleRule) -> Result<(), ApiError> {
    state.store.throttle_hit(key, state.now(), rule).await?;
    Ok(())
}

/// Counts one mail against the recipient's `mail:acct` key. `false` when the recipient already had
/// their share: the request still gets its usual answer, the mail is just not sent.
pub(crate) async fn mail_budget_left(state: &AppState, recipient: &Email) -> Result<bool, ApiError> {
    let key = account_key("mail", recipient);
    if state.store.throttle_blocked_until(&key, state.now()).await?.is_some() {
        return Ok(false);
    }
    hit(state, &key, &state.config.throttles.mail_account).await?;
    Ok(true)
}

pub(crate) fn parse_email(raw: &str) -> Result<Email, ApiError> {
    Email::parse(raw).map_err(|e| ApiError::InvalidEmail(format!("{}{}", capitalize(&e.to_string()), ".")))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn check_new_password(
    state: &AppState,
    password: &Password,
    email: &Email,
    second_factor: bool,
) -> Result<(), ApiError> {
    state
        .config
        .password_policy
        .check(password, &[email.as_str(), email.local_part()], second_factor)
        .map_err(|weak| ApiError::WeakPassword { field: "password", reason: weak.reason })
}

fn new_token(state: &AppState, user: UserId, purpose: TokenPurpose) -> (OpaqueToken, NewEmailToken) {
    let token = OpaqueToken::generate(&*state.random);
    let now = state.now();
    let ttl = match purpose {
        TokenPurpose::VerifyEmail => state.config.verify_token_ttl,
        TokenPurpose::ResetPassword => state.config.reset_token_ttl,
    };
    let record = NewEmailToken {
        hash: *token.hash().as_bytes(),
        user_id: user,
        purpose,
        created_at: now,
        expires_at: now.plus(ttl),
    };
    (token, record)
}

#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    email: String,
    password: SecretInput,
}

/// `POST /api/v1/auth/register`. Answers the same for a new and a taken email (no enumeration):
/// both hash the password and send one mail. While the operator has registration closed, every
/// request gets the same 403 `registration_closed` before anything is read, looked up, hashed or
/// sent (and the store refuses the account too, should the setting change meanwhile).
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    if state.store.operator_settings().await?.registration == Registration::Closed {
        return Err(ApiError::RegistrationClosed);
    }
    let email = parse_email(&body.email)?;
    let password = Password::new(body.password.expose());
    check_new_password(&state, &password, &email, false)?;
    let ip_key = ip_key("mail", &client);
    ensure_not_blocked(&state, &[&ip_key]).await?;
    hit(&state, &ip_key, &state.config.throttles.mail_ip).await?;

    let hash = state.hashes.hash(password).await?;
    let user_id = UserId::from_random_bytes(state.random_16());
    let (token, token_record) = new_token(&state, user_id, TokenPurpose::VerifyEmail);
    let user =
        NewUser { id: user_id, email: email.clone(), password_phc: hash.as_phc().to_owned(), created_at: state.now() };
    let audit = state.audit(Some(user_id), "auth.registered", &client, json!({}));
    match state.store.create_user(&user, &token_record, &audit).await {
        Ok(operator) => {
            if operator {
                tracing::info!(user = %user_id, "account registered: the first on this install, so its operator");
            } else {
                tracing::info!(user = %user_id, "account registered");
            }
            state.send_mail(emails::verify_email(&state.config, email.as_str(), token.expose()));
        }
        Err(StoreError::Conflict("registration_closed")) => return Err(ApiError::RegistrationClosed),
        Err(StoreError::Conflict(_)) => {
            if let Some(owner) = state.store.user_by_email(&email.canonical()).await? {
                let audit = state.audit(Some(owner.id), "auth.register_attempt_existing", &client, json!({}));
                state.store.append_audit(&audit).await?;
                if mail_budget_left(&state, &owner.email).await? {
                    state.send_user_mail(&owner, emails::already_registered(&state.config, owner.email.as_str()));
                }
            }
        }
        Err(other) => return Err(other.into()),
    }
    Ok((StatusCode::CREATED, axum::Json(json!({ "status": "verification_sent" }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct TokenBody {
    token: SecretInput,
}

/// Consumes a verification token. Shared by the API route and the page behind the mailed link.
pub async fn verify_email_token(state: &AppState, client: &ClientInfo, raw: &str) -> Result<UserId, ApiError> {
    let token = OpaqueToken::parse(raw).map_err(|_| ApiError::InvalidToken)?;
    let audit = state.audit(None, "auth.email_verified", client, json!({}));
    state.store.verify_email(token.hash().as_bytes(), state.now(), &audit).await?.ok_or(ApiError::InvalidToken)
}

/// `POST /api/v1/auth/verify-email`.
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, ApiError> {
    verify_email_token(&state, &client, body.token.expose()).await?;
    Ok(axum::Json(json!({ "status": "verified" })).into_response())
}

/// `POST /api/v1/auth/verify-email/resend`: a fresh link for the signed-in, unverified user.
pub async fn resend_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
) -> Result<Response, ApiError> {
    if authed.user.email_verified_at.is_some() {
        return Ok(axum::Json(json!({ "status": "already_verified" })).into_response());
    }
    let key = account_key("mail", &authed.user.email);
    ensure_not_blocked(&state, &[&key]).await?;
    hit(&state, &key, &state.config.throttles.mail_account).await?;
    let (token, record) = new_token(&state, authed.user.id, TokenPurpose::VerifyEmail);
    let audit = state.audit(Some(authed.user.id), "auth.verification_resent", &client, json!({}));
    state.store.insert_email_token(&record, &audit).await?;
    state.send_user_mail(&authed.user, emails::verify_email(&state.config, authed.user.email.as_str(), token.expose()));
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "status": "verification_sent" }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginBody {
    email: String,
    password: SecretInput,
    #[serde(default)]
    totp_code: Option<SecretInput>,
    #[serde(default)]
    backup_code: Option<SecretInput>,
}

/// `POST /api/v1/auth/login`. Unknown email and wrong password give the same answer after the
/// same amount of work (AU-4); failures count per account and per client address.
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let email = parse_email(&body.email)?;
    let password = Password::new(body.password.expose());
    let account_key = account_key("login", &email);
    let ip_key = ip_key("login", &client);
    ensure_not_blocked(&state, &[&ip_key, &account_key]).await?;

    let user = state.store.user_by_email(&email.canonical()).await?;
    let verification = match &user {
        Some(user) => {
            state.hashes.verify(password.duplicate(), PasswordHash::from_phc(user.password_phc.clone())).await?
        }
        None => state.hashes.verify_decoy(password.duplicate()).await?,
    };
    let (user, needs_rehash) = match (user, verification) {
        (Some(user), Verification::Valid { needs_rehash }) => (user, needs_rehash),
        (user, _) => {
            let throttles = &state.config.throttles;
            hit(&state, &account_key, &throttles.login_account).await?;
            hit(&state, &ip_key, &throttles.login_ip).await?;
            let audit = state.audit(
                user.as_ref().map(|u| u.id),
                "auth.login_failed",
                &client,
                json!({ "reason": "invalid_credentials" }),
            );
            state.store.append_audit(&audit).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    // Password first, then the second factor (spec/api.md): 401 `second_factor_required` tells
    // the client to ask for a code and send both again.
    let factor = two_factor::required_factor(
        &state,
        &client,
        &user,
        body.totp_code.as_ref(),
        body.backup_code.as_ref(),
        Throttle::SignIn,
    )
    .await?;
    let upgraded = if needs_rehash { Some(state.hashes.hash(password).await?.as_phc().to_owned()) } else { None };
    start_session(&state, &client, &headers, user, upgraded, factor, vec![account_key]).await
}

/// Signs `user` in: a new session and cookie, replacing the browser's previous session (token
/// rotation, SE-1), with a mail when the device or address is new (AU-9).
async fn start_session(
    state: &AppState,
    client: &ClientInfo,
    headers: &HeaderMap,
    user: UserRecord,
    upgraded_password_phc: Option<String>,
    second_factor: Option<SecondFactorUse>,
    clear_throttles: Vec<String>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let ip = client.ip.to_string();
    let (first_sign_in, known_device) = {
        let recent = state.store.audit_for_user(user.id, None, 200).await?;
        let earlier: Vec<_> = recent.iter().filter(|a| a.kind == "auth.login_succeeded").collect();
        (earlier.is_empty(), earlier.iter().any(|a| a.ip == ip && a.user_agent == client.user_agent))
    };
    let token = OpaqueToken::generate(&*state.random);
    let session_id = SessionId::from_random_bytes(state.random_16());
    let login = LoginWrite {
        session: NewSession {
            id: session_id,
            token_hash: *token.hash().as_bytes(),
            user_id: user.id,
            created_at: now,
            expires_at: now.plus(state.config.session_absolute),
            ip: client.ip.to_string(),
            user_agent: client.user_agent.clone(),
        },
        replaces: session::token_from_headers(headers).map(|old| *old.hash().as_bytes()),
        upgraded_password_phc,
        clear_throttles,
        second_factor,
        audit: state.audit(
            Some(user.id),
            "auth.login_succeeded",
            client,
            json!({ "session_id": session_id, "second_factor": factor_name(second_factor) }),
        ),
    };
    if !state.store.record_login(&login).await? {
        // The same code won a concurrent sign-in first: a replay (AU-6).
        return Err(two_factor::second_factor_failed(state, client, &user, &Throttle::SignIn).await?);
    }
    if let Some(factor) = second_factor {
        two_factor::after_spend(state, client, &user, factor).await?;
    }
    if !known_device && !first_sign_in {
        state.send_user_mail(
            &user,
            emails::new_sign_in(
                &state.config,
                user.email.as_str(),
                &client.ip.to_string(),
                &client.user_agent,
                &now.to_rfc3339(),
            ),
        );
    }
    let mut user = user;
    if let Some(phc) = login.upgraded_password_phc {
        user.password_phc = phc;
    }
    let mut response = axum::Json(json!({ "user": me_json(&user) })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&token, state.config.session_absolute));
    Ok(response)
}

fn factor_name(factor: Option<SecondFactorUse>) -> Option<&'static str> {
    factor.map(|f| match f {
        SecondFactorUse::TotpStep(_) => "totp",
        SecondFactorUse::BackupCode(_) => "backup_code",
    })
}

/// `POST /api/v1/auth/logout`: ends this session server-side. Idempotent.
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    MaybeAuthed(authed): MaybeAuthed,
) -> Result<Response, ApiError> {
    if let Some(authed) = authed {
        let audit =
            state.audit(Some(authed.user.id), "auth.logout", &client, json!({ "session_id": authed.session.id }));
        state.store.delete_session(authed.user.id, authed.session.id, &audit).await?;
    }
    Ok(cleared(StatusCode::NO_CONTENT))
}

/// `POST /api/v1/auth/logout-all`: ends every session of the user, this one included.
pub async fn logout_all(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
) -> Result<Response, ApiError> {
    let audit = state.audit(Some(authed.user.id), "auth.logout_all", &client, json!({}));
    state.store.delete_sessions(authed.user.id, None, &audit).await?;
    Ok(cleared(StatusCode::NO_CONTENT))
}

fn cleared(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session::clear_cookie());
    response
}

#[derive(Debug, Deserialize)]
pub struct ReauthBody {
    password: SecretInput,
    #[serde(default)]
    totp_code: Option<SecretInput>,
    #[serde(default)]
    backup_code: Option<SecretInput>,
}

/// Checks the signed-in user's password, counting failures against the account like sign-in.
pub(crate) async fn confirm_password(
    state: &AppState,
    client: &ClientInfo,
    authed: &Authed,
    raw: &str,
) -> Result<(), ApiError> {
    let key = account_key("login", &authed.user.email);
    ensure_not_blocked(state, &[&key]).await?;
    let stored = PasswordHash::from_phc(authed.user.password_phc.clone());
    match state.hashes.verify(Password::new(raw), stored).await? {
        Verification::Valid { .. } => Ok(()),
        Verification::Invalid => {
            hit(state, &key, &state.config.throttles.login_account).await?;
            let audit = state.audit(Some(authed.user.id), "auth.password_confirmation_failed", client, json!({}));
            state.store.append_audit(&audit).await?;
            Err(ApiError::InvalidCredentials)
        }
    }
}

/// `POST /api/v1/auth/reauth`: marks the session recently authenticated and rotates its token.
pub async fn reauth(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    ApiJson(body): ApiJson<ReauthBody>,
) -> Result<Response, ApiError> {
    confirm_password(&state, &client, &authed, body.password.expose()).await?;
    // Step-up needs the second factor too (AU-8).
    let codes = (body.totp_code.as_ref(), body.backup_code.as_ref());
    two_factor::require_and_spend(&state, &client, &authed.user, codes, Throttle::SignIn).await?;
    let token = OpaqueToken::generate(&*state.random);
    let audit =
        state.audit(Some(authed.user.id), "auth.reauthenticated", &client, json!({ "session_id": authed.session.id }));
    state.store.reauthenticate_session(authed.session.id, token.hash().as_bytes(), state.now(), &audit).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let remaining = authed.session.expires_at.since(state.now());
    response.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&token, remaining));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct ChangePasswordBody {
    current_password: SecretInput,
    new_password: SecretInput,
}

/// `POST /api/v1/auth/password/change`: every other session ends; a notice goes by mail.
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    ApiJson(body): ApiJson<ChangePasswordBody>,
) -> Result<Response, ApiError> {
    let new_password = Password::new(body.new_password.expose());
    check_new_password(&state, &new_password, &authed.user.email, authed.user.totp_enabled).map_err(on_new_password)?;
    confirm_password(&state, &client, &authed, body.current_password.expose()).await?;
    let hash = state.hashes.hash(new_password).await?;
    let audit = state.audit(Some(authed.user.id), "auth.password_changed", &client, json!({}));
    state.store.change_password(authed.user.id, hash.as_phc(), authed.session.id, &audit).await?;
    state.send_user_mail(
        &authed.user,
        emails::password_changed(&state.config, authed.user.email.as_str(), "changed", &client.ip.to_string()),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A refused new password is `weak_password`, naming the field it came in.
fn on_new_password(err: ApiError) -> ApiError {
    match err {
        ApiError::WeakPassword { reason, .. } => ApiError::WeakPassword { field: "new_password", reason },
        other => other,
    }
}

#[derive(Debug, Deserialize)]
pub struct ResetRequestBody {
    email: String,
}

/// `POST /api/v1/auth/password/reset-request`: 202 whatever the email, so it reveals nothing.
pub async fn reset_request(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> Result<Response, ApiError> {
    let email = parse_email(&body.email)?;
    let ip_key = ip_key("mail", &client);
    ensure_not_blocked(&state, &[&ip_key]).await?;
    hit(&state, &ip_key, &state.config.throttles.mail_ip).await?;
    if let Some(user) = state.store.user_by_email(&email.canonical()).await?
        && mail_budget_left(&state, &user.email).await?
    {
        let (token, record) = new_token(&state, user.id, TokenPurpose::ResetPassword);
        let audit = state.audit(Some(user.id), "auth.password_reset_requested", &client, json!({}));
        state.store.insert_email_token(&record, &audit).await?;
        state.send_user_mail(&user, emails::reset_password(&state.config, user.email.as_str(), token.expose()));
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "status": "reset_mail_sent_if_account_exists" }))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ResetBody {
    token: SecretInput,
    new_password: SecretInput,
    #[serde(default)]
    totp_code: Option<SecretInput>,
    #[serde(default)]
    backup_code: Option<SecretInput>,
}

/// `POST /api/v1/auth/password/reset`: sets the password and ends every session (AU-5). A reset
/// never bypasses a second factor.
pub async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Response, ApiError> {
    let token = OpaqueToken::parse(body.token.expose()).map_err(|_| ApiError::InvalidToken)?;
    let now = state.now();
    let user_id = state.store.reset_token_user(token.hash().as_bytes(), now).await?.ok_or(ApiError::InvalidToken)?;
    let user = state.store.user_by_id(user_id).await?.ok_or(ApiError::InvalidToken)?;
    let new_password = Password::new(body.new_password.expose());
    check_new_password(&state, &new_password, &user.email, user.totp_enabled).map_err(on_new_password)?;
    // A reset never bypasses the second factor: the mailbox alone does not open the account.
    let codes = (body.totp_code.as_ref(), body.backup_code.as_ref());
    two_factor::require_and_spend(&state, &client, &user, codes, Throttle::Reset).await?;
    let hash = state.hashes.hash(new_password).await?;
    let audit = state.audit(Some(user.id), "auth.password_reset", &client, json!({}));
    state
        .store
        .reset_password(token.hash().as_bytes(), now, hash.as_phc(), &audit)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    // Proving the mailbox unlocks password sign-in after too many failures (AU-4).
    state.store.throttle_clear(&account_key("login", &user.email)).await?;
    state.store.throttle_clear(&Throttle::Reset.key(&user)).await?;
    state.send_user_mail(
        &user,
        emails::password_changed(
            &state.config,
            user.email.as_str(),
            "reset with a mailed link",
            &client.ip.to_string(),
        ),
    );
    Ok(cleared(StatusCode::NO_CONTENT))
}
