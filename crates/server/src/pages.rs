//! Server-rendered pages. Each page is an askama template; every dynamic value is HTML-escaped by
//! askama, and the pages carry no inline script (the CSP forbids it): `assets/app.js` drives the
//! forms through the JSON API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use domain::{BotId, DealId, ExchangeAccountId};
use serde::Deserialize;
use store::{ExchangeAccountStatus, Registration, UserRecord};

use crate::api::account::live_sessions;
use crate::extract::{ClientInfo, MaybeAuthed};
use crate::state::AppState;
use crate::{ApiError, api};

fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => ApiError::internal(format!("template: {err}")).into_response(),
    }
}

/// The signed-in user as the shared layout (`base.html`) shows them: the header with the balance
/// toggle, and the step-up dialog, which asks for a code too when two-factor sign-in is on.
struct Viewer<'a> {
    email: &'a str,
    totp_enabled: bool,
    hide_balances: bool,
}

impl<'a> Viewer<'a> {
    fn of(user: &'a UserRecord) -> Viewer<'a> {
        Viewer { email: user.email.as_str(), totp_enabled: user.totp_enabled, hide_balances: user.hide_balances }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    /// The operator closed registration: the page says so instead of showing the form.
    closed: bool,
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    token: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    tone: &'a str,
    heading: &'a str,
    body: &'a str,
    action: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    email: &'a str,
    email_verified: bool,
    totp_enabled: bool,
    created_at: String,
}

struct SessionRow {
    id: String,
    /// "Firefox 140 on Windows", with the raw string kept for the tooltip.
    browser: String,
    user_agent: String,
    ip: String,
    created_at: String,
    last_seen_at: String,
    current: bool,
}

struct EventRow {
    at: String,
    label: String,
    ip: String,
    browser: String,
    user_agent: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    sessions: Vec<SessionRow>,
    events: Vec<EventRow>,
    totp_enabled: bool,
    backup_codes_left: usize,
    /// Empty when none is set.
    anti_phishing_code: &'a str,
    email: &'a str,
    /// The user is the install's operator: the page has the "Operator" section.
    operator: bool,
    /// The operator's registration setting (shown to the operator only).
    registration_closed: bool,
}

/// One line of the key history on the exchange-accounts page.
struct KeyEventRow {
    at: String,
    label: String,
    /// "Binance …abcd"; empty when the record names no key.
    key: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "exchange_accounts.html")]
struct ExchangeAccountsPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    email: &'a str,
    email_verified: bool,
    key_events: Vec<KeyEventRow>,
    pause_reasons: &'a [(&'a str, &'a str)],
    /// The venue name paper accounts are listed under (`paper`).
    paper_venue: &'a str,
    /// Whether this server runs a paper market in which paper accounts can be opened.
    paper_market: bool,
}

#[derive(Template)]
#[template(path = "exchange_account.html")]
struct ExchangeAccountPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    id: String,
    name: &'a str,
    venue: &'a str,
    /// A paper account in this server's paper market: the trade panel is offered.
    paper: bool,
    /// A paper account whose market is off on this server.
    paper_off: bool,
    /// Why the account is paused, in words; `None` while it is active.
    paused: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "bots.html")]
struct BotsPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
}

#[derive(Template)]
#[template(path = "bot.html")]
struct BotPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    id: String,
    name: &'a str,
}

#[derive(Template)]
#[template(path = "deals.html")]
struct DealsPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    statuses: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "deal.html")]
struct DealPage<'a> {
    viewer: Option<Viewer<'a>>,
    active: &'a str,
    id: String,
    /// "BTC / USDT".
    market: String,
    bot_id: String,
    bot_name: String,
}

fn message(status: StatusCode, tone: &str, heading: &str, body: &str, action: Option<(&str, &str)>) -> Response {
    render(&MessagePage { viewer: None, active: "", tone, heading, body, action }, status)
}

/// `GET /`: the sign-in page, or the dashboard for a signed-in user.
pub async fn index(MaybeAuthed(authed): MaybeAuthed) -> Response {
    if authed.is_some() {
        return Redirect::to("/dashboard").into_response();
    }
    render(&IndexPage { viewer: None, active: "" }, StatusCode::OK)
}

/// `GET /register`: the form, or a note that the operator closed registration.
pub async fn register(State(state): State<AppState>) -> Result<Response, ApiError> {
    let closed = state.store.operator_settings().await?.registration == Registration::Closed;
    Ok(render(&RegisterPage { viewer: None, active: "", closed }, StatusCode::OK))
}

