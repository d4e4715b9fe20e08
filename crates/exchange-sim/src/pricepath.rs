//! Price paths: how a symbol's price moves on its own. A path produces one one-minute [`Candle`]
//! per step; the matching engine walks the price through it (so resting orders it crosses fill,
//! up to its volume) and keeps it for `klines`.
//!
//! Steps fall due on the simulator's clock, every `SimConfig::step_every` (one minute unless
//! sped up), on a grid aligned to that interval, and are applied lazily whenever the state is
//! locked: a test that freezes the clock and advances it five minutes sees exactly five steps.
//!
//! The random walk is geometric: each step is four sub-steps whose log-returns are drawn from a
//! normal distribution (Irwin–Hall: the sum of twelve uniform draws, minus six) with half the
//! configured per-step deviation, so one step has the configured deviation. Everything is Decimal
//! arithmetic on integer draws of the seeded generator; `exp` is its Taylor series. Prices are
//! rounded to the tick and kept within the symbol's price filter; an unrounded level carries the
//! walk so that small prices do not stick to a tick.

use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::candles::{Candle, MINUTE_MS};
use crate::config::SimSymbol;
use crate::market::round_to_step;
use crate::rng::{SplitMix64, name_hash};

/// How a symbol's price moves when nobody sets it.
#[derive(Clone, PartialEq)]
pub enum PricePath {
    /// The price stays where it is until [`ExchangeSim::set_price`](crate::ExchangeSim::set_price)
    /// or [`ExchangeSim::apply_candle`](crate::ExchangeSim::apply_candle) moves it.
    Static,
    /// A seeded geometric random walk, one candle per step.
    RandomWalk {
        /// Standard deviation of one step's log-return, as a fraction (0.001 = 0.1 %, about what
        /// BTCUSDT shows per minute). At most 0.1.
        volatility: Decimal,
    },
    /// One-minute candles replayed in order, one per step; the price starts at the first open and
    /// stays at the last close once they are used up.
    Replay {
        /// The candles, open times increasing.
        candles: Arc<[Candle]>,
    },
}

impl std::fmt::Debug for PricePath {
    /// A replay shows its length, not its candles.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static => f.write_str("Static"),
            Self::RandomWalk { volatility } => f.debug_struct("RandomWalk").field("volatility", volatility).finish(),
            Self::Replay { candles } => f.debug_struct("Replay").field("candles", &candles.len()).finish(),
        }
    }
}

/// The largest per-step deviation a random walk accepts.
pub(crate) const MAX_VOLATILITY: Decimal = Decimal::from_parts(1, 0, 0, false, 1);

/// A symbol's path while the simulator runs: what moves it, and when the next step is due.
#[derive(Debug)]
pub(crate) struct PathState {
    motion: Motion,
    /// Clock time at which the next step falls due; `i64::MAX` when no step will come.
    next_due_ms: i64,
    every_ms: i64,
}

#[derive(Debug)]
enum Motion {
    Still,
    Walk {
        volatility: Decimal,
        rng: SplitMix64,
        /// The walk's unrounded price; the market price is this on the tick grid.
        level: Decimal,
        /// Open time of the next candle: the walk's minutes follow each other whatever the speed.
        next_open_ms: i64,
    },
    Replay {
        candles: Arc<[Candle]>,
        cursor: usize,
    },
}

/// What a state file keeps of a path to resume it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedPath {
    walk_rng: Option<u64>,
    walk_level: Option<Decimal>,
    walk_next_open_ms: Option<i64>,
    replay_cursor: Option<usize>,
}

