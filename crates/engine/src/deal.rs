//! One deal's decisions: which orders to record and send, which to cancel, when its status moves.
//!
//! A [`DealBook`] is the deal and every order it asked for. Each event updates it and then
//! [`DealBook::advance`] looks at the whole book and says what is missing (a base order, the next
//! safety orders, a take profit at the right size and price, cancels, the closing order). Because
//! the decision is made from the book and not from the event, replaying an event, or feeding the
//! venue's view again after a restart, asks for nothing twice: an order already recorded is never
//! recorded again, and a new order only follows when the one before it is settled.

use domain::{
    CloseReason, DcaPlan, Deal, DealId, DealStatus, Decimal, IntentState, MarketFilters, NewOrder, OrderIntent,
    OrderKind, OrderRole, OrderStatus, Pair, Price, Side, Strategy, TakeProfitTarget, Timestamp, VolumeType, better,
    crossed, reached, trailing_exit,
};

use crate::settings::BotSettings;

/// What the engine knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub settings: &'a BotSettings,
    pub filters: &'a MarketFilters,
    pub now: Timestamp,
    /// The pair's last price, when known.
    pub price: Option<Decimal>,
}

/// The venue's view of one order (from the user data stream, a lookup or a placement's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub client_order_id: String,
    pub venue_order_id: String,
    pub status: OrderStatus,
    pub executed_qty: Decimal,
    pub executed_quote: Decimal,
    pub fee_base: Decimal,
    pub fee_quote: Decimal,
}

/// Something that happened to one deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealEvent {
    /// The pair traded at this price (a tick, or a candle's close).
    Price(Decimal),
    /// A one-minute candle of the pair: the stop loss looks at its extremes.
    Candle {
        high: Decimal,
        low: Decimal,
        close: Decimal,
    },
    Order(OrderUpdate),
    /// The order guard or the venue refused the order; it never reached the book.
    Refused {
        client_order_id: String,
        reason: String,
    },
    /// The order provably never reached the venue (its receive window closed unseen).
    NotPlaced {
        client_order_id: String,
    },
    /// The user (or a signal) closes the deal at market.
    CloseAtMarket,
    /// The user cancels the deal: its orders are canceled, the position stays.
    Cancel,
    /// The user (or a signal) adds funds: an order of this much quote joins the deal, at market,
    /// or as a limit order at `price` when one is given.
    AddFunds {
        quote: Decimal,
        price: Option<Decimal>,
    },
    /// A signal starts the trailing take profit now, from the current price, instead of waiting
    /// for the last target (`start_trailing`).
    StartTrailing,
    /// Time passed (stop-loss timeouts, cancels to ask again).
    Timer,
}

/// What the runner must do for a deal, after saving the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send the recorded intent with this client order id.
    Place(String),
    /// Cancel the order with this client order id.
    Cancel(String),
}

/// A user command the deal cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DealError {
    #[error("the deal is not open")]
    NotOpen,
    #[error("the price of the pair is not known yet")]
    NoPrice,
    #[error("the order does not fit the market's rules ({0})")]
    BelowFilters(String),
    #[error("the bot has no trailing take profit")]
    NoTrailing,
    #[error("the deal's take profit is trailing already")]
    AlreadyTrailing,
    #[error("the deal is not far enough in profit to trail: the trailing exit would not be past its average price")]
    NotInProfit,
}

/// Who a new deal belongs to and what it starts with.
#[derive(Debug, Clone)]
pub struct NewDeal {
    pub id: DealId,
    pub bot_id: domain::BotId,
    pub user_id: domain::UserId,
    pub exchange_account_id: domain::ExchangeAccountId,
    pub pair: Pair,
    /// The bot's settings as JSON, kept with the deal.
    pub settings_json: String,
}

/// How long a cancel may go unanswered before it is asked again.
const CANCEL_RETRY_MS: i64 = 10_000;

/// A deal and every order it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealBook {
    pub deal: Deal,
    /// By sequence number.
    pub orders: Vec<OrderIntent>,
}

fn exit_side(strategy: Strategy) -> Side {
    match strategy {
        Strategy::Long => Side::Sell,
        Strategy::Short => Side::Buy,
    }
}

fn is_entry(role: OrderRole) -> bool {
    matches!(role, OrderRole::Base | OrderRole::Safety | OrderRole::AddFunds)
}

fn is_exit(role: OrderRole) -> bool {
    matches!(role, OrderRole::TakeProfit | OrderRole::Close)
}