pub async fn check_email() -> Response {
    message(
        StatusCode::OK,
        "",
        "Check your mail",
        "We sent a confirmation link to the address you gave. Open it to confirm the address, then sign in. The link works once and expires in 24 hours.",
        Some(("/", "Go to sign in")),
    )
}

pub async fn forgot_password() -> Response {
    render(&ForgotPage { viewer: None, active: "" }, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// `GET /verify-email?token=T`: the mailed link. 200 when the address is now confirmed, 400 when
/// the link is unknown, used or expired.
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    Query(query): Query<TokenQuery>,
) -> Response {
    let raw = query.token.unwrap_or_default();
    match api::auth::verify_email_token(&state, &client, &raw).await {
        Ok(_) => message(
            StatusCode::OK,
            "",
            "Email confirmed",
            "Thank you. Your address is confirmed and your account is ready.",
            Some(("/", "Continue")),
        ),
        Err(ApiError::InvalidToken) => message(
            StatusCode::BAD_REQUEST,
            "error",
            "This link does not work",
            "It is unknown, was already used, or has expired. Sign in and ask for a new confirmation link from the dashboard.",
            Some(("/", "Go to sign in")),
        ),
        Err(other) => other.into_response(),
    }
}

/// `GET /confirm-email-change?token=T`: the link mailed to a new address. Opening it is the
/// confirmation (single use, sent only to that address).
pub async fn confirm_email_change(
    State(state): State<AppState>,
    client: ClientInfo,
    MaybeAuthed(authed): MaybeAuthed,
    Query(query): Query<TokenQuery>,
) -> Response {
    let raw = query.token.unwrap_or_default();
    match api::account::confirm_email_change_token(&state, &client, &raw, authed.as_ref()).await {
        Ok(_) => message(
            StatusCode::OK,
            "",
            "Email changed",
            "This address now signs in to your Bulwark account. Other sessions were signed out, and the old address got a notice.",
            Some(("/", "Continue")),
        ),
        Err(ApiError::InvalidToken) => message(
            StatusCode::BAD_REQUEST,
            "error",
            "This link does not work",
            "It is unknown, was already used, or has expired. Sign in and ask for the change again under Security.",
            Some(("/", "Go to sign in")),
        ),
        Err(ApiError::Conflict { message: text, .. }) => {
            message(StatusCode::CONFLICT, "error", "The email was not changed", text, Some(("/", "Go to sign in")))
        }
        Err(other) => other.into_response(),
    }
}

/// `GET /reset-password?token=T`: the form behind the mailed reset link. The token is checked when
/// the form is sent, so opening the page never consumes it.
pub async fn reset_password(Query(query): Query<TokenQuery>) -> Response {
    let token = query.token.unwrap_or_default();
    if auth::OpaqueToken::parse(&token).is_err() {
        return message(
            StatusCode::BAD_REQUEST,
            "error",
            "This link does not work",
            "It is incomplete or malformed. Ask for a new reset link.",
            Some(("/forgot-password", "Ask for a new link")),
        );
    }
    render(&ResetPage { viewer: None, active: "", token: &token }, StatusCode::OK)
}

pub async fn dashboard(MaybeAuthed(authed): MaybeAuthed) -> Response {
    let Some(authed) = authed else {
        return Redirect::to("/").into_response();
    };
    let user = &authed.user;
    render(
        &DashboardPage {
            viewer: Some(Viewer::of(user)),
            active: "dashboard",
            email: user.email.as_str(),
            email_verified: user.email_verified_at.is_some(),
            totp_enabled: user.totp_enabled,
            created_at: user.created_at.to_rfc3339(),
        },
        StatusCode::OK,
    )
}

fn event_label(kind: &str) -> &str {
    match kind {
        "auth.registered" => "Account created",
        "auth.register_attempt_existing" => "Someone tried to register with your email",
        "auth.email_verified" => "Email confirmed",
        "auth.verification_resent" => "Confirmation link sent again",
        "auth.login_succeeded" => "Signed in",
        "auth.login_failed" => "Failed sign-in",
        "auth.logout" => "Signed out",
        "auth.logout_all" => "Signed out everywhere",
        "auth.session_revoked" => "Session revoked",
        "auth.reauthenticated" => "Password confirmed",
        "auth.password_confirmation_failed" => "Wrong password when confirming",
        "auth.password_changed" => "Password changed",
        "auth.password_reset_requested" => "Password reset requested",
        "auth.password_reset" => "Password reset",
        "auth.second_factor_used" => "Two-factor code used",
        "auth.second_factor_failed" => "Wrong or reused two-factor code",
        "2fa.setup_started" => "Two-factor setup started",
        "2fa.enabled" => "Two-factor sign-in turned on",
        "2fa.disabled" => "Two-factor sign-in turned off",
        "2fa.backup_codes_regenerated" => "New backup codes made",
        "account.preferences_changed" => "Preferences changed",
        "account.email_change_requested" => "Email change requested",
        "account.email_changed" => "Email changed",
        "exchange_key.added" => "Exchange key connected",
        "exchange_key.refused" => "Exchange key refused",
        "exchange_key.removed" => "Exchange key removed",
        "exchange_key.checked" => "Exchange key checked",
        "exchange_key.ip_restriction_waived" => "IP restriction waived for an exchange key",
        "exchange_key.used" => "Order sent with an exchange key",
        "paper.reset" => "Paper account reset",
        "bot.webhook_rotated" => "Bot webhook secret rotated",
        "operator.settings_changed" => "Server settings changed (operator)",
        "webhook.accepted" => "Webhook signal accepted",
        "webhook.rejected" => "Webhook signal refused",
        other => other,
    }
}

pub async fn security(State(state): State<AppState>, MaybeAuthed(authed): MaybeAuthed) -> Result<Response, ApiError> {
    let Some(authed) = authed else {
        return Ok(Redirect::to("/").into_response());
    };
    let sessions = live_sessions(&state, &authed)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id.to_string(),
            browser: describe_agent(&s.user_agent),
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
            created_at: s.created_at.to_rfc3339(),
            last_seen_at: s.last_seen_at.to_rfc3339(),
            current: s.id == authed.session.id,
        })
        .collect();
    let events = state
        .store
        .audit_for_user(authed.user.id, None, 25)
        .await?
        .into_iter()
        .map(|e| EventRow {
            at: e.at.to_rfc3339(),
            label: record_label(&e).to_owned(),
            ip: e.ip,
            browser: describe_agent(&e.user_agent),
            user_agent: e.user_agent,
        })
        .collect();
    let user = &authed.user;
    let backup_codes_left = if user.totp_enabled { state.store.unused_backup_codes(user.id).await?.len() } else { 0 };
    let registration_closed =
        user.operator && state.store.operator_settings().await?.registration == Registration::Closed;
    Ok(render(
        &SecurityPage {
            viewer: Some(Viewer::of(user)),
            active: "security",
            sessions,
            events,
            totp_enabled: user.totp_enabled,
            backup_codes_left,
            anti_phishing_code: user.anti_phishing_code.as_deref().unwrap_or(""),
            email: user.email.as_str(),
            operator: user.operator,
            registration_closed,
        },
        StatusCode::OK,
    ))
}

