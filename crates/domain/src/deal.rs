//! Bots, deals and their orders as data: what the engine decides and the store keeps.
//!
//! A deal's state is its [`Deal`] row and the [`OrderIntent`] rows of every order it ever asked for.
//! An order row is written (as an *intent*, [`IntentState::Pending`]) before the order is sent, under
//! a client order id derived from the deal's id and the order's sequence number, so a restart or a
//! lost answer is resolved by looking the order up at the venue and nothing is sent twice
//! (ARCHITECTURE.md invariant 5).

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::{BotId, DealId, ExchangeAccountId, Pair, Side, SignalId, Strategy, Timestamp, UserId};

/// A value read back from storage or input that names no known variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(raw: &str) -> Result<$name, UnknownName> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { what: $what, value: raw.to_owned() }),
                }
            }
        }
    };
}

named_enum!(
    /// A deal's status, as 3Commas names them (`spec/dca.md`).
    DealStatus, "deal status" {
        /// Recorded; the base order is not yet placed.
        Created = "created",
        /// The base order is on its way or resting on the book.
        BaseOrderPlaced = "base_order_placed",
        /// The base order filled: safety orders and the take profit are working.
        Bought = "bought",
        /// The user canceled the deal; its open orders are being canceled.
        CancelPending = "cancel_pending",
        /// Canceled: orders canceled, the position left as it is.
        Canceled = "canceled",
        /// Closed by its take profit.
        Completed = "completed",
        /// The base order was refused (by the order guard or the venue) or could not be placed.
        Failed = "failed",
        /// Closing at market (stop loss, the user, a signal): open orders are being canceled.
        PanicSellPending = "panic_sell_pending",
        /// The closing market order is sent.
        PanicSellOrderPlaced = "panic_sell_order_placed",
        /// Closed at market.
        PanicSold = "panic_sold",
    }
);

impl DealStatus {
    /// A finished deal never changes again.
    pub fn is_finished(self) -> bool {
        matches!(self, DealStatus::Canceled | DealStatus::Completed | DealStatus::Failed | DealStatus::PanicSold)
    }
}

named_enum!(
    /// Why a finished deal ended.
    CloseReason, "close reason" {
        TakeProfit = "take_profit",
        StopLoss = "stop_loss",
        /// Closed at market by the user or a signal.
        ClosedAtMarket = "closed_at_market",
        Canceled = "canceled",
        /// The base order could not be placed.
        Failed = "failed",
    }
);

named_enum!(
    /// What an order is for within its deal.
    OrderRole, "order role" {
        Base = "base",
        Safety = "safety",
        TakeProfit = "take_profit",
        /// The market order that closes a deal (stop loss, the user, a signal).
        Close = "close",
        /// A market order adding funds to an open deal.
        AddFunds = "add_funds",
        /// An order the user placed by hand, outside any deal.
        Manual = "manual",
    }
);

named_enum!(
    /// How an order is priced.
    OrderKind, "order kind" {
        Limit = "limit",
        Market = "market",
    }
);

named_enum!(
    /// Where an order stands, as far as Bulwark knows.
    IntentState, "intent state" {
        /// Recorded before sending; the venue may or may not have it. Resolved by lookup.
        Pending = "pending",
        /// The venue holds it (new or partly filled).
        Open = "open",
        Filled = "filled",
        /// Canceled or expired at the venue (it may have filled in part first).
        Canceled = "canceled",
        /// Refused before reaching the book: by the order guard or by the venue.
        Rejected = "rejected",
        /// Provably never reached the venue (its receive window closed without it being found).
        NotPlaced = "not_placed",
    }
);

impl IntentState {
    /// The order can no longer trade.
    pub fn is_final(self) -> bool {
        matches!(self, IntentState::Filled | IntentState::Canceled | IntentState::Rejected | IntentState::NotPlaced)
    }
}

