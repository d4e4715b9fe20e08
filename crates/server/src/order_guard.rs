//! Every order from every path — a bot's deal, a manual order — passes here before it is sent
//! (ARCHITECTURE.md invariant 5, `spec/security.md` TR-1): the account's trading policy (the
//! defaults of `domain::TradingPolicy` until the user sets one), the venue's last price and 24-hour
//! volume of the pair, and what the account sent in the last minute and day, from the recorded
//! intents.

use std::time::Duration;

use domain::{OrderIntent, Timestamp, TradingPolicy};
use engine::guard::{self, GuardOrder, MarketView, Recent, Refusal};
use exchange::Ticker;
use store::ExchangeAccountRecord;

use crate::ApiError;
use crate::state::AppState;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Checks `intent` (already recorded or about to be) against the account's policy at `now`.
///
/// # Errors
/// The outer error when the store fails; the inner one is the guard's refusal.
pub async fn check(
    state: &AppState,
    account: &ExchangeAccountRecord,
    intent: &OrderIntent,
    ticker: &Ticker,
    now: Timestamp,
) -> Result<Result<(), Refusal>, ApiError> {
    let policy = policy_of(state, account).await?.0;
    let mut history = state.store.orders_since(account.id, now.minus(DAY)).await?;
    history.retain(|o| o.client_order_id != intent.client_order_id);
    let recent = Recent::from_orders(&history, now);
    let order = GuardOrder {
        pair: &intent.pair,
        side: intent.side,
        kind: intent.kind,
        price: intent.price,
        notional: intent.notional(),
        opens_position: intent.opens_position(),
    };
    let market = MarketView { last_price: ticker.last_price, quote_volume_24h: ticker.quote_volume_24h };
    Ok(guard::check(&policy, &order, &market, &recent))
}

/// The account's policy and whether it is the default (never set by the user): the strict
/// `TradingPolicy::default()` for a real key, `TradingPolicy::paper_default()` for a paper account.
///
/// # Errors
/// When the store fails.
pub async fn policy_of(state: &AppState, account: &ExchangeAccountRecord) -> Result<(TradingPolicy, bool), ApiError> {
    Ok(match state.store.trading_policy(account.id).await? {
        Some(policy) => (policy, false),
        None if state.paper.as_ref().is_some_and(|p| p.venue() == account.exchange) => {
            (TradingPolicy::paper_default(), true)
        }
        None => (TradingPolicy::default(), true),
    })
}

/// The answer to a request whose order the guard refused.
pub fn refusal_error(refusal: &Refusal) -> ApiError {
    ApiError::Refused {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        code: refusal.code(),
        message: format!("The order guard refused the order: {refusal}"),
    }
}