/// An entry order that will not trade any more and did trade.
fn completed(order: &OrderIntent) -> bool {
    order.state == IntentState::Filled || (order.state == IntentState::Canceled && !order.executed_qty.is_zero())
}

fn live(order: &OrderIntent) -> bool {
    matches!(order.state, IntentState::Pending | IntentState::Open)
}

/// Where an order the venue reports in `status` stands for Bulwark.
pub fn intent_state(status: OrderStatus) -> IntentState {
    match status {
        OrderStatus::New | OrderStatus::PartiallyFilled => IntentState::Open,
        OrderStatus::Filled => IntentState::Filled,
        OrderStatus::Canceled | OrderStatus::Expired => IntentState::Canceled,
        OrderStatus::Rejected => IntentState::Rejected,
    }
}

impl DealBook {
    /// Opens a deal and asks for its base order (at `ctx.price`; without a price the base order
    /// waits for the first one).
    pub fn open(new: NewDeal, ctx: &Ctx<'_>) -> (DealBook, Vec<Command>) {
        let deal = Deal {
            id: new.id,
            bot_id: new.bot_id,
            user_id: new.user_id,
            exchange_account_id: new.exchange_account_id,
            pair: new.pair,
            strategy: ctx.settings.dca.strategy(),
            status: DealStatus::Created,
            close_reason: None,
            settings: new.settings_json,
            base_price: None,
            next_seq: 0,
            stop_loss_since: None,
            profit_quote: None,
            best_price: None,
            trailing_peak: None,
            created_at: ctx.now,
            updated_at: ctx.now,
            closed_at: None,
        };
        let mut book = DealBook { deal, orders: Vec::new() };
        let mut commands = Vec::new();
        book.advance(ctx, &mut commands);
        (book, commands)
    }

    pub fn order(&self, client_order_id: &str) -> Option<&OrderIntent> {
        self.orders.iter().find(|o| o.client_order_id == client_order_id)
    }

    fn order_mut(&mut self, client_order_id: &str) -> Option<&mut OrderIntent> {
        self.orders.iter_mut().find(|o| o.client_order_id == client_order_id)
    }

    /// Applies one event and says what to do next.
    ///
    /// # Errors
    /// For user commands the deal cannot take (`CloseAtMarket`, `Cancel`, `AddFunds` on a finished
    /// deal; `AddFunds` without a price or below the market's minimum). The book is then unchanged.
    pub fn apply(&mut self, ctx: &Ctx<'_>, event: DealEvent) -> Result<Vec<Command>, DealError> {
        let mut commands = Vec::new();
        let before = self.deal.status;
        match event {
            DealEvent::Price(price) => {
                self.watch_stop_loss(ctx, price, price);
                let triggered = self.watch_trailing(ctx, price);
                if before == DealStatus::Bought && self.deal.status == before && !triggered {
                    // A price moves nothing else of an open deal: the venue fills its orders.
                    return Ok(commands);
                }
            }
            DealEvent::Candle { high, low, close } => {
                let (adverse, favourable) = match self.deal.strategy {
                    Strategy::Long => (low, high),
                    Strategy::Short => (high, low),
                };
                self.watch_stop_loss(ctx, adverse, favourable);
                // The candle's best price counts for the peak; the exit is judged at its close.
                let triggered = self.watch_trailing(ctx, favourable) || self.trailing_triggered(ctx, close);
                if before == DealStatus::Bought && self.deal.status == before && !triggered {
                    return Ok(commands);
                }
            }
            DealEvent::Order(update) => self.record_update(ctx.now, &update),
            DealEvent::Refused { client_order_id, reason } => {
                if let Some(order) = self.order_mut(&client_order_id)
                    && order.state == IntentState::Pending
                {
                    order.state = IntentState::Rejected;
                    order.error = Some(reason);
                    order.updated_at = ctx.now;
                }
            }
            DealEvent::NotPlaced { client_order_id } => {
                if let Some(order) = self.order_mut(&client_order_id)
                    && order.state == IntentState::Pending
                {
                    order.state = IntentState::NotPlaced;
                    order.updated_at = ctx.now;
                }
            }
            DealEvent::CloseAtMarket => {
                if self.deal.status.is_finished()
                    || matches!(self.deal.status, DealStatus::PanicSellPending | DealStatus::PanicSellOrderPlaced)
                {
                    return Err(DealError::NotOpen);
                }
                self.deal.status = DealStatus::PanicSellPending;
                self.deal.close_reason = Some(CloseReason::ClosedAtMarket);
            }
            DealEvent::Cancel => {
                if self.deal.status.is_finished()
                    || matches!(
                        self.deal.status,
                        DealStatus::CancelPending | DealStatus::PanicSellPending | DealStatus::PanicSellOrderPlaced
                    )
                {
                    return Err(DealError::NotOpen);
                }
                self.deal.status = DealStatus::CancelPending;
                self.deal.close_reason = Some(CloseReason::Canceled);
            }
            DealEvent::AddFunds { quote, price } => self.add_funds(ctx, quote, price, &mut commands)?,
            DealEvent::StartTrailing => self.start_trailing(ctx)?,
            DealEvent::Timer => {
                if let Some(price) = ctx.price {
                    self.watch_stop_loss(ctx, price, price);
                }
                for order in &mut self.orders {
                    if order.cancel_requested
                        && order.state == IntentState::Open
                        && ctx.now.as_unix_millis() - order.updated_at.as_unix_millis() >= CANCEL_RETRY_MS
                    {
                        order.updated_at = ctx.now;
                        commands.push(Command::Cancel(order.client_order_id.clone()));
                    }
                }
                if before == DealStatus::Bought && self.deal.status == before {
                    // Time alone changes nothing else of an open deal: its orders move on reports.
                    return Ok(commands);
                }
            }
        }
        self.advance(ctx, &mut commands);
        Ok(commands)
    }

