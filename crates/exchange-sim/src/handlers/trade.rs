//! Trading (SIGNED, TRADE): new order and cancel.

use crate::config::is_well_formed_api_key;
use crate::error::ApiError;
use crate::handlers::{Reply, Request, check_client_order_id, client_order_id, json, order_selector};
use crate::matching::{NewOrder, OrderSelector, OrderSize, Placement};
use crate::order::{OrderParams, OrderStatus, OrderType, Side, SimOrder, TimeInForce};
use crate::params::{Params, check_symbol_chars};
use crate::state::SimState;
use crate::weights::OrderCounts;
use crate::wire::{CancelResult, OrderAck, OrderResult};

/// `newOrderRespType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseType {
    Ack,
    Result,
    Full,
}

/// Parameters Binance knows for order types the simulator does not offer; sending them is -1106.
const UNSUPPORTED_PARAMS: [&str; 4] = ["stopPrice", "trailingDelta", "icebergQty", "pegPriceType"];

pub(crate) fn new_order(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let (new, response_type) = parse_new_order(request.params)?;
    let account = request.account()?;
    let (placement, counts) = place(state, account, new, request.now_ms)?;
    let mut reply = match response_type {
        ResponseType::Ack => json(&OrderAck::new(&placement.order)),
        ResponseType::Result => json(&OrderResult::new(&placement.order, None)),
        ResponseType::Full => json(&OrderResult::new(&placement.order, Some(&placement.fills))),
    }?;
    reply.order_counts = Some(counts);
    Ok(reply)
}

/// The account of `api_key` for an order placed or canceled through the handle, refused as a
/// SIGNED TRADE request with that key is (-2014 malformed, -2015 unknown, revoked or not allowed to
/// trade); signature and timestamp have no in-process counterpart.
pub(crate) fn trading_account(state: &SimState, api_key: &str) -> Result<usize, ApiError> {
    if !is_well_formed_api_key(api_key) {
        return Err(ApiError::bad_api_key_format());
    }
    let index = state.exchange.account_index(api_key).ok_or_else(ApiError::rejected_key)?;
    if state.exchange.accounts[index].can_trade() { Ok(index) } else { Err(ApiError::rejected_key()) }
}

/// A new order placed through the handle ([`crate::ExchangeSim::place_order_in_process`]) for the
/// account at `account`: the checks that reading the HTTP parameters makes on the symbol and the
/// client order id, then the same path as `POST /api/v3/order`.
pub(crate) fn new_order_in_process(
    state: &mut SimState,
    account: usize,
    params: &OrderParams,
    now_ms: i64,
) -> Result<SimOrder, ApiError> {
    check_symbol_in_process(&params.symbol)?;
    match params.new_client_order_id.as_deref() {
        Some("") => return Err(ApiError::empty_param("newClientOrderId")),
        Some(id) => check_client_order_id("newClientOrderId", id)?,
        None => {}
    }
    let new = check_new_order(params.clone())?;
    place(state, account, new, now_ms).map(|(placement, _)| placement.order)
}

/// What a new order goes through once its parameters are read and its key checked, over HTTP and
/// in process alike: the symbol, the order-count limits, then the matching engine (filters, balance
/// reservation, matching, fills, fees).
fn place(
    state: &mut SimState,
    account: usize,
    new: NewOrder,
    now_ms: i64,
) -> Result<(Placement, OrderCounts), ApiError> {
    state.exchange.symbol(&new.symbol)?;
    let limits = state.limits;
    state
        .order_counts
        .check(account, limits.orders_per_10s, limits.orders_per_day, now_ms)
        .map_err(|hit| ApiError::too_many_orders(hit.limit, hit.interval, hit.retry_after))?;
    let placement = state.exchange.place(account, new, now_ms)?;
    let counts = state.order_counts.record(account, now_ms);
    Ok((placement, counts))
}

pub(crate) fn cancel_order(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = request.params;
    let symbol = params.required_symbol()?;
    let selector = order_selector(params)?;
    let cancel_id = client_order_id(params, "newClientOrderId")?;
    let restriction = match params.optional("cancelRestrictions")? {
        None => None,
        Some("ONLY_NEW") => Some(OrderStatus::New),
        Some("ONLY_PARTIALLY_FILLED") => Some(OrderStatus::PartiallyFilled),
        Some(_) => return Err(ApiError::invalid_cancel_restrictions()),
    };
    let account = request.account()?;
    if let Some(required) = restriction {
        let order =
            state.exchange.order(account, symbol, &selector).map_err(|_| ApiError::unknown_order_on_cancel())?;
        if order.is_open() && order.status != required {
            return Err(ApiError::cancel_restricted());
        }
    }
    let (order, cancel_id) = cancel(state, account, symbol, &selector, cancel_id, request.now_ms)?;
    json(&CancelResult::new(&order, cancel_id, request.now_ms))
}

/// A cancel through the handle ([`crate::ExchangeSim::cancel_order_in_process`]): as
/// `DELETE /api/v3/order` with `symbol` and `orderId`.
pub(crate) fn cancel_in_process(
    state: &mut SimState,
    account: usize,
    symbol: &str,
    order_id: u64,
    now_ms: i64,
) -> Result<SimOrder, ApiError> {
    check_symbol_in_process(symbol)?;
    cancel(state, account, symbol, &OrderSelector::Id(order_id), None, now_ms).map(|(order, _)| order)
}