/// Why an account is paused (its `status_reason`), in words: what changed and what to do. The page
/// hands these to app.js, which shows the one an account names.
const PAUSE_REASONS: &[(&str, &str)] = &[
    (
        "withdrawal_permission_enabled",
        "The key can now withdraw funds. On the exchange, turn off “Enable Withdrawals” for this key, then check again.",
    ),
    (
        "transfer_permission_enabled",
        "The key can now move funds between accounts. On the exchange, turn off internal and universal transfer for this key, then check again.",
    ),
    (
        "trading_permission_missing",
        "The key can no longer trade spot. On the exchange, turn on “Enable Spot & Margin Trading” for this key, then check again.",
    ),
    (
        "ip_restriction_missing",
        "The key now works from any IP address. On the exchange, restrict it to this server’s IP address, then check again.",
    ),
    (
        "key_rejected",
        "The exchange no longer accepts this key: it was deleted, it expired, or this server’s IP address is not on its list. Fix it on the exchange and check again, or remove this account and connect a new key.",
    ),
];

/// A few words on why a key was refused or paused, for the key history; `None` for codes without one.
fn key_problem(code: &str) -> Option<&'static str> {
    Some(match code {
        "withdrawal_permission_enabled" => "it can withdraw funds",
        "transfer_permission_enabled" => "it can move funds between accounts",
        "trading_permission_missing" => "it cannot trade spot",
        "ip_restriction_missing" => "it works from any IP address",
        "key_rejected" | "invalid_api_key" => "the exchange did not accept it",
        "exchange_unreachable" => "the exchange could not be reached",
        "invalid_input" => "the private key could not be read",
        "vault_sealed" => "the server's vault is sealed",
        _ => return None,
    })
}

