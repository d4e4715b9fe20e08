//! The bot runtime's decisions, without IO (ARCHITECTURE.md invariant 1).
//!
//! Given the same events in the same order the engine makes the same decisions: which orders to
//! record and send, which to cancel, when a deal's status changes. The server feeds it events
//! (prices, the venue's order reports, user commands, the timer) and carries its commands out,
//! recording every order as an intent before sending it. The order guard (`guard`) checks every
//! order from every path against the account's trading policy.

pub mod bots;
pub mod deal;
pub mod guard;
pub mod settings;

pub use bots::{BotState, Engine, EngineError, Event, Output, UserCommand, WebhookCommand};
pub use deal::{Command, Ctx, DealBook, DealError, DealEvent, NewDeal, OrderUpdate, intent_state};
pub use settings::{BotSettings, StartCondition};