    /// Takes the venue's view of an order. Reports never go back: a lower executed amount or a
    /// change out of a final state is ignored (a late or repeated report).
    fn record_update(&mut self, now: Timestamp, update: &OrderUpdate) {
        let Some(order) = self.order_mut(&update.client_order_id) else { return };
        let next = intent_state(update.status);
        if update.executed_qty < order.executed_qty {
            return;
        }
        let settled = matches!(order.state, IntentState::Filled | IntentState::Canceled | IntentState::Rejected);
        if settled && next != order.state {
            return;
        }
        order.state = next;
        order.venue_order_id = Some(update.venue_order_id.clone());
        order.executed_qty = update.executed_qty;
        order.executed_quote = update.executed_quote;
        order.fee_base = update.fee_base;
        order.fee_quote = update.fee_quote;
        if next.is_final() {
            order.cancel_requested = false;
        }
        order.updated_at = now;
    }

    /// Base held by the deal (long) or owed back (short), from every fill so far; with
    /// `completed_entries_only`, entries still working are left out.
    pub fn position(&self, completed_entries_only: bool) -> Decimal {
        let mut position = Decimal::ZERO;
        for order in &self.orders {
            if is_entry(order.role) && (!completed_entries_only || completed(order)) {
                position += match self.deal.strategy {
                    Strategy::Long => order.net_base(),
                    Strategy::Short => order.executed_qty,
                };
            } else if is_exit(order.role) {
                position -= match self.deal.strategy {
                    Strategy::Long => order.executed_qty + order.fee_base,
                    Strategy::Short => order.executed_qty - order.fee_base,
                };
            }
        }
        position
    }

    /// Quote spent (long, fees included) or received (short, fees deducted) and base bought or sold
    /// by the completed entries, and the base order's quote.
    fn entry_totals(&self) -> (Decimal, Decimal, Decimal) {
        let mut spent = Decimal::ZERO;
        let mut coins = Decimal::ZERO;
        let mut bo = Decimal::ZERO;
        for order in self.orders.iter().filter(|o| is_entry(o.role) && completed(o)) {
            spent += order.net_quote();
            coins += match self.deal.strategy {
                Strategy::Long => order.net_base(),
                Strategy::Short => order.executed_qty,
            };
            if order.role == OrderRole::Base {
                bo += order.executed_quote;
            }
        }
        (spent, coins, bo)
    }

    /// The average entry price of the completed entries (fees included): the break-even price.
    pub fn average_price(&self) -> Option<Decimal> {
        let (spent, coins, _) = self.entry_totals();
        spent.checked_div(coins)
    }

    /// The take-profit price of the completed entries, before rounding (the first target's).
    pub fn take_profit_price(&self, settings: &BotSettings) -> Option<Decimal> {
        self.take_profit_targets(settings)?.first().map(|t| t.price)
    }

