//! Many bots and their deals, driven by one event enum.
//!
//! The [`Engine`] holds the bots a node runs, their open deals and each pair's market (filters and
//! last price). [`Engine::handle`] takes one [`Event`] and returns the deals that changed (to be
//! saved before anything is sent) and the commands to carry out. New deal ids come from the
//! generator given to [`Engine::new`], so a test or a benchmark can make them deterministic.

use std::collections::HashMap;

use domain::{Bot, BotId, CloseReason, DealId, Decimal, MarketFilters, Pair, StopLossType, Timestamp};

use crate::deal::{Command, Ctx, DealBook, DealError, DealEvent, NewDeal, OrderUpdate};
use crate::settings::{BotSettings, StartCondition};

/// Something the engine reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A trade price of a pair.
    Tick { pair: Pair, price: Decimal },
    /// A one-minute candle of a pair.
    Candle { pair: Pair, high: Decimal, low: Decimal, close: Decimal },
    /// The venue's view of one of our orders.
    Order(OrderUpdate),
    /// The order guard or the venue refused a placement.
    Refused { client_order_id: String, reason: String },
    /// A placement provably never reached the venue.
    NotPlaced { client_order_id: String },
    /// A start signal for a bot (TradingView), optionally for one pair of a multi-pair bot.
    Signal { bot: BotId, pair: Option<Pair> },
    /// A webhook signal's other commands for a bot, on its deals on `pair` (on all of them when
    /// `None`, for the commands that may act on several).
    Webhook { bot: BotId, pair: Option<Pair>, command: WebhookCommand },
    /// The user's commands.
    User(UserCommand),
    /// Time passed.
    Timer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Start a deal now (`start_new_deal`), skipping the start condition but not the limits.
    StartDeal {
        bot: BotId,
        pair: Option<Pair>,
    },
    CloseAtMarket {
        deal: DealId,
    },
    Cancel {
        deal: DealId,
    },
    AddFunds {
        deal: DealId,
        quote: Decimal,
        /// A limit price; at market without one.
        price: Option<Decimal>,
    },
    /// `panic_sell_all_deals`.
    PanicSellAll {
        bot: BotId,
    },
    /// `cancel_all_deals`.
    CancelAll {
        bot: BotId,
    },
}

/// What a webhook signal asks of a bot's open deals (`spec/webhooks.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookCommand {
    /// `close_at_market_price` (and the Signal-bot exits): close the deals on the pair, or every
    /// deal of the bot when no pair is named, at market.
    CloseAtMarket,
    /// `add_funds_in_quote`: add `quote` to the deal on the pair (or the bot's only open deal), at
    /// market or at a limit `price`.
    AddFunds { quote: Decimal, price: Option<Decimal> },
    /// `start_trailing`: arm the trailing take profit of the deal on the pair (or the only one) now.
    StartTrailing,
}

/// Why a user command was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("this node does not run that bot or deal")]
    Unknown,
    #[error("the bot is disabled")]
    BotDisabled,
    #[error("the bot has as many active deals as it may ({0})")]
    MaxActiveDeals(u32),
    #[error("the pair has as many deals of this bot as allowed")]
    PairBusy,
    #[error("the bot does not trade this pair")]
    UnknownPair,
    #[error("the market of the pair is not known yet")]
    NoMarket,
    #[error("the bot does not start deals on signals (its start condition is not TradingView)")]
    NoSignalStart,
    #[error("the bot has no open deal for this")]
    NoOpenDeal,
    #[error("the bot has several open deals: the signal must name the pair")]
    PairNeeded,
    #[error(transparent)]
    Deal(#[from] DealError),
}

/// What to do after an event: save `changed` (in this order), disable the bots in `disable`
/// (a stop loss of type `stop_loss_and_disable_bot` fired), then carry out `commands`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub changed: Vec<DealId>,
    pub disable: Vec<BotId>,
    pub commands: Vec<(DealId, Command)>,
}