impl PathState {
    /// The path of `rules` (whose candles, for a replay, are already on the tick grid), starting
    /// at `start_ms` with a step every `every_ms`.
    pub(crate) fn new(rules: &SimSymbol, seed: u64, start_ms: i64, every_ms: i64) -> Self {
        let every_ms = every_ms.max(1);
        let first_due = start_ms.div_euclid(every_ms) * every_ms + every_ms;
        let (motion, next_due_ms) = match &rules.path {
            PricePath::Static => (Motion::Still, i64::MAX),
            PricePath::RandomWalk { volatility } if volatility.is_zero() => (Motion::Still, i64::MAX),
            PricePath::RandomWalk { volatility } => {
                let motion = Motion::Walk {
                    volatility: *volatility,
                    rng: SplitMix64::new(seed ^ name_hash(&rules.symbol) ^ 0x5741_4c4b_5741_4c4b),
                    level: rules.price,
                    next_open_ms: start_ms.div_euclid(MINUTE_MS) * MINUTE_MS,
                };
                (motion, first_due)
            }
            PricePath::Replay { candles } => (Motion::Replay { candles: Arc::clone(candles), cursor: 0 }, first_due),
        };
        Self { motion, next_due_ms, every_ms }
    }

    /// When the next step falls due, if by `now_ms`.
    pub(crate) fn due(&self, now_ms: i64) -> Option<i64> {
        (self.next_due_ms <= now_ms).then_some(self.next_due_ms)
    }

    /// Whether the path moves the price by itself.
    pub(crate) fn moves(&self) -> bool {
        !matches!(self.motion, Motion::Still)
    }

    /// Takes the step that is due: the next candle, starting from `price` (the market price now).
    /// `None` when the path has nothing more to play.
    pub(crate) fn step(&mut self, rules: &SimSymbol, price: Decimal) -> Option<Candle> {
        let candle = match &mut self.motion {
            Motion::Still => None,
            Motion::Walk { volatility, rng, level, next_open_ms } => {
                let candle = walk_candle(rng, level, *volatility, rules, price, *next_open_ms);
                *next_open_ms += MINUTE_MS;
                Some(candle)
            }
            Motion::Replay { candles, cursor } => {
                let candle = candles.get(*cursor).cloned();
                *cursor += 1;
                candle
            }
        };
        self.next_due_ms = if candle.is_some() { self.next_due_ms.saturating_add(self.every_ms) } else { i64::MAX };
        candle
    }

    pub(crate) fn save(&self) -> SavedPath {
        match &self.motion {
            Motion::Still => SavedPath::default(),
            Motion::Walk { rng, level, next_open_ms, .. } => SavedPath {
                walk_rng: Some(rng.state()),
                walk_level: Some(*level),
                walk_next_open_ms: Some(*next_open_ms),
                replay_cursor: None,
            },
            Motion::Replay { cursor, .. } => SavedPath { replay_cursor: Some(*cursor), ..SavedPath::default() },
        }
    }

    /// Resumes where a saved path stopped (the parts that match this path's kind); the next step
    /// falls due one interval from `now_ms`, so the market stands still while the simulator is down.
    pub(crate) fn resume(&mut self, saved: &SavedPath, now_ms: i64) {
        match &mut self.motion {
            Motion::Still => {}
            Motion::Walk { rng, level, next_open_ms, .. } => {
                if let (Some(state), Some(saved_level), Some(open)) =
                    (saved.walk_rng, saved.walk_level, saved.walk_next_open_ms)
                {
                    *rng = SplitMix64::new(state);
                    *level = saved_level;
                    *next_open_ms = open;
                }
            }
            Motion::Replay { candles, cursor } => {
                if let Some(saved_cursor) = saved.replay_cursor {
                    *cursor = saved_cursor.min(candles.len());
                }
            }
        }
        if self.moves() && self.next_due_ms != i64::MAX {
            self.next_due_ms = now_ms.saturating_add(self.every_ms);
        }
        if let Motion::Replay { candles, cursor } = &self.motion
            && *cursor >= candles.len()
        {
            self.next_due_ms = i64::MAX;
        }
    }
}

