//! DCA bots. This version holds the plan preview: the engine's order plan for a set of 3Commas-named
//! settings (`spec/dca.md`), rounded to a market's filters when an exchange account and pair are
//! given, so a user sees before starting a bot whether the venue would take every order.
//!
//! Volumes are in the quote currency only for now (`base_order_volume_type` and
//! `safety_order_volume_type` other than `quote_currency` answer 422).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use domain::{
    DcaError, DcaPlan, DcaSettings, DcaSettingsInput, Decimal, Pair, Price, RoundedPlan, Strategy, TakeProfitType,
    VolumeType,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiError;
use crate::api::exchange_accounts::owned;
use crate::extract::{ApiJson, decimal_text};
use crate::keys;
use crate::session::Authed;
use crate::state::AppState;

/// The body of `POST /api/v1/bots/preview`. Decimals come as JSON strings or numbers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    base_order_volume: Value,
    #[serde(default)]
    base_order_volume_type: Option<String>,
    safety_order_volume: Value,
    #[serde(default)]
    safety_order_volume_type: Option<String>,
    max_safety_orders: Value,
    /// Defaults to `max_safety_orders`: every safety order rests on the book.
    #[serde(default)]
    active_safety_orders_count: Option<Value>,
    safety_order_step_percentage: Value,
    #[serde(default)]
    martingale_step_coefficient: Option<Value>,
    #[serde(default)]
    martingale_volume_coefficient: Option<Value>,
    take_profit: Value,
    #[serde(default)]
    take_profit_type: Option<String>,
    #[serde(default)]
    strategy: Option<String>,
    start_price: Value,
    #[serde(default)]
    exchange_account_id: Option<String>,
    #[serde(default)]
    pair: Option<String>,
}