/// A bot as the engine runs it.
#[derive(Debug, Clone)]
pub struct BotState {
    pub bot: Bot,
    pub settings: BotSettings,
    /// When its last deal closed (for the cooldown).
    pub last_closed_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct MarketState {
    filters: MarketFilters,
    price: Option<Decimal>,
}

type IdSource = Box<dyn FnMut() -> DealId + Send + Sync>;

/// The bots one node runs and their open deals.
pub struct Engine {
    bots: HashMap<BotId, BotState>,
    deals: HashMap<DealId, DealBook>,
    markets: HashMap<Pair, MarketState>,
    /// Open deals per pair, in the order they were opened.
    deals_by_pair: HashMap<Pair, Vec<DealId>>,
    /// Enabled bots per pair they trade.
    bots_by_pair: HashMap<Pair, Vec<BotId>>,
    /// Deals in memory per bot.
    deals_by_bot: HashMap<BotId, Vec<DealId>>,
    /// Deals by the deal part of their orders' client order ids (`bw-<22 hex>-<seq>`): one key per
    /// deal rather than per order, so the map stays small and never rehashes mid-candle.
    by_id_prefix: HashMap<String, DealId>,
    new_id: IdSource,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("bots", &self.bots.len()).field("deals", &self.deals.len()).finish()
    }
}

impl Engine {
    pub fn new(new_id: IdSource) -> Engine {
        Engine {
            bots: HashMap::new(),
            deals: HashMap::new(),
            markets: HashMap::new(),
            deals_by_pair: HashMap::new(),
            bots_by_pair: HashMap::new(),
            deals_by_bot: HashMap::new(),
            by_id_prefix: HashMap::new(),
            new_id,
        }
    }

    /// Sets the rules of a pair's market (from the venue's exchange info).
    pub fn set_market(&mut self, pair: Pair, filters: MarketFilters) {
        self.markets
            .entry(pair)
            .and_modify(|m| m.filters = filters.clone())
            .or_insert(MarketState { filters, price: None });
    }

    /// Records a pair's last price without reacting to it (no stop loss, no new deals): for a
    /// command that needs a fresh price and must not let other bots act first.
    pub fn set_market_price(&mut self, pair: &Pair, price: Decimal) {
        self.set_price(pair, price);
    }

    pub fn has_market(&self, pair: &Pair) -> bool {
        self.markets.contains_key(pair)
    }

    pub fn price(&self, pair: &Pair) -> Option<Decimal> {
        self.markets.get(pair).and_then(|m| m.price)
    }

    /// Adds or replaces a bot (its settings apply to deals it starts from now on).
    pub fn upsert_bot(&mut self, state: BotState) {
        let id = state.bot.id;
        self.unindex_bot(id);
        if state.bot.enabled {
            for pair in &state.bot.pairs {
                self.bots_by_pair.entry(pair.clone()).or_default().push(id);
            }
        }
        self.bots.insert(id, state);
    }

    fn unindex_bot(&mut self, id: BotId) {
        if let Some(old) = self.bots.get(&id) {
            for pair in &old.bot.pairs {
                if let Some(list) = self.bots_by_pair.get_mut(pair) {
                    list.retain(|b| *b != id);
                }
            }
        }
    }

    /// Forgets a bot and its deals (the node lost its lease, or the bot is gone).
    pub fn remove_bot(&mut self, id: BotId) {
        self.unindex_bot(id);
        self.bots.remove(&id);
        for deal in self.deals_by_bot.remove(&id).unwrap_or_default() {
            self.forget_deal(deal);
        }
    }

    pub fn bot(&self, id: BotId) -> Option<&BotState> {
        self.bots.get(&id)
    }

    pub fn bot_ids(&self) -> Vec<BotId> {
        self.bots.keys().copied().collect()
    }

