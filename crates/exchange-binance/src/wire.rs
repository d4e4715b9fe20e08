//! Binance's JSON shapes, and their translation into the port's types. Numbers travel as strings.

use std::str::FromStr;

use domain::{Asset, Decimal, MarketFilters, OrderStatus, Pair, Side, Timestamp};
use exchange::{ExchangeError, Fill, KeyPermissions, Market, OrderEvent, OrderReport, Trade};
use serde::Deserialize;

fn protocol(what: &str) -> ExchangeError {
    ExchangeError::Protocol(what.to_owned())
}

fn side(raw: &str) -> Result<Side, ExchangeError> {
    match raw {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(protocol("unknown order side")),
    }
}

fn asset(raw: &str) -> Result<Asset, ExchangeError> {
    Asset::parse(raw).map_err(|_| protocol("unreadable asset name"))
}

/// One row of `GET /api/v3/klines`: `[openTime, open, high, low, close, volume, closeTime, ...]`
/// with the prices and volume as strings.
pub fn kline(row: &[serde_json::Value]) -> Result<exchange::Candle, ExchangeError> {
    let bad = || protocol("unreadable kline");
    let number = |index: usize| -> Result<Decimal, ExchangeError> {
        row.get(index).and_then(serde_json::Value::as_str).and_then(|s| Decimal::from_str(s).ok()).ok_or_else(bad)
    };
    let open_time = row.first().and_then(serde_json::Value::as_i64).ok_or_else(bad)?;
    Ok(exchange::Candle {
        open_time: Timestamp::from_unix_millis(open_time),
        open: number(1)?,
        high: number(2)?,
        low: number(3)?,
        close: number(4)?,
        volume: number(5)?,
    })
}

#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub code: i64,
    pub msg: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    pub server_time: i64,
}

