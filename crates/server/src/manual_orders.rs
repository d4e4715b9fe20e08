//! Reconciliation of manual orders: finds out at the venue what became of the orders users placed
//! by hand whose outcome the orders table does not know yet, and writes it there.
//!
//! A manual order is recorded `pending` before it is sent and updated with the placement's answer
//! (`api::trading::place`). When that answer was lost (`OutcomeUnknown`) or the request never
//! finished, the intent is still pending; an order resting on the book fills or is canceled later.
//! Every `ServerConfig::manual_order_interval` this job lists the unresolved manual orders
//! (`pending` or `open`) of every user and asks their venues, one account at a time: a pending
//! order by client order id once the request placing it has had `PLACEMENT_ALLOWANCE` to be signed,
//! open ones through their pair's open orders and, once they left the book, by client order id. It
//! never takes the bot runner's lock.
//!
//! A pending order the venue does not know is `not_placed` only once the venue's clock has passed
//! its first miss by the runner's grace (`runner::missing_long_enough`, ARCHITECTURE.md invariant
//! 10). First misses are kept in memory: a restart starts the grace again, which only delays.
//!
//! Every node runs this job. What it writes goes through `Store::advance_order`, which never moves
//! an order back (a final state never changes, executed amounts never decrease), so nodes asking
//! at once, and the placing request's own late answer, cannot undo each other.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::{ExchangeAccountId, IntentState, OrderIntent, Pair, Timestamp, UserId};
use exchange::{ClientOrderId, Exchange, ExchangeError, OrderReport, VenueOrderRef};

use crate::ApiError;
use crate::keys;
use crate::runner;
use crate::state::AppState;

/// How long after it was recorded a pending manual order is left to the request placing it. That
/// request is signed within this time (the adapters' timeouts are seconds), so a miss noted later
/// is a miss after the signing, from which the grace rule counts.
pub const PLACEMENT_ALLOWANCE: Duration = Duration::from_secs(120);

/// Looks up unresolved manual orders every `ServerConfig::manual_order_interval` until the task is
/// dropped. Started by `serve`.
pub async fn run(state: AppState) {
    let mut reconciler = Reconciler::default();
    let mut tick = tokio::time::interval(state.config.manual_order_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = reconciler.pass(&state).await {
            tracing::warn!(error = %err, "a pass over the unresolved manual orders did not complete");
        }
    }
}

/// The job's memory between passes.
#[derive(Debug, Default)]
pub struct Reconciler {
    /// Client order id → the venue's clock just before the lookup that first did not find it.
    unseen: HashMap<String, Timestamp>,
}