    /// Every take-profit target of the completed entries, before rounding.
    pub fn take_profit_targets(&self, settings: &BotSettings) -> Option<Vec<TakeProfitTarget>> {
        let (spent, coins, bo) = self.entry_totals();
        if coins.is_zero() || !settings.take_profit_enabled {
            return None;
        }
        settings.dca.take_profit_targets(bo, spent, coins)
    }

    /// The price that would trigger the deal's stop loss now (`None` without one, or before the
    /// deal bought).
    pub fn stop_loss_price(&self, settings: &BotSettings) -> Option<Decimal> {
        let average = self.average_price()?;
        settings.dca.stop_loss().trigger(self.deal.strategy, average, self.deal.best_price, self.exiting())
    }

    /// Base bought (long, net of base fees) or sold (short) by the completed entries: what the
    /// take-profit steps share out.
    fn entry_basis(&self) -> Decimal {
        self.orders
            .iter()
            .filter(|o| is_entry(o.role) && completed(o))
            .map(|o| match self.deal.strategy {
                Strategy::Long => o.net_base(),
                Strategy::Short => o.executed_qty,
            })
            .sum()
    }

    /// Some take profit traded: the deal began to exit (safety orders of a multi-step take profit
    /// stop; a stop loss to breakeven arms).
    fn exiting(&self) -> bool {
        self.orders.iter().any(|o| o.role == OrderRole::TakeProfit && !o.executed_qty.is_zero())
    }

    /// Quote gained by the deal: what the exits brought in less what the entries cost (long), or
    /// what the entries brought in less what buying back cost (short), net of quote fees.
    pub fn profit_quote(&self) -> Decimal {
        let mut profit = Decimal::ZERO;
        for order in &self.orders {
            let flow = match order.side {
                Side::Sell => order.net_quote(),
                Side::Buy => -order.net_quote(),
            };
            if is_entry(order.role) || is_exit(order.role) {
                profit += flow;
            }
        }
        profit
    }

    /// Checks the stop loss against `adverse` (the worst price seen) with the best price known
    /// before it, then lets a trailing stop loss follow `favourable` (the best price seen).
    fn watch_stop_loss(&mut self, ctx: &Ctx<'_>, adverse: Decimal, favourable: Decimal) {
        let sl = ctx.settings.dca.stop_loss();
        if self.deal.status != DealStatus::Bought || !sl.is_on() {
            return;
        }
        let strategy = self.deal.strategy;
        let Some(average) = self.average_price() else { return };
        let trigger = sl.trigger(strategy, average, self.deal.best_price, self.exiting());
        if sl.trailing() {
            self.deal.best_price = Some(self.deal.best_price.map_or(favourable, |b| better(strategy, b, favourable)));
        }
        if !trigger.is_some_and(|t| crossed(strategy, adverse, t)) {
            self.deal.stop_loss_since = None;
            return;
        }
        let since = *self.deal.stop_loss_since.get_or_insert(ctx.now);
        let waited = ctx.now.as_unix_millis() - since.as_unix_millis();
        if waited >= i64::from(sl.timeout_seconds()) * 1000 {
            self.deal.status = DealStatus::PanicSellPending;
            self.deal.close_reason = Some(CloseReason::StopLoss);
        }
    }

    /// Arms a trailing take profit once `favourable` reaches the last target and follows its peak
    /// from then on; true when the current price has come back far enough to close.
    fn watch_trailing(&mut self, ctx: &Ctx<'_>, favourable: Decimal) -> bool {
        if ctx.settings.dca.trailing_deviation().is_none() || self.deal.status != DealStatus::Bought {
            return false;
        }
        let strategy = self.deal.strategy;
        match self.deal.trailing_peak {
            Some(peak) => self.deal.trailing_peak = Some(better(strategy, peak, favourable)),
            None => {
                let Some(last) = self.take_profit_targets(ctx.settings).and_then(|t| t.last().copied()) else {
                    return false;
                };
                if !reached(strategy, favourable, last.price) {
                    return false;
                }
                self.deal.trailing_peak = Some(favourable);
            }
        }
        ctx.price.is_some_and(|price| self.trailing_triggered(ctx, price))
    }