    /// Takes a deal loaded from storage.
    pub fn insert_deal(&mut self, book: DealBook) {
        let id = book.deal.id;
        self.by_id_prefix.insert(id_prefix(id), id);
        self.deals_by_pair.entry(book.deal.pair.clone()).or_default().push(id);
        self.deals_by_bot.entry(book.deal.bot_id).or_default().push(id);
        self.deals.insert(id, book);
    }

    fn forget_deal(&mut self, id: DealId) {
        if let Some(book) = self.deals.remove(&id) {
            self.by_id_prefix.remove(&id_prefix(id));
            if let Some(list) = self.deals_by_pair.get_mut(&book.deal.pair) {
                list.retain(|d| *d != id);
            }
            if let Some(list) = self.deals_by_bot.get_mut(&book.deal.bot_id) {
                list.retain(|d| *d != id);
            }
        }
    }

    pub fn deal(&self, id: DealId) -> Option<&DealBook> {
        self.deals.get(&id)
    }

    pub fn deals(&self) -> impl Iterator<Item = &DealBook> {
        self.deals.values()
    }

    /// The deal an order belongs to.
    pub fn deal_of_order(&self, client_order_id: &str) -> Option<DealId> {
        let prefix = client_order_id.strip_prefix("bw-")?.split('-').next()?;
        let deal = *self.by_id_prefix.get(prefix)?;
        self.deals.get(&deal)?.order(client_order_id).map(|_| deal)
    }

    /// Open deals of a bot (not finished).
    pub fn active_deals(&self, bot: BotId) -> usize {
        self.deals_by_bot.get(&bot).map_or(0, |ids| {
            ids.iter().filter_map(|id| self.deals.get(id)).filter(|d| !d.deal.status.is_finished()).count()
        })
    }

    /// Finished deals whose orders are all settled are dropped from memory (they are saved).
    pub fn drop_settled(&mut self) -> Vec<DealId> {
        let settled: Vec<DealId> = self
            .deals
            .values()
            .filter(|d| d.deal.status.is_finished() && d.orders.iter().all(|o| o.state.is_final()))
            .map(|d| d.deal.id)
            .collect();
        for id in &settled {
            self.forget_deal(*id);
        }
        settled
    }

    /// Applies one event at `now`.
    ///
    /// # Errors
    /// For user commands and signals the engine cannot take; nothing changed then.
    pub fn handle(&mut self, now: Timestamp, event: Event) -> Result<Output, EngineError> {
        let mut out = Output::default();
        match event {
            Event::Tick { pair, price } => {
                self.set_price(&pair, price);
                self.for_pair(now, &pair, &DealEvent::Price(price), &mut out);
                self.start_waiting_bots(now, &pair, &mut out);
            }
            Event::Candle { pair, high, low, close } => {
                self.set_price(&pair, close);
                self.for_pair(now, &pair, &DealEvent::Candle { high, low, close }, &mut out);
                self.start_waiting_bots(now, &pair, &mut out);
            }
            Event::Order(update) => {
                let Some(deal) = self.deal_of_order(&update.client_order_id) else { return Ok(out) };
                self.apply_to(now, deal, DealEvent::Order(update), &mut out)?;
            }
            Event::Refused { client_order_id, reason } => {
                let Some(deal) = self.deal_of_order(&client_order_id) else { return Ok(out) };
                self.apply_to(now, deal, DealEvent::Refused { client_order_id, reason }, &mut out)?;
            }
            Event::NotPlaced { client_order_id } => {
                let Some(deal) = self.deal_of_order(&client_order_id) else { return Ok(out) };
                self.apply_to(now, deal, DealEvent::NotPlaced { client_order_id }, &mut out)?;
            }
            Event::Signal { bot, pair } => {
                let state = self.bots.get(&bot).ok_or(EngineError::Unknown)?;
                if state.settings.start_condition != StartCondition::TradingView {
                    return Err(EngineError::NoSignalStart);
                }
                self.start_deal(now, bot, pair, &mut out)?;
            }
            Event::Webhook { bot, pair, command } => self.webhook(now, bot, pair.as_ref(), command, &mut out)?,
            Event::User(command) => self.user(now, command, &mut out)?,
            Event::Timer => {
                let ids: Vec<DealId> = self.deals.keys().copied().collect();
                for id in ids {
                    self.apply_quiet(now, id, &DealEvent::Timer, &mut out);
                }
                let pairs: Vec<Pair> = self.bots_by_pair.keys().cloned().collect();
                for pair in pairs {
                    self.start_waiting_bots(now, &pair, &mut out);
                }
            }
        }
        Ok(out)
    }