/// One order Bulwark sends, from any path (a deal, a manual order): the intent recorded before
/// sending, then what the venue reported. The order guard counts these for its per-minute and
/// per-day limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderIntent {
    /// `bw-<first 22 hex digits of the deal id>-<seq>` (at most 36 characters) for a deal's order:
    /// the same deal and sequence always give the same id. Manual orders carry a random id.
    pub client_order_id: String,
    pub user_id: UserId,
    pub exchange_account_id: ExchangeAccountId,
    pub pair: Pair,
    /// The deal it belongs to; `None` for a manual order.
    pub deal_id: Option<DealId>,
    /// Sequence number within the deal (0 for a manual order).
    pub seq: u32,
    pub role: OrderRole,
    /// 1-based index of a safety order or of a take-profit step; 0 for other roles.
    pub safety_index: u32,
    pub side: Side,
    pub kind: OrderKind,
    /// The limit price; for a market order the reference price it was checked against.
    pub price: Decimal,
    /// Amount of base asset; `None` for a market order sized in quote.
    pub quantity: Option<Decimal>,
    /// Amount of quote asset for a market order sized in quote.
    pub quote_amount: Option<Decimal>,
    pub state: IntentState,
    /// A cancel was asked for and not yet confirmed.
    pub cancel_requested: bool,
    pub venue_order_id: Option<String>,
    pub executed_qty: Decimal,
    pub executed_quote: Decimal,
    /// Fees the venue charged in the pair's base asset and in its quote asset.
    pub fee_base: Decimal,
    pub fee_quote: Decimal,
    /// Why it was refused, for the user.
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a new order is, before it is recorded: [`OrderIntent::pending`] makes the intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub client_order_id: String,
    pub user_id: UserId,
    pub exchange_account_id: ExchangeAccountId,
    pub pair: Pair,
    pub deal_id: Option<DealId>,
    pub seq: u32,
    pub role: OrderRole,
    pub safety_index: u32,
    pub side: Side,
    pub kind: OrderKind,
    pub price: Decimal,
    pub quantity: Option<Decimal>,
    pub quote_amount: Option<Decimal>,
}