    /// Arms the trailing take profit at the current price (`start_trailing`): only for a bot with
    /// one, a deal that bought and is not trailing yet, and a price far enough in profit that the
    /// trailing exit from it lies past the average entry price (otherwise arming it would close
    /// the deal at once, at no profit).
    fn start_trailing(&mut self, ctx: &Ctx<'_>) -> Result<(), DealError> {
        let Some(deviation) = ctx.settings.dca.trailing_deviation() else { return Err(DealError::NoTrailing) };
        if self.deal.status != DealStatus::Bought {
            return Err(DealError::NotOpen);
        }
        if self.deal.trailing_peak.is_some() {
            return Err(DealError::AlreadyTrailing);
        }
        let price = ctx.price.ok_or(DealError::NoPrice)?;
        let average = self.average_price().ok_or(DealError::NotOpen)?;
        let strategy = self.deal.strategy;
        let exit = domain::against(strategy, price, deviation).ok_or(DealError::NotInProfit)?;
        if !reached(strategy, exit, average) || exit == average {
            return Err(DealError::NotInProfit);
        }
        self.deal.trailing_peak = Some(price);
        Ok(())
    }

    /// Whether an armed trailing take profit closes at `price`: back by `trailing_deviation` from
    /// its peak, or at the average entry price at the latest.
    fn trailing_triggered(&self, ctx: &Ctx<'_>, price: Decimal) -> bool {
        let (Some(deviation), Some(peak)) = (ctx.settings.dca.trailing_deviation(), self.deal.trailing_peak) else {
            return false;
        };
        let Some(average) = self.average_price() else { return false };
        let strategy = self.deal.strategy;
        trailing_exit(strategy, deviation, peak, average).is_some_and(|exit| crossed(strategy, price, exit))
    }

    fn add_funds(
        &mut self,
        ctx: &Ctx<'_>,
        quote: Decimal,
        limit: Option<Decimal>,
        commands: &mut Vec<Command>,
    ) -> Result<(), DealError> {
        if self.deal.status != DealStatus::Bought {
            return Err(DealError::NotOpen);
        }
        let side = self.deal.strategy.entry_side();
        let (kind, price) = match limit {
            Some(limit) => (OrderKind::Limit, ctx.filters.round_price(limit, side)),
            None => (OrderKind::Market, ctx.price.ok_or(DealError::NoPrice)?),
        };
        let qty = ctx.filters.round_qty(quote.checked_div(price).unwrap_or_default());
        ctx.filters.check(price, qty).map_err(|v| DealError::BelowFilters(v.to_string()))?;
        // A market buy spends the quote amount; a limit order and a sell are sized in the base asset.
        let (quantity, quote_amount) = match (kind, side) {
            (OrderKind::Market, Side::Buy) => (None, Some(quote)),
            _ => (Some(qty), None),
        };
        self.record_intent(ctx.now, OrderRole::AddFunds, 0, side, kind, price, quantity, quote_amount);
        commands.push(Command::Place(self.orders.last().map(|o| o.client_order_id.clone()).unwrap_or_default()));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record_intent(
        &mut self,
        now: Timestamp,
        role: OrderRole,
        safety_index: u32,
        side: Side,
        kind: OrderKind,
        price: Decimal,
        quantity: Option<Decimal>,
        quote_amount: Option<Decimal>,
    ) -> String {
        let seq = self.deal.next_seq;
        self.deal.next_seq += 1;
        let client_order_id = OrderIntent::client_order_id_for(self.deal.id, seq);
        self.orders.push(OrderIntent::pending(
            NewOrder {
                client_order_id: client_order_id.clone(),
                user_id: self.deal.user_id,
                exchange_account_id: self.deal.exchange_account_id,
                pair: self.deal.pair.clone(),
                deal_id: Some(self.deal.id),
                seq,
                role,
                safety_index,
                side,
                kind,
                price,
                quantity,
                quote_amount,
            },
            now,
        ));
        client_order_id
    }

    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        ctx: &Ctx<'_>,
        commands: &mut Vec<Command>,
        role: OrderRole,
        safety_index: u32,
        side: Side,
        kind: OrderKind,
        price: Decimal,
        amount: (Option<Decimal>, Option<Decimal>),
    ) {
        let id = self.record_intent(ctx.now, role, safety_index, side, kind, price, amount.0, amount.1);
        commands.push(Command::Place(id));
    }

    /// Asks every live order to cancel; true when none is live any more.
    fn cancel_live(&mut self, now: Timestamp, commands: &mut Vec<Command>, roles: impl Fn(OrderRole) -> bool) -> bool {
        let mut none_live = true;
        for order in self.orders.iter_mut().filter(|o| live(o) && roles(o.role)) {
            none_live = false;
            if order.state == IntentState::Open && !order.cancel_requested {
                order.cancel_requested = true;
                order.updated_at = now;
                commands.push(Command::Cancel(order.client_order_id.clone()));
            }
        }
        none_live
    }

