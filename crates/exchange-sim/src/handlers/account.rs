//! Account data (SIGNED, USER_DATA): account information, key permissions, order lookups and the
//! trade list.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;

use crate::error::ApiError;
use crate::handlers::{Reply, Request, json, order_selector};
use crate::state::SimState;
use crate::wire::{AccountInfo, ApiRestrictions, Balance, CommissionRates, MyTrade, OrderView, amount};

/// Default and maximum of `myTrades`' `limit`.
const TRADES_DEFAULT_LIMIT: u64 = 500;
const TRADES_MAX_LIMIT: u64 = 1_000;
const DAY_MS: u64 = 86_400_000;

pub(crate) fn account(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let omit_zero = request.params.boolean("omitZeroBalances")?.unwrap_or(false);
    let account = state.exchange.accounts.get(request.account()?).ok_or_else(ApiError::rejected_key)?;
    let fee = state.exchange.fee_rate;
    // The integer commission fields are in basis points: 10 for 0.1 %.
    let commission_bps = (fee * Decimal::from(10_000)).trunc().to_u32().unwrap_or(0);
    let balances = account
        .balances
        .iter()
        .filter(|(_, balance)| !omit_zero || !(balance.free + balance.locked).is_zero())
        .map(|(asset, balance)| Balance::new(asset, balance))
        .collect();
    json(&AccountInfo {
        maker_commission: commission_bps,
        taker_commission: commission_bps,
        buyer_commission: 0,
        seller_commission: 0,
        commission_rates: CommissionRates {
            maker: amount(fee),
            taker: amount(fee),
            buyer: amount(Decimal::ZERO),
            seller: amount(Decimal::ZERO),
        },
        can_trade: account.permissions.spot_trading,
        can_withdraw: account.permissions.withdrawals,
        can_deposit: true,
        brokered: false,
        require_self_trade_prevention: false,
        prevent_sor: false,
        update_time: account.update_time,
        account_type: "SPOT",
        balances,
        permissions: ["SPOT"],
        uid: account.uid,
    })
}

pub(crate) fn api_restrictions(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let account = state.exchange.accounts.get(request.account()?).ok_or_else(ApiError::rejected_key)?;
    json(&ApiRestrictions::new(&account.permissions, account.create_time))
}

pub(crate) fn query_order(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let symbol = request.params.required_symbol()?;
    let selector = order_selector(request.params)?;
    let order = state.exchange.order(request.account()?, symbol, &selector)?;
    json(&OrderView::new(order))
}

pub(crate) fn open_orders(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let symbol = request.params.optional_symbol()?;
    if let Some(symbol) = symbol {
        state.exchange.symbol(symbol)?;
    }
    let account = state.exchange.accounts.get(request.account()?).ok_or_else(ApiError::rejected_key)?;
    let orders: Vec<_> = account
        .orders
        .iter()
        .filter(|order| order.is_open() && symbol.is_none_or(|symbol| order.symbol == symbol))
        .map(OrderView::new)
        .collect();
    json(&orders)
}

pub(crate) fn my_trades(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = request.params;
    let symbol = params.required_symbol()?;
    state.exchange.symbol(symbol)?;
    let order_id = params.long("orderId")?;
    let from_id = params.long("fromId")?;
    let start = params.long("startTime")?;
    let end = params.long("endTime")?;
    let limit = params.long("limit")?.unwrap_or(TRADES_DEFAULT_LIMIT).clamp(1, TRADES_MAX_LIMIT);
    if let (Some(start), Some(end)) = (start, end)
        && end.saturating_sub(start) > DAY_MS
    {
        return Err(ApiError::more_than_24_hours());
    }
    let account = state.exchange.accounts.get(request.account()?).ok_or_else(ApiError::rejected_key)?;
    let in_time = |time: i64| {
        let time = u64::try_from(time).unwrap_or(0);
        start.is_none_or(|start| time >= start) && end.is_none_or(|end| time <= end)
    };
    let matching: Vec<_> = account
        .trades
        .iter()
        .filter(|trade| {
            trade.symbol == symbol
                && order_id.is_none_or(|id| trade.order_id == id)
                && from_id.is_none_or(|id| trade.id >= id)
                && in_time(trade.time)
        })
        .collect();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // With `fromId` the oldest trades from there, otherwise the most recent ones; oldest first.
    let window = if from_id.is_some() {
        &matching[..limit.min(matching.len())]
    } else {
        &matching[matching.len().saturating_sub(limit)..]
    };
    json(&window.iter().map(|trade| MyTrade::new(trade)).collect::<Vec<_>>())
}
