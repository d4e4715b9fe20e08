//! A DCA bot's order plan: the base order and its safety orders, priced and sized the way 3Commas
//! does it (`spec/dca.md`, "The math"), with the average price and take-profit price after each fill.
//!
//! Everything is `Decimal` and checked: a plan whose numbers leave `Decimal`'s range, or whose
//! safety orders would reach a price of zero or shrink below what `Decimal` can tell apart, is
//! refused with a `DcaError` naming the setting to change, never a panic. Volumes are in the quote
//! or the base currency (each order's own type); the `percent` and `xbt` volume types are refused.
//! How a deal exits (take-profit steps, trailing, stop loss) is in [`crate::exits`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::exits::{self, ExitSettings, StopLoss, TakeProfitStep, TakeProfitTarget};
use crate::market::{FilterViolation, MarketFilters, Price, Side};

/// The most safety orders a bot may have (3Commas' limit).
pub const MAX_SAFETY_ORDERS: u32 = 200;

/// A setting that cannot be used, named by its 3Commas field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DcaError {
    #[error("{field} must be greater than zero")]
    NotPositive { field: &'static str },
    #[error("{field} must be between {min} and {max}")]
    OutOfRange { field: &'static str, min: Decimal, max: Decimal },
    #[error("{field} must be one of {expected}")]
    UnknownValue { field: &'static str, expected: &'static str },
    #[error("{field}: percent and xbt volumes are not supported; give the volume in quote_currency or base_currency")]
    UnsupportedVolumeType { field: &'static str },
    #[error("{field}: {reason}")]
    Unworkable { field: &'static str, reason: &'static str },
}

impl DcaError {
    /// The settings field to change.
    pub fn field(&self) -> &'static str {
        match self {
            DcaError::NotPositive { field }
            | DcaError::OutOfRange { field, .. }
            | DcaError::UnknownValue { field, .. }
            | DcaError::UnsupportedVolumeType { field }
            | DcaError::Unworkable { field, .. } => field,
        }
    }
}

/// `strategy`: a long bot buys and sells higher; a short bot sells and buys back lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    Long,
    Short,
}

impl Strategy {
    /// The side of the base and safety orders; the take profit is the other one.
    pub fn entry_side(self) -> Side {
        match self {
            Strategy::Long => Side::Buy,
            Strategy::Short => Side::Sell,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Long => "long",
            Strategy::Short => "short",
        }
    }
}

impl FromStr for Strategy {
    type Err = DcaError;

    fn from_str(raw: &str) -> Result<Strategy, DcaError> {
        match raw {
            "long" => Ok(Strategy::Long),
            "short" => Ok(Strategy::Short),
            _ => Err(DcaError::UnknownValue { field: "strategy", expected: "long, short" }),
        }
    }
}

/// `take_profit_type`: the profit is a percentage of the whole deal (`total`) or of the base order
/// alone (`base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TakeProfitType {
    Base,
    Total,
}

impl FromStr for TakeProfitType {
    type Err = DcaError;

    fn from_str(raw: &str) -> Result<TakeProfitType, DcaError> {
        match raw {
            "base" => Ok(TakeProfitType::Base),
            "total" => Ok(TakeProfitType::Total),
            _ => Err(DcaError::UnknownValue { field: "take_profit_type", expected: "base, total" }),
        }
    }
}

/// `base_order_volume_type` / `safety_order_volume_type`: an order's volume in the quote currency
/// (its cost) or in the base currency (its quantity). `Percent` and `Xbt` are named so they can be
/// refused clearly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VolumeType {
    QuoteCurrency,
    BaseCurrency,
    Percent,
    Xbt,
}

impl VolumeType {
    /// Parses the 3Commas name for the settings field `field`.
    ///
    /// # Errors
    /// `DcaError::UnknownValue` naming `field` for anything else.
    pub fn parse(field: &'static str, raw: &str) -> Result<VolumeType, DcaError> {
        match raw {
            "quote_currency" => Ok(VolumeType::QuoteCurrency),
            "base_currency" => Ok(VolumeType::BaseCurrency),
            "percent" => Ok(VolumeType::Percent),
            "xbt" => Ok(VolumeType::Xbt),
            _ => Err(DcaError::UnknownValue { field, expected: "quote_currency, base_currency, percent, xbt" }),
        }
    }
}

/// The settings as the user sent them, before `DcaSettings::new` checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcaSettingsInput {
    pub base_order_volume: Decimal,
    pub base_order_volume_type: VolumeType,
    pub safety_order_volume: Decimal,
    pub safety_order_volume_type: VolumeType,
    pub max_safety_orders: u32,
    pub active_safety_orders_count: u32,
    pub safety_order_step_percentage: Decimal,
    pub martingale_step_coefficient: Decimal,
    pub martingale_volume_coefficient: Decimal,
    pub take_profit: Decimal,
    pub take_profit_type: TakeProfitType,
    pub strategy: Strategy,
}

/// Checked DCA settings: the plan, and how a deal exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcaSettings {
    base_order_volume: Decimal,
    base_order_volume_type: VolumeType,
    safety_order_volume: Decimal,
    safety_order_volume_type: VolumeType,
    max_safety_orders: u32,
    active_safety_orders_count: u32,
    safety_order_step_percentage: Decimal,
    martingale_step_coefficient: Decimal,
    martingale_volume_coefficient: Decimal,
    take_profit: Decimal,
    take_profit_type: TakeProfitType,
    strategy: Strategy,
    exits: ExitSettings,
}

/// A volume type a plan can be built with.
fn supported(field: &'static str, kind: VolumeType) -> Result<VolumeType, DcaError> {
    match kind {
        VolumeType::QuoteCurrency | VolumeType::BaseCurrency => Ok(kind),
        VolumeType::Percent | VolumeType::Xbt => Err(DcaError::UnsupportedVolumeType { field }),
    }
}

