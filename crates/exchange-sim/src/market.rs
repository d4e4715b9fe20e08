//! The market: per symbol the trading rules, the current price, its price path and the candles it
//! produced, 24 h statistics, id counters and a synthetic order book around the price.
//!
//! The price moves along the symbol's [`PathState`] (a random walk or a candle replay), or is set
//! from outside (tests through the handle). The synthetic book shown by `depth` has unlimited
//! depth at the current price; how much resting orders fill is bounded by the candles' volume
//! (see `matching`).

use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::candles::{Candle, CandleHistory};
use crate::config::SimSymbol;
use crate::pricepath::{PathState, PricePath, to_grid};
use crate::rng::{SplitMix64, name_hash};

/// Price levels of one side of the book: `(price, quantity)`, best first.
pub(crate) type Levels = Vec<(Decimal, Decimal)>;

#[derive(Debug)]
pub(crate) struct SymbolState {
    pub(crate) rules: SimSymbol,
    pub(crate) price: Decimal,
    pub(crate) stats: DayStats,
    /// `lastUpdateId` of the depth snapshot; moves with every price change and fill.
    pub(crate) update_id: u64,
    pub(crate) next_order_id: u64,
    pub(crate) next_trade_id: u64,
    pub(crate) path: PathState,
    /// The one-minute candles the symbol went through, for `klines`.
    pub(crate) candles: CandleHistory,
}

/// What `ticker/24hr` reports. The simulator has no history before it started: the window is its
/// whole life, opening at the starting price with the configured baseline volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DayStats {
    pub(crate) open_price: Decimal,
    pub(crate) high: Decimal,
    pub(crate) low: Decimal,
    pub(crate) volume: Decimal,
    pub(crate) quote_volume: Decimal,
    pub(crate) last_qty: Decimal,
    pub(crate) first_trade_id: Option<u64>,
    pub(crate) last_trade_id: Option<u64>,
    pub(crate) trade_count: u64,
}

impl SymbolState {
    /// A symbol whose price stays put unless set.
    #[cfg(test)]
    pub(crate) fn new(rules: SimSymbol) -> Self {
        Self::with_path(rules, 0, 0, 60_000)
    }

    /// A symbol moving along its configured path from `start_ms`, a step every `every_ms`. A
    /// replay's candles are put on the tick grid and the price starts at the first one's open.
    pub(crate) fn with_path(mut rules: SimSymbol, seed: u64, start_ms: i64, every_ms: i64) -> Self {
        if let PricePath::Replay { candles } = &rules.path {
            let on_grid: Arc<[Candle]> = candles
                .iter()
                .map(|candle| {
                    let mut candle = candle.clone();
                    for price in [&mut candle.open, &mut candle.high, &mut candle.low, &mut candle.close] {
                        *price = to_grid(*price, &rules);
                    }
                    candle
                })
                .collect();
            if let Some(first) = on_grid.first() {
                rules.price = first.open;
            }
            rules.path = PricePath::Replay { candles: on_grid };
        }
        let path = PathState::new(&rules, seed, start_ms, every_ms);
        let price = rules.price;
        let baseline_volume = (rules.quote_volume_24h / price).round_dp(8);
        Self {
            stats: DayStats {
                open_price: price,
                high: price,
                low: price,
                volume: baseline_volume,
                quote_volume: rules.quote_volume_24h,
                last_qty: Decimal::ZERO,
                first_trade_id: None,
                last_trade_id: None,
                trade_count: 0,
            },
            price,
            rules,
            update_id: 1,
            next_order_id: 1,
            next_trade_id: 1,
            path,
            candles: CandleHistory::default(),
        }
    }

    pub(crate) fn take_order_id(&mut self) -> u64 {
        let id = self.next_order_id;
        self.next_order_id += 1;
        id
    }

    /// A new trade id, counted in the statistics with its price and quantity.
    pub(crate) fn record_trade(&mut self, price: Decimal, qty: Decimal) -> u64 {
        let id = self.next_trade_id;
        self.next_trade_id += 1;
        let stats = &mut self.stats;
        stats.volume += qty;
        stats.quote_volume += price * qty;
        stats.last_qty = qty;
        stats.high = stats.high.max(price);
        stats.low = stats.low.min(price);
        stats.first_trade_id.get_or_insert(id);
        stats.last_trade_id = Some(id);
        stats.trade_count += 1;
        self.update_id += 1;
        id
    }

    pub(crate) fn move_price(&mut self, price: Decimal) {
        self.price = price;
        self.stats.high = self.stats.high.max(price);
        self.stats.low = self.stats.low.min(price);
        self.update_id += 1;
    }