    fn set_price(&mut self, pair: &Pair, price: Decimal) {
        if let Some(market) = self.markets.get_mut(pair) {
            market.price = Some(price);
        }
    }

    fn for_pair(&mut self, now: Timestamp, pair: &Pair, event: &DealEvent, out: &mut Output) {
        let Some(ids) = self.deals_by_pair.get(pair) else { return };
        for id in ids.clone() {
            self.apply_quiet(now, id, event, out);
        }
    }

    /// Applies a market or timer event; a deal counts as changed only when its status, its stop-
    /// loss clock or its orders moved, so a tick that changes nothing writes nothing.
    fn apply_quiet(&mut self, now: Timestamp, id: DealId, event: &DealEvent, out: &mut Output) {
        let Some(book) = self.deals.get_mut(&id) else { return };
        let Some(bot) = self.bots.get(&book.deal.bot_id) else { return };
        let Some(market) = self.markets.get(&book.deal.pair) else { return };
        let fingerprint = |b: &DealBook| {
            (
                b.deal.status,
                b.deal.stop_loss_since,
                b.deal.best_price,
                b.deal.trailing_peak,
                b.deal.next_seq,
                b.orders.iter().filter(|o| o.cancel_requested).count(),
            )
        };
        let before = fingerprint(book);
        let reason_before = book.deal.close_reason;
        let ctx = Ctx { settings: &bot.settings, filters: &market.filters, now, price: market.price };
        let needs_advance = !matches!(book.deal.status, domain::DealStatus::Bought | domain::DealStatus::Canceled);
        let commands = match event {
            DealEvent::Price(_) | DealEvent::Candle { .. } if !needs_advance && !watches_prices(&bot.settings) => {
                return;
            }
            _ => book.apply(&ctx, event.clone()).unwrap_or_default(),
        };
        if fingerprint(book) != before || !commands.is_empty() {
            Self::collect(book, commands, out);
        }
        Self::note_stop_loss(bot, reason_before, book, out);
        if book.deal.status.is_finished()
            && let Some(bot) = self.bots.get_mut(&book.deal.bot_id)
        {
            bot.last_closed_at = Some(bot.last_closed_at.map_or(now, |t| t.max(now)));
        }
    }

    fn apply_to(&mut self, now: Timestamp, id: DealId, event: DealEvent, out: &mut Output) -> Result<(), EngineError> {
        let book = self.deals.get_mut(&id).ok_or(EngineError::Unknown)?;
        let bot = self.bots.get(&book.deal.bot_id).ok_or(EngineError::Unknown)?;
        let market = self.markets.get(&book.deal.pair).ok_or(EngineError::NoMarket)?;
        let ctx = Ctx { settings: &bot.settings, filters: &market.filters, now, price: market.price };
        let was_finished = book.deal.status.is_finished();
        let reason_before = book.deal.close_reason;
        let commands = book.apply(&ctx, event)?;
        Self::collect(book, commands, out);
        Self::note_stop_loss(bot, reason_before, book, out);
        if !was_finished
            && book.deal.status.is_finished()
            && let Some(bot) = self.bots.get_mut(&book.deal.bot_id)
        {
            bot.last_closed_at = Some(now);
        }
        Ok(())
    }