impl Reconciler {
    /// One pass: every unresolved manual order is looked up at most once.
    ///
    /// # Errors
    /// When the store fails; the next pass starts over from the store.
    pub async fn pass(&mut self, state: &AppState) -> Result<(), ApiError> {
        let orders = state.store.unresolved_manual_orders().await?;
        let live: HashSet<&str> = orders.iter().map(|o| o.client_order_id.as_str()).collect();
        self.unseen.retain(|id, _| live.contains(id.as_str()));
        let mut accounts: Vec<((UserId, ExchangeAccountId), Vec<OrderIntent>)> = Vec::new();
        for order in orders {
            let key = (order.user_id, order.exchange_account_id);
            match accounts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(order),
                None => accounts.push((key, vec![order])),
            }
        }
        for ((user, account), orders) in accounts {
            self.account(state, user, account, orders).await?;
        }
        Ok(())
    }

    async fn account(
        &mut self,
        state: &AppState,
        user: UserId,
        account: ExchangeAccountId,
        orders: Vec<OrderIntent>,
    ) -> Result<(), ApiError> {
        let now = state.now();
        let (pending, open): (Vec<OrderIntent>, Vec<OrderIntent>) =
            orders.into_iter().partition(|o| o.state == IntentState::Pending);
        let due: Vec<OrderIntent> =
            pending.into_iter().filter(|o| now.since(o.created_at) >= PLACEMENT_ALLOWANCE).collect();
        if due.is_empty() && open.is_empty() {
            return Ok(());
        }
        let Some(record) = state.store.exchange_account(user, account).await? else { return Ok(()) };
        let exchange = match keys::open_account(state, &record) {
            Ok(exchange) => exchange,
            Err(err) => {
                tracing::debug!(exchange_account = %account, error = %err, "an account with manual orders cannot be opened");
                return Ok(());
            }
        };
        if !due.is_empty() {
            self.look_up_pending(state, &*exchange, due).await?;
        }
        if !open.is_empty() {
            poll_open(state, &*exchange, open).await?;
        }
        Ok(())
    }

    /// Pending orders, by client order id: found, they take the venue's state; missing for the
    /// grace, they were never placed.
    async fn look_up_pending(
        &mut self,
        state: &AppState,
        exchange: &dyn Exchange,
        orders: Vec<OrderIntent>,
    ) -> Result<(), ApiError> {
        // The venue's clock before the lookups, so a miss is never noted later than it happened.
        let venue_now = match exchange.server_time().await {
            Ok(venue_now) => venue_now,
            Err(err) => {
                tracing::debug!(error = %err, "reading the venue's clock failed");
                return Ok(());
            }
        };
        for order in orders {
            let Ok(id) = ClientOrderId::parse(&order.client_order_id) else { continue };
            match exchange.query_order(&order.pair, &VenueOrderRef::Client(id)).await {
                Ok(report) => {
                    self.unseen.remove(&order.client_order_id);
                    let next = reported(exchange, &order, &report, state.now()).await;
                    write(state, &order, next).await?;
                }
                Err(ExchangeError::OrderNotFound) => {
                    if runner::missing_long_enough(&mut self.unseen, &order.client_order_id, venue_now) {
                        let mut next = order.clone();
                        next.state = IntentState::NotPlaced;
                        next.updated_at = state.now();
                        write(state, &order, next).await?;
                    }
                }
                Err(err) => {
                    tracing::debug!(order = %order.client_order_id, error = %err, "looking up a manual order failed");
                }
            }
        }
        Ok(())
    }
}

/// `order` as the venue's `report` describes it at `now`: the state it maps to
/// (`engine::intent_state`), the venue's id, the executed amounts and the fees split by asset
/// (`runner::update_of`). Fees never go down: a report of an order still open carries at most the
/// fills in it.
pub(crate) async fn reported(
    exchange: &dyn Exchange,
    order: &OrderIntent,
    report: &OrderReport,
    now: Timestamp,
) -> OrderIntent {
    let update = runner::update_of(exchange, order, report).await;
    let mut next = order.clone();
    next.state = engine::intent_state(update.status);
    next.venue_order_id = Some(update.venue_order_id);
    next.executed_qty = update.executed_qty;
    next.executed_quote = update.executed_quote;
    next.fee_base = update.fee_base.max(order.fee_base);
    next.fee_quote = update.fee_quote.max(order.fee_quote);
    next.updated_at = now;
    next
}

/// Open orders: one request for each pair's open orders (the budget is the venue's request
/// weight), and a lookup by client order id for each order that left the book.
async fn poll_open(state: &AppState, exchange: &dyn Exchange, orders: Vec<OrderIntent>) -> Result<(), ApiError> {
    let mut pairs: Vec<(Pair, Vec<OrderIntent>)> = Vec::new();
    for order in orders {
        match pairs.iter_mut().find(|(pair, _)| *pair == order.pair) {
            Some((_, list)) => list.push(order),
            None => pairs.push((order.pair.clone(), vec![order])),
        }
    }
    for (pair, orders) in pairs {
        let changed = match runner::changed_reports(exchange, &pair, orders).await {
            Ok(changed) => changed,
            Err(err) => {
                tracing::debug!(pair = %pair.to_3commas(), error = %err, "reading open orders failed");
                continue;
            }
        };
        for (order, report) in changed {
            let next = reported(exchange, &order, &report, state.now()).await;
            write(state, &order, next).await?;
        }
    }
    Ok(())
}

/// Writes `next` unless it says nothing new about `order`; the store refuses it if the row moved
/// past it meanwhile.
async fn write(state: &AppState, order: &OrderIntent, next: OrderIntent) -> Result<(), ApiError> {
    let unchanged = OrderIntent { updated_at: order.updated_at, ..next.clone() } == *order;
    if unchanged {
        return Ok(());
    }
    if state.store.advance_order(&next).await? {
        tracing::info!(
            order = %next.client_order_id, exchange_account = %next.exchange_account_id, state = next.state.as_str(),
            "a manual order's outcome was taken from the venue"
        );
    }
    Ok(())
}