impl OrderIntent {
    /// The intent of `order`, recorded at `now` and not yet sent: pending, nothing executed.
    pub fn pending(order: NewOrder, now: Timestamp) -> OrderIntent {
        OrderIntent {
            client_order_id: order.client_order_id,
            user_id: order.user_id,
            exchange_account_id: order.exchange_account_id,
            pair: order.pair,
            deal_id: order.deal_id,
            seq: order.seq,
            role: order.role,
            safety_index: order.safety_index,
            side: order.side,
            kind: order.kind,
            price: order.price,
            quantity: order.quantity,
            quote_amount: order.quote_amount,
            state: IntentState::Pending,
            cancel_requested: false,
            venue_order_id: None,
            executed_qty: Decimal::ZERO,
            executed_quote: Decimal::ZERO,
            fee_base: Decimal::ZERO,
            fee_quote: Decimal::ZERO,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The deterministic client order id of order `seq` of deal `deal`.
    pub fn client_order_id_for(deal: DealId, seq: u32) -> String {
        let hex = deal.as_uuid().simple().to_string();
        format!("bw-{}-{seq}", &hex[..22])
    }

    /// Whether this order opens or adds to a position (what the guard's volume limits count).
    pub fn opens_position(&self) -> bool {
        matches!(self.role, OrderRole::Base | OrderRole::Safety | OrderRole::AddFunds | OrderRole::Manual)
    }

    /// The order's value in quote: the quote amount of a market order sized in quote, else
    /// quantity × price (the limit price, or the reference price of a market order), saturating at
    /// `Decimal::MAX` (a limit compared with it then refuses).
    pub fn notional(&self) -> Decimal {
        match (self.quote_amount, self.quantity) {
            (Some(quote), _) => quote,
            (None, Some(qty)) => qty.checked_mul(self.price).unwrap_or(Decimal::MAX),
            (None, None) => Decimal::ZERO,
        }
    }

    /// Base asset this order moved into (buy) or out of (sell) the account, net of base fees.
    pub fn net_base(&self) -> Decimal {
        match self.side {
            Side::Buy => self.executed_qty - self.fee_base,
            Side::Sell => self.executed_qty + self.fee_base,
        }
    }

    /// Quote asset this order moved out of (buy) or into (sell) the account, net of quote fees.
    pub fn net_quote(&self) -> Decimal {
        match self.side {
            Side::Buy => self.executed_quote + self.fee_quote,
            Side::Sell => self.executed_quote - self.fee_quote,
        }
    }
}

/// One deal of a bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub id: DealId,
    pub bot_id: BotId,
    pub user_id: UserId,
    pub exchange_account_id: ExchangeAccountId,
    pub pair: Pair,
    pub strategy: Strategy,
    pub status: DealStatus,
    pub close_reason: Option<CloseReason>,
    /// The bot's settings the deal started with (JSON, 3Commas field names); later edits of the
    /// bot apply to new deals only.
    pub settings: String,
    /// The base order's average fill price (P0 of `spec/dca.md`).
    pub base_price: Option<Decimal>,
    /// The next order's sequence number.
    pub next_seq: u32,
    /// When the price first crossed the stop loss (for the stop-loss timeout).
    pub stop_loss_since: Option<Timestamp>,
    /// Quote gained (or lost) once the deal closed, net of fees paid in quote.
    pub profit_quote: Option<Decimal>,
    /// The best price since the deal bought (highest for a long deal, lowest for a short one): a
    /// trailing stop loss follows it.
    pub best_price: Option<Decimal>,
    /// The best price since the last take-profit target was reached, while a trailing take profit
    /// is armed; `None` while it is not.
    pub trailing_peak: Option<Decimal>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// A bot as stored. Its settings are JSON with 3Commas field names, read by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    pub id: BotId,
    pub user_id: UserId,
    pub exchange_account_id: ExchangeAccountId,
    pub name: String,
    pub pairs: Vec<Pair>,
    pub enabled: bool,
    /// Why the bot was disabled by Bulwark (a guard refusal, the kill switch, a paused key).
    pub disabled_reason: Option<String>,
    pub settings: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What one exchange account may trade (`spec/security.md` TR-1), enforced by the order guard for
/// every order from every path. Amounts are in the pair's quote asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingPolicy {
    /// Pairs that may be traded; empty means any pair that passes the other rules.
    pub pair_allowlist: Vec<Pair>,
    /// Largest value of one order.
    pub max_order_notional: Decimal,
    /// Largest value of the orders that open or add to positions in any 24 hours.
    pub max_daily_volume: Decimal,
    pub max_orders_per_minute: u32,
    /// Largest distance of a limit price from the last price, in percent.
    pub max_price_deviation_percent: Decimal,
    /// Smallest 24-hour quote volume of a pair for orders that open or add to positions.
    pub min_quote_volume_24h: Decimal,
}

impl Default for TradingPolicy {
    /// On for every account until the user changes it (`docs/security-model.md`).
    fn default() -> TradingPolicy {
        TradingPolicy {
            pair_allowlist: Vec::new(),
            max_order_notional: Decimal::new(10_000, 0),
            max_daily_volume: Decimal::new(100_000, 0),
            max_orders_per_minute: 60,
            max_price_deviation_percent: Decimal::new(5, 0),
            min_quote_volume_24h: Decimal::new(100_000, 0),
        }
    }
}

impl TradingPolicy {
    /// The policy of a paper account until its user sets one: it risks no money, so the price rule
    /// only refuses absurd prices (99 % away) and the rate limit stays on.
    pub fn paper_default() -> TradingPolicy {
        TradingPolicy {
            pair_allowlist: Vec::new(),
            max_order_notional: Decimal::new(1_000_000, 0),
            max_daily_volume: Decimal::new(10_000_000, 0),
            max_orders_per_minute: 600,
            max_price_deviation_percent: Decimal::new(99, 0),
            min_quote_volume_24h: Decimal::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buy_and_sell_start_deals_only_on_their_side() {
        use SignalAction as A;
        for strategy in [Strategy::Long, Strategy::Short] {
            for action in [A::StartDeal, A::EnterLong, A::EnterShort] {
                assert!(action.starts_deal(strategy), "{action:?} {strategy:?}");
            }
            for action in [A::CloseAtMarketPrice, A::CloseAtMarketPriceAll, A::AddFundsInQuote, A::StartTrailing] {
                assert!(!action.starts_deal(strategy), "{action:?} {strategy:?}");
            }
            assert!(!A::ExitLong.starts_deal(strategy) && !A::ExitShort.starts_deal(strategy));
        }
        assert!(A::Buy.starts_deal(Strategy::Long) && !A::Buy.starts_deal(Strategy::Short), "buy exits a short bot");
        assert!(A::Sell.starts_deal(Strategy::Short) && !A::Sell.starts_deal(Strategy::Long), "sell exits a long bot");
    }

    #[test]
    fn names_read_back() {
        for status in DealStatus::ALL {
            assert_eq!(status.as_str().parse::<DealStatus>(), Ok(*status));
        }
        for role in OrderRole::ALL {
            assert_eq!(role.as_str().parse::<OrderRole>(), Ok(*role));
        }
        for state in IntentState::ALL {
            assert_eq!(state.as_str().parse::<IntentState>(), Ok(*state));
        }
        for reason in CloseReason::ALL {
            assert_eq!(reason.as_str().parse::<CloseReason>(), Ok(*reason));
        }
        assert!("bogus".parse::<DealStatus>().is_err());
    }

    #[test]
    fn client_order_ids_are_deterministic_and_fit_the_venue_rule() {
        let deal = DealId::from_random_bytes([7; 16]);
        let id = OrderIntent::client_order_id_for(deal, 12);
        assert_eq!(id, OrderIntent::client_order_id_for(deal, 12));
        assert_ne!(id, OrderIntent::client_order_id_for(deal, 13));
        assert!(id.len() <= 36, "{id}");
        assert!(OrderIntent::client_order_id_for(deal, u32::MAX).len() <= 36);
        assert!(id.starts_with("bw-"));
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}

named_enum!(
    /// What a webhook signal asks of its bot: the DCA-bot message's actions (`start_deal` when it
    /// names none) and the Signal-bot message's (`spec/webhooks.md` sections 2 and 3).
    SignalAction, "signal action" {
        StartDeal = "start_deal",
        CloseAtMarketPrice = "close_at_market_price",
        CloseAtMarketPriceAll = "close_at_market_price_all",
        AddFundsInQuote = "add_funds_in_quote",
        StartTrailing = "start_trailing",
        Buy = "buy",
        Sell = "sell",
        EnterLong = "enter_long",
        ExitLong = "exit_long",
        EnterShort = "enter_short",
        ExitShort = "exit_short",
    }
);

impl SignalAction {
    /// Whether the action starts a deal on a bot trading `strategy`: a start signal, an entry, or
    /// the Signal format's `buy` (long) / `sell` (short). Every other action acts on open deals.
    pub fn starts_deal(self, strategy: Strategy) -> bool {
        match self {
            SignalAction::StartDeal | SignalAction::EnterLong | SignalAction::EnterShort => true,
            SignalAction::Buy => strategy == Strategy::Long,
            SignalAction::Sell => strategy == Strategy::Short,
            _ => false,
        }
    }
}

named_enum!(
    /// Where a recorded signal stands.
    SignalState, "signal state" {
        /// Recorded and answered 202; not yet acted on (it may be delayed by `delay_seconds`).
        Pending = "pending",
        /// Acted on: the deal it started, closed or added to was saved with it.
        Done = "done",
        /// Not acted on, for the reason in its outcome (no deal to close, the bot's limits, ...).
        Refused = "refused",
        /// Not acted on in time (its bot was not running while it was due).
        Expired = "expired",
    }
);

/// A webhook signal as recorded before it was answered 202: durable from then on, acted on once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub id: SignalId,
    pub bot_id: BotId,
    pub user_id: UserId,
    pub action: SignalAction,
    /// The pair the signal names, if it names one.
    pub pair: Option<Pair>,
    /// The action's parameters as a JSON object (volume, price, order size, trigger price, the
    /// sender's exchange and instrument), written and read by the server; opaque to the store.
    pub params: String,
    /// The peer address the signal came from (after trusted-proxy resolution).
    pub source_ip: String,
    pub received_at: Timestamp,
    /// When it may be acted on: `received_at` plus `delay_seconds`.
    pub due_at: Timestamp,
    pub state: SignalState,
    /// What came of it, in a sentence (set when it leaves `pending`).
    pub outcome: Option<String>,
    pub handled_at: Option<Timestamp>,
}
