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
    OrderKind, OrderRole, OrderStatus, Pair, Price, Side, Strategy, Timestamp,
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
    /// The user adds funds: a market order of this much quote joins the deal.
    AddFunds {
        quote: Decimal,
    },
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
                self.watch_stop_loss(ctx, price);
                if before == DealStatus::Bought && self.deal.status == before {
                    // A price moves nothing else of an open deal: the venue fills its orders.
                    return Ok(commands);
                }
            }
            DealEvent::Candle { high, low, .. } => {
                let adverse = match self.deal.strategy {
                    Strategy::Long => low,
                    Strategy::Short => high,
                };
                self.watch_stop_loss(ctx, adverse);
                if before == DealStatus::Bought && self.deal.status == before {
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
            DealEvent::AddFunds { quote } => self.add_funds(ctx, quote, &mut commands)?,
            DealEvent::Timer => {
                if let Some(price) = ctx.price {
                    self.watch_stop_loss(ctx, price);
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

    /// The take-profit price of the completed entries, before rounding.
    pub fn take_profit_price(&self, settings: &BotSettings) -> Option<Decimal> {
        let (spent, coins, bo) = self.entry_totals();
        if coins.is_zero() {
            return None;
        }
        settings.dca.take_profit_price(bo, spent, coins)
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

    fn watch_stop_loss(&mut self, ctx: &Ctx<'_>, adverse: Decimal) {
        let sl = ctx.settings.stop_loss_percentage;
        if self.deal.status != DealStatus::Bought || sl <= Decimal::ZERO {
            return;
        }
        let Some(average) = self.average_price() else { return };
        let hundred = Decimal::ONE_HUNDRED;
        let crossed = match self.deal.strategy {
            Strategy::Long => average
                .checked_mul(hundred - sl)
                .and_then(|x| x.checked_div(hundred))
                .is_some_and(|trigger| adverse <= trigger),
            Strategy::Short => average
                .checked_mul(hundred + sl)
                .and_then(|x| x.checked_div(hundred))
                .is_some_and(|trigger| adverse >= trigger),
        };
        if !crossed {
            self.deal.stop_loss_since = None;
            return;
        }
        let since = *self.deal.stop_loss_since.get_or_insert(ctx.now);
        let waited = ctx.now.as_unix_millis() - since.as_unix_millis();
        if waited >= i64::from(ctx.settings.stop_loss_timeout_seconds) * 1000 {
            self.deal.status = DealStatus::PanicSellPending;
            self.deal.close_reason = Some(CloseReason::StopLoss);
        }
    }

    fn add_funds(&mut self, ctx: &Ctx<'_>, quote: Decimal, commands: &mut Vec<Command>) -> Result<(), DealError> {
        if self.deal.status != DealStatus::Bought {
            return Err(DealError::NotOpen);
        }
        let price = ctx.price.ok_or(DealError::NoPrice)?;
        let side = self.deal.strategy.entry_side();
        let qty = ctx.filters.round_qty(quote.checked_div(price).unwrap_or_default());
        ctx.filters.check(price, qty).map_err(|v| DealError::BelowFilters(v.to_string()))?;
        let (quantity, quote_amount) = match side {
            Side::Buy => (None, Some(quote)),
            Side::Sell => (Some(qty), None),
        };
        self.record_intent(ctx.now, OrderRole::AddFunds, 0, side, OrderKind::Market, price, quantity, quote_amount);
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
                if self.orders.iter().any(|o| o.role == OrderRole::TakeProfit && o.state == IntentState::Filled) {
                    self.finish(ctx.now, DealStatus::Completed, CloseReason::TakeProfit);
                    self.cancel_live(ctx.now, commands, is_entry);
                    return;
                }
                self.place_safety_orders(ctx, commands);
                self.place_take_profit(ctx, commands);
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
        let (kind, price, amount, qty) = match (settings.start_order_type, side) {
            (OrderKind::Market, Side::Buy) => {
                let qty = filters.round_qty(bo.checked_div(price).unwrap_or_default());
                (OrderKind::Market, price, (None, Some(bo)), qty)
            }
            (OrderKind::Market, Side::Sell) => {
                let qty = filters.round_qty(bo.checked_div(price).unwrap_or_default());
                (OrderKind::Market, price, (Some(qty), None), qty)
            }
            (OrderKind::Limit, _) => {
                let limit = filters.round_price(price, side);
                let qty = filters.round_qty(bo.checked_div(limit).unwrap_or_default());
                (OrderKind::Limit, limit, (Some(qty), None), qty)
            }
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

    fn place_take_profit(&mut self, ctx: &Ctx<'_>, commands: &mut Vec<Command>) {
        let side = exit_side(self.deal.strategy);
        let qty = ctx.filters.round_qty(self.position(true));
        let Some(price) = self.take_profit_price(ctx.settings).map(|p| ctx.filters.round_price(p, side)) else {
            return;
        };
        let current = self.orders.iter().rev().find(|o| o.role == OrderRole::TakeProfit);
        if let Some(tp) = current {
            let same = tp.quantity == Some(qty) && tp.price == price;
            match tp.state {
                IntentState::Pending => return,
                IntentState::Open => {
                    if !same && !tp.cancel_requested {
                        let id = tp.client_order_id.clone();
                        if let Some(tp) = self.order_mut(&id) {
                            tp.cancel_requested = true;
                            tp.updated_at = ctx.now;
                        }
                        commands.push(Command::Cancel(id));
                    }
                    return;
                }
                IntentState::Rejected if same => return,
                _ => {}
            }
        }
        if qty <= Decimal::ZERO || ctx.filters.check(price, qty).is_err() {
            return;
        }
        self.place(ctx, commands, OrderRole::TakeProfit, 0, side, OrderKind::Limit, price, (Some(qty), None));
    }
}