impl DcaSettings {
    /// Checks each field against 3Commas' limits: volumes, the deviation and the take profit above
    /// zero (a short bot's take profit below 100 %, or it would buy back at zero), at most 200 safety
    /// orders, between 1 and `max_safety_orders` active ones (0 when there are none), both
    /// coefficients between 0.1 and 10.
    ///
    /// # Errors
    /// The first field that breaks its rule.
    pub fn new(input: DcaSettingsInput) -> Result<DcaSettings, DcaError> {
        let positive = |field: &'static str, value: Decimal| {
            if value > Decimal::ZERO { Ok(()) } else { Err(DcaError::NotPositive { field }) }
        };
        positive("base_order_volume", input.base_order_volume)?;
        let base_order_volume_type = supported("base_order_volume_type", input.base_order_volume_type)?;
        positive("safety_order_volume", input.safety_order_volume)?;
        let safety_order_volume_type = supported("safety_order_volume_type", input.safety_order_volume_type)?;
        if input.max_safety_orders > MAX_SAFETY_ORDERS {
            return Err(DcaError::OutOfRange {
                field: "max_safety_orders",
                min: Decimal::ZERO,
                max: Decimal::from(MAX_SAFETY_ORDERS),
            });
        }
        let active_min = u32::from(input.max_safety_orders > 0);
        if input.active_safety_orders_count < active_min || input.active_safety_orders_count > input.max_safety_orders {
            return Err(DcaError::OutOfRange {
                field: "active_safety_orders_count",
                min: Decimal::from(active_min),
                max: Decimal::from(input.max_safety_orders),
            });
        }
        positive("safety_order_step_percentage", input.safety_order_step_percentage)?;
        let coefficient = |field: &'static str, value: Decimal| {
            let (min, max) = (Decimal::new(1, 1), Decimal::TEN);
            if (min..=max).contains(&value) { Ok(()) } else { Err(DcaError::OutOfRange { field, min, max }) }
        };
        coefficient("martingale_step_coefficient", input.martingale_step_coefficient)?;
        coefficient("martingale_volume_coefficient", input.martingale_volume_coefficient)?;
        positive("take_profit", input.take_profit)?;
        if input.strategy == Strategy::Short && input.take_profit >= Decimal::ONE_HUNDRED {
            return Err(DcaError::OutOfRange { field: "take_profit", min: Decimal::ZERO, max: Decimal::ONE_HUNDRED });
        }
        Ok(DcaSettings {
            base_order_volume: input.base_order_volume,
            base_order_volume_type,
            safety_order_volume: input.safety_order_volume,
            safety_order_volume_type,
            max_safety_orders: input.max_safety_orders,
            active_safety_orders_count: input.active_safety_orders_count,
            safety_order_step_percentage: input.safety_order_step_percentage,
            martingale_step_coefficient: input.martingale_step_coefficient,
            martingale_volume_coefficient: input.martingale_volume_coefficient,
            take_profit: input.take_profit,
            take_profit_type: input.take_profit_type,
            strategy: input.strategy,
            exits: ExitSettings::default(),
        })
    }

    /// Adds how deals exit: take-profit steps (which then replace `take_profit`), trailing on the
    /// last target, and the stop loss.
    ///
    /// # Errors
    /// `DcaError` naming the field: steps breaking [`exits::check_steps`]; a trailing deviation
    /// breaking [`exits::check_trailing`] against the last target; `sl_to_breakeven_enabled`
    /// without two steps or more (a single target ends the deal, so there is nothing after it to
    /// protect).
    pub fn with_exits(mut self, exits: ExitSettings) -> Result<DcaSettings, DcaError> {
        if !exits.take_profit_steps.is_empty() {
            exits::check_steps(&exits.take_profit_steps, self.strategy)?;
        }
        self.exits = exits;
        if let Some(deviation) = self.exits.trailing_deviation {
            let last = self.targets().last().map_or(self.take_profit, |s| s.profit_percentage);
            exits::check_trailing(deviation, last, self.strategy)?;
        }
        if self.exits.stop_loss.to_breakeven() && self.exits.take_profit_steps.len() < 2 {
            return Err(DcaError::Unworkable {
                field: "sl_to_breakeven_enabled",
                reason: "moving the stop loss to breakeven needs take_profit_steps with two steps or more",
            });
        }
        Ok(self)
    }

    /// The take-profit steps: the configured ones, or one step of 100 % at `take_profit`.
    pub fn targets(&self) -> Vec<TakeProfitStep> {
        if self.exits.take_profit_steps.is_empty() {
            vec![TakeProfitStep { amount_percentage: Decimal::ONE_HUNDRED, profit_percentage: self.take_profit }]
        } else {
            self.exits.take_profit_steps.clone()
        }
    }

    /// The take-profit targets of a deal that spent `spent` quote for `coins` base (a short deal:
    /// received `spent` quote for `coins` sold), with a base order of `bo` quote: each step's
    /// profit in the formula of [`DcaPlan::new`], applied to actual fills. `None` when one leaves
    /// `Decimal`'s range.
    pub fn take_profit_targets(&self, bo: Decimal, spent: Decimal, coins: Decimal) -> Option<Vec<TakeProfitTarget>> {
        self.targets()
            .iter()
            .zip(1u32..)
            .map(|(step, index)| {
                let price = tp_formula(self.strategy, self.take_profit_type, step.profit_percentage, bo, spent, coins)?;
                Some(TakeProfitTarget {
                    step: index,
                    amount_percentage: step.amount_percentage,
                    profit_percentage: step.profit_percentage,
                    price,
                })
            })
            .collect()
    }

    /// The first take-profit target's price (the only one without steps); see
    /// [`DcaSettings::take_profit_targets`].
    pub fn take_profit_price(&self, bo: Decimal, spent: Decimal, coins: Decimal) -> Option<Decimal> {
        self.take_profit_targets(bo, spent, coins)?.first().map(|t| t.price)
    }

    pub fn base_order_volume_type(&self) -> VolumeType {
        self.base_order_volume_type
    }

    pub fn safety_order_volume_type(&self) -> VolumeType {
        self.safety_order_volume_type
    }

    /// `trailing_deviation` when trailing is on: the last target trails instead of resting on the
    /// book, and closes at market.
    pub fn trailing_deviation(&self) -> Option<Decimal> {
        self.exits.trailing_deviation
    }

    pub fn stop_loss(&self) -> &StopLoss {
        &self.exits.stop_loss
    }

    pub fn take_profit_steps(&self) -> &[TakeProfitStep] {
        &self.exits.take_profit_steps
    }

    pub fn base_order_volume(&self) -> Decimal {
        self.base_order_volume
    }

    pub fn safety_order_volume(&self) -> Decimal {
        self.safety_order_volume
    }

    pub fn max_safety_orders(&self) -> u32 {
        self.max_safety_orders
    }

    /// How many safety orders rest on the book at once; it changes no price or size.
    pub fn active_safety_orders_count(&self) -> u32 {
        self.active_safety_orders_count
    }

    pub fn safety_order_step_percentage(&self) -> Decimal {
        self.safety_order_step_percentage
    }

    pub fn martingale_step_coefficient(&self) -> Decimal {
        self.martingale_step_coefficient
    }

    pub fn martingale_volume_coefficient(&self) -> Decimal {
        self.martingale_volume_coefficient
    }

    pub fn take_profit(&self) -> Decimal {
        self.take_profit
    }

    pub fn take_profit_type(&self) -> TakeProfitType {
        self.take_profit_type
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
}

