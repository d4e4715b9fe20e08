//! The trading vocabulary shared by every venue: assets, pairs, sides, order states, and a market's
//! filters with the Decimal rounding that makes an order acceptable to the venue.
//!
//! Money is `rust_decimal::Decimal` (ARCHITECTURE.md: no `f64` touches a price, a quantity or a
//! balance). Rounding is done with the remainder operator, which is exact in `Decimal`, never by
//! dividing and multiplying back.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// An asset ticker such as `BTC` or `USDT`: 1 to 20 ASCII letters or digits, kept upper case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Asset(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    #[error("an asset is 1 to 20 letters or digits")]
    InvalidAsset,
    #[error("a pair is written QUOTE_BASE, e.g. USDT_BTC")]
    InvalidPair,
    #[error("a price must be greater than zero")]
    NonPositivePrice,
    #[error("a quantity must be greater than zero")]
    NonPositiveQty,
    #[error("unknown order status {0:?}")]
    UnknownStatus(String),
}

impl Asset {
    /// # Errors
    /// `MarketError::InvalidAsset` unless the text is 1–20 ASCII letters or digits.
    pub fn parse(raw: &str) -> Result<Asset, MarketError> {
        if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MarketError::InvalidAsset);
        }
        Ok(Asset(raw.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Asset({})", self.0)
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Asset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A traded pair. Bot settings and webhooks write it the 3Commas way, quote first: `USDT_BTC`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    pub base: Asset,
    pub quote: Asset,
}

impl Pair {
    /// Parses the 3Commas form `QUOTE_BASE`.
    ///
    /// # Errors
    /// `MarketError::InvalidPair` for anything else, including a pair of one asset with itself.
    pub fn parse_3commas(raw: &str) -> Result<Pair, MarketError> {
        let (quote, base) = raw.split_once('_').ok_or(MarketError::InvalidPair)?;
        let quote = Asset::parse(quote).map_err(|_| MarketError::InvalidPair)?;
        let base = Asset::parse(base).map_err(|_| MarketError::InvalidPair)?;
        if quote == base {
            return Err(MarketError::InvalidPair);
        }
        Ok(Pair { base, quote })
    }

    pub fn to_3commas(&self) -> String {
        format!("{}_{}", self.quote, self.base)
    }
}

/// Buy or sell, from the account's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// Where an order stands at the venue. The names and meanings are Binance's; other venues map onto
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
    ];

    /// A terminal order never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Rejected | OrderStatus::Expired)
    }

    /// Whether a report of `next` may follow one of `self` for the same order. Reports can repeat
    /// (the same state twice is allowed) but never go back: a partly filled order cannot become new
    /// again, a terminal one cannot change, and only a new order can be rejected.
    pub fn can_become(self, next: OrderStatus) -> bool {
        if self == next {
            return true;
        }
        match self {
            OrderStatus::New => true,
            OrderStatus::PartiallyFilled => {
                matches!(next, OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Expired)
            }
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
        }
    }
}

impl FromStr for OrderStatus {
    type Err = MarketError;

    /// Binance's names. `PENDING_NEW` (an order list leg not yet live) counts as new and
    /// `EXPIRED_IN_MATCH` (expired by self-trade prevention) as expired.
    fn from_str(raw: &str) -> Result<OrderStatus, MarketError> {
        Ok(match raw {
            "NEW" | "PENDING_NEW" => OrderStatus::New,
            "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
            "FILLED" => OrderStatus::Filled,
            "CANCELED" | "PENDING_CANCEL" => OrderStatus::Canceled,
            "REJECTED" => OrderStatus::Rejected,
            "EXPIRED" | "EXPIRED_IN_MATCH" => OrderStatus::Expired,
            other => return Err(MarketError::UnknownStatus(other.to_owned())),
        })
    }
}

/// A price: a Decimal greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(Decimal);