    fn finish(&mut self, now: Timestamp, status: DealStatus, reason: CloseReason) {
        self.deal.status = status;
        self.deal.close_reason = Some(reason);
        self.deal.closed_at = Some(now);
        self.deal.profit_quote = match status {
            DealStatus::Completed | DealStatus::PanicSold => Some(self.profit_quote()),
            _ => None,
        };
    }

    /// Looks at the whole book and asks for what is missing. Idempotent: called twice with
    /// nothing new in between it asks for nothing the second time.
    pub fn advance(&mut self, ctx: &Ctx<'_>, commands: &mut Vec<Command>) {
        for _ in 0..8 {
            let before = self.deal.status;
            self.step(ctx, commands);
            if self.deal.status == before {
                break;
            }
        }
        self.deal.updated_at = ctx.now;
    }

    fn step(&mut self, ctx: &Ctx<'_>, commands: &mut Vec<Command>) {
        let strategy = self.deal.strategy;
        match self.deal.status {
            DealStatus::Created => self.place_base(ctx, commands),
            DealStatus::BaseOrderPlaced => {
                let Some(base) = self.orders.iter().rev().find(|o| o.role == OrderRole::Base) else {
                    self.deal.status = DealStatus::Created;
                    return;
                };
                match base.state {
                    IntentState::Pending | IntentState::Open => {}
                    IntentState::NotPlaced => self.deal.status = DealStatus::Created,
                    _ if completed(base) => {
                        self.deal.base_price = base.executed_quote.checked_div(base.executed_qty);
                        self.deal.status = DealStatus::Bought;
                    }
                    _ => self.finish(ctx.now, DealStatus::Failed, CloseReason::Failed),
                }
            }
            DealStatus::Bought => {
                // Placing safety orders changes no fill, so one exit plan serves both.
                let plan = self.exit_plan(ctx);
                if self.exits_done(ctx, plan.as_deref()) {
                    self.finish(ctx.now, DealStatus::Completed, CloseReason::TakeProfit);
                    self.cancel_live(ctx.now, commands, is_entry);
                    return;
                }
                self.place_safety_orders(ctx, commands);
                if let Some(plan) = plan {
                    self.manage_exits(ctx, plan, commands);
                }
            }
            DealStatus::CancelPending => {
                if self.cancel_live(ctx.now, commands, |_| true) {
                    self.finish(ctx.now, DealStatus::Canceled, CloseReason::Canceled);
                }
            }
            DealStatus::PanicSellPending => {
                if !self.cancel_live(ctx.now, commands, |_| true) {
                    return;
                }
                let qty = ctx.filters.round_qty(self.position(false));
                let reason = self.deal.close_reason.unwrap_or(CloseReason::ClosedAtMarket);
                let Some(price) = ctx.price else { return };
                if qty <= Decimal::ZERO || ctx.filters.check(price, qty).is_err() {
                    // Nothing left that the market would take (dust): the deal is closed.
                    self.finish(ctx.now, DealStatus::PanicSold, reason);
                    return;
                }
                let side = exit_side(strategy);
                self.place(ctx, commands, OrderRole::Close, 0, side, OrderKind::Market, price, (Some(qty), None));
                self.deal.status = DealStatus::PanicSellOrderPlaced;
            }
            DealStatus::PanicSellOrderPlaced => {
                let Some(close) = self.orders.iter().rev().find(|o| o.role == OrderRole::Close) else {
                    self.deal.status = DealStatus::PanicSellPending;
                    return;
                };
                let reason = self.deal.close_reason.unwrap_or(CloseReason::ClosedAtMarket);
                match close.state {
                    IntentState::Pending | IntentState::Open => {}
                    IntentState::Filled => self.finish(ctx.now, DealStatus::PanicSold, reason),
                    IntentState::NotPlaced | IntentState::Canceled => self.deal.status = DealStatus::PanicSellPending,
                    IntentState::Rejected => self.finish(ctx.now, DealStatus::Failed, reason),
                }
            }
            DealStatus::Completed | DealStatus::PanicSold | DealStatus::Failed => {
                self.cancel_live(ctx.now, commands, |_| true);
                if self.deal.profit_quote.is_some() {
                    self.deal.profit_quote = Some(self.profit_quote());
                }
            }
            DealStatus::Canceled => {}
        }
    }