/// The base order or the safety order with its 1-based index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DcaOrderKind {
    Base,
    Safety,
}

impl fmt::Display for DcaOrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DcaOrderKind::Base => "base",
            DcaOrderKind::Safety => "safety",
        })
    }
}

/// One order of the plan and the deal's state once it and every order before it have filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcaOrder {
    pub kind: DcaOrderKind,
    /// 0 for the base order, k for safety order k.
    pub index: u32,
    pub side: Side,
    /// Cumulative deviation from the base order's price, in percent (D_k).
    pub deviation_percent: Decimal,
    pub price: Decimal,
    pub size_quote: Decimal,
    pub size_base: Decimal,
    /// Quote spent (long) or received (short) by this order and the ones before it.
    pub total_quote: Decimal,
    /// Base bought (long) or sold (short) so far.
    pub total_base: Decimal,
    pub average_price: Decimal,
    /// The first take-profit target's price (the only one without steps).
    pub take_profit_price: Decimal,
    /// Every target's price, first to last (one without steps).
    pub take_profit_targets: Vec<Decimal>,
    /// How far the price must move from this order's price to reach the first take-profit target,
    /// in percent: up for a long deal, down for a short one.
    pub bounce_percent: Decimal,
}

/// The orders of one deal, before any venue rounding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcaPlan {
    strategy: Strategy,
    targets: Vec<TakeProfitStep>,
    take_profit_type: TakeProfitType,
    orders: Vec<DcaOrder>,
}

