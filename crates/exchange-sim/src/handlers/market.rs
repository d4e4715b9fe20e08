//! Market data (security NONE): ping, time, exchange information, tickers and depth.

use crate::error::ApiError;
use crate::handlers::{Reply, Request, json};
use crate::market::SymbolState;
use crate::state::SimState;
use crate::wire::{Depth, ExchangeInfo, RateLimit, ServerTime, SymbolInfo, Ticker24hFull, Ticker24hMini, TickerPrice};

/// Most levels `depth` returns per side.
const MAX_DEPTH_LIMIT: u64 = 5_000;

pub(crate) fn ping() -> Result<Reply, ApiError> {
    Ok(Reply { body: "{}".to_owned(), order_counts: None })
}

pub(crate) fn time(request: &Request<'_>) -> Result<Reply, ApiError> {
    json(&ServerTime { server_time: request.now_ms })
}

pub(crate) fn exchange_info(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let max_open = state.limits.max_open_orders_per_symbol;
    let symbols = selected_symbols(state, request)?.into_iter().map(|symbol| SymbolInfo::new(&symbol.rules, max_open));
    json(&ExchangeInfo {
        timezone: "UTC",
        server_time: request.now_ms,
        rate_limits: RateLimit::all(&state.limits),
        exchange_filters: Vec::new(),
        symbols: symbols.collect(),
    })
}

pub(crate) fn ticker_price(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let single = request.params.optional_symbol()?.is_some();
    let tickers: Vec<_> = selected_symbols(state, request)?.into_iter().map(TickerPrice::new).collect();
    match tickers.first() {
        Some(ticker) if single => json(ticker),
        _ => json(&tickers),
    }
}

pub(crate) fn ticker_24h(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let full = match request.params.optional("type")? {
        None | Some("FULL") => true,
        Some("MINI") => false,
        Some(_) => return Err(ApiError::invalid_ticker_type()),
    };
    let single = request.params.optional_symbol()?.is_some();
    let symbols = selected_symbols(state, request)?;
    let now = request.now_ms;
    match (full, single) {
        (true, true) => json(&symbols.first().map(|symbol| Ticker24hFull::new(symbol, now))),
        (true, false) => json(&symbols.into_iter().map(|symbol| Ticker24hFull::new(symbol, now)).collect::<Vec<_>>()),
        (false, true) => json(&symbols.first().map(|symbol| Ticker24hMini::new(symbol, now))),
        (false, false) => json(&symbols.into_iter().map(|symbol| Ticker24hMini::new(symbol, now)).collect::<Vec<_>>()),
    }
}

pub(crate) fn depth(state: &SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let symbol = state.exchange.symbol(request.params.required_symbol()?)?;
    let limit = match request.params.long("limit")? {
        None => 100,
        Some(0) => return Err(ApiError::invalid_param("limit")),
        Some(limit) => limit.min(MAX_DEPTH_LIMIT),
    };
    json(&Depth::new(symbol, usize::try_from(limit).unwrap_or(100), state.exchange.seed))
}

/// The symbols a `symbol` or `symbols` parameter names, or all of them; -1121 for an unknown one,
/// -1128 when both parameters are sent.
fn selected_symbols<'s>(state: &'s SimState, request: &Request<'_>) -> Result<Vec<&'s SymbolState>, ApiError> {
    let exchange = &state.exchange;
    match (request.params.optional_symbol()?, request.params.symbols()?) {
        (Some(_), Some(_)) => Err(ApiError::bad_combination()),
        (Some(name), None) => Ok(vec![exchange.symbol(name)?]),
        (None, Some(names)) => names.iter().map(|name| exchange.symbol(name)).collect(),
        (None, None) => Ok(exchange.symbols.values().collect()),
    }
}