impl Price {
    /// # Errors
    /// `MarketError::NonPositivePrice` for zero or less.
    pub fn new(value: Decimal) -> Result<Price, MarketError> {
        if value <= Decimal::ZERO {
            return Err(MarketError::NonPositivePrice);
        }
        Ok(Price(value.normalize()))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

/// An amount of an asset to trade: a Decimal greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qty(Decimal);

impl Qty {
    /// # Errors
    /// `MarketError::NonPositiveQty` for zero or less.
    pub fn new(value: Decimal) -> Result<Qty, MarketError> {
        if value <= Decimal::ZERO {
            return Err(MarketError::NonPositiveQty);
        }
        Ok(Qty(value.normalize()))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

/// Which way to round onto a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Toward zero: never more than asked (quantities, buy prices).
    Down,
    /// Away from zero: never less than asked (sell prices).
    Up,
}

/// `value` on the grid of multiples of `step`. A zero or negative step means "no grid" and returns
/// the value unchanged (Binance sends a step of 0 for a disabled filter). Exact: uses the Decimal
/// remainder. Negative values are rounded by magnitude.
pub fn round_to_step(value: Decimal, step: Decimal, rounding: Rounding) -> Decimal {
    if step <= Decimal::ZERO {
        return value;
    }
    let remainder = value % step;
    if remainder.is_zero() {
        return value.normalize();
    }
    let down = value - remainder;
    match rounding {
        Rounding::Down => down.normalize(),
        Rounding::Up if value.is_sign_negative() => (down - step).normalize(),
        Rounding::Up => (down + step).normalize(),
    }
}

/// The rules a venue applies to every order on one market (Binance `exchangeInfo` filters). Each
/// bound is `None` when the venue does not apply it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketFilters {
    pub tick_size: Option<Decimal>,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
    pub step_size: Option<Decimal>,
    pub min_qty: Option<Decimal>,
    pub max_qty: Option<Decimal>,
    pub min_notional: Option<Decimal>,
    pub max_notional: Option<Decimal>,
    pub max_num_orders: Option<u32>,
}

/// Which filter an order breaks, named as Binance names them in `Filter failure: <NAME>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FilterViolation {
    #[error("Filter failure: PRICE_FILTER")]
    PriceFilter,
    #[error("Filter failure: LOT_SIZE")]
    LotSize,
    #[error("Filter failure: NOTIONAL")]
    Notional,
}

impl MarketFilters {
    /// The price on the tick grid: buys round down (never pay more than asked), sells round up
    /// (never sell for less).
    pub fn round_price(&self, price: Decimal, side: Side) -> Decimal {
        let step = self.tick_size.unwrap_or_default();
        match side {
            Side::Buy => round_to_step(price, step, Rounding::Down),
            Side::Sell => round_to_step(price, step, Rounding::Up),
        }
    }

    /// The quantity on the step grid, rounded down: an order never trades more than asked.
    pub fn round_qty(&self, qty: Decimal) -> Decimal {
        round_to_step(qty, self.step_size.unwrap_or_default(), Rounding::Down)
    }

    /// Checks an order of `qty` at `price` the way the venue will. `price` is the limit price, or
    /// the reference price for a market order.
    ///
    /// # Errors
    /// The first filter the order breaks.
    pub fn check(&self, price: Decimal, qty: Decimal) -> Result<(), FilterViolation> {
        let off_grid = |value: Decimal, step: Option<Decimal>| {
            step.is_some_and(|step| step > Decimal::ZERO && !(value % step).is_zero())
        };
        let below = |value: Decimal, bound: Option<Decimal>| bound.is_some_and(|b| b > Decimal::ZERO && value < b);
        let above = |value: Decimal, bound: Option<Decimal>| bound.is_some_and(|b| b > Decimal::ZERO && value > b);
        if price <= Decimal::ZERO
            || off_grid(price, self.tick_size)
            || below(price, self.min_price)
            || above(price, self.max_price)
        {
            return Err(FilterViolation::PriceFilter);
        }
        if qty <= Decimal::ZERO || off_grid(qty, self.step_size) || below(qty, self.min_qty) || above(qty, self.max_qty)
        {
            return Err(FilterViolation::LotSize);
        }
        let notional = price * qty;
        if below(notional, self.min_notional) || above(notional, self.max_notional) {
            return Err(FilterViolation::Notional);
        }
        Ok(())
    }
}

/// Binance's BTCUSDT rules (tick 0.01, step and minimum quantity 0.00001, minimum notional 5), for
/// the tests of this crate.
#[cfg(test)]
pub(crate) fn btcusdt_filters() -> MarketFilters {
    let dec = |raw: &str| raw.parse::<Decimal>().expect("a decimal literal");
    MarketFilters {
        tick_size: Some(dec("0.01")),
        min_price: Some(dec("0.01")),
        max_price: Some(dec("1000000")),
        step_size: Some(dec("0.00001")),
        min_qty: Some(dec("0.00001")),
        max_qty: Some(dec("9000")),
        min_notional: Some(dec("5")),
        max_notional: None,
        max_num_orders: Some(200),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::prelude::*;

    use super::*;

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).unwrap()
    }

    #[test]
    fn pairs_read_and_write_quote_first() {
        let pair = Pair::parse_3commas("USDT_BTC").unwrap();
        assert_eq!(pair.quote.as_str(), "USDT");
        assert_eq!(pair.base.as_str(), "BTC");
        assert_eq!(pair.to_3commas(), "USDT_BTC");
        assert_eq!(Pair::parse_3commas("usdt_eth").unwrap().to_3commas(), "USDT_ETH");
        for bad in ["USDTBTC", "_BTC", "USDT_", "USDT_USDT", "US-DT_BTC", "USDT_BTC_X"] {
            assert_eq!(Pair::parse_3commas(bad), Err(MarketError::InvalidPair), "{bad}");
        }
    }