impl DcaPlan {
    /// The plan of a deal whose base order fills at `start_price`.
    ///
    /// Safety order k sits D_k = d·(1 + s + … + s^(k−1)) % from the base order's price (below for a
    /// long bot, above for a short one) and is V·v^(k−1) large, in the quote or the base currency
    /// as `safety_order_volume_type` says (the base order likewise). The take profit is
    /// `total`: avg·(1 ± TP/100), or `base`: (spent ± BO·TP/100)/coins, with − for a short deal (it
    /// buys back the base it sold, keeping TP % of the quote received, or of the base order's);
    /// with take-profit steps, each step's profit in the same formula.
    ///
    /// # Errors
    /// `DcaError::Unworkable` naming the setting to change when the numbers leave `Decimal`'s range,
    /// a long bot's safety order would reach a price of zero, or consecutive orders become too close
    /// or too small for `Decimal` to tell their prices or averages apart.
    pub fn new(settings: &DcaSettings, start_price: Price) -> Result<DcaPlan, DcaError> {
        let p0 = start_price.get();
        let strategy = settings.strategy;
        let side = strategy.entry_side();
        let hundred = Decimal::ONE_HUNDRED;
        let too_large = |field| DcaError::Unworkable { field, reason: "the plan's numbers are too large to compute" };
        let too_small = |field| DcaError::Unworkable {
            field,
            reason: "an order's size in the base asset rounds to zero at this price",
        };
        let (bo, bo_base) = sized(settings.base_order_volume_type, settings.base_order_volume, p0)
            .ok_or_else(|| too_large("base_order_volume"))?;
        if bo_base.is_zero() || bo.is_zero() {
            return Err(too_small("base_order_volume"));
        }
        let mut orders = Vec::with_capacity(settings.max_safety_orders as usize + 1);
        let mut total_quote = bo;
        let mut total_base = bo_base;
        let average = p0;
        let targets = checked_take_profit(settings, bo, total_quote, total_base, average)?;
        let take_profit_price = targets[0];
        orders.push(DcaOrder {
            kind: DcaOrderKind::Base,
            index: 0,
            side,
            deviation_percent: Decimal::ZERO,
            price: p0,
            size_quote: bo,
            size_base: bo_base,
            total_quote,
            total_base,
            average_price: average,
            bounce_percent: bounce(strategy, p0, take_profit_price).ok_or(too_large("take_profit"))?,
            take_profit_price,
            take_profit_targets: targets,
        });
        let d = settings.safety_order_step_percentage;
        let s = settings.martingale_step_coefficient;
        let v = settings.martingale_volume_coefficient;
        // s^(k−1) and v^(k−1) by repeated multiplication, so every step is checked.
        let mut step_power = Decimal::ONE;
        let mut volume_power = Decimal::ONE;
        let mut deviation = Decimal::ZERO;
        for k in 1..=settings.max_safety_orders {
            if k > 1 {
                step_power = step_power.checked_mul(s).ok_or(too_large("martingale_step_coefficient"))?;
                volume_power = volume_power.checked_mul(v).ok_or(too_large("martingale_volume_coefficient"))?;
            }
            let step = d.checked_mul(step_power).ok_or(too_large("safety_order_step_percentage"))?;
            let next_deviation = deviation.checked_add(step).ok_or(too_large("safety_order_step_percentage"))?;
            if next_deviation <= deviation {
                return Err(DcaError::Unworkable {
                    field: "martingale_step_coefficient",
                    reason: "the safety orders' steps shrink below what can be told apart",
                });
            }
            deviation = next_deviation;
            let moved = p0
                .checked_mul(deviation)
                .and_then(|x| x.checked_div(hundred))
                .ok_or(too_large("safety_order_step_percentage"))?;
            let price = match strategy {
                Strategy::Long => p0 - moved,
                Strategy::Short => p0.checked_add(moved).ok_or(too_large("safety_order_step_percentage"))?,
            };
            let previous = orders.last().map_or(p0, |o| o.price);
            let moved_on = match strategy {
                Strategy::Long => price < previous,
                Strategy::Short => price > previous,
            };
            if price <= Decimal::ZERO {
                return Err(DcaError::Unworkable {
                    field: "safety_order_step_percentage",
                    reason: "the safety orders of a long bot would reach a price of zero or below",
                });
            }
            if !moved_on {
                return Err(DcaError::Unworkable {
                    field: "martingale_step_coefficient",
                    reason: "the safety orders' prices become too close to tell apart",
                });
            }
            let volume = settings
                .safety_order_volume
                .checked_mul(volume_power)
                .ok_or(too_large("martingale_volume_coefficient"))?;
            let (size_quote, size_base) = sized(settings.safety_order_volume_type, volume, price)
                .ok_or_else(|| too_large("safety_order_volume"))?;
            if size_base.is_zero() || size_quote.is_zero() {
                return Err(too_small("safety_order_volume"));
            }
            total_quote = total_quote.checked_add(size_quote).ok_or(too_large("safety_order_volume"))?;
            total_base = total_base.checked_add(size_base).ok_or(too_large("safety_order_volume"))?;
            let average_price = total_quote.checked_div(total_base).ok_or(too_large("safety_order_volume"))?;
            let previous_average = orders.last().map_or(p0, |o| o.average_price);
            let average_moved = match strategy {
                Strategy::Long => average_price < previous_average,
                Strategy::Short => average_price > previous_average,
            };
            if !average_moved {
                return Err(DcaError::Unworkable {
                    field: "martingale_volume_coefficient",
                    reason: "the safety orders become too small to move the average price",
                });
            }
            let targets = checked_take_profit(settings, bo, total_quote, total_base, average_price)?;
            let take_profit_price = targets[0];
            orders.push(DcaOrder {
                kind: DcaOrderKind::Safety,
                index: k,
                side,
                deviation_percent: deviation,
                price,
                size_quote,
                size_base,
                total_quote,
                total_base,
                average_price,
                bounce_percent: bounce(strategy, price, take_profit_price).ok_or(too_large("take_profit"))?,
                take_profit_price,
                take_profit_targets: targets,
            });
        }
        Ok(DcaPlan { strategy, targets: settings.targets(), take_profit_type: settings.take_profit_type, orders })
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The base order first, then the safety orders in order.
    pub fn orders(&self) -> &[DcaOrder] {
        &self.orders
    }

    /// The quote a deal needs when every safety order fills: BO + Σ V_k.
    pub fn max_funds_per_deal(&self) -> Decimal {
        self.orders.last().map_or(Decimal::ZERO, |o| o.total_quote)
    }

    /// The last safety order's deviation from the base order's price (0 without safety orders).
    pub fn max_deviation_percent(&self) -> Decimal {
        self.orders.last().map_or(Decimal::ZERO, |o| o.deviation_percent)
    }

    /// The plan as a venue with `filters` would take it: prices onto the tick grid (buys down, sells
    /// up, the take profit on its own side), quantities down to the step, each order checked
    /// against the filters. The totals, averages and take-profit prices are those of the rounded
    /// orders.
    pub fn rounded(&self, filters: &MarketFilters) -> RoundedPlan {
        let side = self.strategy.entry_side();
        let exit_side = match side {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        };
        let mut total_quote = Decimal::ZERO;
        let mut total_base = Decimal::ZERO;
        let mut base_order_quote = Decimal::ZERO;
        let mut orders = Vec::with_capacity(self.orders.len());
        for order in &self.orders {
            let price = filters.round_price(order.price, side);
            let quantity = filters.round_qty(order.size_base);
            let notional = price.checked_mul(quantity);
            let violation = match notional {
                Some(_) => filters.check(price, quantity).err(),
                None => Some(FilterViolation::Notional),
            };
            if let Some(notional) = notional {
                if order.kind == DcaOrderKind::Base {
                    base_order_quote = notional;
                }
                total_quote = total_quote.saturating_add(notional);
                total_base = total_base.saturating_add(quantity);
            }
            let average_price = total_quote.checked_div(total_base);
            let take_profit_targets: Vec<Decimal> = match average_price {
                None => Vec::new(),
                Some(_) => self
                    .targets
                    .iter()
                    .map_while(|step| {
                        tp_formula(
                            self.strategy,
                            self.take_profit_type,
                            step.profit_percentage,
                            base_order_quote,
                            total_quote,
                            total_base,
                        )
                        .filter(|p| *p > Decimal::ZERO)
                        .map(|p| filters.round_price(p, exit_side))
                    })
                    .collect(),
            };
            let take_profit_price = take_profit_targets.first().copied();
            orders.push(RoundedOrder {
                kind: order.kind,
                index: order.index,
                side,
                price,
                quantity,
                notional: notional.unwrap_or(Decimal::MAX),
                total_quote,
                total_base,
                average_price,
                take_profit_price,
                take_profit_targets,
                violation,
            });
        }
        RoundedPlan { orders }
    }
}

/// One order of a plan rounded for a market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundedOrder {
    pub kind: DcaOrderKind,
    pub index: u32,
    pub side: Side,
    pub price: Decimal,
    pub quantity: Decimal,
    /// price × quantity.
    pub notional: Decimal,
    pub total_quote: Decimal,
    pub total_base: Decimal,
    /// `None` while nothing could be bought or sold (every quantity so far rounded to zero).
    pub average_price: Option<Decimal>,
    /// The first take-profit target, rounded to the tick on the exit's side.
    pub take_profit_price: Option<Decimal>,
    /// Every target, rounded (empty while nothing was bought or sold).
    pub take_profit_targets: Vec<Decimal>,
    /// The filter this order breaks; `None` when the venue would take it.
    pub violation: Option<FilterViolation>,
}

/// A plan rounded for a market; `placeable` says whether the venue would take every order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundedPlan {
    pub orders: Vec<RoundedOrder>,
}

impl RoundedPlan {
    pub fn placeable(&self) -> bool {
        self.orders.iter().all(|o| o.violation.is_none())
    }

    /// The quote the rounded deal needs when every safety order fills.
    pub fn max_funds_per_deal(&self) -> Decimal {
        self.orders.last().map_or(Decimal::ZERO, |o| o.total_quote)
    }
}

/// An order's volume as (quote, base) at `price`: a quote volume is its cost, a base volume its
/// quantity. `None` when it leaves `Decimal`'s range.
fn sized(kind: VolumeType, volume: Decimal, price: Decimal) -> Option<(Decimal, Decimal)> {
    match kind {
        VolumeType::BaseCurrency => Some((volume.checked_mul(price)?, volume)),
        _ => Some((volume, volume.checked_div(price)?)),
    }
}