/// The venue name of paper accounts when the server runs no paper market to ask.
const PAPER_VENUE: &str = "paper";

fn venue_name(code: &str) -> &str {
    match code {
        "binance" => "Binance",
        "paper" => "Paper trading",
        other => other,
    }
}

/// An audit record's event in words. A paper account's key is Bulwark's own, so its key events read
/// as the paper account's.
fn record_label(record: &store::AuditRecord) -> &str {
    let paper = record.kind.starts_with("exchange_key.")
        && serde_json::from_str::<serde_json::Value>(&record.detail)
            .ok()
            .is_some_and(|detail| detail.get("exchange").and_then(serde_json::Value::as_str) == Some(PAPER_VENUE));
    match (record.kind.as_str(), paper) {
        ("exchange_key.added", true) => "Paper account opened",
        ("exchange_key.removed", true) => "Paper account removed",
        ("exchange_key.used", true) => "Order sent on a paper account",
        (kind, _) => event_label(kind),
    }
}

/// An `exchange_key.*` audit record as a history line: the event with its outcome, and the key by
/// venue and hint (the record never holds more of the key).
fn key_event_row(record: &store::AuditRecord) -> KeyEventRow {
    let detail: serde_json::Value = serde_json::from_str(&record.detail).unwrap_or_default();
    let text = |name: &str| detail.get(name).and_then(serde_json::Value::as_str);
    let problem = text("reason").and_then(key_problem);
    let outcome = match (record.kind.as_str(), text("status")) {
        ("exchange_key.checked", Some("paused")) => {
            Some(problem.map_or("paused".to_owned(), |p| format!("paused, {p}")))
        }
        ("exchange_key.checked", Some(_)) => Some("fine".to_owned()),
        _ => problem.map(str::to_owned),
    };
    let scheduled = detail.get("scheduled").and_then(serde_json::Value::as_bool) == Some(true);
    let label = format!(
        "{}{}{}",
        record_label(record),
        outcome.map(|o| format!(": {o}")).unwrap_or_default(),
        if scheduled { " (daily check)" } else { "" },
    );
    let key = match (text("exchange"), text("api_key_hint")) {
        // A paper account's key is Bulwark's own, never the user's: its hint says nothing to them.
        (Some(PAPER_VENUE), _) => venue_name(PAPER_VENUE).to_owned(),
        (Some(venue), Some(hint)) => format!("{} {hint}", venue_name(venue)),
        (Some(venue), None) => venue_name(venue).to_owned(),
        (None, Some(hint)) => hint.to_owned(),
        (None, None) => String::new(),
    };
    KeyEventRow { at: record.at.to_rfc3339(), label, key, ip: record.ip.clone() }
}

/// `GET /exchange-accounts`: the accounts (listed by app.js from the API, so the page itself never
/// holds account data it would have to keep in step), the connect form with its guidance, and the
/// latest key events.
pub async fn exchange_accounts(
    State(state): State<AppState>,
    MaybeAuthed(authed): MaybeAuthed,
) -> Result<Response, ApiError> {
    let Some(authed) = authed else {
        return Ok(Redirect::to("/").into_response());
    };
    let user = &authed.user;
    let key_events = state
        .store
        .audit_for_user(user.id, None, 200)
        .await?
        .iter()
        // Orders are key uses too, but they would crowd out the connections, refusals and checks.
        .filter(|record| record.kind.starts_with("exchange_key.") && record.kind != "exchange_key.used")
        .take(10)
        .map(key_event_row)
        .collect();
    Ok(render(
        &ExchangeAccountsPage {
            viewer: Some(Viewer::of(user)),
            active: "exchange-accounts",
            email: user.email.as_str(),
            email_verified: user.email_verified_at.is_some(),
            key_events,
            pause_reasons: PAUSE_REASONS,
            paper_venue: state.paper.as_ref().map_or(PAPER_VENUE, |paper| paper.venue()),
            paper_market: state.paper.is_some(),
        },
        StatusCode::OK,
    ))
}