/// `POST /api/v1/bots/preview`: the plan of one deal.
pub async fn preview(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Response, ApiError> {
    let settings = settings_of(&body)?;
    let start_price = Price::new(decimal("start_price", &body.start_price)?).map_err(|_| ApiError::InvalidInput {
        field: "start_price",
        message: "start_price must be greater than zero.".to_owned(),
    })?;
    let plan = DcaPlan::new(&settings, start_price).map_err(|err| settings_error(&err))?;
    let rounded = match (&body.exchange_account_id, &body.pair) {
        (None, None) => None,
        (Some(id), Some(pair)) => Some(rounded_for(&state, &authed, id, pair, &plan).await?),
        (Some(_), None) => {
            return Err(ApiError::InvalidInput {
                field: "pair",
                message: "Name the pair to round the plan for, as USDT_BTC.".to_owned(),
            });
        }
        (None, Some(_)) => {
            return Err(ApiError::InvalidInput {
                field: "exchange_account_id",
                message: "Name the exchange account whose market rules the plan is rounded to.".to_owned(),
            });
        }
    };
    Ok(axum::Json(plan_json(&plan, rounded.as_ref())).into_response())
}

fn text(value: Decimal) -> String {
    value.normalize().to_string()
}

fn plan_json(plan: &DcaPlan, rounded: Option<&RoundedPlan>) -> Value {
    let Some(rounded) = rounded else {
        let orders: Vec<Value> = plan
            .orders()
            .iter()
            .map(|o| {
                json!({
                    "kind": o.kind.to_string(),
                    "index": o.index,
                    "side": o.side.as_str().to_ascii_lowercase(),
                    "deviation_percent": text(o.deviation_percent),
                    "price": text(o.price),
                    "size_quote": text(o.size_quote),
                    "size_base": text(o.size_base),
                    "total_quote": text(o.total_quote),
                    "average_price": text(o.average_price),
                    "take_profit_price": text(o.take_profit_price),
                    "bounce_percent": text(o.bounce_percent),
                })
            })
            .collect();
        return json!({
            "orders": orders,
            "max_funds_per_deal": text(plan.max_funds_per_deal()),
            "max_deviation_percent": text(plan.max_deviation_percent()),
            "rounded": false,
        });
    };
    let orders: Vec<Value> = plan
        .orders()
        .iter()
        .zip(&rounded.orders)
        .map(|(o, r)| {
            let problems: Vec<String> = r.violation.iter().map(ToString::to_string).collect();
            json!({
                "kind": o.kind.to_string(),
                "index": o.index,
                "side": r.side.as_str().to_ascii_lowercase(),
                "deviation_percent": text(o.deviation_percent),
                "price": text(r.price),
                "size_quote": text(r.notional),
                "size_base": text(r.quantity),
                "total_quote": text(r.total_quote),
                "average_price": r.average_price.map(text),
                "take_profit_price": r.take_profit_price.map(text),
                "planned_price": text(o.price),
                "planned_size_quote": text(o.size_quote),
                "placeable": r.violation.is_none(),
                "problems": problems,
            })
        })
        .collect();
    json!({
        "orders": orders,
        "max_funds_per_deal": text(rounded.max_funds_per_deal()),
        "max_deviation_percent": text(plan.max_deviation_percent()),
        "rounded": true,
        "placeable": rounded.placeable(),
    })
}

async fn rounded_for(
    state: &AppState,
    authed: &Authed,
    id: &str,
    pair: &str,
    plan: &DcaPlan,
) -> Result<RoundedPlan, ApiError> {
    let pair = Pair::parse_3commas(pair).map_err(|_| ApiError::InvalidInput {
        field: "pair",
        message: "Write the pair quote first, as USDT_BTC.".to_owned(),
    })?;
    let account = owned(state, authed, id).await?;
    let exchange = keys::open_account(state, &account)?;
    let not_listed =
        || ApiError::InvalidInput { field: "pair", message: "The exchange does not list this pair.".to_owned() };
    let markets = exchange.markets(std::slice::from_ref(&pair)).await.map_err(|err| match err {
        exchange::ExchangeError::InvalidRequest { .. } => not_listed(),
        other => keys::venue_error(&other),
    })?;
    let market = markets.into_iter().find(|m| m.pair == pair).ok_or_else(not_listed)?;
    Ok(plan.rounded(&market.filters))
}

fn settings_of(body: &PreviewBody) -> Result<DcaSettings, ApiError> {
    let volume_type = |field: &'static str, raw: &Option<String>| match raw {
        None => Ok(VolumeType::QuoteCurrency),
        Some(raw) => VolumeType::parse(field, raw).map_err(|err| settings_error(&err)),
    };
    let coefficient = |field: &'static str, raw: &Option<Value>| match raw {
        None => Ok(Decimal::ONE),
        Some(raw) => decimal(field, raw),
    };
    let max_safety_orders = count("max_safety_orders", &body.max_safety_orders)?;
    let active_safety_orders_count = match &body.active_safety_orders_count {
        None => max_safety_orders,
        Some(raw) => count("active_safety_orders_count", raw)?,
    };
    let take_profit_type = match &body.take_profit_type {
        None => TakeProfitType::Total,
        Some(raw) => raw.parse().map_err(|err| settings_error(&err))?,
    };
    let strategy = match &body.strategy {
        None => Strategy::Long,
        Some(raw) => raw.parse().map_err(|err| settings_error(&err))?,
    };
    let input = DcaSettingsInput {
        base_order_volume: decimal("base_order_volume", &body.base_order_volume)?,
        base_order_volume_type: volume_type("base_order_volume_type", &body.base_order_volume_type)?,
        safety_order_volume: decimal("safety_order_volume", &body.safety_order_volume)?,
        safety_order_volume_type: volume_type("safety_order_volume_type", &body.safety_order_volume_type)?,
        max_safety_orders,
        active_safety_orders_count,
        safety_order_step_percentage: decimal("safety_order_step_percentage", &body.safety_order_step_percentage)?,
        martingale_step_coefficient: coefficient("martingale_step_coefficient", &body.martingale_step_coefficient)?,
        martingale_volume_coefficient: coefficient(
            "martingale_volume_coefficient",
            &body.martingale_volume_coefficient,
        )?,
        take_profit: decimal("take_profit", &body.take_profit)?,
        take_profit_type,
        strategy,
    };
    DcaSettings::new(input).map_err(|err| settings_error(&err))
}

fn settings_error(err: &DcaError) -> ApiError {
    let mut message = err.to_string();
    message.push('.');
    ApiError::InvalidInput { field: err.field(), message }
}

/// A Decimal from a JSON string or number; its sign is checked by the settings.
fn decimal(field: &'static str, raw: &Value) -> Result<Decimal, ApiError> {
    let bad = || ApiError::InvalidInput { field, message: format!("{field} is a number, e.g. \"1.5\".") };
    let text = decimal_text(raw).ok_or_else(bad)?;
    text.parse::<Decimal>().or_else(|_| Decimal::from_scientific(&text)).map_err(|_| bad())
}

/// A whole number of orders; anything above `u32::MAX` is kept out of range for the settings check.
fn count(field: &'static str, raw: &Value) -> Result<u32, ApiError> {
    raw.as_u64()
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .ok_or_else(|| ApiError::InvalidInput { field, message: format!("{field} is a whole number, e.g. 5.") })
}