/// Every take-profit target's price, each on the profitable side of the average price.
fn checked_take_profit(
    settings: &DcaSettings,
    bo: Decimal,
    spent: Decimal,
    coins: Decimal,
    average: Decimal,
) -> Result<Vec<Decimal>, DcaError> {
    let field = if settings.exits.take_profit_steps.is_empty() { "take_profit" } else { "take_profit_steps" };
    let targets = settings
        .take_profit_targets(bo, spent, coins)
        .ok_or(DcaError::Unworkable { field, reason: "the plan's numbers are too large to compute" })?;
    let mut prices = Vec::with_capacity(targets.len());
    for target in targets {
        let price = target.price;
        let profitable = match settings.strategy {
            Strategy::Long => price > average,
            Strategy::Short => price > Decimal::ZERO && price < average,
        };
        if !profitable {
            return Err(DcaError::Unworkable {
                field,
                reason: "the take profit is too small to tell apart from the average price",
            });
        }
        prices.push(price);
    }
    Ok(prices)
}

/// `spec/dca.md`: total → avg·(1 + TP/100); base → (spent + BO·TP/100)/coins. A short deal mirrors
/// both with a minus: it buys back its coins for TP % less than it received (total) or for the
/// received quote less TP % of the base order (base).
fn tp_formula(
    strategy: Strategy,
    kind: TakeProfitType,
    tp: Decimal,
    bo: Decimal,
    spent: Decimal,
    coins: Decimal,
) -> Option<Decimal> {
    let share = |amount: Decimal| amount.checked_mul(tp)?.checked_div(Decimal::ONE_HUNDRED);
    let profit = match kind {
        TakeProfitType::Total => share(spent)?,
        TakeProfitType::Base => share(bo)?,
    };
    let target = match strategy {
        Strategy::Long => spent.checked_add(profit)?,
        Strategy::Short => spent.checked_sub(profit)?,
    };
    target.checked_div(coins)
}