    /// A stop loss that just fired asks for its bot to be disabled when its type says so.
    fn note_stop_loss(bot: &BotState, before: Option<CloseReason>, book: &DealBook, out: &mut Output) {
        let fired = before != Some(CloseReason::StopLoss) && book.deal.close_reason == Some(CloseReason::StopLoss);
        if fired
            && bot.settings.dca.stop_loss().kind() == StopLossType::StopLossAndDisableBot
            && !out.disable.contains(&bot.bot.id)
        {
            out.disable.push(bot.bot.id);
        }
    }

    fn collect(book: &DealBook, commands: Vec<Command>, out: &mut Output) {
        let id = book.deal.id;
        if !out.changed.contains(&id) {
            out.changed.push(id);
        }
        out.commands.extend(commands.into_iter().map(|c| (id, c)));
    }

    fn user(&mut self, now: Timestamp, command: UserCommand, out: &mut Output) -> Result<(), EngineError> {
        match command {
            UserCommand::StartDeal { bot, pair } => self.start_deal(now, bot, pair, out),
            UserCommand::CloseAtMarket { deal } => self.apply_to(now, deal, DealEvent::CloseAtMarket, out),
            UserCommand::Cancel { deal } => self.apply_to(now, deal, DealEvent::Cancel, out),
            UserCommand::AddFunds { deal, quote, price } => {
                self.apply_to(now, deal, DealEvent::AddFunds { quote, price }, out)
            }
            UserCommand::PanicSellAll { bot } | UserCommand::CancelAll { bot } => {
                let event = if matches!(command, UserCommand::PanicSellAll { .. }) {
                    DealEvent::CloseAtMarket
                } else {
                    DealEvent::Cancel
                };
                let ids: Vec<DealId> = self.deals_by_bot.get(&bot).cloned().unwrap_or_default();
                for id in ids {
                    // A deal already closing or closed stays as it is.
                    match self.apply_to(now, id, event.clone(), out) {
                        Ok(()) | Err(EngineError::Deal(DealError::NotOpen)) => {}
                        Err(other) => return Err(other),
                    }
                }
                Ok(())
            }
        }
    }

    /// A webhook signal's command on the bot's open deals (not finished, not already closing) on
    /// `pair`, or on all of them without one. Nothing changes when it fails.
    fn webhook(
        &mut self,
        now: Timestamp,
        bot: BotId,
        pair: Option<&Pair>,
        command: WebhookCommand,
        out: &mut Output,
    ) -> Result<(), EngineError> {
        if !self.bots.contains_key(&bot) {
            return Err(EngineError::Unknown);
        }
        let open: Vec<DealId> = self
            .deals_by_bot
            .get(&bot)
            .into_iter()
            .flatten()
            .filter_map(|id| self.deals.get(id))
            .filter(|d| pair.is_none_or(|p| d.deal.pair == *p))
            .filter(|d| {
                !d.deal.status.is_finished()
                    && !matches!(
                        d.deal.status,
                        domain::DealStatus::PanicSellPending
                            | domain::DealStatus::PanicSellOrderPlaced
                            | domain::DealStatus::CancelPending
                    )
            })
            .map(|d| d.deal.id)
            .collect();
        let event = match command {
            WebhookCommand::CloseAtMarket => {
                if open.is_empty() {
                    return Err(EngineError::NoOpenDeal);
                }
                for id in open {
                    self.apply_to(now, id, DealEvent::CloseAtMarket, out)?;
                }
                return Ok(());
            }
            WebhookCommand::AddFunds { quote, price } => DealEvent::AddFunds { quote, price },
            WebhookCommand::StartTrailing => DealEvent::StartTrailing,
        };
        match open.as_slice() {
            [] => Err(EngineError::NoOpenDeal),
            [id] => self.apply_to(now, *id, event, out),
            _ => Err(EngineError::PairNeeded),
        }
    }

