//! Webhooks without IO: what a TradingView alert's body means, whether it is fresh, whether a signed
//! request's signature holds, and the hashes the server keeps (`spec/webhooks.md`, WH-1 and WH-4 of
//! `spec/security.md`).
//!
//! The server reads the body (at most `MAX_BODY_BYTES`), then:
//!
//! 1. parses it with `DcaSignal::parse` (`/trade_signal/trading_view`) or `Signal::parse`
//!    (`/signal_bots/webhooks`) — whatever the Content-Type, since TradingView sends `text/plain`
//!    when it thinks the message is not JSON — and answers a `ParseError` with its `code()`;
//! 2. looks up the bot and checks the presented secret with `secret::matches` against the stored
//!    hash, answering 401 alike for an unknown bot and a wrong secret;
//! 3. if the bot uses the signed mode, checks `signature::SignatureHeader` against the raw body;
//! 4. judges `Freshness::check` with the signal's timestamp and lag and the clock's now;
//! 5. refuses a body whose `secret::dedupe_key` it saw inside the dedupe window.
//!
//! Money is `Decimal`, read from the body's own digits; secrets are `PresentedSecret`s, which redact
//! `Debug` and zeroize on drop; errors name fields and never quote the body. Nothing here reads the
//! clock (`clippy.toml` forbids it): now is a parameter.

mod bot_ref;
pub mod dca;
mod error;
pub mod freshness;
mod json;
pub mod secret;
pub mod signal;
pub mod signature;

pub use bot_ref::{BotRef, MAX_BOT_REF_CHARS};
pub use dca::{DcaAction, DcaSignal};
pub use error::ParseError;
pub use freshness::{Freshness, Stale};
pub use json::{MAX_BODY_BYTES, MAX_DEPTH};
pub use secret::PresentedSecret;
pub use signal::{CurrencyType, MarketPosition, Signal, SignalAction, SignalOrder, StrategyInfo};
pub use signature::{SignatureError, SignatureHeader};

/// The longest secret read (`email_token`, `secret`). Bulwark's own are 43 characters; 3Commas'
/// Signal-bot secrets, which users paste into migrated alerts before rotating, are longer.
pub const MAX_SECRET_CHARS: usize = 256;

/// The longest `delay_seconds`: a day.
pub const MAX_DELAY_SECONDS: u64 = 86_400;

/// The longest `max_lag`: a day. Zero is refused, since it would make every signal stale.
pub const MAX_LAG_SECONDS: u64 = 86_400;

const TIMESTAMP_EXPECTED: &str = "an ISO-8601 date and time with its offset, e.g. 2026-01-31T12:00:00Z";
const MAX_LAG_EXPECTED: &str = "a whole number of seconds from 1 to 86400";