/// The move from `price` to `take_profit` in percent of `price`: up for long, down for short.
fn bounce(strategy: Strategy, price: Decimal, take_profit: Decimal) -> Option<Decimal> {
    let change = match strategy {
        Strategy::Long => take_profit.checked_sub(price)?,
        Strategy::Short => price.checked_sub(take_profit)?,
    };
    change.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(price)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{TestCaseError, any, prop_assert, prop_assert_eq, proptest};
    use proptest::strategy::Strategy as Gen;
    use rust_decimal::RoundingStrategy;

    use super::*;
    use crate::market::btcusdt_filters;

    fn dec(raw: &str) -> Decimal {
        raw.parse().unwrap()
    }

    fn places(value: Decimal, dp: u32) -> String {
        format!("{:.*}", dp as usize, value.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
    }

    #[allow(clippy::too_many_arguments)]
    fn input(bo: &str, so: &str, n: u32, d: &str, s: &str, v: &str, tp: &str, strategy: Strategy) -> DcaSettingsInput {
        DcaSettingsInput {
            base_order_volume: dec(bo),
            base_order_volume_type: VolumeType::QuoteCurrency,
            safety_order_volume: dec(so),
            safety_order_volume_type: VolumeType::QuoteCurrency,
            max_safety_orders: n,
            active_safety_orders_count: n.min(1),
            safety_order_step_percentage: dec(d),
            martingale_step_coefficient: dec(s),
            martingale_volume_coefficient: dec(v),
            take_profit: dec(tp),
            take_profit_type: TakeProfitType::Total,
            strategy,
        }
    }

    fn plan(input: DcaSettingsInput, start: &str) -> DcaPlan {
        DcaPlan::new(&DcaSettings::new(input).unwrap(), Price::new(dec(start)).unwrap()).unwrap()
    }

    /// `spec/dca.md` Example A, every column to the table's places.
    #[test]
    fn example_a_no_scaling() {
        let plan = plan(input("10", "10", 3, "1", "1", "1", "1", Strategy::Long), "100");
        let table = [
            ("0", "100.0000", "10", "10", "100.0000", "101.0000", "1.0000"),
            ("1", "99.0000", "10", "20", "99.4975", "100.4925", "1.5075"),
            ("2", "98.0000", "10", "30", "98.9933", "99.9832", "2.0237"),
            ("3", "97.0000", "10", "40", "98.4873", "99.4722", "2.5486"),
        ];
        assert_eq!(plan.orders().len(), table.len());
        for (order, row) in plan.orders().iter().zip(table) {
            let got = (
                places(order.deviation_percent, 0),
                places(order.price, 4),
                places(order.size_quote, 0),
                places(order.total_quote, 0),
                places(order.average_price, 4),
                places(order.take_profit_price, 4),
                places(order.bounce_percent, 4),
            );
            let want = (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
            assert_eq!((&*got.0, &*got.1, &*got.2, &*got.3, &*got.4, &*got.5, &*got.6), want, "order {}", order.index);
        }
        assert_eq!(plan.orders()[0].kind, DcaOrderKind::Base);
        assert_eq!(plan.orders()[3].kind, DcaOrderKind::Safety);
        assert_eq!(plan.max_funds_per_deal(), dec("40"));
        assert_eq!(plan.max_deviation_percent(), dec("3"));
    }

    /// `spec/dca.md` Example C (Keiko's settings, P0 = 1, TP 1.5 %).
    #[test]
    fn example_c_keiko() {
        let plan = plan(input("0.0002", "0.0001", 3, "2", "2", "3", "1.5", Strategy::Long), "1");
        let table = [
            ("0", "1.00", "0.0002", "0.0002", "1.0000", "1.50"),
            ("2", "0.98", "0.0001", "0.0003", "0.9932", "2.87"),
            ("6", "0.94", "0.0003", "0.0006", "0.9659", "4.30"),
            ("14", "0.86", "0.0009", "0.0015", "0.8994", "6.16"),
        ];
        assert_eq!(plan.orders().len(), table.len());
        for (order, row) in plan.orders().iter().zip(table) {
            let got = (
                places(order.deviation_percent, 0),
                places(order.price, 2),
                places(order.size_quote, 4),
                places(order.total_quote, 4),
                places(order.average_price, 4),
                places(order.bounce_percent, 2),
            );
            assert_eq!((&*got.0, &*got.1, &*got.2, &*got.3, &*got.4, &*got.5), row, "order {}", order.index);
        }
        assert_eq!(plan.max_funds_per_deal(), dec("0.0015"));
        assert_eq!(plan.max_deviation_percent(), dec("14"));
    }

    #[test]
    fn base_take_profit_counts_the_base_order_only() {
        let mut settings = input("10", "10", 3, "1", "1", "1", "1", Strategy::Long);
        settings.take_profit_type = TakeProfitType::Base;
        let plan = plan(settings, "100");
        let last = &plan.orders()[3];
        // (40 + 10·1 %)/coins: 0.1 quote of profit on the whole position.
        assert_eq!(last.take_profit_price, (dec("40.1") / last.total_base));
        assert!(last.take_profit_price > last.average_price);
    }

    #[test]
    fn a_short_plan_mirrors_upwards() {
        let plan = plan(input("10", "10", 3, "1", "1", "1", "1", Strategy::Short), "100");
        let prices: Vec<String> = plan.orders().iter().map(|o| places(o.price, 4)).collect();
        assert_eq!(prices, ["100.0000", "101.0000", "102.0000", "103.0000"]);
        let last = &plan.orders()[3];
        assert_eq!(last.side, Side::Sell);
        assert!(last.average_price > dec("100") && last.average_price < dec("103"));
        assert_eq!(places(last.take_profit_price, 20), places(last.average_price * dec("0.99"), 20));
        assert!(last.bounce_percent > Decimal::ZERO);
    }

    #[test]
    fn settings_errors_name_the_field() {
        let good = || input("10", "10", 3, "1", "1", "1", "1", Strategy::Long);
        let cases: Vec<(DcaSettingsInput, &str)> = vec![
            (DcaSettingsInput { base_order_volume: dec("0"), ..good() }, "base_order_volume"),
            (DcaSettingsInput { safety_order_volume: dec("-1"), ..good() }, "safety_order_volume"),
            (DcaSettingsInput { max_safety_orders: 201, ..good() }, "max_safety_orders"),
            (DcaSettingsInput { active_safety_orders_count: 4, ..good() }, "active_safety_orders_count"),
            (DcaSettingsInput { active_safety_orders_count: 0, ..good() }, "active_safety_orders_count"),
            (DcaSettingsInput { safety_order_step_percentage: dec("0"), ..good() }, "safety_order_step_percentage"),
            (DcaSettingsInput { martingale_step_coefficient: dec("0.09"), ..good() }, "martingale_step_coefficient"),
            (
                DcaSettingsInput { martingale_volume_coefficient: dec("10.1"), ..good() },
                "martingale_volume_coefficient",
            ),
            (DcaSettingsInput { take_profit: dec("0"), ..good() }, "take_profit"),
            (DcaSettingsInput { take_profit: dec("100"), strategy: Strategy::Short, ..good() }, "take_profit"),
            (DcaSettingsInput { base_order_volume_type: VolumeType::Percent, ..good() }, "base_order_volume_type"),
            (DcaSettingsInput { safety_order_volume_type: VolumeType::Xbt, ..good() }, "safety_order_volume_type"),
        ];
        for (input, field) in cases {
            assert_eq!(DcaSettings::new(input).unwrap_err().field(), field);
        }
        assert_eq!("sideways".parse::<Strategy>().unwrap_err().field(), "strategy");
        assert_eq!("half".parse::<TakeProfitType>().unwrap_err().field(), "take_profit_type");
        assert_eq!(VolumeType::parse("safety_order_volume_type", "x").unwrap_err().field(), "safety_order_volume_type");
        let none = DcaSettingsInput { max_safety_orders: 0, active_safety_orders_count: 0, ..good() };
        assert_eq!(DcaSettings::new(none).map(|s| s.max_safety_orders()), Ok(0));
    }

    /// Base-currency volumes fix each order's quantity; its cost follows the price.
    #[test]
    fn base_currency_volumes_fix_the_quantity() {
        let mut raw = input("0.1", "0.1", 2, "1", "1", "2", "1", Strategy::Long);
        raw.base_order_volume_type = VolumeType::BaseCurrency;
        raw.safety_order_volume_type = VolumeType::BaseCurrency;
        let long = plan(raw, "100");
        let rows: Vec<_> = long.orders().iter().map(|o| (o.price, o.size_base, o.size_quote)).collect();
        assert_eq!(
            rows,
            [
                (dec("100"), dec("0.1"), dec("10")),
                (dec("99"), dec("0.1"), dec("9.9")),
                (dec("98"), dec("0.2"), dec("19.6"))
            ]
        );
        let last = &long.orders()[2];
        assert_eq!((last.total_quote, last.total_base), (dec("39.5"), dec("0.4")));
        assert_eq!(last.average_price, dec("98.75"));
        assert_eq!(last.take_profit_price, dec("99.7375"));
        // Mixed: a quote-sized base order and base-sized safety orders.
        let mut mixed = input("10", "0.1", 1, "1", "1", "1", "1", Strategy::Short);
        mixed.safety_order_volume_type = VolumeType::BaseCurrency;
        let mixed = plan(mixed, "100");
        assert_eq!((mixed.orders()[1].price, mixed.orders()[1].size_quote), (dec("101"), dec("10.1")));
    }

    fn steps(raw: &[(&str, &str)]) -> Vec<TakeProfitStep> {
        raw.iter().map(|(a, p)| TakeProfitStep { amount_percentage: dec(a), profit_percentage: dec(p) }).collect()
    }

    /// Example A with two take-profit steps: every row carries both targets, the first one is the
    /// row's take profit.
    #[test]
    fn take_profit_steps_price_every_target() {
        let settings = DcaSettings::new(input("10", "10", 3, "1", "1", "1", "1", Strategy::Long))
            .unwrap()
            .with_exits(ExitSettings {
                take_profit_steps: steps(&[("50", "1"), ("50", "2")]),
                ..ExitSettings::default()
            })
            .unwrap();
        let plan = DcaPlan::new(&settings, Price::new(dec("100")).unwrap()).unwrap();
        let got: Vec<Vec<String>> =
            plan.orders().iter().map(|o| o.take_profit_targets.iter().map(|p| places(*p, 4)).collect()).collect();
        assert_eq!(
            got,
            [["101.0000", "102.0000"], ["100.4925", "101.4874"], ["99.9832", "100.9731"], ["99.4722", "100.4571"],]
        );
        assert_eq!(plan.orders()[3].take_profit_price, plan.orders()[3].take_profit_targets[0]);
        let targets = settings.take_profit_targets(dec("10"), dec("20"), dec("0.2")).unwrap();
        assert_eq!(targets.iter().map(|t| (t.step, t.price)).collect::<Vec<_>>(), [(1, dec("101")), (2, dec("102"))]);
        let rounded = plan.rounded(&btcusdt_filters());
        assert_eq!(rounded.orders[0].take_profit_targets.len(), 2);
    }

    #[test]
    fn exit_settings_are_checked_together() {
        let base = || DcaSettings::new(input("10", "10", 3, "1", "1", "1", "1", Strategy::Long)).unwrap();
        let breakeven = StopLoss::new(dec("5"), 0, false, true, crate::StopLossType::StopLoss).unwrap();
        let err = base().with_exits(ExitSettings { stop_loss: breakeven, ..ExitSettings::default() }).unwrap_err();
        assert_eq!(err.field(), "sl_to_breakeven_enabled");
        let ok = base().with_exits(ExitSettings {
            take_profit_steps: steps(&[("50", "1"), ("50", "2")]),
            stop_loss: breakeven,
            trailing_deviation: Some(dec("1.5")),
        });
        assert!(ok.is_ok());
        // Trailing 1.5 % is checked against the last step (2 %), not `take_profit` (1 %).
        let err = base()
            .with_exits(ExitSettings { trailing_deviation: Some(dec("1.5")), ..ExitSettings::default() })
            .unwrap_err();
        assert_eq!(err.field(), "trailing_deviation");
        let err = base()
            .with_exits(ExitSettings {
                take_profit_steps: steps(&[("60", "1"), ("30", "2")]),
                ..ExitSettings::default()
            })
            .unwrap_err();
        assert_eq!(err.field(), "take_profit_steps");
        let settings = ok.unwrap();
        assert_eq!(settings.trailing_deviation(), Some(dec("1.5")));
        assert!(settings.stop_loss().to_breakeven());
        assert_eq!(settings.targets().len(), 2);
        assert_eq!(base().targets(), steps(&[("100", "1")]));
    }

    #[test]
    fn impossible_plans_are_refused_not_panicked() {
        let start = Price::new(dec("30000")).unwrap();
        // A long bot 100 % below its start.
        let deep = DcaSettings::new(input("10", "10", 101, "1", "1", "1", "1", Strategy::Long)).unwrap();
        assert_eq!(DcaPlan::new(&deep, start).unwrap_err().field(), "safety_order_step_percentage");
        // 10^199 does not fit in a Decimal.
        let huge = DcaSettings::new(input("10", "10", 200, "1", "1", "10", "1", Strategy::Short)).unwrap();
        assert_eq!(DcaPlan::new(&huge, start).unwrap_err().field(), "martingale_volume_coefficient");
        let steep = DcaSettings::new(input("10", "10", 200, "1", "10", "1", "1", Strategy::Short)).unwrap();
        assert!(DcaPlan::new(&steep, start).is_err());
        let shrinking = DcaSettings::new(input("10", "10", 200, "1", "0.1", "1", "1", Strategy::Long)).unwrap();
        assert_eq!(DcaPlan::new(&shrinking, start).unwrap_err().field(), "martingale_step_coefficient");
    }

    #[test]
    fn rounding_for_a_market_reports_the_orders_it_would_refuse() {
        let plan = plan(input("10", "10", 3, "1.3", "1", "1", "1", Strategy::Long), "30000.005");
        let rounded = plan.rounded(&btcusdt_filters());
        assert!(rounded.placeable());
        let first = &rounded.orders[0];
        assert_eq!((first.price, first.quantity), (dec("30000"), dec("0.00033")));
        assert_eq!(first.notional, dec("9.9"));
        // The take profit sells: its price rounds up.
        let tp = first.take_profit_price.unwrap();
        assert_eq!(tp, MarketFilters::default().round_price(tp, Side::Sell));
        assert!(tp >= first.average_price.unwrap() * dec("1.01"));

        let tiny = plan_with_volumes("10", "1");
        let rounded = tiny.rounded(&btcusdt_filters());
        assert!(!rounded.placeable());
        assert_eq!(rounded.orders[0].violation, None);
        assert_eq!(rounded.orders[1].violation, Some(FilterViolation::Notional));
    }

    fn plan_with_volumes(bo: &str, so: &str) -> DcaPlan {
        plan(input(bo, so, 2, "1", "1", "1", "1", Strategy::Long), "30000")
    }

    fn coefficient() -> impl Gen<Value = Decimal> {
        (1i64..=100).prop_map(|tenths| Decimal::new(tenths, 1))
    }

    fn positive(max_mantissa: i64, max_scale: u32) -> impl Gen<Value = Decimal> {
        (1i64..=max_mantissa, 0..=max_scale).prop_map(|(m, scale)| Decimal::new(m, scale))
    }

    fn any_settings() -> impl Gen<Value = DcaSettingsInput> {
        (
            (positive(i64::MAX, 28), positive(i64::MAX, 28), 0u32..=210, 0u32..=210),
            (positive(100_000, 4), coefficient(), coefficient(), positive(1_000_000, 3)),
            (any::<bool>(), any::<bool>()),
        )
            .prop_map(|((bo, so, n, active), (d, s, v, tp), (long, total))| DcaSettingsInput {
                base_order_volume: bo,
                base_order_volume_type: VolumeType::QuoteCurrency,
                safety_order_volume: so,
                safety_order_volume_type: VolumeType::QuoteCurrency,
                max_safety_orders: n,
                active_safety_orders_count: active,
                safety_order_step_percentage: d,
                martingale_step_coefficient: s,
                martingale_volume_coefficient: v,
                take_profit: tp,
                take_profit_type: if total { TakeProfitType::Total } else { TakeProfitType::Base },
                strategy: if long { Strategy::Long } else { Strategy::Short },
            })
    }

    /// Settings a real bot would use: the plan must come out, not be refused.
    fn usual_settings(strategy: Strategy) -> impl Gen<Value = DcaSettingsInput> {
        (
            (positive(100_000, 2), positive(100_000, 2), 0u32..=20),
            (
                (1i64..=150).prop_map(|hundredths| Decimal::new(hundredths, 2)),
                (5i64..=11).prop_map(|tenths| Decimal::new(tenths, 1)),
                (5i64..=20).prop_map(|tenths| Decimal::new(tenths, 1)),
                positive(5_000, 2),
            ),
            any::<bool>(),
        )
            .prop_map(move |((bo, so, n), (d, s, v, tp), total)| DcaSettingsInput {
                base_order_volume: bo,
                base_order_volume_type: VolumeType::QuoteCurrency,
                safety_order_volume: so,
                safety_order_volume_type: VolumeType::QuoteCurrency,
                max_safety_orders: n,
                active_safety_orders_count: n.min(1),
                safety_order_step_percentage: d,
                martingale_step_coefficient: s,
                martingale_volume_coefficient: v,
                take_profit: tp.min(dec("99")),
                take_profit_type: if total { TakeProfitType::Total } else { TakeProfitType::Base },
                strategy,
            })
    }

    fn check_invariants(settings: &DcaSettings, plan: &DcaPlan) -> Result<(), TestCaseError> {
        let orders = plan.orders();
        prop_assert_eq!(orders.len(), settings.max_safety_orders() as usize + 1);
        let long = settings.strategy() == Strategy::Long;
        for pair in orders.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            prop_assert!(after.deviation_percent > before.deviation_percent);
            if long {
                prop_assert!(after.price < before.price);
                prop_assert!(after.average_price < before.average_price);
            } else {
                prop_assert!(after.price > before.price);
                prop_assert!(after.average_price > before.average_price);
            }
        }
        for order in orders {
            if long {
                prop_assert!(order.take_profit_price > order.average_price);
            } else {
                prop_assert!(order.take_profit_price < order.average_price);
            }
        }
        // Σ V_k against the closed form V·(v^n − 1)/(v − 1), or n·V when v = 1.
        let n = settings.max_safety_orders();
        let (big_v, v) = (settings.safety_order_volume(), settings.martingale_volume_coefficient());
        let sum: Decimal = orders[1..].iter().map(|o| o.size_quote).sum();
        let closed = if v == Decimal::ONE {
            big_v.checked_mul(Decimal::from(n))
        } else {
            (0..n)
                .try_fold(Decimal::ONE, |acc, _| acc.checked_mul(v))
                .and_then(|power| big_v.checked_mul(power - Decimal::ONE))
                .and_then(|x| x.checked_div(v - Decimal::ONE))
        };
        // The closed form may not fit where the plan's own sums did (v^n is 10 times v^(n−1)).
        if let Some(closed) = closed {
            let tolerance = closed.abs().max(Decimal::ONE) * Decimal::new(1, 15);
            prop_assert!((sum - closed).abs() <= tolerance, "sum {} closed {}", sum, closed);
        }
        let funds = orders[1..].iter().fold(settings.base_order_volume(), |acc, o| acc + o.size_quote);
        prop_assert_eq!(plan.max_funds_per_deal(), funds);
        Ok(())
    }

    proptest! {
        #[test]
        fn any_settings_give_a_plan_or_a_named_error(raw in any_settings(), start in positive(i64::MAX, 28)) {
            let settings = match DcaSettings::new(raw) {
                Ok(settings) => settings,
                Err(err) => { prop_assert!(!err.field().is_empty()); return Ok(()); }
            };
            match DcaPlan::new(&settings, Price::new(start).unwrap()) {
                Ok(plan) => {
                    check_invariants(&settings, &plan)?;
                    let rounded = plan.rounded(&btcusdt_filters());
                    prop_assert_eq!(rounded.orders.len(), plan.orders().len());
                }
                Err(err) => prop_assert!(!err.field().is_empty()),
            }
        }

        #[test]
        fn usual_long_plans_hold_the_invariants(raw in usual_settings(Strategy::Long), start in positive(10_000_000, 2)) {
            let settings = DcaSettings::new(raw).unwrap();
            let plan = DcaPlan::new(&settings, Price::new(start).unwrap());
            // Only a long bot reaching a price of zero may be refused.
            if let Err(err) = &plan {
                prop_assert_eq!(err.field(), "safety_order_step_percentage");
                prop_assert!(settings.max_safety_orders() > 0);
                return Ok(());
            }
            check_invariants(&settings, &plan.unwrap())?;
        }

        #[test]
        fn short_plans_mirror_long_ones(raw in usual_settings(Strategy::Long), start in positive(10_000_000, 2)) {
            let long_settings = DcaSettings::new(raw.clone()).unwrap();
            let short_settings = DcaSettings::new(DcaSettingsInput { strategy: Strategy::Short, ..raw }).unwrap();
            let start = Price::new(start).unwrap();
            let short = DcaPlan::new(&short_settings, start).unwrap();
            check_invariants(&short_settings, &short)?;
            if let Ok(long) = DcaPlan::new(&long_settings, start) {
                for (l, s) in long.orders().iter().zip(short.orders()) {
                    prop_assert_eq!(l.deviation_percent, s.deviation_percent);
                    prop_assert_eq!(l.size_quote, s.size_quote);
                    // Mirrored around the start price (to Decimal's 28 digits).
                    let gap = ((start.get() - l.price) - (s.price - start.get())).abs();
                    prop_assert!(gap <= start.get() * Decimal::new(1, 20), "{} vs {}", l.price, s.price);
                }
            }
        }

        #[test]
        fn rounding_never_raises_a_buy_price_or_a_quantity(raw in usual_settings(Strategy::Long),
                                                           start in positive(10_000_000, 2),
                                                           short in any::<bool>()) {
            let strategy = if short { Strategy::Short } else { Strategy::Long };
            let settings = DcaSettings::new(DcaSettingsInput { strategy, ..raw }).unwrap();
            let Ok(plan) = DcaPlan::new(&settings, Price::new(start).unwrap()) else { return Ok(()) };
            let rounded = plan.rounded(&btcusdt_filters());
            for (raw, rounded) in plan.orders().iter().zip(&rounded.orders) {
                prop_assert!(rounded.quantity <= raw.size_base);
                match rounded.side {
                    Side::Buy => prop_assert!(rounded.price <= raw.price),
                    Side::Sell => prop_assert!(rounded.price >= raw.price),
                }
                prop_assert_eq!(rounded.violation.is_none(), btcusdt_filters().check(rounded.price, rounded.quantity).is_ok());
            }
        }
    }
}