    /// The price a market order executes at: the current price moved `slippage` against the taker
    /// and rounded to the tick away from the taker's favour.
    pub(crate) fn market_price(&self, buying: bool, slippage: Decimal) -> Decimal {
        let tick = self.rules.tick_size;
        if buying {
            round_to_step(self.price * (Decimal::ONE + slippage), tick, RoundingStrategy::AwayFromZero)
        } else {
            round_to_step(self.price * (Decimal::ONE - slippage), tick, RoundingStrategy::ToZero).max(tick)
        }
    }

    /// The best bid and ask: the ask at the current price, the bid one tick below.
    pub(crate) fn best_bid_ask(&self) -> (Decimal, Decimal) {
        ((self.price - self.rules.tick_size).max(Decimal::ZERO), self.price)
    }

    /// `limit` levels per side, one tick apart from [`Self::best_bid_ask`], with quantities drawn
    /// from the seed (stable for a given seed, symbol and update id).
    pub(crate) fn depth(&self, limit: usize, seed: u64) -> (Levels, Levels) {
        let mut rng = SplitMix64::new(seed ^ self.update_id.rotate_left(17) ^ name_hash(&self.rules.symbol));
        let tick = self.rules.tick_size;
        let (bid, ask) = self.best_bid_ask();
        let mut level_qty = || self.rules.min_qty * Decimal::from(10 + rng.below(990));
        let mut bids = Vec::with_capacity(limit);
        let mut price = bid;
        while bids.len() < limit && price > Decimal::ZERO {
            bids.push((price, level_qty()));
            price -= tick;
        }
        let mut asks = Vec::with_capacity(limit);
        let mut price = ask;
        while asks.len() < limit && price <= self.rules.max_price {
            asks.push((price, level_qty()));
            price += tick;
        }
        (bids, asks)
    }
}

/// Rounds `value` to a multiple of `step` with `strategy`.
pub(crate) fn round_to_step(value: Decimal, step: Decimal, strategy: RoundingStrategy) -> Decimal {
    if step.is_zero() {
        return value;
    }
    (value / step).round_dp_with_strategy(0, strategy) * step
}

/// Whether `value` is a whole multiple of `step`.
pub(crate) fn is_multiple_of(value: Decimal, step: Decimal) -> bool {
    step.is_zero() || (value % step).is_zero()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc() -> SymbolState {
        SymbolState::new(SimSymbol::new("BTCUSDT", "BTC", "USDT", Decimal::new(30_000, 0)))
    }

    #[test]
    fn slippage_moves_against_the_taker_and_stays_on_ticks() {
        let symbol = btc();
        let slippage = Decimal::new(1, 4); // 1 bp
        assert_eq!(symbol.market_price(true, slippage), Decimal::new(30_003, 0));
        assert_eq!(symbol.market_price(false, slippage), Decimal::new(29_997, 0));
        let symbol = SymbolState::new(SimSymbol::new("BTCUSDT", "BTC", "USDT", Decimal::new(1_000_001, 6)));
        assert_eq!(symbol.market_price(true, Decimal::ZERO), Decimal::new(101, 2));
        assert_eq!(symbol.market_price(false, Decimal::ZERO), Decimal::new(100, 2));
    }

    #[test]
    fn trades_update_the_statistics() {
        let mut symbol = btc();
        let volume_before = symbol.stats.volume;
        assert_eq!(symbol.record_trade(Decimal::new(31_000, 0), Decimal::ONE), 1);
        assert_eq!(symbol.record_trade(Decimal::new(29_000, 0), Decimal::ONE), 2);
        assert_eq!(symbol.stats.volume, volume_before + Decimal::TWO);
        assert_eq!((symbol.stats.high, symbol.stats.low), (Decimal::new(31_000, 0), Decimal::new(29_000, 0)));
        assert_eq!(
            (symbol.stats.first_trade_id, symbol.stats.last_trade_id, symbol.stats.trade_count),
            (Some(1), Some(2), 2)
        );
    }

    #[test]
    fn the_depth_is_stable_sorted_and_sized() {
        let symbol = btc();
        let (bids, asks) = symbol.depth(5, 7);
        assert_eq!((bids.len(), asks.len()), (5, 5));
        assert!(bids.windows(2).all(|pair| pair[0].0 > pair[1].0));
        assert!(asks.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(bids[0].0 < asks[0].0);
        assert_eq!(symbol.depth(5, 7), (bids, asks));
    }

    #[test]
    fn multiples_and_rounding() {
        let step = Decimal::new(1, 5);
        assert!(is_multiple_of(Decimal::new(12_345, 5), step));
        assert!(!is_multiple_of(Decimal::new(123_456, 6), step));
        assert_eq!(round_to_step(Decimal::new(123_456, 6), step, RoundingStrategy::ToZero), Decimal::new(12_345, 5));
    }
}
