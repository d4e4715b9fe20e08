//! The order guard (`spec/security.md` TR-1).
//!
//! Every order, from every path (a deal's orders, manual orders, webhook signals), passes [`check`]
//! against its account's [`TradingPolicy`] before it is signed. This is the lesson of the 2022
//! incident, when attackers holding users' keys pumped illiquid coins by buying them far above the
//! market: the guard refuses a pair outside the allowlist, a price far from the last price, an order
//! or a day's volume above the limits, bursts of orders, and opening positions in illiquid pairs.
//!
//! Orders that close a position are exempt from the size, volume, rate and liquidity limits so a
//! position can always be closed, but never from the allowlist or the price rule.
//!
//! Money is `Decimal`. Arithmetic that can overflow is checked; where a result is too large to
//! represent, the guard decides the way the exact value would (a sum beyond `Decimal::MAX` is above
//! any limit) and otherwise refuses: it never panics.

use std::time::Duration;

use domain::{Decimal, IntentState, OrderIntent, OrderKind, Pair, Side, Timestamp, TradingPolicy};

/// One order as the guard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardOrder<'a> {
    pub pair: &'a Pair,
    pub side: Side,
    pub kind: OrderKind,
    /// The limit price; for a market order, the reference price it will trade near.
    pub price: Decimal,
    /// The order's value in quote.
    pub notional: Decimal,
    /// Opens or adds to a position (base, safety, add funds, manual orders). Orders that close a
    /// position (take profit, stop loss, close at market) are exempt from the notional, volume,
    /// rate and liquidity limits so a position can always be closed, but not from the pair
    /// allowlist and the price deviation rule.
    pub opens_position: bool,
}

/// The market at the moment of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketView {
    pub last_price: Decimal,
    pub quote_volume_24h: Decimal,
}

/// What the account already did, from its recorded order intents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    pub orders_last_minute: u32,
    pub opening_volume_24h: Decimal,
}

/// The window of the per-minute limit.
const MINUTE: Duration = Duration::from_secs(60);
/// The window of the daily volume limit.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Recent {
    /// Counts `orders` (every intent created in the last 24 h of one account) at `now`: orders in the last
    /// 60 s (any role, except those Rejected or NotPlaced), and the notional (`OrderIntent::notional`) of
    /// the position-opening ones (`OrderIntent::opens_position`) in the last 24 h, except Rejected/NotPlaced.
    ///
    /// Both windows are closed at their start: an order created at exactly `now - 60 s` counts toward
    /// the minute, one created at exactly `now - 24 h` toward the day; one millisecond earlier does
    /// not. Orders stamped after `now` (another node's clock running ahead) count in both windows,
    /// the safe side. Orders of other roles (take profit, close) count toward the minute but not the
    /// volume. A negative notional (which no valid intent has) counts as zero so it cannot lower the
    /// total, and a total beyond `Decimal::MAX` stays at `Decimal::MAX` (which refuses any opening
    /// order) instead of overflowing.
    pub fn from_orders(orders: &[OrderIntent], now: Timestamp) -> Recent {
        let minute_start = now.minus(MINUTE);
        let day_start = now.minus(DAY);
        let mut recent = Recent::default();
        for order in orders {
            if matches!(order.state, IntentState::Rejected | IntentState::NotPlaced) {
                continue;
            }
            if order.created_at >= minute_start {
                recent.orders_last_minute = recent.orders_last_minute.saturating_add(1);
            }
            if order.opens_position() && order.created_at >= day_start {
                let notional = intent_notional(order).max(Decimal::ZERO);
                recent.opening_volume_24h = recent.opening_volume_24h.checked_add(notional).unwrap_or(Decimal::MAX);
            }
        }
        recent
    }
}

/// `OrderIntent::notional` without its unchecked multiplication: `Decimal::MAX` where quantity ×
/// price is too large to represent.
fn intent_notional(order: &OrderIntent) -> Decimal {
    match (order.quote_amount, order.quantity) {
        (Some(quote), _) => quote,
        (None, Some(qty)) => qty.checked_mul(order.price).unwrap_or(Decimal::MAX),
        (None, None) => Decimal::ZERO,
    }
}

/// Why the guard refused an order. The message says what was refused and which policy value would
/// allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the pair is not in this account's pair allowlist; add it to pair_allowlist (or empty the list) to trade it"
    )]
    PairNotAllowed,
    #[error(
        "the order's value of {} (in quote) is above the largest order allowed, {}; place a smaller order or raise max_order_notional",
        .notional.normalize(), .limit.normalize()
    )]
    OrderTooLarge { notional: Decimal, limit: Decimal },
    #[error(
        "this order would bring the value of the orders opening positions in the last 24 hours to {}, above the limit of {}; wait, or raise max_daily_volume",
        .would_be.normalize(), .limit.normalize()
    )]
    DailyVolumeExceeded { would_be: Decimal, limit: Decimal },
    #[error(
        "this account reached its limit of {limit} orders per minute; wait a minute, or raise max_orders_per_minute"
    )]
    TooManyOrders { limit: u32 },
    #[error(
        "the order's price is {} % away from the last price, more than the {} % allowed; price it closer to the market or raise max_price_deviation_percent",
        .deviation_percent.normalize(), .limit_percent.normalize()
    )]
    PriceTooFar { deviation_percent: Decimal, limit_percent: Decimal },
    #[error(
        "the pair's volume over the last 24 hours, {} (in quote), is below the minimum of {}; trade a more liquid pair or lower min_quote_volume_24h",
        .quote_volume_24h.normalize(), .minimum.normalize()
    )]
    IlliquidPair { quote_volume_24h: Decimal, minimum: Decimal },
    #[error(
        "there is no last price for this pair to check the order's price against; try again once the market has a price"
    )]
    NoReferencePrice,
}

