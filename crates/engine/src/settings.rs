//! A DCA bot's settings beyond the plan: how deals start, stop and overlap.

use domain::{DcaSettings, OrderKind};

/// How a bot's deals start (`strategy_list` in 3Commas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartCondition {
    /// `nonstop`: a new deal as soon as the limits allow.
    Asap,
    /// `manual`: only when the user starts one.
    Manual,
    /// `trading_view`: when a TradingView signal arrives (and by hand).
    TradingView,
}

impl StartCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            StartCondition::Asap => "nonstop",
            StartCondition::Manual => "manual",
            StartCondition::TradingView => "trading_view",
        }
    }
}

/// Everything the engine needs to run a DCA bot's deals, already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSettings {
    /// The plan: sizes, safety orders, strategy, and the exits (take-profit steps, trailing, stop
    /// loss).
    pub dca: DcaSettings,
    /// `start_order_type`: the base order as a market or a limit order at the current price.
    pub start_order_type: OrderKind,
    /// `cooldown`: seconds between a bot's deal closing and its next deal starting.
    pub cooldown_seconds: u32,
    /// `max_active_deals`.
    pub max_active_deals: u32,
    /// `allowed_deals_on_same_pair`.
    pub allowed_deals_on_same_pair: u32,
    pub start_condition: StartCondition,
    /// False for a signal bot without a take profit: its deals hold the position until an exit
    /// signal, the stop loss or the user closes them (no take-profit order, no trailing).
    pub take_profit_enabled: bool,
}
