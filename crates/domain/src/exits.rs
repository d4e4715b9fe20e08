//! How a DCA deal leaves its position (`spec/dca.md`, the 3Commas take-profit and stop-loss
//! family): one take-profit target or up to four steps (`take_profit_steps`), trailing on the last
//! target (`trailing_enabled`, `trailing_deviation`), and a stop loss that may trail the price
//! (`tsl_enabled`), move to breakeven once the first target filled (`sl_to_breakeven_enabled`),
//! wait out a timeout and disable its bot (`stop_loss_type = stop_loss_and_disable_bot`).
//!
//! Everything here is arithmetic on `Decimal`, checked: a result that would leave `Decimal`'s range
//! is `None`, never a panic. The engine decides *when* to act; these functions say *at what price*.

use rust_decimal::Decimal;

use crate::dca::{DcaError, Strategy};

/// At most this many take-profit steps (3Commas' limit).
pub const MAX_TAKE_PROFIT_STEPS: usize = 4;

/// One step of a multi-step take profit: sell (long) or buy back (short) `amount_percentage` of the
/// position at `profit_percentage` from the average entry price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeProfitStep {
    pub amount_percentage: Decimal,
    pub profit_percentage: Decimal,
}

/// A take-profit target of a deal in a given state: its step (1-based), its share of the position,
/// and its price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeProfitTarget {
    pub step: u32,
    pub amount_percentage: Decimal,
    pub profit_percentage: Decimal,
    pub price: Decimal,
}

/// Checks `take_profit_steps`: one to four steps, each amount above zero, the amounts summing to
/// exactly 100 (a position is never left without a target), each profit above zero and every step's
/// profit above the one before (a short deal's below 100 %, or it would buy back at zero).
///
/// # Errors
/// `DcaError` naming `take_profit_steps`.
pub fn check_steps(steps: &[TakeProfitStep], strategy: Strategy) -> Result<(), DcaError> {
    let field = "take_profit_steps";
    if steps.is_empty() || steps.len() > MAX_TAKE_PROFIT_STEPS {
        return Err(DcaError::OutOfRange { field, min: Decimal::ONE, max: Decimal::from(MAX_TAKE_PROFIT_STEPS) });
    }
    let mut total = Decimal::ZERO;
    let mut previous = Decimal::ZERO;
    for step in steps {
        if step.amount_percentage <= Decimal::ZERO || step.profit_percentage <= Decimal::ZERO {
            return Err(DcaError::Unworkable {
                field,
                reason: "every step needs an amount_percentage and a profit_percentage above zero",
            });
        }
        if step.profit_percentage <= previous {
            return Err(DcaError::Unworkable {
                field,
                reason: "each step's profit_percentage must exceed the one before",
            });
        }
        if strategy == Strategy::Short && step.profit_percentage >= Decimal::ONE_HUNDRED {
            return Err(DcaError::Unworkable { field, reason: "a short deal's profit_percentage must stay below 100" });
        }
        previous = step.profit_percentage;
        total = total
            .checked_add(step.amount_percentage)
            .ok_or(DcaError::Unworkable { field, reason: "the amount_percentage values must add up to 100" })?;
    }
    if total != Decimal::ONE_HUNDRED {
        return Err(DcaError::Unworkable { field, reason: "the amount_percentage values must add up to 100" });
    }
    Ok(())
}

/// Checks a trailing deviation against the last target's profit: trailing by `deviation` % from the
/// best price after the target was reached must still exit beyond the average entry price, so
/// trailing can lower a profit but never turn it into a loss: long (1 + p)(1 − d) > 1, short
/// (1 − p)(1 + d) < 1, with p and d as fractions.
///
/// # Errors
/// `DcaError` naming `trailing_deviation`.
pub fn check_trailing(deviation: Decimal, last_profit: Decimal, strategy: Strategy) -> Result<(), DcaError> {
    let field = "trailing_deviation";
    if deviation <= Decimal::ZERO || deviation >= Decimal::ONE_HUNDRED {
        return Err(DcaError::OutOfRange { field, min: Decimal::ZERO, max: Decimal::ONE_HUNDRED });
    }
    let hundred = Decimal::ONE_HUNDRED;
    let keeps_profit = match strategy {
        Strategy::Long => {
            (hundred + last_profit).checked_mul(hundred - deviation).is_some_and(|x| x > hundred * hundred)
        }
        Strategy::Short => {
            (hundred - last_profit).checked_mul(hundred + deviation).is_some_and(|x| x < hundred * hundred)
        }
    };
    if !keeps_profit {
        return Err(DcaError::Unworkable {
            field,
            reason: "trailing by this much could close below the average price; keep it well under the last take profit",
        });
    }
    Ok(())
}

