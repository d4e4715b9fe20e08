//! Bulwark's HTTP layer: the JSON API under `/api/v1`, the server-rendered pages, sessions and
//! the security middleware. Only this crate knows our HTTP and JSON shapes (ARCHITECTURE.md
//! invariant 8). It takes a `Store`, a `Mailer`, a `Clock` and a random source from the caller and
//! never reads the environment.

pub mod api;
mod chart;
pub mod config;
pub mod edge;
mod emails;
mod error;
pub mod extract;
mod hashing;
mod keys;
pub mod live_vault;
pub mod manual_orders;
pub mod metrics;
pub mod middleware;
mod order_guard;
mod pages;
pub mod rate;
pub mod runner;
pub mod session;
pub mod state;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use serde_json::json;
use tokio::net::TcpListener;

pub use config::{EdgeConfig, ServerConfig, ThrottleConfig, TlsFiles};
pub use error::ApiError;
pub use live_vault::LiveVault;
pub use state::{AppDeps, AppState};

/// Every route, with the middleware of `spec/api.md` around all of them.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/register", post(api::auth::register))
        .route("/auth/verify-email", post(api::auth::verify_email))
        .route("/auth/verify-email/resend", post(api::auth::resend_verification))
        .route("/auth/login", post(api::auth::login))
        .route("/auth/logout", post(api::auth::logout))
        .route("/auth/logout-all", post(api::auth::logout_all))
        .route("/auth/reauth", post(api::auth::reauth))
        .route("/auth/password/change", post(api::auth::change_password))
        .route("/auth/password/reset-request", post(api::auth::reset_request))
        .route("/auth/password/reset", post(api::auth::reset_password))
        .route("/me", get(api::account::me))
        .route("/me/preferences", patch(api::account::update_preferences))
        .route("/me/email", post(api::account::change_email))
        .route("/me/email/confirm", post(api::account::confirm_email_change))
        .route("/2fa/status", get(api::two_factor::status))
        .route("/2fa/totp/setup", post(api::two_factor::setup))
        .route("/2fa/totp/confirm", post(api::two_factor::confirm))
        .route("/2fa/totp/disable", post(api::two_factor::disable))
        .route("/2fa/backup-codes/regenerate", post(api::two_factor::regenerate_backup_codes))
        .route("/sessions", get(api::account::sessions))
        .route("/sessions/{id}", delete(api::account::revoke_session))
        .route("/audit-log", get(api::account::audit_log))
        .route("/exchange-accounts", get(api::exchange_accounts::list).post(api::exchange_accounts::connect))
        .route("/exchange-accounts/{id}", get(api::exchange_accounts::show).delete(api::exchange_accounts::remove))
        .route("/exchange-accounts/{id}/balances", get(api::exchange_accounts::balances))
        .route("/exchange-accounts/{id}/recheck", post(api::exchange_accounts::recheck))
        .route("/exchange-accounts/{id}/reset", post(api::exchange_accounts::reset))
        .route("/exchange-accounts/{id}/markets", get(api::trading::markets))
        .route("/exchange-accounts/{id}/orders", get(api::trading::open_orders).post(api::trading::place))
        .route("/exchange-accounts/{id}/orders/{order_id}", delete(api::trading::cancel))
        .route("/exchange-accounts/{id}/trades", get(api::trading::trades))
        .route("/exchange-accounts/{id}/chart.svg", get(api::trading::chart))
        .route("/exchange-accounts/{id}/policy", get(api::deals::policy).put(api::deals::set_policy))
        .route("/bots/preview", post(api::bots::preview))
        .route("/bots", get(api::deals::list).post(api::deals::create))
        .route("/bots/{id}", get(api::deals::show).patch(api::deals::update))
        .route("/bots/{id}/enable", post(api::deals::enable))
        .route("/bots/{id}/rotate_webhook_secret", post(api::deals::rotate_webhook_secret))
        .route("/bots/{id}/signals", get(api::deals::signals))
        .route("/bots/{id}/disable", post(api::deals::disable))
        .route("/bots/{id}/start_new_deal", post(api::deals::start_new_deal))
        .route("/bots/{id}/panic_sell_all_deals", post(api::deals::panic_sell_all_deals))
        .route("/bots/{id}/cancel_all_deals", post(api::deals::cancel_all_deals))
        .route("/deals", get(api::deals::deals))
        .route("/deals/{id}", get(api::deals::deal))
        .route("/deals/{id}/chart.svg", get(api::deals::chart))
        .route("/deals/{id}/close_at_market", post(api::deals::close_at_market))
        .route("/deals/{id}/cancel", post(api::deals::cancel))
        .route("/deals/{id}/add_funds", post(api::deals::add_funds))
        .route("/kill-switch", post(api::deals::kill_switch))
        .route("/operator/settings", get(api::operator::settings).put(api::operator::update_settings))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });

    Router::new()
        .nest("/api/v1", api)
        .route("/", get(pages::index))
        .route("/register", get(pages::register))
        .route("/check-email", get(pages::check_email))
        .route("/verify-email", get(pages::verify_email))
        .route("/confirm-email-change", get(pages::confirm_email_change))
        .route("/forgot-password", get(pages::forgot_password))
        .route("/reset-password", get(pages::reset_password))
        .route("/dashboard", get(pages::dashboard))
        .route("/account/security", get(pages::security))
        .route("/exchange-accounts", get(pages::exchange_accounts))
        .route("/exchange-accounts/{id}", get(pages::exchange_account))
        .route("/bots", get(pages::bots))
        .route("/bots/{id}", get(pages::bot))
        .route("/deals", get(pages::deals))
        .route("/deals/{id}", get(pages::deal))
        .route("/assets/app.css", get(pages::app_css))
        .route("/assets/app.js", get(pages::app_js))
        .route("/assets/favicon.svg", get(pages::favicon))
        .route("/healthz", get(healthz))
        .route("/metrics", axum::routing::any(metrics::endpoint))
        .route("/trade_signal/trading_view", post(webhooks::trading_view))
        .route("/signal_bots/webhooks", post(webhooks::signal_bots))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::csrf_guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::body_deadline))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::load_shed))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::rate_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::security_headers))
        .layer(
            // The span names the path only: query strings can carry single-use tokens
            // (`/verify-email?token=`), and headers carry the session cookie.
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    match state.store.ping().await {
        Ok(()) if state.vault.is_sealed() => axum::Json(json!({ "status": "ok", "vault": "sealed" })).into_response(),
        Ok(()) => axum::Json(json!({ "status": "ok" })).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({ "status": "unavailable" }))).into_response()
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves (through `edge::run`: the connection
/// limits, and HTTPS only when `config.tls` names a certificate), with the client's socket address
/// available to handlers. Also runs the housekeeping loop (expired-session purge), the vault's
/// refresh loop (key ring reload and the rewrap job of a rotation), the bot runner and the
/// reconciliation of manual orders.
///
/// Shutdown is graceful: when `shutdown` resolves no connection is accepted, the requests in
/// flight are answered, and the bot runner finishes what it is doing (an order it sent is answered
/// and the answer saved) and starts nothing new; all within `config.shutdown_grace`, after which
/// whatever is left is dropped (and left to reconciliation at the next start). Then this node's bot
/// leases are released.
///
/// # Errors
/// The IO error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let vault_refresh = tokio::spawn(state.vault.clone().run_refresh());
    let mut engine = tokio::spawn(runner::run(state.clone()));
    let manual_orders = tokio::spawn(manual_orders::run(state.clone()));
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            grace_s = stopping.config.shutdown_grace.as_secs(),
            "shutting down: answering the requests in flight and letting the bot engine finish what it is sending"
        );
        // The runner winds down while the requests in flight are answered.
        stopping.runner.stop();
    };
    let result = match state.config.tls.as_ref().map(edge::Tls::load).transpose() {
        Ok(tls) => {
            if let Some(tls) = &tls {
                tracing::info!(fingerprint = %tls.fingerprint(), "serving HTTPS only (TLS 1.2 and 1.3)");
            }
            let (limits, proxies) = (state.config.edge.clone(), state.config.trusted_proxies.clone());
            let metrics = state.metrics.clone();
            edge::run_counted(listener, router(state.clone()), limits, tls, proxies, metrics, shutdown).await
        }
        Err(err) => Err(err),
    };
    housekeeping.abort();
    manual_orders.abort();
    state.runner.stop();
    if tokio::time::timeout(state.config.shutdown_grace, &mut engine).await.is_err() {
        tracing::warn!(
            grace_s = state.config.shutdown_grace.as_secs(),
            "the bot engine did not finish within the shutdown grace; what it was sending is looked up at the next start"
        );
        engine.abort();
    }
    vault_refresh.abort();
    // Let another node take this node's bots at once rather than when the leases run out.
    let _ = state.store.release_bots(state.runner.node()).await;
    result
}

/// Every `housekeeping_every` (ten minutes): deletes sessions that ended (expiry does not depend on it: every request
/// checks both timeouts; it only keeps the table small) and re-checks the exchange keys whose last
/// check is more than a day old (EX-1).
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(state.config.housekeeping_every);
    loop {
        tick.tick().await;
        let now = state.now();
        match state.store.purge_sessions(now, now.minus(state.config.session_idle)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "purged ended sessions"),
            Err(err) => tracing::warn!(error = %err, "session purge failed"),
        }
        keys::recheck_due(&state).await;
    }
}