/// `GET /exchange-accounts/{id}`: one account. For a paper account, the trade panel (markets, the
/// chart, the order form, balances, open orders and trade history, all filled by app.js from the
/// API); for a real key, why manual trading is not offered yet.
pub async fn exchange_account(
    State(state): State<AppState>,
    MaybeAuthed(authed): MaybeAuthed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(authed) = authed else {
        return Ok(Redirect::to("/").into_response());
    };
    let user = &authed.user;
    let account = match id.parse::<ExchangeAccountId>() {
        Ok(id) => state.store.exchange_account(user.id, id).await?,
        Err(_) => None,
    };
    let Some(account) = account else {
        return Ok(message(
            StatusCode::NOT_FOUND,
            "error",
            "Account not found",
            "None of your exchange accounts is at this address. It may have been removed.",
            Some(("/exchange-accounts", "Go to exchange accounts")),
        ));
    };
    let paper_venue = state.paper.as_ref().map(|paper| paper.venue());
    let paper = paper_venue == Some(account.exchange.as_str());
    let paused = (account.status != ExchangeAccountStatus::Active).then(|| {
        let reason = account.status_reason.as_deref().unwrap_or_default();
        PAUSE_REASONS.iter().find(|(code, _)| *code == reason).map_or(
            "Bulwark stopped using this key. Check it again on the exchange accounts page to see why.",
            |(_, text)| *text,
        )
    });
    Ok(render(
        &ExchangeAccountPage {
            viewer: Some(Viewer::of(user)),
            active: "exchange-accounts",
            id: account.id.to_string(),
            name: &account.name,
            venue: venue_name(&account.exchange),
            paper,
            paper_off: !paper && account.exchange == PAPER_VENUE,
            paused,
        },
        StatusCode::OK,
    ))
}

/// `GET /bots`: the user's bots (listed by app.js from `GET /api/v1/bots`) and the form for a new
/// one, with the live plan preview (`POST /api/v1/bots/preview`).
pub async fn bots(MaybeAuthed(authed): MaybeAuthed) -> Response {
    let Some(authed) = authed else {
        return Redirect::to("/").into_response();
    };
    render(&BotsPage { viewer: Some(Viewer::of(&authed.user)), active: "bots" }, StatusCode::OK)
}

/// `GET /bots/{id}`: one bot (its settings, deals and profit, filled by app.js from the API) and its
/// TradingView webhook: the URLs, the alert messages, a test signal, the signal log, rotation and
/// the webhook settings. The page never holds the webhook secret (only its hash is stored); app.js
/// shows a placeholder until the person fills the secret in.
pub async fn bot(
    State(state): State<AppState>,
    MaybeAuthed(authed): MaybeAuthed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(authed) = authed else {
        return Ok(Redirect::to("/").into_response());
    };
    let user = &authed.user;
    let bot = match id.parse::<BotId>() {
        Ok(id) => state.store.bot(user.id, id).await?,
        Err(_) => None,
    };
    let Some(bot) = bot else {
        return Ok(message(
            StatusCode::NOT_FOUND,
            "error",
            "Bot not found",
            "None of your bots is at this address.",
            Some(("/bots", "Go to bots")),
        ));
    };
    Ok(render(
        &BotPage { viewer: Some(Viewer::of(user)), active: "bots", id: bot.id.to_string(), name: &bot.name },
        StatusCode::OK,
    ))
}

/// `GET /deals[?bot_id=&status=]`: every deal, filtered by bot and status (app.js reads the filters
/// from the address and asks `GET /api/v1/deals`).
pub async fn deals(MaybeAuthed(authed): MaybeAuthed) -> Response {
    let Some(authed) = authed else {
        return Redirect::to("/").into_response();
    };
    render(
        &DealsPage {
            viewer: Some(Viewer::of(&authed.user)),
            active: "deals",
            statuses: domain::DealStatus::ALL.iter().map(|s| s.as_str()).collect(),
        },
        StatusCode::OK,
    )
}

/// `GET /deals/{id}`: one deal, its orders and its chart (filled by app.js from the API), with
/// the buttons to close it at market, cancel it or add funds.
pub async fn deal(
    State(state): State<AppState>,
    MaybeAuthed(authed): MaybeAuthed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(authed) = authed else {
        return Ok(Redirect::to("/").into_response());
    };
    let user = &authed.user;
    let deal = match id.parse::<DealId>() {
        Ok(id) => state.store.deal(user.id, id).await?.map(|(deal, _)| deal),
        Err(_) => None,
    };
    let Some(deal) = deal else {
        return Ok(message(
            StatusCode::NOT_FOUND,
            "error",
            "Deal not found",
            "None of your deals is at this address.",
            Some(("/deals", "Go to deals")),
        ));
    };
    let bot_name = state.store.bot(user.id, deal.bot_id).await?.map_or_else(|| "Its bot".to_owned(), |bot| bot.name);
    Ok(render(
        &DealPage {
            viewer: Some(Viewer::of(user)),
            active: "deals",
            id: deal.id.to_string(),
            market: format!("{} / {}", deal.pair.base, deal.pair.quote),
            bot_id: deal.bot_id.to_string(),
            bot_name,
        },
        StatusCode::OK,
    ))
}

