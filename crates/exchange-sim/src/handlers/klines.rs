//! `GET /api/v3/klines` (security NONE): the candles a symbol went through, from its price path,
//! a replay or prices set by hand, aggregated to the interval asked for.

use crate::candles::{Candle, Interval};
use crate::error::ApiError;
use crate::handlers::{Reply, Request, json};
use crate::state::SimState;
use crate::wire::amount;

/// `limit`'s default and maximum (a larger one is served as the maximum).
const DEFAULT_LIMIT: u64 = 500;
const MAX_LIMIT: u64 = 1_000;

/// One kline as Binance sends it: open time, open, high, low, close, volume, close time, quote
/// volume, number of trades, taker buy base volume, taker buy quote volume, and an unused field.
type Kline = (i64, String, String, String, String, String, i64, String, u64, String, String, &'static str);

pub(crate) fn klines(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = request.params;
    let symbol = params.required_symbol()?;
    let interval = params.required("interval")?;
    let symbol = state.exchange.symbol(symbol)?;
    let interval = Interval::parse(interval).ok_or_else(ApiError::bad_interval)?;
    let start = params.long("startTime")?.map(to_ms);
    let end = params.long("endTime")?.map(to_ms);
    let limit = match params.long("limit")? {
        None => DEFAULT_LIMIT,
        Some(0) => return Err(ApiError::invalid_param("limit")),
        Some(limit) => limit.min(MAX_LIMIT),
    };
    // Only UTC: the simulator has no use for shifted day boundaries.
    if let Some(zone) = params.optional("timeZone")?
        && !matches!(zone, "0" | "+0" | "-0" | "0:00" | "00:00" | "+00:00" | "-00:00")
    {
        return Err(ApiError::invalid_param("timeZone"));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let rows: Vec<Kline> =
        symbol.candles.klines(interval, start, end, limit).iter().map(|candle| kline(candle, interval)).collect();
    json(&rows)
}

fn kline(candle: &Candle, interval: Interval) -> Kline {
    (
        candle.open_time_ms,
        amount(candle.open),
        amount(candle.high),
        amount(candle.low),
        amount(candle.close),
        amount(candle.volume),
        candle.open_time_ms + interval.length_ms() - 1,
        amount(candle.quote_volume),
        candle.trades,
        amount(candle.taker_buy_volume),
        amount(candle.taker_buy_quote_volume),
        "0",
    )
}

fn to_ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