    fn place_base(&mut self, ctx: &Ctx<'_>, commands: &mut Vec<Command>) {
        let Some(price) = ctx.price else { return };
        let settings = ctx.settings;
        let side = self.deal.strategy.entry_side();
        let bo = settings.dca.base_order_volume();
        let filters = ctx.filters;
        let in_base = settings.dca.base_order_volume_type() == VolumeType::BaseCurrency;
        let kind = settings.start_order_type;
        // A limit base order rests at the current price on the tick grid; a market one is checked
        // against the current price.
        let price = match kind {
            OrderKind::Limit => filters.round_price(price, side),
            OrderKind::Market => price,
        };
        let qty = filters.round_qty(if in_base { bo } else { bo.checked_div(price).unwrap_or_default() });
        // A market buy sized in quote spends exactly the base order's quote; every other base order
        // is a quantity of the base asset.
        let amount = if kind == OrderKind::Market && side == Side::Buy && !in_base {
            (None, Some(bo))
        } else {
            (Some(qty), None)
        };
        if let Err(violation) = filters.check(price, qty) {
            let id = self.record_intent(ctx.now, OrderRole::Base, 0, side, kind, price, amount.0, amount.1);
            if let Some(order) = self.order_mut(&id) {
                order.state = IntentState::Rejected;
                order.error = Some(format!("the base order does not fit the market's rules ({violation})"));
            }
            self.finish(ctx.now, DealStatus::Failed, CloseReason::Failed);
            return;
        }
        self.place(ctx, commands, OrderRole::Base, 0, side, kind, price, amount);
        self.deal.status = DealStatus::BaseOrderPlaced;
    }

    fn place_safety_orders(&mut self, ctx: &Ctx<'_>, commands: &mut Vec<Command>) {
        let settings = ctx.settings;
        if settings.dca.take_profit_steps().len() > 1 && self.exiting() {
            // Once a multi-step take profit began to sell, the deal no longer averages in.
            self.cancel_live(ctx.now, commands, |role| role == OrderRole::Safety);
            return;
        }
        let safety = || self.orders.iter().filter(|o| o.role == OrderRole::Safety);
        // A refused safety order stops the ladder: the user sees why, nothing is retried blindly.
        if safety().any(|o| o.state == IntentState::Rejected) {
            return;
        }
        let Some(base_price) = self.deal.base_price.and_then(|p| Price::new(p).ok()) else { return };
        let mut live_count = u32::try_from(safety().filter(|o| live(o)).count()).unwrap_or(u32::MAX);
        let active = settings.dca.active_safety_orders_count();
        if live_count >= active {
            return;
        }
        let Ok(plan) = DcaPlan::new(&settings.dca, base_price) else { return };
        let rounded = plan.rounded(ctx.filters);
        let taken: Vec<u32> =
            safety().filter(|o| o.state != IntentState::NotPlaced).map(|o| o.safety_index).collect::<Vec<_>>();
        for order in rounded.orders.iter().filter(|o| o.index > 0) {
            if live_count >= active {
                break;
            }
            if taken.contains(&order.index) {
                continue;
            }
            if order.violation.is_some() {
                // Later safety orders are no more placeable than this one would be.
                break;
            }
            self.place(
                ctx,
                commands,
                OrderRole::Safety,
                order.index,
                order.side,
                OrderKind::Limit,
                order.price,
                (Some(order.quantity), None),
            );
            live_count += 1;
        }
    }