    #[test]
    fn rounding_examples() {
        let f = btcusdt_filters();
        assert_eq!(f.round_price(dec("30000.129"), Side::Buy), dec("30000.12"));
        assert_eq!(f.round_price(dec("30000.121"), Side::Sell), dec("30000.13"));
        assert_eq!(f.round_price(dec("30000.12"), Side::Sell), dec("30000.12"));
        assert_eq!(f.round_qty(dec("0.123456789")), dec("0.12345"));
        assert_eq!(round_to_step(dec("7"), Decimal::ZERO, Rounding::Up), dec("7"));
        assert_eq!(round_to_step(dec("-0.015"), dec("0.01"), Rounding::Down), dec("-0.01"));
        assert_eq!(round_to_step(dec("-0.015"), dec("0.01"), Rounding::Up), dec("-0.02"));
    }

    #[test]
    fn check_names_the_filter_binance_would_name() {
        let f = btcusdt_filters();
        assert_eq!(f.check(dec("30000.12"), dec("0.001")), Ok(()));
        assert_eq!(f.check(dec("30000.123"), dec("0.001")), Err(FilterViolation::PriceFilter));
        assert_eq!(f.check(dec("0"), dec("0.001")), Err(FilterViolation::PriceFilter));
        assert_eq!(f.check(dec("30000"), dec("0.000015")), Err(FilterViolation::LotSize));
        assert_eq!(f.check(dec("30000"), dec("9001")), Err(FilterViolation::LotSize));
        assert_eq!(f.check(dec("30000"), dec("0.0001")), Err(FilterViolation::Notional));
        assert_eq!(FilterViolation::LotSize.to_string(), "Filter failure: LOT_SIZE");
    }

    #[test]
    fn statuses_parse_binance_names_and_never_go_back() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
            if status.is_terminal() {
                assert!(OrderStatus::ALL.iter().all(|&next| next == status || !status.can_become(next)));
            }
        }
        assert!(OrderStatus::New.can_become(OrderStatus::Rejected));
        assert!(!OrderStatus::PartiallyFilled.can_become(OrderStatus::New));
        assert!(!OrderStatus::PartiallyFilled.can_become(OrderStatus::Rejected));
        assert!("BOGUS".parse::<OrderStatus>().is_err());
    }

    fn decimal(max_scale: u32) -> impl Strategy<Value = Decimal> {
        (1i64..1_000_000_000_000, 0..=max_scale).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
    }

    fn step() -> impl Strategy<Value = Decimal> {
        (1i64..1000, 0u32..=8).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
    }

    proptest! {
        #[test]
        fn rounding_lands_on_the_grid_within_one_step(value in decimal(12), step in step()) {
            let down = round_to_step(value, step, Rounding::Down);
            let up = round_to_step(value, step, Rounding::Up);
            prop_assert!((down % step).is_zero());
            prop_assert!((up % step).is_zero());
            prop_assert!(down <= value && value <= up);
            prop_assert!(value - down < step);
            prop_assert!(up - value < step);
            prop_assert!(up == down || up - down == step);
            // Rounding is idempotent.
            prop_assert_eq!(round_to_step(down, step, Rounding::Down), down);
            prop_assert_eq!(round_to_step(up, step, Rounding::Up), up);
        }

        #[test]
        fn rounded_orders_pass_the_grid_filters(price in decimal(6), qty in decimal(10), buy in any::<bool>()) {
            let f = MarketFilters { min_price: None, max_price: None, min_qty: None, max_qty: None,
                                    min_notional: None, ..btcusdt_filters() };
            let side = if buy { Side::Buy } else { Side::Sell };
            let price = f.round_price(price, side);
            let qty = f.round_qty(qty);
            if price > Decimal::ZERO && qty > Decimal::ZERO {
                prop_assert_eq!(f.check(price, qty), Ok(()));
            }
            match side {
                Side::Buy => prop_assert!(price <= f.round_price(price + dec("0.01"), side)),
                Side::Sell => prop_assert!(price >= f.round_price(price - dec("0.01"), side)),
            }
        }

        #[test]
        fn order_status_sequences_never_leave_a_terminal_state(seq in proptest::collection::vec(0usize..6, 1..12)) {
            let mut current = OrderStatus::New;
            for index in seq {
                let next = OrderStatus::ALL[index];
                if current.can_become(next) {
                    prop_assert!(!current.is_terminal() || next == current);
                    current = next;
                }
            }
        }
    }
}
