//! The JSON shapes of the replies, field for field as binance-spot-api-docs shows them. Amounts
//! travel as strings with 8 decimals (`"0.10000000"`), times as integer milliseconds.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::account::SimBalance;
use crate::config::{SimLimits, SimPermissions, SimSymbol};
use crate::market::SymbolState;
use crate::order::{SimOrder, SimTrade};

/// An amount as Binance writes it: 8 decimals.
pub(crate) fn amount(value: Decimal) -> String {
    format!("{value:.8}")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerTime {
    pub(crate) server_time: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExchangeInfo {
    pub(crate) timezone: &'static str,
    pub(crate) server_time: i64,
    pub(crate) rate_limits: Vec<RateLimit>,
    pub(crate) exchange_filters: Vec<serde_json::Value>,
    pub(crate) symbols: Vec<SymbolInfo>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RateLimit {
    rate_limit_type: &'static str,
    interval: &'static str,
    interval_num: u32,
    limit: u32,
}

impl RateLimit {
    /// The limits `exchangeInfo` publishes (the `RAW_REQUESTS` one is Binance's, not enforced).
    pub(crate) fn all(limits: &SimLimits) -> Vec<Self> {
        let limit =
            |rate_limit_type, interval, interval_num, limit| Self { rate_limit_type, interval, interval_num, limit };
        vec![
            limit("REQUEST_WEIGHT", "MINUTE", 1, limits.request_weight_per_minute),
            limit("ORDERS", "SECOND", 10, limits.orders_per_10s),
            limit("ORDERS", "DAY", 1, limits.orders_per_day),
            limit("RAW_REQUESTS", "MINUTE", 5, 61_000),
        ]
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SymbolInfo {
    symbol: String,
    status: &'static str,
    base_asset: String,
    base_asset_precision: u32,
    quote_asset: String,
    quote_precision: u32,
    quote_asset_precision: u32,
    base_commission_precision: u32,
    quote_commission_precision: u32,
    order_types: [&'static str; 3],
    iceberg_allowed: bool,
    oco_allowed: bool,
    oto_allowed: bool,
    quote_order_qty_market_allowed: bool,
    allow_trailing_stop: bool,
    cancel_replace_allowed: bool,
    amend_allowed: bool,
    is_spot_trading_allowed: bool,
    is_margin_trading_allowed: bool,
    filters: Vec<Filter>,
    permissions: [&'static str; 0],
    permission_sets: [[&'static str; 1]; 1],
    default_self_trade_prevention_mode: &'static str,
    allowed_self_trade_prevention_modes: [&'static str; 1],
}

impl SymbolInfo {
    pub(crate) fn new(rules: &SimSymbol, max_open_orders: u32) -> Self {
        Self {
            symbol: rules.symbol.clone(),
            status: "TRADING",
            base_asset: rules.base.clone(),
            base_asset_precision: 8,
            quote_asset: rules.quote.clone(),
            quote_precision: 8,
            quote_asset_precision: 8,
            base_commission_precision: 8,
            quote_commission_precision: 8,
            order_types: ["LIMIT", "LIMIT_MAKER", "MARKET"],
            iceberg_allowed: false,
            oco_allowed: false,
            oto_allowed: false,
            quote_order_qty_market_allowed: true,
            allow_trailing_stop: false,
            cancel_replace_allowed: false,
            amend_allowed: false,
            is_spot_trading_allowed: true,
            is_margin_trading_allowed: false,
            filters: vec![
                Filter::Price {
                    min_price: amount(rules.min_price),
                    max_price: amount(rules.max_price),
                    tick_size: amount(rules.tick_size),
                },
                Filter::LotSize {
                    min_qty: amount(rules.min_qty),
                    max_qty: amount(rules.max_qty),
                    step_size: amount(rules.step_size),
                },
                Filter::Notional {
                    min_notional: amount(rules.min_notional),
                    apply_min_to_market: true,
                    max_notional: amount(rules.max_notional),
                    apply_max_to_market: false,
                    avg_price_mins: 5,
                },
                Filter::MaxNumOrders { max_num_orders: max_open_orders },
            ],
            permissions: [],
            permission_sets: [["SPOT"]],
            default_self_trade_prevention_mode: "NONE",
            allowed_self_trade_prevention_modes: ["NONE"],
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "filterType", rename_all = "SCREAMING_SNAKE_CASE")]
enum Filter {
    #[serde(rename = "PRICE_FILTER", rename_all = "camelCase")]
    Price { min_price: String, max_price: String, tick_size: String },
    #[serde(rename_all = "camelCase")]
    LotSize { min_qty: String, max_qty: String, step_size: String },
    #[serde(rename_all = "camelCase")]
    Notional {
        min_notional: String,
        apply_min_to_market: bool,
        max_notional: String,
        apply_max_to_market: bool,
        avg_price_mins: u32,
    },
    #[serde(rename_all = "camelCase")]
    MaxNumOrders { max_num_orders: u32 },
}

#[derive(Serialize)]
pub(crate) struct TickerPrice {
    symbol: String,
    price: String,
}

impl TickerPrice {
    pub(crate) fn new(symbol: &SymbolState) -> Self {
        Self { symbol: symbol.rules.symbol.clone(), price: amount(symbol.price) }
    }
}

/// `ticker/24hr`, `type=FULL` (the default).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Ticker24hFull {
    symbol: String,
    price_change: String,
    price_change_percent: String,
    weighted_avg_price: String,
    prev_close_price: String,
    last_price: String,
    last_qty: String,
    bid_price: String,
    bid_qty: String,
    ask_price: String,
    ask_qty: String,
    open_price: String,
    high_price: String,
    low_price: String,
    volume: String,
    quote_volume: String,
    open_time: i64,
    close_time: i64,
    first_id: i64,
    last_id: i64,
    count: u64,
}

/// `ticker/24hr`, `type=MINI`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Ticker24hMini {
    symbol: String,
    open_price: String,
    high_price: String,
    low_price: String,
    last_price: String,
    volume: String,
    quote_volume: String,
    open_time: i64,
    close_time: i64,
    first_id: i64,
    last_id: i64,
    count: u64,
}

const DAY_MS: i64 = 86_400_000;

/// A trade id for the ticker: Binance sends -1 when the window has no trades.
fn trade_id(id: Option<u64>) -> i64 {
    id.and_then(|id| i64::try_from(id).ok()).unwrap_or(-1)
}

impl Ticker24hFull {
    pub(crate) fn new(symbol: &SymbolState, now_ms: i64) -> Self {
        let stats = &symbol.stats;
        let change = symbol.price - stats.open_price;
        let percent =
            if stats.open_price.is_zero() { Decimal::ZERO } else { change * Decimal::ONE_HUNDRED / stats.open_price };
        let weighted = if stats.volume.is_zero() { symbol.price } else { stats.quote_volume / stats.volume };
        let (bid, ask) = symbol.best_bid_ask();
        let (_, level_qty) = symbol.depth(1, 0);
        let top_qty = level_qty.first().map_or(Decimal::ZERO, |(_, qty)| *qty);
        Self {
            symbol: symbol.rules.symbol.clone(),
            price_change: amount(change),
            price_change_percent: format!("{percent:.3}"),
            weighted_avg_price: amount(weighted),
            prev_close_price: amount(stats.open_price),
            last_price: amount(symbol.price),
            last_qty: amount(stats.last_qty),
            bid_price: amount(bid),
            bid_qty: amount(top_qty),
            ask_price: amount(ask),
            ask_qty: amount(top_qty),
            open_price: amount(stats.open_price),
            high_price: amount(stats.high),
            low_price: amount(stats.low),
            volume: amount(stats.volume),
            quote_volume: amount(stats.quote_volume),
            open_time: now_ms - DAY_MS,
            close_time: now_ms,
            first_id: trade_id(stats.first_trade_id),
            last_id: trade_id(stats.last_trade_id),
            count: stats.trade_count,
        }
    }
}

impl Ticker24hMini {
    pub(crate) fn new(symbol: &SymbolState, now_ms: i64) -> Self {
        let stats = &symbol.stats;
        Self {
            symbol: symbol.rules.symbol.clone(),
            open_price: amount(stats.open_price),
            high_price: amount(stats.high),
            low_price: amount(stats.low),
            last_price: amount(symbol.price),
            volume: amount(stats.volume),
            quote_volume: amount(stats.quote_volume),
            open_time: now_ms - DAY_MS,
            close_time: now_ms,
            first_id: trade_id(stats.first_trade_id),
            last_id: trade_id(stats.last_trade_id),
            count: stats.trade_count,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Depth {
    last_update_id: u64,
    bids: Vec<[String; 2]>,
    asks: Vec<[String; 2]>,
}

impl Depth {
    pub(crate) fn new(symbol: &SymbolState, limit: usize, seed: u64) -> Self {
        let (bids, asks) = symbol.depth(limit, seed);
        let level = |(price, qty): (Decimal, Decimal)| [amount(price), amount(qty)];
        Self {
            last_update_id: symbol.update_id,
            bids: bids.into_iter().map(level).collect(),
            asks: asks.into_iter().map(level).collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountInfo {
    pub(crate) maker_commission: u32,
    pub(crate) taker_commission: u32,
    pub(crate) buyer_commission: u32,
    pub(crate) seller_commission: u32,
    pub(crate) commission_rates: CommissionRates,
    pub(crate) can_trade: bool,
    pub(crate) can_withdraw: bool,
    pub(crate) can_deposit: bool,
    pub(crate) brokered: bool,
    pub(crate) require_self_trade_prevention: bool,
    pub(crate) prevent_sor: bool,
    pub(crate) update_time: i64,
    pub(crate) account_type: &'static str,
    pub(crate) balances: Vec<Balance>,
    pub(crate) permissions: [&'static str; 1],
    pub(crate) uid: u64,
}

#[derive(Serialize)]
pub(crate) struct CommissionRates {
    pub(crate) maker: String,
    pub(crate) taker: String,
    pub(crate) buyer: String,
    pub(crate) seller: String,
}

#[derive(Serialize)]
pub(crate) struct Balance {
    asset: String,
    free: String,
    locked: String,
}

impl Balance {
    pub(crate) fn new(asset: &str, balance: &SimBalance) -> Self {
        Self { asset: asset.to_owned(), free: amount(balance.free), locked: amount(balance.locked) }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiRestrictions {
    ip_restrict: bool,
    create_time: i64,
    enable_reading: bool,
    enable_withdrawals: bool,
    enable_internal_transfer: bool,
    enable_margin: bool,
    enable_futures: bool,
    permits_universal_transfer: bool,
    enable_vanilla_options: bool,
    enable_fix_api_trade: bool,
    enable_fix_read_only: bool,
    enable_spot_and_margin_trading: bool,
    enable_portfolio_margin_trading: bool,
}

impl ApiRestrictions {
    pub(crate) fn new(permissions: &SimPermissions, create_time: i64) -> Self {
        Self {
            ip_restrict: permissions.ip_restricted,
            create_time,
            enable_reading: permissions.reading,
            enable_withdrawals: permissions.withdrawals,
            enable_internal_transfer: permissions.internal_transfer,
            enable_margin: false,
            enable_futures: false,
            permits_universal_transfer: permissions.universal_transfer,
            enable_vanilla_options: false,
            enable_fix_api_trade: false,
            enable_fix_read_only: false,
            enable_spot_and_margin_trading: permissions.spot_trading,
            enable_portfolio_margin_trading: false,
        }
    }
}

/// `POST /api/v3/order` with `newOrderRespType=ACK`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderAck {
    symbol: String,
    order_id: u64,
    order_list_id: i64,
    client_order_id: String,
    transact_time: i64,
}

impl OrderAck {
    pub(crate) fn new(order: &SimOrder) -> Self {
        Self {
            symbol: order.symbol.clone(),
            order_id: order.order_id,
            order_list_id: -1,
            client_order_id: order.client_order_id.clone(),
            transact_time: order.time,
        }
    }
}

/// `POST /api/v3/order` with `newOrderRespType=RESULT` (and, with `fills`, `FULL`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderResult {
    symbol: String,
    order_id: u64,
    order_list_id: i64,
    client_order_id: String,
    transact_time: i64,
    price: String,
    orig_qty: String,
    executed_qty: String,
    orig_quote_order_qty: String,
    cummulative_quote_qty: String,
    status: &'static str,
    time_in_force: &'static str,
    #[serde(rename = "type")]
    order_type: &'static str,
    side: &'static str,
    working_time: i64,
    self_trade_prevention_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fills: Option<Vec<Fill>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Fill {
    price: String,
    qty: String,
    commission: String,
    commission_asset: String,
    trade_id: u64,
}

impl OrderResult {
    /// The RESULT shape; `fills` makes it the FULL shape.
    pub(crate) fn new(order: &SimOrder, fills: Option<&[SimTrade]>) -> Self {
        Self {
            symbol: order.symbol.clone(),
            order_id: order.order_id,
            order_list_id: -1,
            client_order_id: order.client_order_id.clone(),
            transact_time: order.time,
            price: amount(order.price),
            orig_qty: amount(order.orig_qty),
            executed_qty: amount(order.executed_qty),
            orig_quote_order_qty: amount(order.orig_quote_order_qty),
            cummulative_quote_qty: amount(order.cummulative_quote_qty),
            status: order.status.as_str(),
            time_in_force: order.time_in_force.as_str(),
            order_type: order.order_type.as_str(),
            side: order.side.as_str(),
            working_time: order.working_time,
            self_trade_prevention_mode: "NONE",
            fills: fills.map(|trades| {
                trades
                    .iter()
                    .map(|trade| Fill {
                        price: amount(trade.price),
                        qty: amount(trade.qty),
                        commission: amount(trade.commission),
                        commission_asset: trade.commission_asset.clone(),
                        trade_id: trade.id,
                    })
                    .collect()
            }),
        }
    }
}

/// `GET /api/v3/order` and the entries of `GET /api/v3/openOrders`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderView {
    symbol: String,
    order_id: u64,
    order_list_id: i64,
    client_order_id: String,
    price: String,
    orig_qty: String,
    executed_qty: String,
    cummulative_quote_qty: String,
    status: &'static str,
    time_in_force: &'static str,
    #[serde(rename = "type")]
    order_type: &'static str,
    side: &'static str,
    stop_price: String,
    iceberg_qty: String,
    time: i64,
    update_time: i64,
    is_working: bool,
    working_time: i64,
    orig_quote_order_qty: String,
    self_trade_prevention_mode: &'static str,
}

impl OrderView {
    pub(crate) fn new(order: &SimOrder) -> Self {
        Self {
            symbol: order.symbol.clone(),
            order_id: order.order_id,
            order_list_id: -1,
            client_order_id: order.client_order_id.clone(),
            price: amount(order.price),
            orig_qty: amount(order.orig_qty),
            executed_qty: amount(order.executed_qty),
            cummulative_quote_qty: amount(order.cummulative_quote_qty),
            status: order.status.as_str(),
            time_in_force: order.time_in_force.as_str(),
            order_type: order.order_type.as_str(),
            side: order.side.as_str(),
            stop_price: amount(Decimal::ZERO),
            iceberg_qty: amount(Decimal::ZERO),
            time: order.time,
            update_time: order.update_time,
            is_working: true,
            working_time: order.working_time,
            orig_quote_order_qty: amount(order.orig_quote_order_qty),
            self_trade_prevention_mode: "NONE",
        }
    }
}

/// `DELETE /api/v3/order`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelResult {
    symbol: String,
    orig_client_order_id: String,
    order_id: u64,
    order_list_id: i64,
    client_order_id: String,
    transact_time: i64,
    price: String,
    orig_qty: String,
    executed_qty: String,
    orig_quote_order_qty: String,
    cummulative_quote_qty: String,
    status: &'static str,
    time_in_force: &'static str,
    #[serde(rename = "type")]
    order_type: &'static str,
    side: &'static str,
    self_trade_prevention_mode: &'static str,
}

impl CancelResult {
    /// `cancel_client_order_id` names the cancel request itself (`newClientOrderId` or generated).
    pub(crate) fn new(order: &SimOrder, cancel_client_order_id: String, now_ms: i64) -> Self {
        Self {
            symbol: order.symbol.clone(),
            orig_client_order_id: order.client_order_id.clone(),
            order_id: order.order_id,
            order_list_id: -1,
            client_order_id: cancel_client_order_id,
            transact_time: now_ms,
            price: amount(order.price),
            orig_qty: amount(order.orig_qty),
            executed_qty: amount(order.executed_qty),
            orig_quote_order_qty: amount(order.orig_quote_order_qty),
            cummulative_quote_qty: amount(order.cummulative_quote_qty),
            status: order.status.as_str(),
            time_in_force: order.time_in_force.as_str(),
            order_type: order.order_type.as_str(),
            side: order.side.as_str(),
            self_trade_prevention_mode: "NONE",
        }
    }
}

/// An entry of `GET /api/v3/myTrades`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MyTrade {
    symbol: String,
    id: u64,
    order_id: u64,
    order_list_id: i64,
    price: String,
    qty: String,
    quote_qty: String,
    commission: String,
    commission_asset: String,
    time: i64,
    is_buyer: bool,
    is_maker: bool,
    is_best_match: bool,
}

impl MyTrade {
    pub(crate) fn new(trade: &SimTrade) -> Self {
        Self {
            symbol: trade.symbol.clone(),
            id: trade.id,
            order_id: trade.order_id,
            order_list_id: -1,
            price: amount(trade.price),
            qty: amount(trade.qty),
            quote_qty: amount(trade.quote_qty),
            commission: amount(trade.commission),
            commission_asset: trade.commission_asset.clone(),
            time: trade.time,
            is_buyer: trade.is_buyer,
            is_maker: trade.is_maker,
            is_best_match: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_eight_decimals() {
        assert_eq!(amount(Decimal::new(1, 1)), "0.10000000");
        assert_eq!(amount(Decimal::new(30_000, 0)), "30000.00000000");
        assert_eq!(amount(Decimal::new(123_456_789_012, 11)), "1.23456789");
    }

    #[test]
    fn filters_carry_their_type_tag() {
        let info = SymbolInfo::new(&SimSymbol::new("BTCUSDT", "BTC", "USDT", Decimal::new(30_000, 0)), 200);
        let json = serde_json::to_value(&info).expect("serializes");
        assert_eq!(json["filters"][0]["filterType"], "PRICE_FILTER");
        assert_eq!(json["filters"][0]["tickSize"], "0.01000000");
        assert_eq!(json["filters"][1]["filterType"], "LOT_SIZE");
        assert_eq!(json["filters"][2]["filterType"], "NOTIONAL");
        assert_eq!(json["filters"][2]["applyMinToMarket"], true);
        assert_eq!(json["filters"][3], serde_json::json!({"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200}));
        assert_eq!(json["permissionSets"], serde_json::json!([["SPOT"]]));
    }
}