/// A short, human name for a `User-Agent` string ("Firefox 140 on Windows"). Best effort: the raw
/// string is always shown beside it as a tooltip.
fn describe_agent(ua: &str) -> String {
    if ua.trim().is_empty() {
        return "Unknown browser".to_owned();
    }
    let version_after = |marker: &str| {
        ua.split(marker).nth(1).map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap_or("").to_owned())
    };
    let browser =
        [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("curl/", "curl")]
            .iter()
            .find_map(|(marker, name)| version_after(marker).map(|v| format!("{name} {v}")))
            .or_else(|| {
                ua.contains("Safari/").then(|| format!("Safari {}", version_after("Version/").unwrap_or_default()))
            })
            .map(|s| s.trim().to_owned());
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find_map(|(marker, name)| ua.contains(marker).then_some(*name));
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b,
        (None, Some(o)) => format!("A browser on {o}"),
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// Unknown routes: JSON under `/api`, a page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return ApiError::NotFound.into_response();
    }
    message(
        StatusCode::NOT_FOUND,
        "error",
        "Page not found",
        "There is nothing at this address.",
        Some(("/", "Go home")),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../assets/app.css"))
}

pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../assets/app.js"))
}

pub async fn favicon() -> Response {
    asset("image/svg+xml", include_str!("../assets/favicon.svg"))
}

#[cfg(test)]
mod tests {
    use super::{describe_agent, key_event_row};

    #[test]
    fn user_agents_get_short_names() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome 156 on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
                "Firefox 140 on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
                "Safari 18 on iPhone",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36 Edg/141.0.0.0",
                "Edge 141 on Windows",
            ),
            ("curl/8.5.0", "curl 8"),
            ("", "Unknown browser"),
            ("guesser/1.0", "guesser/1.0"),
        ];
        for (ua, want) in cases {
            assert_eq!(describe_agent(ua), want, "{ua}");
        }
    }

    #[test]
    fn key_events_read_as_sentences_and_name_the_key_by_its_hint() {
        let record = |kind: &str, detail: &str| store::AuditRecord {
            id: domain::AuditId::from_random_bytes([1; 16]),
            user_id: None,
            at: domain::Timestamp::from_unix_millis(0),
            kind: kind.to_owned(),
            ip: "127.0.0.1".to_owned(),
            user_agent: String::new(),
            detail: detail.to_owned(),
        };
        let cases = [
            (
                record(
                    "exchange_key.refused",
                    r#"{"exchange":"binance","api_key_hint":"…abcd","reason":"withdrawal_permission_enabled"}"#,
                ),
                "Exchange key refused: it can withdraw funds",
                "Binance …abcd",
            ),
            (
                record(
                    "exchange_key.checked",
                    r#"{"exchange":"binance","api_key_hint":"…abcd","status":"active","reason":null,"scheduled":false}"#,
                ),
                "Exchange key checked: fine",
                "Binance …abcd",
            ),
            (
                record(
                    "exchange_key.checked",
                    r#"{"exchange":"binance","api_key_hint":"…abcd","status":"paused","reason":"key_rejected","scheduled":true}"#,
                ),
                "Exchange key checked: paused, the exchange did not accept it (daily check)",
                "Binance …abcd",
            ),
            (
                record("exchange_key.ip_restriction_waived", r#"{"exchange_account_id":"x","ip_restricted":false}"#),
                "IP restriction waived for an exchange key",
                "",
            ),
            (record("exchange_key.added", "not json"), "Exchange key connected", ""),
            (
                record("exchange_key.added", r#"{"exchange":"paper","api_key_hint":"…wxyz","key_type":"hmac"}"#),
                "Paper account opened",
                "Paper trading",
            ),
            (
                record("exchange_key.removed", r#"{"exchange":"paper","api_key_hint":"…wxyz"}"#),
                "Paper account removed",
                "Paper trading",
            ),
        ];
        for (record, label, key) in cases {
            let row = key_event_row(&record);
            assert_eq!((row.label.as_str(), row.key.as_str()), (label, key), "{}", record.detail);
        }
    }
}
