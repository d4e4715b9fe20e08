//! The simulator's own endpoints (not Binance's): opening an account and starting one over, so
//! that `bulwark serve` nodes can open paper accounts in one shared simulator
//! (`BULWARK_PAPER_MARKET=http://...`). Opening is public, like the simulator itself, which only
//! listens on loopback; starting over is SIGNED by the account's own key.

use rust_decimal::Decimal;
use serde::Serialize;

use super::{Reply, Request, json};
use crate::account::{Account, SimBalance};
use crate::config::{SimAccount, SimKey, SimPermissions};
use crate::error::ApiError;
use crate::matching;
use crate::order::OrderStatus;
use crate::paper::random_alnum;
use crate::state::SimState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    api_key: String,
    secret_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reset {
    canceled_orders: usize,
}

/// `balances=USDT:10000,BTC:0.5` (at least one asset; amounts from 0 to 10^12).
fn balances(request: &Request<'_>) -> Result<Vec<(String, Decimal)>, ApiError> {
    let raw = request.params.required("balances")?;
    let bad = || ApiError::invalid_param("balances");
    let list: Vec<(String, Decimal)> = raw
        .split(',')
        .map(|item| {
            let (asset, amount) = item.split_once(':').ok_or_else(bad)?;
            let asset = asset.trim().to_ascii_uppercase();
            let amount: Decimal = amount.trim().parse().map_err(|_| bad())?;
            let well_formed =
                !asset.is_empty() && asset.len() <= 20 && asset.bytes().all(|b| b.is_ascii_alphanumeric());
            if !well_formed || amount.is_sign_negative() || amount > Decimal::new(1_000_000_000_000, 0) {
                return Err(bad());
            }
            Ok((asset, amount))
        })
        .collect::<Result<_, _>>()?;
    if list.is_empty() || list.len() > 20 {
        return Err(bad());
    }
    Ok(list)
}

/// `POST /sim/v1/accounts?balances=...` → `{"apiKey","secretKey"}`: a new trading, IP-restricted,
/// non-withdrawing HMAC account with a random key and secret.
pub(crate) fn open_account(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let balances = balances(request)?;
    let random = |len| random_alnum(len).map_err(|_| ApiError::unknown());
    let api_key = format!("paper{}", random(59)?.as_str());
    let secret = random(64)?;
    let config = SimAccount {
        api_key: api_key.clone(),
        key: SimKey::Hmac { secret: secret.as_str().to_owned() },
        permissions: SimPermissions::trading(),
        balances,
    };
    let uid = state.exchange.accounts.iter().map(|a| a.uid).max().unwrap_or(0) + 1;
    state.exchange.accounts.push(Account::new(&config, uid, request.now_ms));
    json(&NewAccount { api_key, secret_key: secret.as_str().to_owned() })
}

/// `POST /sim/v1/account/reset?balances=...` (SIGNED): cancels the account's open orders and
/// replaces its balances. → `{"canceledOrders": n}`.
pub(crate) fn reset_account(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let balances = balances(request)?;
    let account = state.exchange.accounts.get_mut(request.account()?).ok_or_else(ApiError::rejected_key)?;
    let canceled = reset(account, &balances, request.now_ms);
    json(&Reset { canceled_orders: canceled })
}

/// Cancels every open order of `account` and sets its balances (free, nothing locked). Returns how
/// many orders were canceled. Shared with [`crate::ExchangeSim::reset_account`].
pub(crate) fn reset(account: &mut Account, balances: &[(String, Decimal)], now_ms: i64) -> usize {
    let open: Vec<usize> = (0..account.orders.len()).filter(|&i| account.orders[i].is_open()).collect();
    for &order in &open {
        matching::close(account, order, OrderStatus::Canceled, now_ms);
    }
    account.balances = balances
        .iter()
        .map(|(asset, amount)| (asset.clone(), SimBalance { free: *amount, locked: Decimal::ZERO }))
        .collect();
    account.update_time = now_ms;
    open.len()
}