/// Whether `price` reached `target` from the deal's side: at or above it for a long deal, at or
/// below for a short one.
pub fn reached(strategy: Strategy, price: Decimal, target: Decimal) -> bool {
    match strategy {
        Strategy::Long => price >= target,
        Strategy::Short => price <= target,
    }
}

/// The more favourable of two prices for the deal: the higher for a long deal, the lower for a
/// short one.
pub fn better(strategy: Strategy, a: Decimal, b: Decimal) -> Decimal {
    match strategy {
        Strategy::Long => a.max(b),
        Strategy::Short => a.min(b),
    }
}

/// Whether `price` has moved against the deal to `level` or past it: at or below it for a long
/// deal, at or above for a short one (a stop loss's trigger, a trailing exit).
pub fn crossed(strategy: Strategy, price: Decimal, level: Decimal) -> bool {
    match strategy {
        Strategy::Long => price <= level,
        Strategy::Short => price >= level,
    }
}

/// `percent` % away from `price` against the deal: below for a long deal, above for a short one.
pub fn against(strategy: Strategy, price: Decimal, percent: Decimal) -> Option<Decimal> {
    let hundred = Decimal::ONE_HUNDRED;
    let factor = match strategy {
        Strategy::Long => hundred.checked_sub(percent)?,
        Strategy::Short => hundred.checked_add(percent)?,
    };
    price.checked_mul(factor)?.checked_div(hundred)
}

/// The price at which a trailing take profit that has seen `extreme` (its best price since the
/// target was reached) closes: `trailing_deviation` % back from it, and never past the average
/// entry price (`floor`), whatever the take-profit type.
pub fn trailing_exit(strategy: Strategy, deviation: Decimal, extreme: Decimal, floor: Decimal) -> Option<Decimal> {
    let exit = against(strategy, extreme, deviation)?;
    Some(better(strategy, exit, floor))
}

/// `stop_loss_type`: what else a stop loss does when it closes a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopLossType {
    /// `stop_loss`: closes the deal; the bot goes on.
    StopLoss,
    /// `stop_loss_and_disable_bot`: closes the deal and disables its bot.
    StopLossAndDisableBot,
}

impl StopLossType {
    /// # Errors
    /// `DcaError::UnknownValue` naming `stop_loss_type`.
    pub fn parse(raw: &str) -> Result<StopLossType, DcaError> {
        match raw {
            "stop_loss" => Ok(StopLossType::StopLoss),
            "stop_loss_and_disable_bot" => Ok(StopLossType::StopLossAndDisableBot),
            _ => Err(DcaError::UnknownValue {
                field: "stop_loss_type",
                expected: "stop_loss, stop_loss_and_disable_bot",
            }),
        }
    }
}

/// A deal's stop loss, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopLoss {
    percentage: Decimal,
    timeout_seconds: u32,
    trailing: bool,
    to_breakeven: bool,
    kind: StopLossType,
}

impl StopLoss {
    /// No stop loss.
    pub const OFF: StopLoss = StopLoss {
        percentage: Decimal::ZERO,
        timeout_seconds: 0,
        trailing: false,
        to_breakeven: false,
        kind: StopLossType::StopLoss,
    };

    /// `stop_loss_percentage` (0 is off, below 100), `stop_loss_timeout_in_seconds` (0 acts at once),
    /// `tsl_enabled` (needs a percentage), `sl_to_breakeven_enabled` and `stop_loss_type`. Whether
    /// moving to breakeven fits the take profit is checked with the rest of the settings
    /// ([`crate::DcaSettings::with_exits`]).
    ///
    /// # Errors
    /// `DcaError` naming the field.
    pub fn new(
        percentage: Decimal,
        timeout_seconds: u32,
        trailing: bool,
        to_breakeven: bool,
        kind: StopLossType,
    ) -> Result<StopLoss, DcaError> {
        if percentage < Decimal::ZERO || percentage >= Decimal::ONE_HUNDRED {
            return Err(DcaError::OutOfRange {
                field: "stop_loss_percentage",
                min: Decimal::ZERO,
                max: Decimal::ONE_HUNDRED,
            });
        }
        if trailing && percentage.is_zero() {
            return Err(DcaError::Unworkable {
                field: "tsl_enabled",
                reason: "a trailing stop loss needs a stop_loss_percentage above 0",
            });
        }
        Ok(StopLoss { percentage, timeout_seconds, trailing, to_breakeven, kind })
    }

    pub fn percentage(&self) -> Decimal {
        self.percentage
    }

    pub fn timeout_seconds(&self) -> u32 {
        self.timeout_seconds
    }

    pub fn trailing(&self) -> bool {
        self.trailing
    }

    pub fn to_breakeven(&self) -> bool {
        self.to_breakeven
    }