impl Refusal {
    /// A stable, machine-readable name for the refusal (API error codes, audit records).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::PairNotAllowed => "pair_not_allowed",
            Refusal::OrderTooLarge { .. } => "order_too_large",
            Refusal::DailyVolumeExceeded { .. } => "daily_volume_exceeded",
            Refusal::TooManyOrders { .. } => "too_many_orders",
            Refusal::PriceTooFar { .. } => "price_too_far",
            Refusal::IlliquidPair { .. } => "illiquid_pair",
            Refusal::NoReferencePrice => "no_reference_price",
        }
    }
}

/// Checks one order against its account's policy. The rules, in this order (the first broken one
/// is returned):
///
/// 1. the pair is in `pair_allowlist` (an empty list allows any pair);
/// 2. the market has a last price above zero, else [`Refusal::NoReferencePrice`];
/// 3. `|price − last| / last × 100 <= max_price_deviation_percent`, for both sides and every order
///    (a market order's price is its reference, so it normally passes);
///
/// and only for an order that opens or adds to a position:
///
/// 4. `notional <= max_order_notional`;
/// 5. `opening_volume_24h + notional <= max_daily_volume`;
/// 6. `orders_last_minute < max_orders_per_minute` (this order would be number
///    `orders_last_minute + 1`);
/// 7. `quote_volume_24h >= min_quote_volume_24h`.
///
/// The percent rule is compared exactly, as `|price − last| × 100 <= limit × last`, without a
/// rounded division. A negative notional counts as zero in the daily volume.
///
/// # Errors
/// The first rule the order breaks, as a [`Refusal`].
pub fn check(
    policy: &TradingPolicy,
    order: &GuardOrder<'_>,
    market: &MarketView,
    recent: &Recent,
) -> Result<(), Refusal> {
    if !policy.pair_allowlist.is_empty() && !policy.pair_allowlist.contains(order.pair) {
        return Err(Refusal::PairNotAllowed);
    }
    let last = market.last_price;
    if last <= Decimal::ZERO {
        return Err(Refusal::NoReferencePrice);
    }
    check_deviation(order.price, last, policy.max_price_deviation_percent)?;

    if !order.opens_position {
        return Ok(());
    }
    if order.notional > policy.max_order_notional {
        return Err(Refusal::OrderTooLarge {
            notional: order.notional.normalize(),
            limit: policy.max_order_notional.normalize(),
        });
    }
    // With a notional of zero or more, an overflowing sum is above `Decimal::MAX`, so above any limit.
    let would_be = recent.opening_volume_24h.checked_add(order.notional.max(Decimal::ZERO));
    if would_be.is_none_or(|total| total > policy.max_daily_volume) {
        return Err(Refusal::DailyVolumeExceeded {
            would_be: would_be.unwrap_or(Decimal::MAX).normalize(),
            limit: policy.max_daily_volume.normalize(),
        });
    }
    if recent.orders_last_minute >= policy.max_orders_per_minute {
        return Err(Refusal::TooManyOrders { limit: policy.max_orders_per_minute });
    }
    if market.quote_volume_24h < policy.min_quote_volume_24h {
        return Err(Refusal::IlliquidPair {
            quote_volume_24h: market.quote_volume_24h.normalize(),
            minimum: policy.min_quote_volume_24h.normalize(),
        });
    }
    Ok(())
}

/// Rule 3 for `last > 0`: `|price − last| × 100 <= limit × last`, exact wherever the products are
/// representable.
fn check_deviation(price: Decimal, last: Decimal, limit: Decimal) -> Result<(), Refusal> {
    let too_far = |deviation: Option<Decimal>| Refusal::PriceTooFar {
        deviation_percent: deviation.unwrap_or(Decimal::MAX).normalize(),
        limit_percent: limit.normalize(),
    };
    // `price − last` overflows only for a price below about −7.9e28: refused like any overflow.
    let Some(distance) = price.checked_sub(last).map(|diff| diff.abs()) else {
        return Err(too_far(None));
    };
    let Some(scaled) = distance.checked_mul(Decimal::ONE_HUNDRED) else {
        return Err(too_far(None));
    };
    let within = if limit < Decimal::ZERO {
        false
    } else {
        // An overflowing `limit × last` (both >= 0) is above `Decimal::MAX`, so above `scaled`.
        limit.checked_mul(last).is_none_or(|allowed| scaled <= allowed)
    };
    if within { Ok(()) } else { Err(too_far(shown_deviation(scaled, last))) }
}