#[derive(Debug, Deserialize)]
pub struct ExchangeInfo {
    pub symbols: Vec<SymbolInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolInfo {
    pub symbol: String,
    pub status: String,
    pub base_asset: String,
    pub quote_asset: String,
    #[serde(default)]
    pub filters: Vec<serde_json::Value>,
}

impl SymbolInfo {
    pub fn into_market(self) -> Result<Market, ExchangeError> {
        let mut filters = MarketFilters::default();
        for filter in &self.filters {
            let field = |name: &str| -> Option<Decimal> {
                filter.get(name).and_then(|v| v.as_str()).and_then(|s| Decimal::from_str(s).ok())
            };
            match filter.get("filterType").and_then(|v| v.as_str()) {
                Some("PRICE_FILTER") => {
                    filters.tick_size = field("tickSize");
                    filters.min_price = field("minPrice");
                    filters.max_price = field("maxPrice");
                }
                Some("LOT_SIZE") => {
                    filters.step_size = field("stepSize");
                    filters.min_qty = field("minQty");
                    filters.max_qty = field("maxQty");
                }
                Some("NOTIONAL") => {
                    filters.min_notional = field("minNotional");
                    filters.max_notional = field("maxNotional");
                }
                Some("MIN_NOTIONAL") => filters.min_notional = field("minNotional"),
                Some("MAX_NUM_ORDERS") => {
                    filters.max_num_orders = filter
                        .get("maxNumOrders")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok());
                }
                _ => {}
            }
        }
        Ok(Market {
            pair: Pair { base: asset(&self.base_asset)?, quote: asset(&self.quote_asset)? },
            venue_symbol: self.symbol,
            trading: self.status == "TRADING",
            filters,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker24h {
    #[serde(with = "rust_decimal::serde::str")]
    pub last_price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub quote_volume: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub price_change_percent: Decimal,
}

#[derive(Debug, Deserialize)]
pub struct Account {
    pub balances: Vec<BalanceEntry>,
}

#[derive(Debug, Deserialize)]
pub struct BalanceEntry {
    pub asset: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub free: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub locked: Decimal,
}

impl BalanceEntry {
    pub fn into_balance(self) -> Result<exchange::Balance, ExchangeError> {
        Ok(exchange::Balance { asset: asset(&self.asset)?, free: self.free, locked: self.locked })
    }
}

/// `GET /sapi/v1/account/apiRestrictions`. Fields a schema version leaves out read as `false`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRestrictions {
    pub ip_restrict: bool,
    #[serde(default)]
    pub enable_reading: bool,
    pub enable_withdrawals: bool,
    #[serde(default)]
    pub enable_internal_transfer: bool,
    #[serde(default)]
    pub permits_universal_transfer: bool,
    #[serde(default)]
    pub enable_margin: bool,
    #[serde(default)]
    pub enable_futures: bool,
    pub enable_spot_and_margin_trading: bool,
}

impl From<ApiRestrictions> for KeyPermissions {
    fn from(raw: ApiRestrictions) -> KeyPermissions {
        KeyPermissions {
            reading: raw.enable_reading,
            spot_trading: raw.enable_spot_and_margin_trading,
            withdrawals: raw.enable_withdrawals,
            internal_transfer: raw.enable_internal_transfer,
            universal_transfer: raw.permits_universal_transfer,
            margin: raw.enable_margin,
            futures: raw.enable_futures,
            ip_restricted: raw.ip_restrict,
        }
    }
}

/// An order as `POST`, `GET` and `DELETE /api/v3/order` and `openOrders` return it. The cancel answer
/// names the original client id `origClientOrderId`; the others `clientOrderId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub symbol: String,
    pub order_id: i64,
    pub client_order_id: String,
    #[serde(default)]
    pub orig_client_order_id: Option<String>,
    #[serde(default)]
    pub transact_time: Option<i64>,
    #[serde(default)]
    pub update_time: Option<i64>,
    #[serde(default)]
    pub time: Option<i64>,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub orig_qty: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub executed_qty: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub cummulative_quote_qty: Decimal,
    pub status: String,
    pub side: String,
    #[serde(default)]
    pub fills: Vec<OrderFill>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFill {
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub commission: Decimal,
    pub commission_asset: String,
    #[serde(default)]
    pub trade_id: Option<i64>,
}

impl Order {
    pub fn into_report(self) -> Result<OrderReport, ExchangeError> {
        let updated = self.update_time.or(self.transact_time).or(self.time).unwrap_or_default();
        let fills = self
            .fills
            .into_iter()
            .map(|fill| {
                Ok(Fill {
                    price: fill.price,
                    qty: fill.qty,
                    commission: fill.commission,
                    commission_asset: asset(&fill.commission_asset)?,
                    trade_id: fill.trade_id.map(|id| id.to_string()),
                })
            })
            .collect::<Result<Vec<_>, ExchangeError>>()?;
        Ok(OrderReport {
            venue_symbol: self.symbol,
            venue_order_id: self.order_id.to_string(),
            client_order_id: self.orig_client_order_id.unwrap_or(self.client_order_id),
            side: side(&self.side)?,
            status: OrderStatus::from_str(&self.status).map_err(|_| protocol("unknown order status"))?,
            price: self.price,
            orig_qty: self.orig_qty,
            executed_qty: self.executed_qty,
            cumulative_quote_qty: self.cummulative_quote_qty,
            fills,
            updated_at: Timestamp::from_unix_millis(updated),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MyTrade {
    pub symbol: String,
    pub id: i64,
    pub order_id: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub qty: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub quote_qty: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub commission: Decimal,
    pub commission_asset: String,
    pub time: i64,
    pub is_buyer: bool,
    pub is_maker: bool,
}

impl MyTrade {
    pub fn into_trade(self) -> Result<Trade, ExchangeError> {
        Ok(Trade {
            id: self.id.to_string(),
            venue_order_id: self.order_id.to_string(),
            venue_symbol: self.symbol,
            side: if self.is_buyer { Side::Buy } else { Side::Sell },
            price: self.price,
            qty: self.qty,
            quote_qty: self.quote_qty,
            commission: self.commission,
            commission_asset: asset(&self.commission_asset)?,
            maker: self.is_maker,
            time: Timestamp::from_unix_millis(self.time),
        })
    }
}

/// `POST /api/v3/userDataStream`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenKeyReply {
    pub listen_key: String,
}

impl std::fmt::Debug for ListenKeyReply {
    /// Without the key: whoever has it can read the account's order updates.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenKeyReply")
    }
}

/// One message of the user data stream (`user-data-stream.md`), by its event type `e`.
#[derive(Debug, Deserialize)]
#[serde(tag = "e")]
pub enum UserEvent {
    #[serde(rename = "executionReport")]
    ExecutionReport(Box<ExecutionReport>),
    /// The listen key expired: the connection ends after it.
    #[serde(rename = "listenKeyExpired")]
    ListenKeyExpired,
    /// `outboundAccountPosition`, `balanceUpdate`, `listStatus` and whatever comes next.
    #[serde(other)]
    Other,
}

impl UserEvent {
    /// # Errors
    /// `ExchangeError::Protocol` for a message that is not a JSON object with an `e`, or an
    /// `executionReport` without a field the port needs.
    pub fn parse(text: &str) -> Result<UserEvent, ExchangeError> {
        serde_json::from_str(text).map_err(|_| protocol("unreadable user data stream event"))
    }
}

/// `executionReport`: an order's state after a change, with the execution when there was one. The
/// fields the port does not use (order type, time in force, stop and iceberg prices, ...) are not
/// read.
#[derive(Debug, Deserialize)]
pub struct ExecutionReport {
    #[serde(rename = "s")]
    pub symbol: String,
    /// The client order id; for a cancel, the cancel request's own id.
    #[serde(rename = "c")]
    pub client_order_id: String,
    #[serde(rename = "S")]
    pub side: String,
    #[serde(rename = "q", with = "rust_decimal::serde::str")]
    pub quantity: Decimal,
    #[serde(rename = "p", with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// For a cancel, the id of the order canceled; otherwise empty.
    #[serde(rename = "C", default)]
    pub original_client_order_id: Option<String>,
    #[serde(rename = "x")]
    pub execution_type: String,
    #[serde(rename = "X")]
    pub order_status: String,
    #[serde(rename = "i")]
    pub order_id: i64,
    #[serde(rename = "l", with = "rust_decimal::serde::str")]
    pub last_executed_quantity: Decimal,
    #[serde(rename = "z", with = "rust_decimal::serde::str")]
    pub cumulative_filled_quantity: Decimal,
    #[serde(rename = "L", with = "rust_decimal::serde::str")]
    pub last_executed_price: Decimal,
    #[serde(rename = "n", with = "rust_decimal::serde::str")]
    pub commission: Decimal,
    #[serde(rename = "N", default)]
    pub commission_asset: Option<String>,
    #[serde(rename = "T")]
    pub transaction_time: i64,
    #[serde(rename = "t")]
    pub trade_id: i64,
    #[serde(rename = "Z", with = "rust_decimal::serde::str")]
    pub cumulative_quote_quantity: Decimal,
}

impl ExecutionReport {
    /// # Errors
    /// `ExchangeError::Protocol` for an unknown side or status, or a trade without its commission
    /// asset (its fee could not be booked, so the caller should look the order up instead).
    pub fn into_event(self) -> Result<OrderEvent, ExchangeError> {
        let last_fill = if self.execution_type == "TRADE" {
            let commission_asset =
                self.commission_asset.as_deref().ok_or_else(|| protocol("a trade without its commission asset"))?;
            Some(Fill {
                price: self.last_executed_price,
                qty: self.last_executed_quantity,
                commission: self.commission,
                commission_asset: asset(commission_asset)?,
                trade_id: (self.trade_id >= 0).then(|| self.trade_id.to_string()),
            })
        } else {
            None
        };
        // A cancel names the canceled order in `C` and the cancel request in `c`: report the order.
        let client_order_id = match self.original_client_order_id {
            Some(original) if !original.is_empty() => original,
            _ => self.client_order_id,
        };
        Ok(OrderEvent {
            venue_symbol: self.symbol,
            client_order_id,
            venue_order_id: self.order_id.to_string(),
            side: side(&self.side)?,
            status: OrderStatus::from_str(&self.order_status).map_err(|_| protocol("unknown order status"))?,
            price: self.price,
            orig_qty: self.quantity,
            executed_qty: self.cumulative_filled_quantity,
            cumulative_quote_qty: self.cumulative_quote_quantity,
            last_fill,
            at: Timestamp::from_unix_millis(self.transaction_time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload example of `executionReport` in binance-spot-api-docs `user-data-stream.md`,
    /// without its comments and the conditional fields of trailing-stop and strategy orders.
    const DOCUMENTED_REPORT: &str = r#"{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW",
        "S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,
        "C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0",
        "N":null,"T":1499405658657,"t":-1,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,
        "Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1499405658657,"V":"NONE"}"#;

    fn report(text: &str) -> Result<OrderEvent, ExchangeError> {
        match UserEvent::parse(text)? {
            UserEvent::ExecutionReport(report) => report.into_event(),
            other => panic!("not an execution report: {other:?}"),
        }
    }

    #[test]
    fn the_documented_execution_report_reads() {
        let event = report(DOCUMENTED_REPORT).unwrap();
        assert_eq!(event.venue_symbol, "ETHBTC");
        assert_eq!(event.client_order_id, "mUvoqJxFIILMdfAW5iGSOW", "an empty C leaves c");
        assert_eq!(event.venue_order_id, "4293153");
        assert_eq!((event.side, event.status), (Side::Buy, OrderStatus::New));
        assert_eq!(event.price, Decimal::from_str("0.1026441").unwrap());
        assert_eq!(event.orig_qty, Decimal::ONE);
        assert!(event.executed_qty.is_zero() && event.cumulative_quote_qty.is_zero());
        assert_eq!(event.last_fill, None);
        assert_eq!(event.at, Timestamp::from_unix_millis(1_499_405_658_657));
    }

    #[test]
    fn a_trade_carries_its_fill_and_a_cancel_the_original_client_order_id() {
        let changed = |fields: serde_json::Value| {
            let mut report: serde_json::Value = serde_json::from_str(DOCUMENTED_REPORT).unwrap();
            for (name, value) in fields.as_object().unwrap() {
                report[name] = value.clone();
            }
            report.to_string()
        };
        let trade = serde_json::json!({"x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.25000000", "z": "0.25000000",
            "L": "0.10264410", "n": "0.00025000", "N": "ETH", "t": 77, "Z": "0.02566102", "Y": "0.02566102"});
        let event = report(&changed(trade.clone())).unwrap();
        assert_eq!(event.status, OrderStatus::PartiallyFilled);
        assert_eq!(event.executed_qty, Decimal::from_str("0.25").unwrap());
        assert_eq!(event.cumulative_quote_qty, Decimal::from_str("0.02566102").unwrap());
        let fill = event.last_fill.unwrap();
        assert_eq!(
            (fill.price, fill.qty),
            (Decimal::from_str("0.1026441").unwrap(), Decimal::from_str("0.25").unwrap())
        );
        assert_eq!((fill.commission, fill.commission_asset.as_str()), (Decimal::from_str("0.00025").unwrap(), "ETH"));
        assert_eq!(fill.trade_id.as_deref(), Some("77"));

        // Binance names the cancel request in `c` and the canceled order in `C`.
        let cancel = serde_json::json!({"c": "cancelRequest0001", "C": "mUvoqJxFIILMdfAW5iGSOW", "x": "CANCELED",
            "X": "CANCELED"});
        let event = report(&changed(cancel)).unwrap();
        assert_eq!((event.status, event.client_order_id.as_str()), (OrderStatus::Canceled, "mUvoqJxFIILMdfAW5iGSOW"));

        let mut no_asset = trade;
        no_asset["N"] = serde_json::Value::Null;
        assert!(matches!(report(&changed(no_asset)), Err(ExchangeError::Protocol(_))));
    }

    #[test]
    fn other_events_are_told_apart_and_garbage_is_a_protocol_error() {
        // The documented `outboundAccountPosition`, `balanceUpdate` and `listenKeyExpired` payloads.
        let position = r#"{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,
            "B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}"#;
        let balance = r#"{"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"100.00000000","T":1573200697068}"#;
        let expired = r#"{"e":"listenKeyExpired","E":"1699596037418","listenKey":"OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8"}"#;
        assert!(matches!(UserEvent::parse(position), Ok(UserEvent::Other)));
        assert!(matches!(UserEvent::parse(balance), Ok(UserEvent::Other)));
        assert!(matches!(UserEvent::parse(expired), Ok(UserEvent::ListenKeyExpired)));
        for bad in ["", "[]", "{}", r#"{"e":"executionReport","s":"BTCUSDT"}"#] {
            assert!(matches!(UserEvent::parse(bad), Err(ExchangeError::Protocol(_))), "{bad}");
        }
        let unknown_status = DOCUMENTED_REPORT.replace(r#""X":"NEW""#, r#""X":"SOMETHING_NEW""#);
        assert!(matches!(report(&unknown_status), Err(ExchangeError::Protocol(_))));
    }

    #[test]
    fn documented_full_order_response_reads() {
        // Shaped like the FULL response example of Binance's rest-api.md (POST /api/v3/order).
        let body = r#"{"symbol":"BTCUSDT","orderId":28,"orderListId":-1,"clientOrderId":"6gCrw2kRUAF9CvJDGP16IP",
            "transactTime":1507725176595,"price":"0.00000000","origQty":"10.00000000","executedQty":"10.00000000",
            "origQuoteOrderQty":"0.000000","cummulativeQuoteQty":"10.00000000","status":"FILLED","timeInForce":"GTC",
            "type":"MARKET","side":"SELL","workingTime":1507725176595,"selfTradePreventionMode":"NONE",
            "fills":[{"price":"4000.00000000","qty":"1.00000000","commission":"4.00000000","commissionAsset":"USDT","tradeId":56},
                     {"price":"3999.00000000","qty":"5.00000000","commission":"19.99500000","commissionAsset":"USDT","tradeId":57}]}"#;
        let report = serde_json::from_str::<Order>(body).unwrap().into_report().unwrap();
        assert_eq!(report.venue_order_id, "28");
        assert_eq!(report.status, OrderStatus::Filled);
        assert_eq!(report.side, Side::Sell);
        assert_eq!(report.fills.len(), 2);
        assert_eq!(report.fills[1].commission, Decimal::from_str("19.995").unwrap());
        assert_eq!(report.fills[1].trade_id.as_deref(), Some("57"));
    }

    #[test]
    fn documented_api_restrictions_response_reads() {
        // The response example of GET /sapi/v1/account/apiRestrictions (Binance wallet docs, "Get API
        // Key Permission"), without its comments.
        let body = r#"{"ipRestrict":false,"createTime":1698645219000,"enableReading":true,"enableWithdrawals":false,
            "enableInternalTransfer":false,"enableMargin":false,"enableFutures":false,"permitsUniversalTransfer":false,
            "enableVanillaOptions":false,"enableFixApiTrade":false,"enableFixReadOnly":true,
            "enableSpotAndMarginTrading":false,"enablePortfolioMarginTrading":true}"#;
        let permissions = KeyPermissions::from(serde_json::from_str::<ApiRestrictions>(body).unwrap());
        assert!(permissions.reading);
        assert!(!permissions.withdrawals && !permissions.internal_transfer && !permissions.universal_transfer);
        assert!(!permissions.spot_trading && !permissions.ip_restricted);
    }

    #[test]
    fn a_missing_withdrawal_field_is_a_protocol_error_not_a_pass() {
        // Refusing withdraw-capable keys must never depend on a default.
        let body = r#"{"ipRestrict":true,"enableSpotAndMarginTrading":true}"#;
        assert!(serde_json::from_str::<ApiRestrictions>(body).is_err());
    }

    #[test]
    fn the_documented_kline_row_reads() {
        // The response example of GET /api/v3/klines (Binance rest-api.md), one row.
        let body = r#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",
            1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]]"#;
        let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(body).unwrap();
        let candle = kline(&rows[0]).unwrap();
        assert_eq!(candle.open_time, Timestamp::from_unix_millis(1_499_040_000_000));
        assert_eq!(candle.high, Decimal::from_str("0.8").unwrap());
        assert_eq!(candle.close, Decimal::from_str("0.015771").unwrap());
        assert_eq!(candle.volume, Decimal::from_str("148976.11427815").unwrap());
        assert!(kline(&rows[0][..3]).is_err());
    }

    #[test]
    fn filters_read_from_exchange_info() {
        let body = r#"{"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC","filters":[
            {"filterType":"PRICE_FILTER","minPrice":"0.00000100","maxPrice":"100000.00000000","tickSize":"0.00000100"},
            {"filterType":"LOT_SIZE","minQty":"0.00100000","maxQty":"100000.00000000","stepSize":"0.00100000"},
            {"filterType":"NOTIONAL","minNotional":"0.00010000","applyMinToMarket":true,"maxNotional":"9000000.00000000","applyMaxToMarket":false,"avgPriceMins":5},
            {"filterType":"MAX_NUM_ORDERS","maxNumOrders":200},{"filterType":"ICEBERG_PARTS","limit":10}]}"#;
        let market = serde_json::from_str::<SymbolInfo>(body).unwrap().into_market().unwrap();
        assert_eq!(market.pair.to_3commas(), "BTC_ETH");
        assert!(market.trading);
        assert_eq!(market.filters.tick_size, Some(Decimal::from_str("0.000001").unwrap()));
        assert_eq!(market.filters.step_size, Some(Decimal::from_str("0.001").unwrap()));
        assert_eq!(market.filters.min_notional, Some(Decimal::from_str("0.0001").unwrap()));
        assert_eq!(market.filters.max_num_orders, Some(200));
    }
}