    /// What each take-profit step still has to sell (long) or buy back (short): its share of the
    /// completed entries (the last step takes what the others leave, so rounding leaves nothing
    /// behind; a share too small for the market's minimum joins the next step) less what its
    /// orders already traded, with the step's target.
    fn exit_plan(&self, ctx: &Ctx<'_>) -> Option<Vec<(TakeProfitTarget, Decimal)>> {
        let targets = self.take_profit_targets(ctx.settings)?;
        let basis = self.entry_basis();
        let filters = ctx.filters;
        let side = exit_side(self.deal.strategy);
        let placeable = |target: &TakeProfitTarget, qty: Decimal| {
            filters.check(filters.round_price(target.price, side), qty).is_ok()
        };
        let n = targets.len();
        let mut desired = vec![Decimal::ZERO; n];
        let mut assigned = Decimal::ZERO;
        let mut carried = Decimal::ZERO;
        for (i, target) in targets.iter().enumerate() {
            let share = if i + 1 == n {
                basis - assigned
            } else {
                basis.checked_mul(target.amount_percentage)?.checked_div(Decimal::ONE_HUNDRED)? + carried
            };
            let qty = filters.round_qty(share.max(Decimal::ZERO));
            if i + 1 < n && !placeable(target, qty) {
                // Too small for the market on its own: this step's share goes to the next one.
                carried = share;
                continue;
            }
            carried = Decimal::ZERO;
            desired[i] = qty;
            assigned += qty;
        }
        if n > 1
            && !placeable(&targets[n - 1], desired[n - 1])
            && let Some(j) = (0..n - 1).rev().find(|&j| !desired[j].is_zero())
        {
            // The last share, too small alone, joins the nearest step before it that has one.
            let last = std::mem::take(&mut desired[n - 1]);
            desired[j] += last;
        }
        // Never more in all than the deal holds, whatever earlier shares already traded.
        let mut held = filters.round_qty(self.position(true).max(Decimal::ZERO));
        let mut plan = Vec::with_capacity(n);
        for (target, desired) in targets.into_iter().zip(desired) {
            let executed: Decimal = self
                .orders
                .iter()
                .filter(|o| o.role == OrderRole::TakeProfit && step_of(o) == target.step)
                .map(|o| o.executed_qty)
                .sum();
            let remaining = filters.round_qty((desired - executed).max(Decimal::ZERO)).min(held);
            held -= remaining;
            plan.push((target, remaining));
        }
        Some(plan)
    }

    /// The take profit is done: something traded, no exit order is working, and every step has
    /// nothing left that the market would take.
    fn exits_done(&self, ctx: &Ctx<'_>, plan: Option<&[(TakeProfitTarget, Decimal)]>) -> bool {
        if !self.exiting() || self.orders.iter().any(|o| o.role == OrderRole::TakeProfit && live(o)) {
            return false;
        }
        let Some(plan) = plan else { return false };
        let side = exit_side(self.deal.strategy);
        plan.iter().all(|(target, remaining)| {
            let price = ctx.filters.round_price(target.price, side);
            remaining.is_zero() || ctx.filters.check(price, *remaining).is_err()
        })
    }

    /// Places, resizes (cancel confirmed first) or, trailing, triggers the take-profit steps.
    fn manage_exits(&mut self, ctx: &Ctx<'_>, plan: Vec<(TakeProfitTarget, Decimal)>, commands: &mut Vec<Command>) {
        let side = exit_side(self.deal.strategy);
        let filters = ctx.filters;
        let trailing = ctx.settings.dca.trailing_deviation().is_some();
        let last_step = plan.last().map_or(0, |(t, _)| t.step);
        for (target, remaining) in plan {
            let current = self
                .orders
                .iter()
                .rev()
                .find(|o| o.role == OrderRole::TakeProfit && step_of(o) == target.step)
                .cloned();
            if trailing && target.step == last_step {
                // The trailing step never rests on the book: it closes at market when triggered.
                let busy = current
                    .as_ref()
                    .is_some_and(|o| live(o) || (o.state == IntentState::Rejected && o.quantity == Some(remaining)));
                let Some(price) = ctx.price else { continue };
                if busy
                    || !self.trailing_triggered(ctx, price)
                    || remaining.is_zero()
                    || filters.check(price, remaining).is_err()
                {
                    continue;
                }
                let amount = (Some(remaining), None);
                self.place(ctx, commands, OrderRole::TakeProfit, target.step, side, OrderKind::Market, price, amount);
                continue;
            }
            let price = filters.round_price(target.price, side);
            if let Some(order) = current {
                match order.state {
                    IntentState::Pending => continue,
                    IntentState::Open => {
                        let left = order.quantity.unwrap_or_default() - order.executed_qty;
                        if (left != remaining || order.price != price) && !order.cancel_requested {
                            if let Some(order) = self.order_mut(&order.client_order_id) {
                                order.cancel_requested = true;
                                order.updated_at = ctx.now;
                            }
                            commands.push(Command::Cancel(order.client_order_id.clone()));
                        }
                        continue;
                    }
                    IntentState::Rejected if order.quantity == Some(remaining) && order.price == price => continue,
                    _ => {}
                }
            }
            if remaining.is_zero() || filters.check(price, remaining).is_err() {
                continue;
            }
            let amount = (Some(remaining), None);
            self.place(ctx, commands, OrderRole::TakeProfit, target.step, side, OrderKind::Limit, price, amount);
        }
    }
}

/// The take-profit step an order belongs to (orders recorded before steps existed carry 0: step 1).
fn step_of(order: &OrderIntent) -> u32 {
    order.safety_index.max(1)
}
