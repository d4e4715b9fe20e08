//! Bulwark's pure model.
//!
//! Everything here is plain data and total functions: no IO, no wall clock, no environment, no random
//! source (ARCHITECTURE.md invariant 1; `clippy.toml` in this crate forbids the ambient calls). Values
//! are parsed once at the edge into these types and passed around already valid.

mod clock;
mod dca;
mod deal;
mod email;
mod exits;
mod ids;
mod market;

pub use clock::{Clock, Timestamp};
pub use dca::{
    DcaError, DcaOrder, DcaOrderKind, DcaPlan, DcaSettings, DcaSettingsInput, MAX_SAFETY_ORDERS, RoundedOrder,
    RoundedPlan, Strategy, TakeProfitType, VolumeType,
};
pub use deal::{
    Bot, CloseReason, Deal, DealStatus, IntentState, NewOrder, OrderIntent, OrderKind, OrderRole, Signal, SignalAction,
    SignalState, TradingPolicy, UnknownName,
};
pub use email::{Email, EmailError};
pub use exits::{
    ExitSettings, MAX_TAKE_PROFIT_STEPS, StopLoss, StopLossType, TakeProfitStep, TakeProfitTarget, against, better,
    check_steps, crossed, reached, trailing_exit,
};
pub use ids::{AuditId, BackupCodeId, BotId, DealId, ExchangeAccountId, SessionId, SignalId, UserId};
pub use market::{
    Asset, FilterViolation, MarketError, MarketFilters, OrderStatus, Pair, Price, Qty, Rounding, Side, round_to_step,
};
pub use rust_decimal::Decimal;