/// The deviation in percent for the message, rounded up to two decimals so a refused deviation is
/// never shown at or below its limit.
fn shown_deviation(scaled_distance: Decimal, last: Decimal) -> Option<Decimal> {
    let percent = scaled_distance.checked_div(last)?;
    match percent.checked_mul(Decimal::ONE_HUNDRED) {
        Some(hundredths) => hundredths.ceil().checked_div(Decimal::ONE_HUNDRED),
        None => Some(percent.ceil()),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use domain::{ExchangeAccountId, OrderRole, UserId};
    use proptest::prelude::*;

    use super::*;

    fn dec(raw: &str) -> Decimal {
        Decimal::from_str(raw).unwrap()
    }

    fn pair(raw: &str) -> Pair {
        Pair::parse_3commas(raw).unwrap()
    }

    fn policy() -> TradingPolicy {
        TradingPolicy {
            pair_allowlist: Vec::new(),
            max_order_notional: dec("1000"),
            max_daily_volume: dec("5000"),
            max_orders_per_minute: 10,
            max_price_deviation_percent: dec("5"),
            min_quote_volume_24h: dec("100000"),
        }
    }

    fn order<'a>(pair: &'a Pair, side: Side, price: &str, notional: &str, opens_position: bool) -> GuardOrder<'a> {
        GuardOrder { pair, side, kind: OrderKind::Limit, price: dec(price), notional: dec(notional), opens_position }
    }

    fn market(last: &str, volume: &str) -> MarketView {
        MarketView { last_price: dec(last), quote_volume_24h: dec(volume) }
    }

    fn recent(orders_last_minute: u32, volume: &str) -> Recent {
        Recent { orders_last_minute, opening_volume_24h: dec(volume) }
    }

    /// BTC at 30000 with a deep market, nothing done yet.
    fn calm() -> (MarketView, Recent) {
        (market("30000", "1000000000"), recent(0, "0"))
    }

    // --- the rules one by one ---------------------------------------------------------------------

    #[test]
    fn an_order_inside_every_limit_passes() {
        let btc = pair("USDT_BTC");
        let (m, r) = calm();
        for side in [Side::Buy, Side::Sell] {
            assert_eq!(check(&policy(), &order(&btc, side, "30000", "500", true), &m, &r), Ok(()));
            assert_eq!(check(&policy(), &order(&btc, side, "30000", "500", false), &m, &r), Ok(()));
        }
        assert_eq!(check(&TradingPolicy::default(), &order(&btc, Side::Buy, "30100", "500", true), &m, &r), Ok(()));
    }

    #[test]
    fn the_pair_allowlist_refuses_other_pairs_even_for_closing_orders() {
        let btc = pair("USDT_BTC");
        let eth = pair("USDT_ETH");
        let (m, r) = calm();
        let only_eth = TradingPolicy { pair_allowlist: vec![eth.clone()], ..policy() };
        assert_eq!(check(&only_eth, &order(&eth, Side::Buy, "30000", "500", true), &m, &r), Ok(()));
        for opens in [true, false] {
            assert_eq!(
                check(&only_eth, &order(&btc, Side::Buy, "30000", "500", opens), &m, &r),
                Err(Refusal::PairNotAllowed)
            );
            assert_eq!(
                check(&only_eth, &order(&btc, Side::Sell, "30000", "500", opens), &m, &r),
                Err(Refusal::PairNotAllowed)
            );
        }
        // Same quote, different base; same assets the other way round.
        let btc_eth = pair("BTC_ETH");
        let eth_btc = pair("ETH_BTC");
        let only_btc_eth = TradingPolicy { pair_allowlist: vec![btc_eth.clone()], ..policy() };
        assert_eq!(check(&only_btc_eth, &order(&btc_eth, Side::Buy, "30000", "5", true), &m, &r), Ok(()));
        assert_eq!(
            check(&only_btc_eth, &order(&eth_btc, Side::Buy, "30000", "5", true), &m, &r),
            Err(Refusal::PairNotAllowed)
        );
        // An empty list allows any pair.
        assert_eq!(check(&policy(), &order(&eth_btc, Side::Buy, "30000", "5", true), &m, &r), Ok(()));
    }

    #[test]
    fn without_a_positive_last_price_nothing_is_sent() {
        let btc = pair("USDT_BTC");
        let r = recent(0, "0");
        for last in ["0", "-1", "-0.00000001", "0.000"] {
            for opens in [true, false] {
                assert_eq!(
                    check(&policy(), &order(&btc, Side::Sell, "30000", "500", opens), &market(last, "1000000000"), &r),
                    Err(Refusal::NoReferencePrice),
                    "{last}"
                );
            }
        }
    }

    #[test]
    fn the_price_may_deviate_up_to_the_limit_exactly_on_both_sides() {
        let btc = pair("USDT_BTC");
        let (m, r) = calm();
        for opens in [true, false] {
            for side in [Side::Buy, Side::Sell] {
                // 5 % of 30000 is 1500: the bounds pass, a hundredth beyond is refused.
                for price in ["31500", "28500", "31499.99", "28500.01", "30000"] {
                    assert_eq!(check(&policy(), &order(&btc, side, price, "500", opens), &m, &r), Ok(()), "{price}");
                }
                for price in ["31500.01", "28499.99", "45000", "0", "-30000"] {
                    let refusal = check(&policy(), &order(&btc, side, price, "500", opens), &m, &r).unwrap_err();
                    assert_eq!(refusal.code(), "price_too_far", "{price}");
                }
            }
        }
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "31500.01", "500", true), &m, &r),
            Err(Refusal::PriceTooFar { deviation_percent: dec("5.01"), limit_percent: dec("5") })
        );
    }

    #[test]
    fn the_deviation_is_compared_exactly_where_a_division_would_round() {
        let btc = pair("USDT_BTC");
        let r = recent(0, "0");
        // A limit of 0.3333333333333333333333333333 %. From 3 to 3.01 is 1/3 %, above that limit by
        // less than 1e-28, and 1/3 rounded by a division is the limit itself.
        let third = TradingPolicy { max_price_deviation_percent: Decimal::ONE / Decimal::from(3), ..policy() };
        let m = market("3", "1000000000");
        assert_eq!(
            check(&third, &order(&btc, Side::Buy, "3.01", "5", true), &m, &r).unwrap_err().code(),
            "price_too_far"
        );
        assert_eq!(check(&third, &order(&btc, Side::Buy, "3.0099", "5", true), &m, &r), Ok(()));
        // 7 → 7.35 is 5 % exactly.
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "7.35", "5", true), &market("7", "1000000000"), &r),
            Ok(())
        );
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "7.3500000001", "5", true), &market("7", "1000000000"), &r)
                .unwrap_err()
                .code(),
            "price_too_far"
        );
    }

    #[test]
    fn a_market_order_priced_at_its_reference_passes_and_a_stale_reference_does_not() {
        let btc = pair("USDT_BTC");
        let (m, r) = calm();
        let market_order =
            |price: &str| GuardOrder { kind: OrderKind::Market, ..order(&btc, Side::Buy, price, "500", true) };
        assert_eq!(check(&policy(), &market_order("30000"), &m, &r), Ok(()));
        assert_eq!(check(&policy(), &market_order("20000"), &m, &r).unwrap_err().code(), "price_too_far");
    }

    #[test]
    fn a_zero_or_negative_deviation_limit_allows_only_the_last_price() {
        let btc = pair("USDT_BTC");
        let (m, r) = calm();
        let zero = TradingPolicy { max_price_deviation_percent: Decimal::ZERO, ..policy() };
        assert_eq!(check(&zero, &order(&btc, Side::Buy, "30000", "5", true), &m, &r), Ok(()));
        assert_eq!(
            check(&zero, &order(&btc, Side::Buy, "30000.01", "5", true), &m, &r).unwrap_err().code(),
            "price_too_far"
        );
        let negative = TradingPolicy { max_price_deviation_percent: dec("-1"), ..policy() };
        assert_eq!(
            check(&negative, &order(&btc, Side::Buy, "30000", "5", true), &m, &r).unwrap_err().code(),
            "price_too_far"
        );
    }

    #[test]
    fn an_opening_order_may_be_as_large_as_the_limit_and_no_larger() {
        let btc = pair("USDT_BTC");
        let (m, r) = calm();
        assert_eq!(check(&policy(), &order(&btc, Side::Buy, "30000", "1000", true), &m, &r), Ok(()));
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "30000", "1000.0001", true), &m, &r),
            Err(Refusal::OrderTooLarge { notional: dec("1000.0001"), limit: dec("1000") })
        );
    }

    #[test]
    fn the_daily_volume_counts_this_order() {
        let btc = pair("USDT_BTC");
        let m = market("30000", "1000000000");
        assert_eq!(check(&policy(), &order(&btc, Side::Buy, "30000", "1000", true), &m, &recent(0, "4000")), Ok(()));
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "30000", "1000", true), &m, &recent(0, "4000.01")),
            Err(Refusal::DailyVolumeExceeded { would_be: dec("5000.01"), limit: dec("5000") })
        );
        // A total beyond Decimal::MAX is refused, not a panic.
        let roomy = TradingPolicy { max_order_notional: Decimal::MAX, max_daily_volume: Decimal::MAX, ..policy() };
        let big = GuardOrder { notional: Decimal::MAX, ..order(&btc, Side::Buy, "30000", "0", true) };
        assert_eq!(check(&roomy, &big, &m, &recent(0, "0")), Ok(()));
        assert_eq!(
            check(&roomy, &big, &m, &recent(0, "1")),
            Err(Refusal::DailyVolumeExceeded { would_be: Decimal::MAX, limit: Decimal::MAX })
        );
        // A negative notional cannot make room.
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "30000", "-10", true), &m, &recent(0, "5000.01"))
                .unwrap_err()
                .code(),
            "daily_volume_exceeded"
        );
    }

    #[test]
    fn the_rate_limit_allows_the_maximum_per_minute_and_no_more() {
        let btc = pair("USDT_BTC");
        let m = market("30000", "1000000000");
        assert_eq!(check(&policy(), &order(&btc, Side::Buy, "30000", "5", true), &m, &recent(9, "0")), Ok(()));
        for done in [10, 11, u32::MAX] {
            assert_eq!(
                check(&policy(), &order(&btc, Side::Buy, "30000", "5", true), &m, &recent(done, "0")),
                Err(Refusal::TooManyOrders { limit: 10 })
            );
        }
        let none = TradingPolicy { max_orders_per_minute: 0, ..policy() };
        assert_eq!(
            check(&none, &order(&btc, Side::Buy, "30000", "5", true), &m, &recent(0, "0")),
            Err(Refusal::TooManyOrders { limit: 0 })
        );
    }

    #[test]
    fn opening_positions_needs_a_liquid_pair() {
        let btc = pair("USDT_BTC");
        let r = recent(0, "0");
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "30000", "5", true), &market("30000", "100000"), &r),
            Ok(())
        );
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "30000", "5", true), &market("30000", "99999.99"), &r),
            Err(Refusal::IlliquidPair { quote_volume_24h: dec("99999.99"), minimum: dec("100000") })
        );
    }

    #[test]
    fn closing_orders_are_exempt_from_size_volume_rate_and_liquidity() {
        let btc = pair("USDT_BTC");
        // Every exempt limit broken at once: a huge order, a full day, a busy minute, a dead market.
        let m = market("30000", "0");
        let r = recent(u32::MAX, "999999999");
        for side in [Side::Buy, Side::Sell] {
            let closing = order(&btc, side, "30000", "99999999", false);
            assert_eq!(check(&policy(), &closing, &m, &r), Ok(()));
            let opening = GuardOrder { opens_position: true, ..closing };
            assert_eq!(check(&policy(), &opening, &m, &r).unwrap_err().code(), "order_too_large");
        }
        // ...but not from the price rule.
        assert_eq!(
            check(&policy(), &order(&btc, Side::Sell, "20000", "99999999", false), &m, &r).unwrap_err().code(),
            "price_too_far"
        );
    }

    #[test]
    fn the_first_broken_rule_is_the_one_named() {
        let btc = pair("USDT_BTC");
        let m = market("30000", "1");
        let r = recent(100, "100000");
        let only_eth = TradingPolicy { pair_allowlist: vec![pair("USDT_ETH")], ..policy() };
        let wild = order(&btc, Side::Buy, "90000", "100000", true);
        assert_eq!(check(&only_eth, &wild, &m, &r).unwrap_err().code(), "pair_not_allowed");
        assert_eq!(check(&policy(), &wild, &market("0", "1"), &r).unwrap_err().code(), "no_reference_price");
        assert_eq!(check(&policy(), &wild, &m, &r).unwrap_err().code(), "price_too_far");
        let fair = order(&btc, Side::Buy, "30000", "100000", true);
        assert_eq!(check(&policy(), &fair, &m, &r).unwrap_err().code(), "order_too_large");
        let small = order(&btc, Side::Buy, "30000", "10", true);
        assert_eq!(check(&policy(), &small, &m, &r).unwrap_err().code(), "daily_volume_exceeded");
        assert_eq!(check(&policy(), &small, &m, &recent(100, "0")).unwrap_err().code(), "too_many_orders");
        assert_eq!(check(&policy(), &small, &m, &recent(0, "0")).unwrap_err().code(), "illiquid_pair");
    }

    #[test]
    fn extreme_values_are_refused_without_panicking() {
        let btc = pair("USDT_BTC");
        let r = recent(0, "0");
        let tiny = dec("0.0000000000000000000000000001");
        // price − last overflows.
        let negative_huge = GuardOrder { price: Decimal::MIN, ..order(&btc, Side::Buy, "0", "5", true) };
        assert_eq!(
            check(
                &policy(),
                &negative_huge,
                &MarketView { last_price: Decimal::MAX, quote_volume_24h: Decimal::MAX },
                &r
            ),
            Err(Refusal::PriceTooFar { deviation_percent: Decimal::MAX, limit_percent: dec("5") })
        );
        // |price − last| × 100 overflows.
        let huge = GuardOrder { price: Decimal::MAX, ..order(&btc, Side::Buy, "0", "5", true) };
        let tiny_market = MarketView { last_price: tiny, quote_volume_24h: Decimal::MAX };
        assert_eq!(check(&policy(), &huge, &tiny_market, &r).unwrap_err().code(), "price_too_far");
        // limit × last overflows: the price is certainly within the limit.
        let lax = TradingPolicy { max_price_deviation_percent: Decimal::MAX, ..policy() };
        let huge_last = MarketView { last_price: dec("10000000000000000000000000000"), quote_volume_24h: Decimal::MAX };
        let within = order(&btc, Side::Buy, "9900000000000000000000000000", "5", true);
        assert_eq!(check(&lax, &within, &huge_last, &r), Ok(()));
        assert_eq!(check(&policy(), &within, &huge_last, &r), Ok(()));
        // The deviation quotient overflows in the message only.
        let refusal = check(&policy(), &order(&btc, Side::Buy, "1000000", "5", true), &tiny_market, &r).unwrap_err();
        assert_eq!(refusal.code(), "price_too_far");
        assert!(!refusal.to_string().is_empty());
    }

    // --- the 2022 incident ------------------------------------------------------------------------

    /// An illiquid coin: last 0.001 USDT, 5000 USDT traded in a day.
    fn illiquid() -> MarketView {
        market("0.001", "5000")
    }

    #[test]
    fn buying_an_illiquid_pair_at_fifty_percent_above_the_last_price_is_refused() {
        let coin = pair("USDT_PUMP");
        let r = recent(0, "0");
        // Each buy of the attack, at market or limit, opening a position as a manual order does.
        for kind in [OrderKind::Limit, OrderKind::Market] {
            let pump = GuardOrder { kind, ..order(&coin, Side::Buy, "0.0015", "900", true) };
            for policy in [policy(), TradingPolicy::default()] {
                assert_eq!(
                    check(&policy, &pump, &illiquid(), &r),
                    Err(Refusal::PriceTooFar {
                        deviation_percent: dec("50"),
                        limit_percent: policy.max_price_deviation_percent
                    })
                );
            }
        }
        // Even dressed up as a closing order.
        let disguised = order(&coin, Side::Buy, "0.0015", "900", false);
        assert_eq!(check(&policy(), &disguised, &illiquid(), &r).unwrap_err().code(), "price_too_far");
    }

    #[test]
    fn buying_an_illiquid_pair_at_a_fair_price_is_refused_for_its_liquidity() {
        let coin = pair("USDT_PUMP");
        let r = recent(0, "0");
        for policy in [policy(), TradingPolicy::default()] {
            assert_eq!(
                check(&policy, &order(&coin, Side::Buy, "0.001", "900", true), &illiquid(), &r),
                Err(Refusal::IlliquidPair { quote_volume_24h: dec("5000"), minimum: dec("100000") })
            );
        }
        // A position already open in it can still be closed.
        assert_eq!(check(&policy(), &order(&coin, Side::Sell, "0.001", "900", false), &illiquid(), &r), Ok(()));
    }

    // --- codes and messages -----------------------------------------------------------------------

    fn every_refusal() -> Vec<Refusal> {
        vec![
            Refusal::PairNotAllowed,
            Refusal::OrderTooLarge { notional: dec("1500.00"), limit: dec("1000.000") },
            Refusal::DailyVolumeExceeded { would_be: dec("5000.50"), limit: dec("5000.0") },
            Refusal::TooManyOrders { limit: 60 },
            Refusal::PriceTooFar { deviation_percent: dec("50.00"), limit_percent: dec("5.0") },
            Refusal::IlliquidPair { quote_volume_24h: dec("5000.000"), minimum: dec("100000.00") },
            Refusal::NoReferencePrice,
        ]
    }

    #[test]
    fn codes_are_stable_and_distinct() {
        let codes: Vec<&str> = every_refusal().iter().map(Refusal::code).collect();
        assert_eq!(
            codes,
            [
                "pair_not_allowed",
                "order_too_large",
                "daily_volume_exceeded",
                "too_many_orders",
                "price_too_far",
                "illiquid_pair",
                "no_reference_price"
            ]
        );
    }

    #[test]
    fn messages_name_the_policy_value_and_the_normalized_numbers() {
        let expected: [(&str, &[&str]); 7] = [
            ("pair_allowlist", &[]),
            ("max_order_notional", &["1500 ", "1000;"]),
            ("max_daily_volume", &["5000.5,", "5000;"]),
            ("max_orders_per_minute", &["60 orders"]),
            ("max_price_deviation_percent", &["50 %", "5 %"]),
            ("min_quote_volume_24h", &["5000 ", "100000;"]),
            ("last price", &[]),
        ];
        for (refusal, (field, numbers)) in every_refusal().iter().zip(expected) {
            let message = refusal.to_string();
            assert!(message.contains(field), "{message}");
            for number in numbers {
                assert!(message.contains(number), "{message} lacks {number:?}");
            }
            assert!(!message.contains(".0 ") && !message.contains(".00"), "{message}");
        }
    }

    // --- Recent::from_orders ----------------------------------------------------------------------

    const NOW: i64 = 1_800_000_000_000;

    fn at(offset_ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(NOW + offset_ms)
    }

    fn intent(role: OrderRole, state: IntentState, created_at: Timestamp, notional: &str) -> OrderIntent {
        OrderIntent {
            client_order_id: "bw-test".to_owned(),
            user_id: UserId::from_random_bytes([1; 16]),
            exchange_account_id: ExchangeAccountId::from_random_bytes([2; 16]),
            pair: pair("USDT_BTC"),
            deal_id: None,
            seq: 0,
            role,
            safety_index: 0,
            side: Side::Buy,
            kind: OrderKind::Market,
            price: dec("30000"),
            quantity: None,
            quote_amount: Some(dec(notional)),
            state,
            cancel_requested: false,
            venue_order_id: None,
            executed_qty: Decimal::ZERO,
            executed_quote: Decimal::ZERO,
            fee_base: Decimal::ZERO,
            fee_quote: Decimal::ZERO,
            error: None,
            created_at,
            updated_at: created_at,
        }
    }

    const MINUTE_MS: i64 = 60_000;
    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn the_minute_window_includes_exactly_sixty_seconds_ago() {
        let orders = [
            intent(OrderRole::Base, IntentState::Filled, at(0), "1"),
            intent(OrderRole::Safety, IntentState::Open, at(-MINUTE_MS), "1"),
            intent(OrderRole::Safety, IntentState::Open, at(-MINUTE_MS - 1), "1"),
            intent(OrderRole::Base, IntentState::Filled, at(-MINUTE_MS + 1), "1"),
        ];
        let recent = Recent::from_orders(&orders, at(0));
        assert_eq!(recent.orders_last_minute, 3);
        assert_eq!(recent.opening_volume_24h, dec("4"));
    }

    #[test]
    fn the_day_window_includes_exactly_twenty_four_hours_ago() {
        let orders = [
            intent(OrderRole::Base, IntentState::Filled, at(-DAY_MS), "100"),
            intent(OrderRole::Manual, IntentState::Filled, at(-DAY_MS + 1), "10"),
            intent(OrderRole::AddFunds, IntentState::Filled, at(-DAY_MS - 1), "1000"),
        ];
        let recent = Recent::from_orders(&orders, at(0));
        assert_eq!(recent.orders_last_minute, 0);
        assert_eq!(recent.opening_volume_24h, dec("110"));
    }

    #[test]
    fn refused_and_never_placed_orders_do_not_count() {
        let mut orders = Vec::new();
        for state in IntentState::ALL {
            orders.push(intent(OrderRole::Base, *state, at(-1), "1"));
        }
        let recent = Recent::from_orders(&orders, at(0));
        // Pending, Open, Filled, Canceled count; Rejected and NotPlaced do not.
        assert_eq!(recent.orders_last_minute, 4);
        assert_eq!(recent.opening_volume_24h, dec("4"));
        let excluded = [
            intent(OrderRole::Base, IntentState::Rejected, at(0), "1"),
            intent(OrderRole::Manual, IntentState::NotPlaced, at(0), "1"),
        ];
        assert_eq!(Recent::from_orders(&excluded, at(0)), Recent::default());
    }

    #[test]
    fn closing_orders_count_per_minute_but_not_in_the_volume() {
        let mut orders = Vec::new();
        for role in OrderRole::ALL {
            orders.push(intent(*role, IntentState::Filled, at(-5), "10"));
        }
        let recent = Recent::from_orders(&orders, at(0));
        assert_eq!(recent.orders_last_minute, 6);
        // Base, Safety, AddFunds, Manual.
        assert_eq!(recent.opening_volume_24h, dec("40"));
    }

    #[test]
    fn orders_stamped_after_now_count_in_both_windows() {
        let orders = [intent(OrderRole::Base, IntentState::Pending, at(5_000), "7")];
        assert_eq!(Recent::from_orders(&orders, at(0)), recent(1, "7"));
    }

    #[test]
    fn the_volume_is_the_intents_notional_without_overflowing() {
        let sized_in_base = OrderIntent {
            quantity: Some(dec("0.5")),
            quote_amount: None,
            ..intent(OrderRole::Safety, IntentState::Open, at(-10), "0")
        };
        let without_size = OrderIntent {
            quantity: None,
            quote_amount: None,
            ..intent(OrderRole::Safety, IntentState::Open, at(-10), "0")
        };
        let sized_in_quote = intent(OrderRole::Base, IntentState::Filled, at(-20), "250.5");
        let orders = [sized_in_base.clone(), without_size.clone(), sized_in_quote.clone()];
        let expected = sized_in_base.notional() + without_size.notional() + sized_in_quote.notional();
        assert_eq!(expected, dec("15250.5"));
        assert_eq!(Recent::from_orders(&orders, at(0)).opening_volume_24h, expected);

        // quantity × price beyond Decimal::MAX, and a sum beyond it: saturated, then refused by check.
        let absurd = OrderIntent {
            quantity: Some(Decimal::MAX),
            quote_amount: None,
            ..intent(OrderRole::Manual, IntentState::Filled, at(-10), "0")
        };
        let recent = Recent::from_orders(&[absurd, sized_in_quote.clone(), sized_in_quote], at(0));
        assert_eq!(recent.opening_volume_24h, Decimal::MAX);
        let btc = pair("USDT_BTC");
        let (m, _) = calm();
        assert_eq!(
            check(&policy(), &order(&btc, Side::Buy, "30000", "1", true), &m, &recent).unwrap_err().code(),
            "daily_volume_exceeded"
        );

        // A negative notional cannot lower the total.
        let negative = intent(OrderRole::Base, IntentState::Filled, at(-10), "-100");
        let positive = intent(OrderRole::Base, IntentState::Filled, at(-10), "30");
        assert_eq!(Recent::from_orders(&[negative, positive], at(0)).opening_volume_24h, dec("30"));
    }

    #[test]
    fn windows_saturate_at_the_start_of_time() {
        let orders = [intent(OrderRole::Base, IntentState::Filled, Timestamp::from_unix_millis(i64::MIN), "1")];
        assert_eq!(Recent::from_orders(&orders, Timestamp::from_unix_millis(i64::MIN)), recent(1, "1"));
    }

    // --- properties -------------------------------------------------------------------------------

    /// A positive amount with up to `max_scale` decimals.
    fn amount(max_mantissa: i64, max_scale: u32) -> impl Strategy<Value = Decimal> {
        (1..=max_mantissa, 0..=max_scale).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
    }

    /// Room left under a limit: often none at all (the order sits exactly on the limit).
    fn slack(max_mantissa: i64, max_scale: u32) -> impl Strategy<Value = Decimal> {
        prop_oneof![Just(Decimal::ZERO), amount(max_mantissa, max_scale)]
    }

    /// Everything `check` looks at, with the pair owned.
    #[derive(Debug, Clone)]
    struct Case {
        policy: TradingPolicy,
        pair: Pair,
        side: Side,
        kind: OrderKind,
        price: Decimal,
        notional: Decimal,
        opens_position: bool,
        market: MarketView,
        recent: Recent,
        /// Whether the price was set above the last price (else below).
        above: bool,
    }

    impl Case {
        fn check(&self) -> Result<(), Refusal> {
            let order = GuardOrder {
                pair: &self.pair,
                side: self.side,
                kind: self.kind,
                price: self.price,
                notional: self.notional,
                opens_position: self.opens_position,
            };
            check(&self.policy, &order, &self.market, &self.recent)
        }

        /// The price `percent` % away from the last price, in the case's direction. Exact for the
        /// generated scales.
        fn price_at(&self, percent: Decimal) -> Decimal {
            let last = self.market.last_price;
            let offset = last * percent / Decimal::ONE_HUNDRED;
            if self.above { last + offset } else { last - offset }
        }
    }

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }

    fn kind() -> impl Strategy<Value = OrderKind> {
        prop_oneof![Just(OrderKind::Limit), Just(OrderKind::Market)]
    }

    prop_compose! {
        /// An order inside every limit of its policy, often exactly on a limit.
        fn inside()(
            last in amount(1_000_000_000_000, 8),
            deviation in (0i64..=10_000).prop_map(|hundredths| Decimal::new(hundredths, 2)),
            deviation_slack in slack(100_000, 4),
            notional in amount(1_000_000_000_000, 6),
            notional_slack in slack(1_000_000_000_000, 6),
            opened in prop_oneof![Just(Decimal::ZERO), amount(1_000_000_000_000_000, 6)],
            volume_slack in slack(1_000_000_000_000, 6),
            orders_last_minute in 0u32..1_000,
            rate_slack in 0u32..100,
            min_quote_volume in prop_oneof![Just(Decimal::ZERO), amount(1_000_000_000_000_000, 4)],
            liquidity_slack in slack(1_000_000_000_000_000, 4),
            (side, kind, opens_position, allowlisted, above) in (side(), kind(), any::<bool>(), any::<bool>(), any::<bool>()),
        ) -> Case {
            let btc = pair("USDT_BTC");
            let pair_allowlist = if allowlisted {
                vec![pair("USDT_ETH"), btc.clone(), pair("BTC_ETH")]
            } else {
                Vec::new()
            };
            let mut case = Case {
                policy: TradingPolicy {
                    pair_allowlist,
                    max_order_notional: notional + notional_slack,
                    max_daily_volume: opened + notional + volume_slack,
                    max_orders_per_minute: orders_last_minute + 1 + rate_slack,
                    max_price_deviation_percent: deviation + deviation_slack,
                    min_quote_volume_24h: min_quote_volume,
                },
                pair: btc,
                side,
                kind,
                price: Decimal::ZERO,
                notional,
                opens_position,
                market: MarketView { last_price: last, quote_volume_24h: min_quote_volume + liquidity_slack },
                recent: Recent { orders_last_minute, opening_volume_24h: opened },
                above,
            };
            case.price = case.price_at(deviation);
            case
        }
    }

    /// The rules in the order `check` applies them, by refusal code.
    const RULES: [&str; 7] = [
        "pair_not_allowed",
        "no_reference_price",
        "price_too_far",
        "order_too_large",
        "daily_volume_exceeded",
        "too_many_orders",
        "illiquid_pair",
    ];
    /// The rules that also bind closing orders.
    const CLOSING_RULES: u8 = 0b111;

    prop_compose! {
        /// An order breaking at least one rule that binds it (and, for a closing order, maybe some
        /// that do not), with the set of rules broken as a bit mask over `RULES`.
        fn outside()(
            mut case in inside(),
            mask in 1u8..128,
            no_price in (0i64..=1_000_000, 0u32..=8).prop_map(|(m, s)| Decimal::new(-m, s)),
            excess in amount(1_000_000, 4),
            notional_excess in amount(1_000_000_000, 6),
            volume_excess in amount(1_000_000_000, 6),
            rate_excess in 0u32..1_000,
            liquidity_excess in amount(1_000_000_000, 4),
        ) -> (Case, u8) {
            let mut mask = mask;
            if !case.opens_position && mask & CLOSING_RULES == 0 {
                mask |= 1 << (mask % 3);
            }
            if mask & 1 != 0 {
                case.policy.pair_allowlist = vec![pair("USDT_ETH"), pair("BTC_USDT")];
            }
            if mask & (1 << 2) != 0 {
                case.price = case.price_at(case.policy.max_price_deviation_percent + excess);
            }
            if mask & (1 << 1) != 0 {
                case.market.last_price = no_price;
            }
            if mask & (1 << 3) != 0 {
                case.policy.max_order_notional = case.notional - notional_excess;
            }
            if mask & (1 << 4) != 0 {
                case.policy.max_daily_volume = case.recent.opening_volume_24h + case.notional - volume_excess;
            }
            if mask & (1 << 5) != 0 {
                case.policy.max_orders_per_minute = case.recent.orders_last_minute.saturating_sub(rate_excess);
            }
            if mask & (1 << 6) != 0 {
                case.policy.min_quote_volume_24h = case.market.quote_volume_24h + liquidity_excess;
            }
            (case, mask)
        }
    }

    /// Any Decimal, including zero, negative, the extremes and the smallest steps.
    fn any_decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            Just(Decimal::ZERO),
            Just(Decimal::MAX),
            Just(Decimal::MIN),
            Just(Decimal::new(1, 28)),
            Just(Decimal::new(-1, 28)),
            (any::<i64>(), 0u32..=28).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale)),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>(), 0u32..=28)
                .prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(lo, mid, hi, negative, scale)),
        ]
    }

    fn any_intent() -> impl Strategy<Value = OrderIntent> {
        (
            (0usize..OrderRole::ALL.len(), 0usize..IntentState::ALL.len()),
            any::<i64>(),
            any_decimal(),
            proptest::option::of(any_decimal()),
            proptest::option::of(any_decimal()),
        )
            .prop_map(|((role, state), created_at, price, quantity, quote_amount)| OrderIntent {
                price,
                quantity,
                quote_amount,
                ..intent(OrderRole::ALL[role], IntentState::ALL[state], Timestamp::from_unix_millis(created_at), "0")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn any_order_outside_the_policy_is_refused_by_the_first_rule_it_breaks((case, mask) in outside()) {
            let binding = if case.opens_position { mask } else { mask & CLOSING_RULES };
            let first = binding.trailing_zeros() as usize;
            let refusal = case.check();
            prop_assert!(refusal.is_err(), "{case:?} broke {mask:#b} and passed");
            let refusal = refusal.unwrap_err();
            let named = RULES.iter().position(|code| *code == refusal.code()).unwrap();
            prop_assert!(binding & (1 << named) != 0, "{refusal} names an unbroken rule ({mask:#b})");
            prop_assert_eq!(refusal.code(), RULES[first]);
        }

        #[test]
        fn any_order_inside_every_limit_passes(case in inside()) {
            prop_assert_eq!(case.check(), Ok(()), "{:?}", case);
        }

        #[test]
        fn check_never_panics_on_any_decimals(
            (allowlisted, opens_position, side, kind) in (any::<bool>(), any::<bool>(), side(), kind()),
            (price, notional, last_price, quote_volume_24h) in (any_decimal(), any_decimal(), any_decimal(), any_decimal()),
            (max_order_notional, max_daily_volume, max_price_deviation_percent, min_quote_volume_24h)
                in (any_decimal(), any_decimal(), any_decimal(), any_decimal()),
            (max_orders_per_minute, orders_last_minute, opening_volume_24h) in (any::<u32>(), any::<u32>(), any_decimal()),
        ) {
            let btc = pair("USDT_BTC");
            let policy = TradingPolicy {
                pair_allowlist: if allowlisted { vec![btc.clone()] } else { Vec::new() },
                max_order_notional,
                max_daily_volume,
                max_orders_per_minute,
                max_price_deviation_percent,
                min_quote_volume_24h,
            };
            let order = GuardOrder { pair: &btc, side, kind, price, notional, opens_position };
            let market = MarketView { last_price, quote_volume_24h };
            let recent = Recent { orders_last_minute, opening_volume_24h };
            if let Err(refusal) = check(&policy, &order, &market, &recent) {
                prop_assert!(RULES.contains(&refusal.code()));
                prop_assert!(!refusal.to_string().is_empty());
            }
        }

        #[test]
        fn from_orders_never_panics_and_counts_at_most_every_order(
            orders in proptest::collection::vec(any_intent(), 0..20),
            now in any::<i64>(),
        ) {
            let recent = Recent::from_orders(&orders, Timestamp::from_unix_millis(now));
            prop_assert!(recent.orders_last_minute as usize <= orders.len());
            prop_assert!(recent.opening_volume_24h >= Decimal::ZERO);
        }
    }
}