    /// Starts a deal of `bot` on `pair` (or its first pair with room), within its limits.
    fn start_deal(
        &mut self,
        now: Timestamp,
        bot: BotId,
        pair: Option<Pair>,
        out: &mut Output,
    ) -> Result<(), EngineError> {
        let state = self.bots.get(&bot).ok_or(EngineError::Unknown)?;
        if !state.bot.enabled {
            return Err(EngineError::BotDisabled);
        }
        let max = state.settings.max_active_deals;
        let active = self.active_deals(bot);
        if active >= max as usize {
            return Err(EngineError::MaxActiveDeals(max));
        }
        let candidates: Vec<Pair> = match pair {
            Some(pair) if state.bot.pairs.contains(&pair) => vec![pair],
            Some(_) => return Err(EngineError::UnknownPair),
            None => state.bot.pairs.clone(),
        };
        let per_pair = state.settings.allowed_deals_on_same_pair.max(1) as usize;
        let chosen =
            candidates.into_iter().find(|p| self.deals_on_pair(bot, p) < per_pair).ok_or(EngineError::PairBusy)?;
        self.open_deal(now, bot, chosen, out)
    }

    fn deals_on_pair(&self, bot: BotId, pair: &Pair) -> usize {
        self.deals_by_bot.get(&bot).map_or(0, |ids| {
            ids.iter()
                .filter_map(|id| self.deals.get(id))
                .filter(|d| d.deal.pair == *pair && !d.deal.status.is_finished())
                .count()
        })
    }

    fn open_deal(&mut self, now: Timestamp, bot: BotId, pair: Pair, out: &mut Output) -> Result<(), EngineError> {
        let state = self.bots.get(&bot).ok_or(EngineError::Unknown)?;
        let market = self.markets.get(&pair).ok_or(EngineError::NoMarket)?;
        if market.price.is_none() {
            return Err(EngineError::Deal(DealError::NoPrice));
        }
        let id = (self.new_id)();
        let new = NewDeal {
            id,
            bot_id: bot,
            user_id: state.bot.user_id,
            exchange_account_id: state.bot.exchange_account_id,
            pair: pair.clone(),
            settings_json: state.bot.settings.clone(),
        };
        let ctx = Ctx { settings: &state.settings, filters: &market.filters, now, price: market.price };
        let (book, commands) = DealBook::open(new, &ctx);
        Self::collect(&book, commands, out);
        self.by_id_prefix.insert(id_prefix(id), id);
        self.deals_by_pair.entry(pair).or_default().push(id);
        self.deals_by_bot.entry(bot).or_default().push(id);
        self.deals.insert(id, book);
        Ok(())
    }

    /// Starts deals for the `nonstop` bots of a pair that have room and are past their cooldown.
    fn start_waiting_bots(&mut self, now: Timestamp, pair: &Pair, out: &mut Output) {
        let Some(bots) = self.bots_by_pair.get(pair) else { return };
        for bot in bots.clone() {
            let Some(state) = self.bots.get(&bot) else { continue };
            if state.settings.start_condition != StartCondition::Asap || !state.bot.enabled {
                continue;
            }
            let cooling = state.last_closed_at.is_some_and(|at| {
                now.as_unix_millis() - at.as_unix_millis() < i64::from(state.settings.cooldown_seconds) * 1000
            });
            if cooling {
                continue;
            }
            if self.active_deals(bot) >= state.settings.max_active_deals as usize {
                continue;
            }
            if self.deals_on_pair(bot, pair) >= state.settings.allowed_deals_on_same_pair.max(1) as usize {
                continue;
            }
            // Failing here only means "not now" (no price yet).
            let _ = self.open_deal(now, bot, pair.clone(), out);
        }
    }
}

/// The deal part of its orders' client order ids (see `domain::OrderIntent::client_order_id_for`).
fn id_prefix(deal: DealId) -> String {
    let sample = domain::OrderIntent::client_order_id_for(deal, 0);
    sample.trim_start_matches("bw-").trim_end_matches("-0").to_owned()
}

/// Whether prices matter to a bought deal: a stop loss or a trailing take profit watches them.
fn watches_prices(settings: &BotSettings) -> bool {
    settings.dca.stop_loss().is_on() || settings.dca.trailing_deviation().is_some()
}
