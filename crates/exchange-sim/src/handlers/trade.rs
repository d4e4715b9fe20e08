//! Trading (SIGNED, TRADE): new order and cancel.

use crate::error::ApiError;
use crate::handlers::{Reply, Request, client_order_id, json, order_selector};
use crate::matching::{NewOrder, OrderSize};
use crate::order::{OrderStatus, OrderType, Side, TimeInForce};
use crate::params::Params;
use crate::state::SimState;
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
    state.exchange.symbol(&new.symbol)?;
    let account = request.account()?;
    let limits = state.limits;
    state
        .order_counts
        .check(account, limits.orders_per_10s, limits.orders_per_day, request.now_ms)
        .map_err(|hit| ApiError::too_many_orders(hit.limit, hit.interval, hit.retry_after))?;
    let placement = state.exchange.place(account, new, request.now_ms)?;
    let counts = state.order_counts.record(account, request.now_ms);
    let mut reply = match response_type {
        ResponseType::Ack => json(&OrderAck::new(&placement.order)),
        ResponseType::Result => json(&OrderResult::new(&placement.order, None)),
        ResponseType::Full => json(&OrderResult::new(&placement.order, Some(&placement.fills))),
    }?;
    reply.order_counts = Some(counts);
    Ok(reply)
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
    let order = state.exchange.cancel(account, symbol, &selector, request.now_ms)?;
    let cancel_id = match cancel_id {
        Some(id) => id,
        None => state.exchange.generate_client_order_id(),
    };
    json(&CancelResult::new(&order, cancel_id, request.now_ms))
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
    let new = NewOrder { symbol, side, order_type, time_in_force, size, price, client_order_id };
    Ok((new, response_type))
}