/// `price` on the tick grid, within the symbol's price filter.
pub(crate) fn to_grid(price: Decimal, rules: &SimSymbol) -> Decimal {
    let floor = rules.min_price.max(rules.tick_size);
    round_to_step(price, rules.tick_size, RoundingStrategy::MidpointNearestEven).clamp(floor, rules.max_price)
}

/// One random-walk minute from `price`.
fn walk_candle(
    rng: &mut SplitMix64,
    level: &mut Decimal,
    volatility: Decimal,
    rules: &SimSymbol,
    price: Decimal,
    open_time_ms: i64,
) -> Candle {
    /// Sub-steps per step; four makes each one's deviation exactly half the step's.
    const SUB_STEPS: usize = 4;
    if to_grid(*level, rules) != price {
        // Someone set the price: the walk goes on from there.
        *level = price;
    }
    let sub_volatility = volatility / Decimal::TWO;
    let floor = rules.min_price.max(rules.tick_size);
    let (mut high, mut low, mut close) = (price, price, price);
    for _ in 0..SUB_STEPS {
        let log_return = (sub_volatility * standard_normal(rng)).round_dp(18);
        *level = (*level * exp(log_return)).round_dp(12).clamp(floor, rules.max_price);
        close = to_grid(*level, rules);
        high = high.max(close);
        low = low.min(close);
    }
    // A minute's volume around the symbol's daily quote volume spread over the day, 0.5x to 1.5x.
    let per_minute = rules.quote_volume_24h / Decimal::from(24 * 60) / close;
    let factor = Decimal::new(i64::try_from(500 + rng.below(1_001)).unwrap_or(1_000), 3);
    let volume = (per_minute * factor).round_dp_with_strategy(8, RoundingStrategy::ToZero);
    let mut candle = Candle::new(open_time_ms, price, high, low, close, volume);
    candle.trades = 1 + rng.below(2_000);
    candle
}

/// A draw of a standard normal variable (Irwin–Hall with twelve uniforms), from integer draws.
fn standard_normal(rng: &mut SplitMix64) -> Decimal {
    const ONE: i64 = 1 << 32;
    let sum: i64 = (0..12).map(|_| i64::from((rng.next_u64() >> 32) as u32)).sum();
    Decimal::from(sum - 6 * ONE) / Decimal::from(ONE)
}

