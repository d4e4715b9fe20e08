//! Manual trading on an exchange account: markets, a price chart, open orders, placing and
//! canceling orders, and the trade history.
//!
//! Every manual order passes the order guard (ARCHITECTURE.md invariant 5, `spec/security.md`
//! TR-1) and is recorded as an intent before it is sent, like a bot's; every order placed with a
//! key is audited (`exchange_key.used`). The intent takes the placement's answer; an order whose
//! answer was lost, and one resting on the book, are followed at the venue by `manual_orders`.
//! Amounts follow the hide-balances preference like balances do (`"***"` unless `?reveal=true`).

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Decimal, IntentState, NewOrder, OrderIntent, OrderKind, OrderRole, Pair, Price, Qty, Side};
use exchange::{
    ClientOrderId, Exchange, ExchangeError, OrderAmount, OrderReport, OrderRequest, OrderType, TimeInForce, Trade,
    VenueOrderRef,
};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{ExchangeAccountRecord, ExchangeAccountStatus};

use crate::ApiError;
use crate::api::exchange_accounts::owned;
use crate::api::shown::{Amounts, pair_of};
use crate::extract::{ApiJson, ApiQuery, ClientInfo, decimal_text};
use crate::keys;
use crate::manual_orders;
use crate::order_guard;
use crate::session::Authed;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairQuery {
    pair: String,
    #[serde(default)]
    reveal: Option<bool>,
    #[serde(default)]
    limit: Option<u16>,
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn order_json(pair: &Pair, order: &OrderReport, amounts: &Amounts) -> Value {
    json!({
        "id": order.venue_order_id,
        "client_order_id": order.client_order_id,
        "pair": pair.to_3commas(),
        "side": side_name(order.side),
        "status": order.status.as_str().to_ascii_lowercase(),
        "price": order.price.normalize().to_string(),
        "quantity": amounts.show(order.orig_qty),
        "executed_quantity": amounts.show(order.executed_qty),
        "executed_quote": amounts.show(order.cumulative_quote_qty),
        "fills": order.fills.iter().map(|fill| json!({
            "price": fill.price.normalize().to_string(),
            "quantity": amounts.show(fill.qty),
            "fee": amounts.show(fill.commission),
            "fee_asset": fill.commission_asset,
        })).collect::<Vec<_>>(),
        "updated_at": order.updated_at,
    })
}

fn trade_json(pair: &Pair, trade: &Trade, amounts: &Amounts) -> Value {
    json!({
        "id": trade.id,
        "order_id": trade.venue_order_id,
        "pair": pair.to_3commas(),
        "side": side_name(trade.side),
        "price": trade.price.normalize().to_string(),
        "quantity": amounts.show(trade.qty),
        "quote_quantity": amounts.show(trade.quote_qty),
        "fee": amounts.show(trade.commission),
        "fee_asset": trade.commission_asset,
        "maker": trade.maker,
        "time": trade.time,
    })
}

/// What to tell the user when the venue refused or failed an order request.
fn order_error(err: &ExchangeError) -> ApiError {
    match err {
        ExchangeError::FilterFailure(message) | ExchangeError::OrderRejected { message, .. } => {
            ApiError::OrderRejected(format!("The exchange refused the order: {message}"))
        }
        ExchangeError::CancelRejected(_) | ExchangeError::OrderNotFound => ApiError::NotFound,
        ExchangeError::OutcomeUnknown { .. } => ApiError::OrderRejected(
            "The exchange did not answer whether the order was placed. Look at the open orders before trying again."
                .to_owned(),
        ),
        ExchangeError::InvalidRequest { .. } => {
            ApiError::InvalidInput { field: "pair", message: "The exchange does not list this pair.".to_owned() }
        }
        other => keys::venue_error(other),
    }
}

fn exchange_for(state: &AppState, account: &ExchangeAccountRecord) -> Result<std::sync::Arc<dyn Exchange>, ApiError> {
    keys::open_account(state, account)
}

/// The pair asked about and the port of the user's account `id`.
async fn pair_and_exchange(
    state: &AppState,
    authed: &Authed,
    id: &str,
    pair: &str,
) -> Result<(Pair, std::sync::Arc<dyn Exchange>), ApiError> {
    let pair = pair_of(pair)?;
    let account = owned(state, authed, id).await?;
    Ok((pair, exchange_for(state, &account)?))
}

/// `GET /api/v1/exchange-accounts/{id}/markets`: the pairs the account can trade, with their rules.
pub async fn markets(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let exchange = exchange_for(&state, &account)?;
    let markets = exchange.markets(&[]).await.map_err(|err| keys::venue_error(&err))?;
    let body: Vec<Value> = markets
        .iter()
        .filter(|m| m.trading)
        .map(|m| {
            let text = |v: Option<Decimal>| v.map(|v| v.normalize().to_string());
            json!({
                "pair": m.pair.to_3commas(),
                "symbol": m.venue_symbol,
                "base": m.pair.base,
                "quote": m.pair.quote,
                "tick_size": text(m.filters.tick_size),
                "step_size": text(m.filters.step_size),
                "min_quantity": text(m.filters.min_qty),
                "min_notional": text(m.filters.min_notional),
            })
        })
        .collect();
    Ok(axum::Json(body).into_response())
}

/// `GET /api/v1/exchange-accounts/{id}/orders?pair=`: the open orders on a pair.
pub async fn open_orders(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PairQuery>,
) -> Result<Response, ApiError> {
    let (pair, exchange) = pair_and_exchange(&state, &authed, &id, &query.pair).await?;
    let orders = exchange.open_orders(&pair).await.map_err(|err| order_error(&err))?;
    let amounts = Amounts::new(&authed, query.reveal);
    Ok(axum::Json(orders.iter().map(|o| order_json(&pair, o, &amounts)).collect::<Vec<_>>()).into_response())
}

/// `GET /api/v1/exchange-accounts/{id}/trades?pair=`: the account's fills on a pair, newest first.
pub async fn trades(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PairQuery>,
) -> Result<Response, ApiError> {
    let (pair, exchange) = pair_and_exchange(&state, &authed, &id, &query.pair).await?;
    let mut trades = exchange.my_trades(&pair, None).await.map_err(|err| order_error(&err))?;
    trades.reverse();
    let amounts = Amounts::new(&authed, query.reveal);
    Ok(axum::Json(trades.iter().map(|t| trade_json(&pair, t, &amounts)).collect::<Vec<_>>()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    pair: String,
    side: String,
    #[serde(rename = "type")]
    order_type: String,
    #[serde(default)]
    quantity: Option<Value>,
    #[serde(default)]
    quote_quantity: Option<Value>,
    #[serde(default)]
    price: Option<Value>,
}

/// A Decimal from a JSON string or number (`spec/api.md` HTTP conventions).
fn decimal(field: &'static str, raw: Option<&Value>) -> Result<Option<Decimal>, ApiError> {
    let bad = || ApiError::InvalidInput { field, message: format!("{field} is a positive number, e.g. \"0.01\".") };
    let Some(raw) = raw else { return Ok(None) };
    let text = decimal_text(raw).ok_or_else(bad)?;
    let value: Decimal = text.parse().map_err(|_| bad())?;
    if value <= Decimal::ZERO {
        return Err(bad());
    }
    Ok(Some(value))
}

/// `POST /api/v1/exchange-accounts/{id}/orders`: a manual order on a paper account. The quantity is
/// rounded down to the market's step and a limit price onto its tick (buys down, sells up), and
/// the market's filters are checked before the order is sent.
pub async fn place(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OrderBody>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    if account.status != ExchangeAccountStatus::Active {
        return Err(ApiError::Conflict {
            code: "account_paused",
            message: "Trading on this account is paused; check the key again first.",
        });
    }
    let pair = pair_of(&body.pair)?;
    let side = match body.side.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        _ => return Err(ApiError::InvalidInput { field: "side", message: "side is buy or sell.".to_owned() }),
    };
    let quantity = decimal("quantity", body.quantity.as_ref())?;
    let quote_quantity = decimal("quote_quantity", body.quote_quantity.as_ref())?;
    let price = decimal("price", body.price.as_ref())?;
    let exchange = exchange_for(&state, &account)?;
    let market = exchange
        .markets(std::slice::from_ref(&pair))
        .await
        .map_err(|err| order_error(&err))?
        .into_iter()
        .find(|m| m.pair == pair && m.trading)
        .ok_or_else(|| ApiError::InvalidInput {
            field: "pair",
            message: "This market is not open for trading.".to_owned(),
        })?;
    let filters = &market.filters;
    let invalid = |field: &'static str, message: &str| ApiError::InvalidInput { field, message: message.to_owned() };
    let (order_type, amount, check_price, check_qty) = match (body.order_type.as_str(), quantity, quote_quantity, price)
    {
        ("limit", Some(qty), None, Some(price)) => {
            let price = filters.round_price(price, side);
            let qty = filters.round_qty(qty);
            let order_type = OrderType::Limit {
                price: Price::new(price).map_err(|_| invalid("price", "The price rounds to zero."))?,
                time_in_force: TimeInForce::Gtc,
            };
            (
                order_type,
                OrderAmount::Base(Qty::new(qty).map_err(|_| invalid("quantity", "The quantity rounds to zero."))?),
                price,
                qty,
            )
        }
        ("market", Some(qty), None, None) => {
            let qty = filters.round_qty(qty);
            let last = exchange.ticker(&pair).await.map_err(|err| order_error(&err))?.last_price;
            let amount =
                OrderAmount::Base(Qty::new(qty).map_err(|_| invalid("quantity", "The quantity rounds to zero."))?);
            (OrderType::Market, amount, last, qty)
        }
        ("market", None, Some(quote), None) => {
            let last = exchange.ticker(&pair).await.map_err(|err| order_error(&err))?.last_price;
            let amount =
                OrderAmount::Quote(Qty::new(quote).map_err(|_| invalid("quote_quantity", "Give a positive amount."))?);
            let approx_qty = if last.is_zero() { Decimal::ZERO } else { filters.round_qty(quote / last) };
            (OrderType::Market, amount, last, approx_qty)
        }
        _ => {
            return Err(invalid(
                "type",
                "A limit order needs quantity and price; a market order needs quantity or quote_quantity (not both) and no price.",
            ));
        }
    };
    if let Err(violation) = filters.check(check_price, check_qty) {
        return Err(ApiError::OrderRejected(format!(
            "The order does not fit the market's rules ({violation}): tick {}, step {}, minimum order value {}.",
            filters.tick_size.unwrap_or_default().normalize(),
            filters.step_size.unwrap_or_default().normalize(),
            filters.min_notional.unwrap_or_default().normalize(),
        )));
    }
    let mut id_bytes = [0u8; 12];
    state.random.fill(&mut id_bytes);
    let client_order_id = id_bytes.iter().fold(String::from("bw-m-"), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    });
    let client_order_id = ClientOrderId::parse(&client_order_id).map_err(ApiError::internal)?;
    let request =
        OrderRequest { pair: pair.clone(), side, order_type, amount, client_order_id: client_order_id.clone() };
    // The order guard (TR-1) sees a manual order like a bot's: recorded as an intent first.
    let now = state.now();
    let (kind, quantity, quote_amount) = match (&request.order_type, request.amount) {
        (OrderType::Market, OrderAmount::Quote(q)) => (OrderKind::Market, None, Some(q.get())),
        (OrderType::Market, OrderAmount::Base(q)) => (OrderKind::Market, Some(q.get()), None),
        (_, OrderAmount::Base(q)) => (OrderKind::Limit, Some(q.get()), None),
        (_, OrderAmount::Quote(q)) => (OrderKind::Limit, None, Some(q.get())),
    };
    let intent = OrderIntent::pending(
        NewOrder {
            client_order_id: client_order_id.as_str().to_owned(),
            user_id: authed.user.id,
            exchange_account_id: account.id,
            pair: pair.clone(),
            deal_id: None,
            seq: 0,
            role: OrderRole::Manual,
            safety_index: 0,
            side,
            kind,
            price: check_price,
            quantity,
            quote_amount,
        },
        now,
    );
    let ticker = exchange.ticker(&pair).await.map_err(|err| order_error(&err))?;
    if let Err(refusal) = order_guard::check(&state, &account, &intent, &ticker, now).await? {
        let detail = json!({
            "exchange_account_id": account.id, "client_order_id": client_order_id.as_str(),
            "pair": pair.to_3commas(), "side": side_name(side), "code": refusal.code(), "reason": refusal.to_string(),
        });
        state.store.append_audit(&state.audit(Some(authed.user.id), "order.refused", &client, detail)).await?;
        return Err(order_guard::refusal_error(&refusal));
    }
    let detail = json!({
        "exchange_account_id": account.id, "exchange": account.exchange, "client_order_id": client_order_id.as_str(),
        "pair": pair.to_3commas(), "side": side_name(side), "type": body.order_type,
    });
    let audit = state.audit(Some(authed.user.id), "exchange_key.used", &client, detail);
    state.store.record_order(&intent, Some(&audit)).await?;
    let result = state.metrics.manual_order(&account.exchange, exchange.place_order(&request).await);
    let now = state.now();
    let answered = match &result {
        Ok(report) => Some(manual_orders::reported(&*exchange, &intent, report, now).await),
        // Placed or not, nobody can tell yet: the reconciler looks it up (`manual_orders`).
        Err(ExchangeError::OutcomeUnknown { .. } | ExchangeError::Protocol(_)) => None,
        Err(ExchangeError::NotPlaced) => Some(OrderIntent { state: IntentState::NotPlaced, updated_at: now, ..intent }),
        Err(err) => {
            Some(OrderIntent { state: IntentState::Rejected, error: Some(err.to_string()), updated_at: now, ..intent })
        }
    };
    // Only forward: when the answer took long, the reconciler may have written a later state.
    if let Some(answered) = answered
        && !state.store.advance_order(&answered).await?
    {
        tracing::debug!(order = %answered.client_order_id, "a manual order was already further along than its answer");
    }
    let report = result.map_err(|err| order_error(&err))?;
    let amounts = Amounts::new(&authed, Some(true));
    Ok((StatusCode::CREATED, axum::Json(order_json(&pair, &report, &amounts))).into_response())
}

/// `DELETE /api/v1/exchange-accounts/{id}/orders/{order_id}?pair=`: cancels an open order.
pub async fn cancel(
    State(state): State<AppState>,
    authed: Authed,
    Path((id, order_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PairQuery>,
) -> Result<Response, ApiError> {
    if order_id.is_empty() || order_id.len() > 20 || !order_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::NotFound);
    }
    let (pair, exchange) = pair_and_exchange(&state, &authed, &id, &query.pair).await?;
    let report =
        exchange.cancel_order(&pair, &VenueOrderRef::VenueId(order_id)).await.map_err(|err| order_error(&err))?;
    Ok(axum::Json(order_json(&pair, &report, &Amounts::new(&authed, query.reveal))).into_response())
}

/// `GET /api/v1/exchange-accounts/{id}/chart.svg?pair=&limit=`: the last one-minute candles of a
/// pair drawn as an SVG (candlesticks and the last price), rendered here so the page needs no
/// charting library and no inline script.
pub async fn chart(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PairQuery>,
) -> Result<Response, ApiError> {
    let (pair, exchange) = pair_and_exchange(&state, &authed, &id, &query.pair).await?;
    let limit = query.limit.unwrap_or(60).clamp(2, 240);
    let candles = exchange.candles(&pair, limit).await.map_err(|err| order_error(&err))?;
    let svg = crate::chart::candles_svg(&pair.to_3commas(), &candles);
    Ok(([(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}
