//! Orders and trades as the simulator keeps them, and the Binance enumerations they use.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// `BUY` or `SELL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// `BUY`.
    Buy,
    /// `SELL`.
    Sell,
}

/// The order types the simulator executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    /// `LIMIT`.
    Limit,
    /// `MARKET`.
    Market,
    /// `LIMIT_MAKER` (post-only).
    LimitMaker,
}

/// `timeInForce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
}

/// Order status, as in Binance's `status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// `NEW`: resting on the book.
    New,
    /// `PARTIALLY_FILLED`: a candle's volume filled part of a resting order.
    PartiallyFilled,
    /// `FILLED`.
    Filled,
    /// `CANCELED`.
    Canceled,
    /// `EXPIRED`: an IOC or FOK order that could not execute.
    Expired,
}

/// An order of one account, with Binance's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimOrder {
    /// The symbol.
    pub symbol: String,
    /// `orderId`, increasing per symbol from 1.
    pub order_id: u64,
    /// `clientOrderId`: sent as `newClientOrderId` or generated.
    pub client_order_id: String,
    /// The side.
    pub side: Side,
    /// The type.
    pub order_type: OrderType,
    /// `timeInForce` (`GTC` for market and limit-maker orders, as Binance reports them).
    pub time_in_force: TimeInForce,
    /// The limit price; zero for market orders.
    pub price: Decimal,
    /// `origQty`.
    pub orig_qty: Decimal,
    /// `executedQty`.
    pub executed_qty: Decimal,
    /// `cummulativeQuoteQty` (Binance's spelling).
    pub cummulative_quote_qty: Decimal,
    /// `origQuoteOrderQty`: the `quoteOrderQty` of a market order, else zero.
    pub orig_quote_order_qty: Decimal,
    /// The status.
    pub status: OrderStatus,
    /// `time` / `transactTime`: when the order was placed (ms).
    pub time: i64,
    /// `updateTime`: the last change (ms).
    pub update_time: i64,
    /// `workingTime`: when the order went on the book (ms).
    pub working_time: i64,
    /// Funds still reserved for this order, in `reserved_asset` (quote for buys, base for sells).
    pub(crate) reserved: Decimal,
    pub(crate) reserved_asset: String,
}

/// One execution of one order (an entry of `myTrades`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimTrade {
    /// The symbol.
    pub symbol: String,
    /// `id`: the trade id, increasing per symbol from 1.
    pub id: u64,
    /// The order that executed.
    pub order_id: u64,
    /// Execution price.
    pub price: Decimal,
    /// Executed base quantity.
    pub qty: Decimal,
    /// `price * qty`.
    pub quote_qty: Decimal,
    /// Fee, in `commission_asset`.
    pub commission: Decimal,
    /// The asset received: base for buys, quote for sells.
    pub commission_asset: String,
    /// When it executed (ms).
    pub time: i64,
    /// Whether the account bought.
    pub is_buyer: bool,
    /// Whether the order rested on the book (maker) rather than took (taker).
    pub is_maker: bool,
}

/// A new order as `POST /api/v3/order` takes it, typed, for
/// [`ExchangeSim::place_order_in_process`](crate::ExchangeSim::place_order_in_process): the same
/// checks and the same refusals as the parameters of the HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderParams {
    /// `symbol`.
    pub symbol: String,
    /// `side`.
    pub side: Side,
    /// `type`.
    pub order_type: OrderType,
    /// `timeInForce`: mandatory for `LIMIT`, refused for `MARKET` and `LIMIT_MAKER`.
    pub time_in_force: Option<TimeInForce>,
    /// `quantity` (base).
    pub quantity: Option<Decimal>,
    /// `quoteOrderQty` (`MARKET` only, instead of `quantity`).
    pub quote_order_qty: Option<Decimal>,
    /// `price` (`LIMIT` and `LIMIT_MAKER`).
    pub price: Option<Decimal>,
    /// `newClientOrderId`; generated when `None`.
    pub new_client_order_id: Option<String>,
}

impl OrderParams {
    /// A `LIMIT` `GTC` order.
    pub fn limit(symbol: &str, side: Side, quantity: Decimal, price: Decimal) -> Self {
        Self {
            order_type: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some(price),
            ..Self::market(symbol, side, quantity)
        }
    }

    /// A `MARKET` order for a base `quantity`.
    pub fn market(symbol: &str, side: Side, quantity: Decimal) -> Self {
        Self {
            symbol: symbol.to_owned(),
            side,
            order_type: OrderType::Market,
            time_in_force: None,
            quantity: Some(quantity),
            quote_order_qty: None,
            price: None,
            new_client_order_id: None,
        }
    }
}

impl Side {
    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "BUY" => Ok(Self::Buy),
            "SELL" => Ok(Self::Sell),
            _ => Err(ApiError::invalid_side()),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
        }
    }
}

impl OrderType {
    /// Parses `type`. Binance's stop and take-profit types are known but not offered by the
    /// simulator's symbols yet, so they get the matching engine's "not supported" rejection.
    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "LIMIT" => Ok(Self::Limit),
            "MARKET" => Ok(Self::Market),
            "LIMIT_MAKER" => Ok(Self::LimitMaker),
            "STOP_LOSS" => Err(ApiError::new_order_rejected("Stop loss orders are not supported for this symbol.")),
            "STOP_LOSS_LIMIT" => {
                Err(ApiError::new_order_rejected("Stop loss limit orders are not supported for this symbol."))
            }
            "TAKE_PROFIT" => Err(ApiError::new_order_rejected("Take profit orders are not supported for this symbol.")),
            "TAKE_PROFIT_LIMIT" => {
                Err(ApiError::new_order_rejected("Take profit limit orders are not supported for this symbol."))
            }
            _ => Err(ApiError::invalid_order_type()),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "LIMIT",
            Self::Market => "MARKET",
            Self::LimitMaker => "LIMIT_MAKER",
        }
    }
}

impl TimeInForce {
    pub(crate) fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "GTC" => Ok(Self::Gtc),
            "IOC" => Ok(Self::Ioc),
            "FOK" => Ok(Self::Fok),
            _ => Err(ApiError::invalid_time_in_force()),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Gtc => "GTC",
            Self::Ioc => "IOC",
            Self::Fok => "FOK",
        }
    }
}

impl OrderStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::PartiallyFilled => "PARTIALLY_FILLED",
            Self::Filled => "FILLED",
            Self::Canceled => "CANCELED",
            Self::Expired => "EXPIRED",
        }
    }

    /// Whether the order is still on the book.
    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::PartiallyFilled)
    }
}

impl SimOrder {
    /// Whether the order is still on the book.
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }

    /// The quantity still to execute.
    pub fn remaining_qty(&self) -> Decimal {
        self.orig_qty - self.executed_qty
    }
}