/// `e^x` by its Taylor series, for the small `x` of log-returns (|x| well below 1).
fn exp(x: Decimal) -> Decimal {
    let mut sum = Decimal::ONE;
    let mut term = Decimal::ONE;
    for n in 1..=60u32 {
        term = (term * x / Decimal::from(n)).round_dp(26);
        if term.is_zero() {
            break;
        }
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc(volatility: &str) -> SimSymbol {
        SimSymbol {
            path: PricePath::RandomWalk { volatility: volatility.parse().expect("a decimal") },
            ..SimSymbol::new("BTCUSDT", "BTC", "USDT", Decimal::new(30_000, 0))
        }
    }

    /// Runs `steps` steps and returns the candles.
    fn walk(rules: &SimSymbol, seed: u64, steps: usize) -> Vec<Candle> {
        let mut path = PathState::new(rules, seed, 0, MINUTE_MS);
        let mut price = rules.price;
        (0..steps)
            .map(|_| {
                let candle = path.step(rules, price).expect("a walk never ends");
                price = candle.close;
                candle
            })
            .collect()
    }

    #[test]
    fn exp_matches_known_values() {
        assert_eq!(exp(Decimal::ZERO), Decimal::ONE);
        let e = exp(Decimal::ONE).round_dp(15);
        assert_eq!(e, "2.718281828459045".parse::<Decimal>().expect("e"));
        let small = exp("-0.001".parse().expect("x")).round_dp(12);
        assert_eq!(small, "0.999000499833".parse::<Decimal>().expect("e^-0.001"));
    }

    #[test]
    fn the_walk_is_reproducible_from_the_seed() {
        let rules = btc("0.001");
        assert_eq!(walk(&rules, 42, 50), walk(&rules, 42, 50));
        assert_ne!(walk(&rules, 42, 50), walk(&rules, 43, 50));
    }

    #[test]
    fn walk_candles_are_consistent_on_the_grid_and_follow_each_other() {
        let rules = btc("0.001");
        let candles = walk(&rules, 7, 500);
        let mut open = rules.price;
        for (minute, candle) in (0..).zip(&candles) {
            assert_eq!(candle.check(), Ok(()), "{candle:?}");
            assert_eq!(candle.open, open, "each candle opens at the previous close");
            assert_eq!(candle.open_time_ms, minute * MINUTE_MS);
            for price in [candle.open, candle.high, candle.low, candle.close] {
                assert!(price > Decimal::ZERO && (price % rules.tick_size).is_zero(), "{price}");
            }
            assert!(candle.volume > Decimal::ZERO);
            open = candle.close;
        }
    }

    /// The per-step deviation of simple returns is close to the configured log-return deviation
    /// (they agree to first order at these sizes). Statistics only: f64 never touches a price.
    #[test]
    fn the_walk_has_the_configured_volatility() {
        for volatility in ["0.001", "0.005"] {
            let rules = btc(volatility);
            let candles = walk(&rules, 1, 5_000);
            let returns: Vec<f64> = candles
                .iter()
                .map(|c| {
                    let change = (c.close - c.open) / c.open;
                    change.to_string().parse::<f64>().expect("a number")
                })
                .collect();
            let mean = returns.iter().sum::<f64>() / returns.len() as f64;
            let variance = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (returns.len() - 1) as f64;
            let expected: f64 = volatility.parse().expect("a number");
            let deviation = variance.sqrt();
            assert!((deviation / expected - 1.0).abs() < 0.1, "{volatility}: measured {deviation}");
        }
    }

    #[test]
    fn prices_stay_positive_and_within_the_filter_even_for_tiny_prices() {
        let rules = SimSymbol {
            path: PricePath::RandomWalk { volatility: MAX_VOLATILITY },
            ..SimSymbol::new("DOGEUSDT", "DOGE", "USDT", Decimal::new(2, 2))
        };
        for candle in walk(&rules, 3, 2_000) {
            assert!(candle.low >= rules.min_price.max(rules.tick_size) && candle.high <= rules.max_price, "{candle:?}");
        }
    }

    #[test]
    fn a_replay_plays_its_candles_once_then_stops_and_resumes_from_a_save() {
        let candles: Arc<[Candle]> = (0..3)
            .map(|i| Candle::new(i * MINUTE_MS, Decimal::ONE, Decimal::TWO, Decimal::ONE, Decimal::TWO, Decimal::ONE))
            .collect();
        let rules = SimSymbol {
            path: PricePath::Replay { candles: Arc::clone(&candles) },
            ..SimSymbol::new("BTCUSDT", "BTC", "USDT", Decimal::ONE)
        };
        let mut path = PathState::new(&rules, 0, 30_000, MINUTE_MS);
        assert_eq!(path.due(59_999), None);
        assert_eq!(path.due(60_000), Some(60_000), "steps fall on the interval's grid");
        assert_eq!(path.step(&rules, Decimal::ONE).as_ref(), Some(&candles[0]));
        assert_eq!(path.due(119_999), None);
        let saved = path.save();
        let mut resumed = PathState::new(&rules, 0, 500_000, MINUTE_MS);
        resumed.resume(&saved, 500_000);
        assert_eq!(resumed.due(559_999), None, "the market stood still while the simulator was down");
        assert_eq!(resumed.step(&rules, Decimal::ONE).as_ref(), Some(&candles[1]));
        assert_eq!(resumed.step(&rules, Decimal::ONE).as_ref(), Some(&candles[2]));
        assert_eq!(resumed.step(&rules, Decimal::ONE), None);
        assert_eq!(resumed.due(i64::MAX - 1), None);
    }
}