/// What [`Params::required_symbol`] checks, for a symbol given as a value.
fn check_symbol_in_process(symbol: &str) -> Result<(), ApiError> {
    if symbol.is_empty() {
        return Err(ApiError::mandatory("symbol"));
    }
    check_symbol_chars("symbol", symbol)
}

/// Cancels an open order and names the cancel (`newClientOrderId`, or a generated id): what
/// `DELETE /api/v3/order` and [`crate::ExchangeSim::cancel_order_in_process`] share.
pub(crate) fn cancel(
    state: &mut SimState,
    account: usize,
    symbol: &str,
    selector: &OrderSelector,
    cancel_id: Option<String>,
    now_ms: i64,
) -> Result<(SimOrder, String), ApiError> {
    let order = state.exchange.cancel(account, symbol, selector, now_ms)?;
    let cancel_id = match cancel_id {
        Some(id) => id,
        None => state.exchange.generate_client_order_id(),
    };
    // The user data stream's report names the cancel in `c` and the order in `C`.
    state.exchange.accounts[account].outbox.name_cancel(&order, &cancel_id);
    Ok((order, cancel_id))
}

/// Reads and cross-checks the parameters of `POST /api/v3/order` for the order's type.
fn parse_new_order(params: &Params) -> Result<(NewOrder, ResponseType), ApiError> {
    let symbol = params.required_symbol()?.to_owned();
    let side = Side::parse(params.required("side")?)?;
    let order_type = OrderType::parse(params.required("type")?)?;
    let time_in_force = params.optional("timeInForce")?.map(TimeInForce::parse).transpose()?;
    let quantity = params.decimal("quantity")?;
    let quote_order_qty = params.decimal("quoteOrderQty")?;
    let price = params.decimal("price")?;
    let client_order_id = client_order_id(params, "newClientOrderId")?;
    if let Some(unsupported) = UNSUPPORTED_PARAMS.into_iter().find(|name| params.raw(name).is_some()) {
        return Err(ApiError::not_required(unsupported));
    }
    match params.optional("selfTradePreventionMode")? {
        None | Some("NONE") => {}
        Some(_) => return Err(ApiError::invalid_param("selfTradePreventionMode")),
    }
    let response_type = match params.optional("newOrderRespType")? {
        Some("ACK") => ResponseType::Ack,
        Some("RESULT") => ResponseType::Result,
        Some("FULL") => ResponseType::Full,
        // Binance's default: FULL for MARKET and LIMIT, ACK for the other types.
        None if matches!(order_type, OrderType::Market | OrderType::Limit) => ResponseType::Full,
        None => ResponseType::Ack,
        Some(_) => return Err(ApiError::invalid_param("newOrderRespType")),
    };
    let params = OrderParams {
        symbol,
        side,
        order_type,
        time_in_force,
        quantity,
        quote_order_qty,
        price,
        new_client_order_id: client_order_id,
    };
    Ok((check_new_order(params)?, response_type))
}

/// Cross-checks a new order's parameters for its type (mandatory and refused ones).
fn check_new_order(params: OrderParams) -> Result<NewOrder, ApiError> {
    let OrderParams { symbol, side, order_type, time_in_force, quantity, quote_order_qty, price, new_client_order_id } =
        params;
    let (time_in_force, size, price) = match order_type {
        OrderType::Limit => {
            let time_in_force = time_in_force.ok_or_else(|| ApiError::mandatory("timeInForce"))?;
            let quantity = quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
            let price = price.ok_or_else(|| ApiError::mandatory("price"))?;
            if quote_order_qty.is_some() {
                return Err(ApiError::not_required("quoteOrderQty"));
            }
            (time_in_force, OrderSize::Base(quantity), Some(price))
        }
        OrderType::LimitMaker => {
            let quantity = quantity.ok_or_else(|| ApiError::mandatory("quantity"))?;
            let price = price.ok_or_else(|| ApiError::mandatory("price"))?;
            if time_in_force.is_some() {
                return Err(ApiError::not_required("timeInForce"));
            }
            if quote_order_qty.is_some() {
                return Err(ApiError::not_required("quoteOrderQty"));
            }
            (TimeInForce::Gtc, OrderSize::Base(quantity), Some(price))
        }
        OrderType::Market => {
            if time_in_force.is_some() {
                return Err(ApiError::not_required("timeInForce"));
            }
            if price.is_some() {
                return Err(ApiError::not_required("price"));
            }
            let size = match (quantity, quote_order_qty) {
                (Some(quantity), None) => OrderSize::Base(quantity),
                (None, Some(quote)) => OrderSize::Quote(quote),
                (Some(_), Some(_)) => return Err(ApiError::not_required("quoteOrderQty")),
                (None, None) => return Err(ApiError::one_of("quantity", "quoteOrderQty")),
            };
            (TimeInForce::Gtc, size, None)
        }
    };
    Ok(NewOrder { symbol, side, order_type, time_in_force, size, price, client_order_id: new_client_order_id })
}