    pub fn kind(&self) -> StopLossType {
        self.kind
    }

    /// Whether anything can ever trigger it.
    pub fn is_on(&self) -> bool {
        !self.percentage.is_zero() || self.to_breakeven
    }

    /// The price that triggers the stop loss of a deal with this `average` entry price, or `None`
    /// when it is off. The percentage is measured from the average price or, trailing, from the
    /// better of it and `best` (the best price since the deal bought); once `breakeven_armed` (a
    /// take-profit step filled) and `sl_to_breakeven_enabled`, the average price itself is a
    /// trigger. Of several triggers the one nearest the market wins: the higher for a long deal,
    /// the lower for a short one.
    pub fn trigger(
        &self,
        strategy: Strategy,
        average: Decimal,
        best: Option<Decimal>,
        breakeven_armed: bool,
    ) -> Option<Decimal> {
        let from_percentage = if self.percentage.is_zero() {
            None
        } else {
            let reference = match (self.trailing, best) {
                (true, Some(best)) => better(strategy, average, best),
                _ => average,
            };
            Some(against(strategy, reference, self.percentage)?)
        };
        let breakeven = (self.to_breakeven && breakeven_armed).then_some(average);
        match (from_percentage, breakeven) {
            (Some(a), Some(b)) => Some(better(strategy, a, b)),
            (a, b) => a.or(b),
        }
    }
}

/// What `DcaSettings::with_exits` adds to a plan's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitSettings {
    /// Empty: one target at `take_profit`.
    pub take_profit_steps: Vec<TakeProfitStep>,
    /// `trailing_deviation` when `trailing_enabled`.
    pub trailing_deviation: Option<Decimal>,
    pub stop_loss: StopLoss,
}

impl Default for ExitSettings {
    fn default() -> ExitSettings {
        ExitSettings { take_profit_steps: Vec::new(), trailing_deviation: None, stop_loss: StopLoss::OFF }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{prop_assert, proptest};

    use super::*;

    fn dec(raw: &str) -> Decimal {
        raw.parse().unwrap()
    }

    fn step(amount: &str, profit: &str) -> TakeProfitStep {
        TakeProfitStep { amount_percentage: dec(amount), profit_percentage: dec(profit) }
    }

    #[test]
    fn steps_must_cover_the_whole_position_in_rising_profits() {
        let good = [step("50", "1"), step("30", "2"), step("20", "3")];
        assert_eq!(check_steps(&good, Strategy::Long), Ok(()));
        let cases: [&[TakeProfitStep]; 6] = [
            &[],
            &[step("20", "1"), step("20", "2"), step("20", "3"), step("20", "4"), step("20", "5")],
            &[step("50", "1"), step("40", "2")],
            &[step("50", "2"), step("50", "2")],
            &[step("100", "0")],
            &[step("0", "1"), step("100", "2")],
        ];
        for steps in cases {
            let err = check_steps(steps, Strategy::Long).unwrap_err();
            assert_eq!(err.field(), "take_profit_steps", "{steps:?}");
        }
        assert!(check_steps(&[step("100", "100")], Strategy::Short).is_err());
        assert!(check_steps(&[step("100", "100")], Strategy::Long).is_ok());
    }

    #[test]
    fn trailing_may_not_trail_into_a_loss() {
        assert!(check_trailing(dec("0.5"), dec("1"), Strategy::Long).is_ok());
        // (1.01)(0.99) = 0.9999: a trailing exit could land below the average.
        assert_eq!(check_trailing(dec("1"), dec("1"), Strategy::Long).unwrap_err().field(), "trailing_deviation");
        assert!(check_trailing(dec("0.5"), dec("1"), Strategy::Short).is_ok());
        // (0.99)(1.0102) > 1.
        assert!(check_trailing(dec("1.02"), dec("1"), Strategy::Short).is_err());
        assert!(check_trailing(dec("0"), dec("5"), Strategy::Long).is_err());
        assert!(check_trailing(dec("100"), dec("500"), Strategy::Long).is_err());
    }

    #[test]
    fn trailing_exit_follows_the_extreme_but_not_past_the_average() {
        assert_eq!(trailing_exit(Strategy::Long, dec("1"), dec("110"), dec("100")), Some(dec("108.9")));
        assert_eq!(trailing_exit(Strategy::Long, dec("20"), dec("110"), dec("100")), Some(dec("100")));
        assert_eq!(trailing_exit(Strategy::Short, dec("1"), dec("90"), dec("100")), Some(dec("90.9")));
        assert_eq!(trailing_exit(Strategy::Short, dec("20"), dec("90"), dec("100")), Some(dec("100")));
    }

    #[test]
    fn stop_loss_triggers() {
        let fixed = StopLoss::new(dec("5"), 0, false, false, StopLossType::StopLoss).unwrap();
        assert_eq!(fixed.trigger(Strategy::Long, dec("100"), Some(dec("120")), true), Some(dec("95")));
        assert_eq!(fixed.trigger(Strategy::Short, dec("100"), Some(dec("80")), true), Some(dec("105")));
        let trailing = StopLoss::new(dec("5"), 0, true, false, StopLossType::StopLoss).unwrap();
        assert_eq!(trailing.trigger(Strategy::Long, dec("100"), Some(dec("120")), false), Some(dec("114")));
        // A best price below the average does not pull a long stop loss down.
        assert_eq!(trailing.trigger(Strategy::Long, dec("100"), Some(dec("90")), false), Some(dec("95")));
        assert_eq!(trailing.trigger(Strategy::Short, dec("100"), Some(dec("80")), false), Some(dec("84")));
        let breakeven = StopLoss::new(dec("5"), 0, false, true, StopLossType::StopLoss).unwrap();
        assert_eq!(breakeven.trigger(Strategy::Long, dec("100"), None, false), Some(dec("95")));
        assert_eq!(breakeven.trigger(Strategy::Long, dec("100"), None, true), Some(dec("100")));
        assert_eq!(breakeven.trigger(Strategy::Short, dec("100"), None, true), Some(dec("100")));
        let only_breakeven = StopLoss::new(Decimal::ZERO, 0, false, true, StopLossType::StopLoss).unwrap();
        assert!(only_breakeven.is_on());
        assert_eq!(only_breakeven.trigger(Strategy::Long, dec("100"), None, false), None);
        assert_eq!(only_breakeven.trigger(Strategy::Long, dec("100"), None, true), Some(dec("100")));
        assert_eq!(StopLoss::OFF.trigger(Strategy::Long, dec("100"), Some(dec("200")), true), None);
        assert!(!StopLoss::OFF.is_on());
        assert_eq!(
            StopLoss::new(Decimal::ZERO, 0, true, false, StopLossType::StopLoss).unwrap_err().field(),
            "tsl_enabled"
        );
        assert_eq!(
            StopLoss::new(dec("100"), 0, false, false, StopLossType::StopLoss).unwrap_err().field(),
            "stop_loss_percentage"
        );
        assert_eq!(StopLossType::parse("stop_loss_and_disable_bot"), Ok(StopLossType::StopLossAndDisableBot));
        assert_eq!(StopLossType::parse("x").unwrap_err().field(), "stop_loss_type");
    }

    proptest! {
        /// A trailing stop loss never sits below the fixed one, and never moves against the deal
        /// as the best price improves.
        #[test]
        fn trailing_stop_loss_only_tightens(avg in 1u32..100_000, best in 1u32..200_000, more in 0u32..10_000, sl in 1u32..99) {
            let (avg, best, more) = (Decimal::from(avg), Decimal::from(best), Decimal::from(more));
            let fixed = StopLoss::new(Decimal::from(sl), 0, false, false, StopLossType::StopLoss).unwrap();
            let trailing = StopLoss::new(Decimal::from(sl), 0, true, false, StopLossType::StopLoss).unwrap();
            let long_fixed = fixed.trigger(Strategy::Long, avg, Some(best), false).unwrap();
            let long_now = trailing.trigger(Strategy::Long, avg, Some(best), false).unwrap();
            let long_later = trailing.trigger(Strategy::Long, avg, Some(best + more), false).unwrap();
            prop_assert!(long_now >= long_fixed && long_later >= long_now);
            let short_fixed = fixed.trigger(Strategy::Short, avg, Some(best), false).unwrap();
            let short_now = trailing.trigger(Strategy::Short, avg, Some(best), false).unwrap();
            let lower = (best - more).max(Decimal::ONE);
            let short_later = trailing.trigger(Strategy::Short, avg, Some(lower), false).unwrap();
            prop_assert!(short_now <= short_fixed && short_later <= short_now);
        }

        /// Settings that pass `check_trailing` never exit a trailing long take profit at or below
        /// the average, wherever the price peaked past the target.
        #[test]
        fn checked_trailing_keeps_a_profit(p in 1u32..5000, d in 1u32..5000, over in 0u32..100_000) {
            let (p, d) = (Decimal::new(i64::from(p), 2), Decimal::new(i64::from(d), 2));
            let average = Decimal::from(1000);
            if check_trailing(d, p, Strategy::Long).is_ok() {
                let target = average * (Decimal::ONE_HUNDRED + p) / Decimal::ONE_HUNDRED;
                let peak = target + Decimal::new(i64::from(over), 2);
                let exit = against(Strategy::Long, peak, d).unwrap();
                prop_assert!(exit > average, "p {p} d {d} peak {peak} exit {exit}");
            }
        }
    }
}
