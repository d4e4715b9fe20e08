//! The bot runtime of this node: it leases bots from the store, feeds the engine prices, the
//! venue's order reports and the timer, saves every deal the engine changed, and only then carries
//! out its commands — each placement through the order guard, audited, under the intent's
//! deterministic client order id (ARCHITECTURE.md invariant 5).
//!
//! One cycle runs every `ServerConfig::engine_interval` and whenever a user command wakes it;
//! pushed order updates are applied as they arrive, by their own task. The engines sit behind the
//! runner's lock, which is held only to decide and to save: each event is handled and the deals it
//! changed are saved under the lock, then the lock is released while the venue is asked (orders
//! placed and canceled, prices, lookups), so one slow venue or account never stalls the others or a
//! user's command. Venue work for one account runs in order under that account's own lock, so the
//! order guard's per-minute and per-day counts always see the account's earlier orders.
//!
//! Crash safety: an intent is saved (`pending`) before its order is sent. At every cycle a pending
//! intent is looked up at the venue by client order id: found, it takes the venue's state; not
//! found, the venue's clock is noted, and once it has passed that mark by the receive window and a
//! second, no request signed before the mark can still be accepted, so the intent is `not_placed`
//! and the engine asks for the order again under a new id. Nothing is ever resent under the same
//! id — except a placement refused for the venue's rate limit, which was never placed: it is held
//! for the wait and sent again (`resend_held`) —, and an order whose answer was lost is never sent
//! twice. A placement still on its way (its
//! intent saved, its request not yet answered) is never looked up: its first miss could come
//! before its request is signed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use domain::{
    Asset, Bot, BotId, DealId, Decimal, ExchangeAccountId, IntentState, OrderIntent, OrderKind, Pair, Price, Qty,
    Signal, SignalAction, SignalId, SignalState, Strategy, Timestamp, UserId,
};
use engine::{BotState, Command, DealBook, Engine, EngineError, Event, OrderUpdate, UserCommand, WebhookCommand};
use exchange::{
    ClientOrderId, Exchange, ExchangeError, OrderAmount, OrderEvent, OrderReport, OrderRequest, OrderType, Ticker,
    TimeInForce, VenueOrderRef,
};
use futures_util::StreamExt as _;
use serde_json::json;
use store::{DealFilter, ExchangeAccountRecord, ExchangeAccountStatus, SignalOutcome};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::ApiError;
use crate::api::bots::bot_settings;
use crate::extract::ClientInfo;
use crate::keys;
use crate::order_guard;
use crate::state::AppState;

/// How long past the venue-clock mark of a first miss an unseen order counts as never placed:
/// Binance's receive window (5 s) and a second.
const UNSEEN_GRACE_MS: i64 = 6_000;
/// How long a cycle's market rules are trusted before they are fetched again.
const MARKET_REFRESH: Duration = Duration::from_secs(3_600);
/// How often an account's open orders on a pair are polled (weight 6 at Binance).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long to wait before opening a venue's order stream again after it ended.
const STREAM_RETRY: Duration = Duration::from_secs(5);

/// An order update the venue pushed for one of this node's accounts.
type Pushed = (ExchangeAccountId, OrderEvent);

/// This node's bot runtime.
pub struct Runner {
    node: String,
    inner: Mutex<RunnerState>,
    wake: Notify,
    pushed_tx: mpsc::UnboundedSender<Pushed>,
    pushed_rx: Mutex<Option<mpsc::UnboundedReceiver<Pushed>>>,
    /// Signals just accepted by this node's webhook routes, acted on at once by their own task
    /// (the cycle picks up the rest: delayed ones, other nodes' and a restarted node's).
    signals_tx: mpsc::UnboundedSender<Signal>,
    signals_rx: Mutex<Option<mpsc::UnboundedReceiver<Signal>>>,
    /// The bots the signal task is working on, each with its signals still to do, in order. The
    /// cycle leaves these bots' due signals alone, so a bot's signals are never acted on out of
    /// order by the two paths.
    signal_queues: std::sync::Mutex<HashMap<BotId, VecDeque<Signal>>>,
    /// One lock per exchange account, held while the account's orders are checked by the guard
    /// and sent or canceled (never together with `inner`).
    account_io: std::sync::Mutex<HashMap<ExchangeAccountId, Arc<Mutex<()>>>>,
    /// `true` once the node is shutting down (`Runner::stop`): the runner's tasks finish what they
    /// are doing — an order sent is answered and its answer saved — and take up nothing new.
    stop: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("node", &self.node).finish_non_exhaustive()
    }
}

struct Link {
    record: ExchangeAccountRecord,
    exchange: Arc<dyn Exchange>,
    /// The task reading the venue's user data stream; it ends with the link.
    stream: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stream.abort();
    }
}

#[derive(Default)]
struct RunnerState {
    /// One engine per venue: prices and market rules are the venue's.
    engines: HashMap<String, Engine>,
    bot_venue: HashMap<BotId, String>,
    accounts: HashMap<ExchangeAccountId, Link>,
    /// Client order id → the venue's clock when the order was first looked for and not found.
    unseen: HashMap<String, Timestamp>,
    tickers: HashMap<(String, Pair), Ticker>,
    markets_at: HashMap<(String, Pair), Timestamp>,
    /// When each account's open orders on a pair were last polled (wall time: a budget of the
    /// venue's request weight, not of the app's clock).
    polled_at: HashMap<(ExchangeAccountId, Pair), std::time::Instant>,
    /// Client order ids whose placement is on its way to the venue (saved, sent or about to be,
    /// not answered): reconciliation leaves them alone.
    in_flight: HashSet<String>,
    /// Each deal's orders as last saved, so a save writes only the orders that changed.
    saved: HashMap<DealId, HashMap<String, OrderIntent>>,
    /// Placements refused for the venue's rate limit (never placed), by client order id: the
    /// venue and when to send them again (`resend_held`). Reconciliation leaves them alone; after
    /// a restart they are ordinary pending intents and are looked up.
    held: HashMap<String, (String, std::time::Instant)>,
    /// Signals this node has taken up, and when: each is handled by one path only (the signal task
    /// or the cycle). Kept for `SIGNAL_MEMORY`, far longer than a cycle's list can be stale.
    signals_taken: HashMap<SignalId, std::time::Instant>,
    /// When pending signals were last expired.
    expired_at: Option<std::time::Instant>,
    /// When each pair's ticker was last fetched (a signal's market order wants a recent price).
    priced_at: HashMap<(String, Pair), std::time::Instant>,
}

/// How long a taken signal's id is remembered.
const SIGNAL_MEMORY: Duration = Duration::from_secs(600);
/// How often overdue pending signals are expired.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);
/// A ticker younger than this is recent enough for a signal's orders.
const PRICE_FRESH: Duration = Duration::from_secs(2);

fn engine_client() -> ClientInfo {
    ClientInfo { ip: std::net::IpAddr::from([0, 0, 0, 0]), user_agent: "bulwark (bot engine)".to_owned() }
}

impl Runner {
    pub fn new(node: String) -> Runner {
        let (pushed_tx, pushed_rx) = mpsc::unbounded_channel();
        let (signals_tx, signals_rx) = mpsc::unbounded_channel();
        Runner {
            node,
            inner: Mutex::new(RunnerState::default()),
            wake: Notify::new(),
            pushed_tx,
            pushed_rx: Mutex::new(Some(pushed_rx)),
            signals_tx,
            signals_rx: Mutex::new(Some(signals_rx)),
            signal_queues: std::sync::Mutex::default(),
            account_io: std::sync::Mutex::new(HashMap::new()),
            stop: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Asks the runner to stop (graceful shutdown): the cycle under way, the pushed update and
    /// the signals being acted on are finished, nothing new is started, and `run` returns.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        self.wake.notify_one();
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once `stop` was called.
    async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    fn signal_queues(&self) -> std::sync::MutexGuard<'_, HashMap<BotId, VecDeque<Signal>>> {
        self.signal_queues.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn account_lock(&self, account: ExchangeAccountId) -> Arc<Mutex<()>> {
        let mut locks = self.account_io.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(account).or_default())
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Asks for a cycle now (a bot was enabled, an order update arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Hands a signal just recorded to the signal task, to be acted on at once if this node runs
    /// its bot and it is due (otherwise a cycle, here or on the bot's node, takes it up).
    pub fn signal(&self, signal: Signal) {
        // Closed only when the runner is gone; the signal stays pending in the store then.
        let _ = self.signals_tx.send(signal);
    }
}

/// Runs cycles until `Runner::stop` is called (pushed order updates and signals by tasks of their
/// own), then waits for those tasks to finish what they are doing and returns: no order is left
/// sent but unanswered by a graceful shutdown. Dropping the future instead ends everything at once
/// (what is in flight is then left to reconciliation at the next start). Started by `serve`.
pub async fn run(state: AppState) {
    let Some(mut pushed) = state.runner.pushed_rx.lock().await.take() else {
        tracing::error!("the bot engine is already running in this process");
        return;
    };
    let pushed_state = state.clone();
    let mut pushed_task = AbortOnDrop(tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                biased;
                () = pushed_state.runner.stopped() => break,
                next = pushed.recv() => next,
            };
            let Some((account, event)) = next else { break };
            if let Err(err) = on_pushed(&pushed_state, account, event).await {
                tracing::warn!(error = %err, "a pushed order update was not applied");
            }
        }
    }));
    let signals = state.runner.signals_rx.lock().await.take();
    let signals_state = state.clone();
    let mut signals_task = AbortOnDrop(tokio::spawn(async move {
        if let Some(signals) = signals {
            dispatch_signals(signals_state, signals).await;
        }
    }));
    let mut tick = tokio::time::interval(state.config.engine_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = state.runner.wake.notified() => {}
            () = state.runner.stopped() => {}
        }
        if state.runner.is_stopping() {
            break;
        }
        if let Err(err) = cycle(&state).await {
            tracing::warn!(error = %err, "a bot engine cycle did not complete");
        }
    }
    let _ = (&mut pushed_task.0).await;
    let _ = (&mut signals_task.0).await;
    tracing::info!("bot engine stopped: every order it sent was answered and the answer saved");
}

/// How many bots' signals are acted on side by side by the signal task.
const SIGNAL_WORKERS: usize = 64;

/// The signal task: each bot's signals in the order they were accepted, one at a time; different
/// bots' side by side (at most `SIGNAL_WORKERS`), so one bot's venue round trip does not hold up
/// the next bot's signal. Engine decisions and saves still take the runner's lock in turn; what
/// overlaps is the venue work, each account's orders still in order under its own lock. The
/// workers end with this task (a signal cut short stays pending and the cycle takes it up). On
/// `Runner::stop` each worker finishes the signal it is on and takes no other (those stay pending
/// in the store for the next start), and the task returns when they are done.
async fn dispatch_signals(state: AppState, mut signals: mpsc::UnboundedReceiver<Signal>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(SIGNAL_WORKERS));
    let mut workers = tokio::task::JoinSet::new();
    loop {
        let signal = tokio::select! {
            biased;
            () = state.runner.stopped() => break,
            signal = signals.recv() => match signal {
                Some(signal) => signal,
                None => break,
            },
            Some(_) = workers.join_next(), if !workers.is_empty() => continue,
        };
        let bot = signal.bot_id;
        {
            let mut waiting = state.runner.signal_queues();
            if let Some(queue) = waiting.get_mut(&bot) {
                // A worker is on this bot: it takes this one after the ones before it.
                queue.push_back(signal);
                continue;
            }
            waiting.insert(bot, VecDeque::new());
        }
        let (state, permits) = (state.clone(), Arc::clone(&permits));
        workers.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            let mut next = Some(signal);
            loop {
                let signal = {
                    // Taken and given up under one lock: a signal queued meanwhile is never lost.
                    let mut waiting = state.runner.signal_queues();
                    let candidate = next.take().or_else(|| waiting.get_mut(&bot).and_then(VecDeque::pop_front));
                    match candidate.filter(|_| !state.runner.is_stopping()) {
                        Some(signal) => signal,
                        None => {
                            waiting.remove(&bot);
                            break;
                        }
                    }
                };
                if let Err(err) = on_signal(&state, signal).await {
                    tracing::warn!(error = %err, "a signal was not acted on yet; the next cycle tries again");
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An order update pushed by the venue: applied at once, so a fill moves the deal without waiting
/// for the next poll.
async fn on_pushed(state: &AppState, account: ExchangeAccountId, event: OrderEvent) -> Result<(), ApiError> {
    let (venue, exchange, order) = {
        let rs = state.runner.inner.lock().await;
        let Some(link) = rs.accounts.get(&account) else { return Ok(()) };
        let venue = link.record.exchange.clone();
        let exchange = Arc::clone(&link.exchange);
        let Some(engine) = rs.engines.get(&venue) else { return Ok(()) };
        let Some(deal) = engine.deal_of_order(&event.client_order_id) else { return Ok(()) };
        let Some(order) = engine.deal(deal).and_then(|b| b.order(&event.client_order_id)).cloned() else {
            return Ok(());
        };
        // Already settled as the event says, or its placement's answer (which carries the fills and
        // their fees) is still on its way: nothing to add, and reading the fees from the trade
        // history would cost a request of weight 20 per order. A lost answer is looked up.
        if (order.state.is_final() && order.executed_qty == event.executed_qty)
            || rs.in_flight.contains(&event.client_order_id)
        {
            return Ok(());
        }
        (venue, exchange, order)
    };
    let report = OrderReport {
        venue_symbol: event.venue_symbol,
        venue_order_id: event.venue_order_id,
        client_order_id: event.client_order_id,
        side: event.side,
        status: event.status,
        price: event.price,
        orig_qty: event.orig_qty,
        executed_qty: event.executed_qty,
        cumulative_quote_qty: event.cumulative_quote_qty,
        // The fees of a settled order come from the trade history (one event carries one fill).
        fills: Vec::new(),
        updated_at: event.at,
    };
    let update = update_of(&*exchange, &order, &report).await;
    process(state, &venue, Event::Order(update)).await?;
    Ok(())
}

/// Reads an account's pushed order updates into the runner until the link is dropped; while the
/// stream is down (or the venue has none) polling alone keeps deals moving.
fn follow_stream(
    state: &AppState,
    account: ExchangeAccountId,
    exchange: Arc<dyn Exchange>,
) -> tokio::task::JoinHandle<()> {
    let tx = state.runner.pushed_tx.clone();
    tokio::spawn(async move {
        loop {
            match exchange.order_events().await {
                Ok(Some(mut stream)) => {
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(event) => {
                                if tx.send((account, event)).is_err() {
                                    return;
                                }
                            }
                            Err(err) => {
                                tracing::debug!(exchange_account = %account, error = %err, "the order stream ended");
                                break;
                            }
                        }
                    }
                }
                Ok(None) => return,
                Err(err) => tracing::debug!(exchange_account = %account, error = %err, "the order stream did not open"),
            }
            tokio::time::sleep(STREAM_RETRY).await;
        }
    })
}

/// One cycle: leases, prices, reconciliation with the venue, the timer.
///
/// # Errors
/// When the store fails; the next cycle starts over from the store.
pub async fn cycle(state: &AppState) -> Result<(), ApiError> {
    {
        let mut rs = state.runner.inner.lock().await;
        sync_bots(state, &mut rs).await?;
    }
    tick_prices(state).await?;
    resend_held(state).await?;
    reconcile(state).await?;
    due_signals(state).await?;
    let venues: Vec<String> = state.runner.inner.lock().await.engines.keys().cloned().collect();
    for venue in venues {
        process(state, &venue, Event::Timer).await?;
        if let Some(engine) = state.runner.inner.lock().await.engines.get_mut(&venue) {
            engine.drop_settled();
        }
    }
    // Forget what was saved of deals no engine holds any more (settled, or their bot's lease lost).
    let mut guard = state.runner.inner.lock().await;
    let rs = &mut *guard;
    let engines = &rs.engines;
    rs.saved.retain(|deal, _| engines.values().any(|e| e.deal(*deal).is_some()));
    Ok(())
}

/// Claims the bots this node should run and loads the ones it did not hold yet with their open
/// deals; forgets the ones it lost.
async fn sync_bots(state: &AppState, rs: &mut RunnerState) -> Result<(), ApiError> {
    let now = state.now();
    let until = now.plus(state.config.bot_lease);
    let claimed = state.store.claim_bots(&state.runner.node, now, until).await?;
    let ids: HashSet<BotId> = claimed.iter().map(|b| b.id).collect();
    let lost: Vec<(BotId, String)> =
        rs.bot_venue.iter().filter(|(id, _)| !ids.contains(id)).map(|(id, v)| (*id, v.clone())).collect();
    for (bot, venue) in lost {
        if let Some(engine) = rs.engines.get_mut(&venue) {
            engine.remove_bot(bot);
        }
        rs.bot_venue.remove(&bot);
    }
    // The accounts' status may have changed (a key check paused one).
    let accounts: Vec<(UserId, ExchangeAccountId)> =
        rs.accounts.values().map(|l| (l.record.user_id, l.record.id)).collect();
    for (user, id) in accounts {
        match state.store.exchange_account(user, id).await? {
            Some(record) => {
                if let Some(link) = rs.accounts.get_mut(&id) {
                    link.record = record;
                }
            }
            None => {
                rs.accounts.remove(&id);
            }
        }
    }
    let mut fresh = Vec::new();
    for bot in claimed {
        let Some(venue) = link_account(state, rs, bot.user_id, bot.exchange_account_id).await? else { continue };
        let settings = match bot_settings(&bot.settings) {
            Ok(settings) => settings,
            Err(err) => {
                tracing::warn!(bot = %bot.id, error = %err.message(), "a stored bot's settings do not parse");
                continue;
            }
        };
        let known = rs.bot_venue.contains_key(&bot.id);
        // The cooldown runs from the bot's last closed deal: kept in memory, read once on loading.
        let last_closed_at = match rs.engines.get(&venue).and_then(|e| e.bot(bot.id)) {
            Some(existing) => existing.last_closed_at,
            None => {
                let filter = DealFilter { bot_id: Some(bot.id), status: None, limit: 5 };
                state.store.deals(bot.user_id, &filter).await?.iter().filter_map(|(d, _)| d.closed_at).max()
            }
        };
        let id = bot.id;
        engine_for(state, rs, &venue).upsert_bot(BotState { bot, settings, last_closed_at });
        if !known {
            rs.bot_venue.insert(id, venue);
            fresh.push(id);
        }
    }
    if fresh.is_empty() {
        return Ok(());
    }
    let ids = fresh;
    // Their markets' rules are fetched by whoever feeds them next (`refresh_markets`), off the lock.
    for (deal, orders) in state.store.open_deals(&ids).await? {
        let Some(venue) = rs.bot_venue.get(&deal.bot_id).cloned() else { continue };
        if let Some(engine) = rs.engines.get_mut(&venue) {
            let known = orders.iter().map(|o| (o.client_order_id.clone(), o.clone())).collect();
            rs.saved.insert(deal.id, known);
            engine.insert_deal(DealBook { deal, orders });
        }
    }
    Ok(())
}

fn engine_for<'a>(state: &AppState, rs: &'a mut RunnerState, venue: &str) -> &'a mut Engine {
    rs.engines.entry(venue.to_owned()).or_insert_with(|| {
        let random = Arc::clone(&state.random);
        Engine::new(Box::new(move || {
            let mut bytes = [0u8; 16];
            random.fill(&mut bytes);
            DealId::from_random_bytes(bytes)
        }))
    })
}

/// Opens the port of an account once; returns its venue.
async fn link_account(
    state: &AppState,
    rs: &mut RunnerState,
    user: UserId,
    id: ExchangeAccountId,
) -> Result<Option<String>, ApiError> {
    if let Some(link) = rs.accounts.get(&id) {
        return Ok(Some(link.record.exchange.clone()));
    }
    let Some(record) = state.store.exchange_account(user, id).await? else { return Ok(None) };
    let exchange = match keys::open_account(state, &record) {
        Ok(exchange) => exchange,
        Err(err) => {
            tracing::warn!(exchange_account = %id, error = %err, "a bot's exchange account cannot be opened");
            return Ok(None);
        }
    };
    let venue = record.exchange.clone();
    let stream = follow_stream(state, id, Arc::clone(&exchange));
    rs.accounts.insert(id, Link { record, exchange, stream });
    Ok(Some(venue))
}

/// Loads (or refreshes, hourly) the market rules of `wanted` pairs into their venues' engines: the
/// stale ones are chosen under the runner's lock, fetched without it, and stored under it again.
async fn refresh_markets(state: &AppState, wanted: Vec<(String, ExchangeAccountId, Pair)>) {
    let now = state.now();
    let asks: Vec<(String, Pair, Arc<dyn Exchange>)> = {
        let rs = state.runner.inner.lock().await;
        wanted
            .into_iter()
            .filter_map(|(venue, account, pair)| {
                let fresh =
                    rs.markets_at.get(&(venue.clone(), pair.clone())).is_some_and(|at| now.since(*at) < MARKET_REFRESH);
                if fresh && rs.engines.get(&venue).is_some_and(|e| e.has_market(&pair)) {
                    return None;
                }
                let link = rs.accounts.get(&account)?;
                Some((venue, pair, Arc::clone(&link.exchange)))
            })
            .collect()
    };
    if asks.is_empty() {
        return;
    }
    let answers = batched(asks, ask_markets).await;
    let mut guard = state.runner.inner.lock().await;
    let rs = &mut *guard;
    for (venue, pair, answer) in answers {
        match answer {
            Ok(markets) => {
                if let Some(market) = markets.into_iter().find(|m| m.pair == pair)
                    && let Some(engine) = rs.engines.get_mut(&venue)
                {
                    engine.set_market(pair.clone(), market.filters);
                    rs.markets_at.insert((venue, pair), now);
                }
            }
            Err(err) => tracing::debug!(pair = %pair.to_3commas(), error = %err, "fetching market rules failed"),
        }
    }
}

async fn ask_markets(
    (venue, pair, exchange): (String, Pair, Arc<dyn Exchange>),
) -> (String, Pair, Result<Vec<exchange::Market>, ExchangeError>) {
    let answer = exchange.markets(std::slice::from_ref(&pair)).await;
    (venue, pair, answer)
}

/// The pairs each venue's engine needs prices for, with an account to ask through.
fn pairs_in_use(rs: &RunnerState) -> Vec<(String, ExchangeAccountId, Pair)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (venue, engine) in &rs.engines {
        for id in engine.bot_ids() {
            let Some(state) = engine.bot(id) else { continue };
            for pair in &state.bot.pairs {
                if seen.insert((venue.clone(), pair.clone())) {
                    out.push((venue.clone(), state.bot.exchange_account_id, pair.clone()));
                }
            }
        }
        for book in engine.deals() {
            if seen.insert((venue.clone(), book.deal.pair.clone())) {
                out.push((venue.clone(), book.deal.exchange_account_id, book.deal.pair.clone()));
            }
        }
    }
    out
}

/// How many venue requests of one kind a cycle has in flight at once.
const VENUE_CONCURRENCY: usize = 8;

/// Runs `start` on every item, `VENUE_CONCURRENCY` at a time; the answers in the items' order.
async fn batched<T, F: std::future::Future>(items: Vec<T>, start: fn(T) -> F) -> Vec<F::Output> {
    let mut answers = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let batch: Vec<F> = items.by_ref().take(VENUE_CONCURRENCY).map(start).collect();
        answers.extend(futures_util::future::join_all(batch).await);
    }
    answers
}

async fn ask_ticker(
    (venue, pair, exchange): (String, Pair, Arc<dyn Exchange>),
) -> (String, Pair, Result<Ticker, ExchangeError>) {
    let answer = exchange.ticker(&pair).await;
    (venue, pair, answer)
}

async fn tick_prices(state: &AppState) -> Result<(), ApiError> {
    let wanted = pairs_in_use(&*state.runner.inner.lock().await);
    refresh_markets(state, wanted.clone()).await;
    let asks: Vec<(String, Pair, Arc<dyn Exchange>)> = {
        let rs = state.runner.inner.lock().await;
        wanted
            .into_iter()
            .filter_map(|(venue, account, pair)| {
                rs.accounts.get(&account).map(|link| (venue, pair, Arc::clone(&link.exchange)))
            })
            .collect()
    };
    let answers = batched(asks, ask_ticker).await;
    for (venue, pair, answer) in answers {
        match answer {
            Ok(ticker) => {
                let price = ticker.last_price;
                {
                    let mut rs = state.runner.inner.lock().await;
                    rs.tickers.insert((venue.clone(), pair.clone()), ticker);
                    rs.priced_at.insert((venue.clone(), pair.clone()), std::time::Instant::now());
                }
                if price > Decimal::ZERO {
                    process(state, &venue, Event::Tick { pair, price }).await?;
                }
            }
            Err(err) => tracing::debug!(pair = %pair.to_3commas(), error = %err, "fetching a price failed"),
        }
    }
    Ok(())
}

/// Asks the venue about every order the engine does not know the end of: pending intents by
/// client order id, open ones through the pair's open orders (polling, the fallback of the user
/// data stream). The orders are chosen under the runner's lock and asked about without it.
async fn reconcile(state: &AppState) -> Result<(), ApiError> {
    let mut pending = Vec::new();
    let mut open = Vec::new();
    {
        let mut rs = state.runner.inner.lock().await;
        let mut groups: HashMap<(String, ExchangeAccountId, Pair), Vec<OrderIntent>> = HashMap::new();
        for (venue, engine) in &rs.engines {
            for book in engine.deals() {
                for order in &book.orders {
                    match order.state {
                        IntentState::Pending
                            if !rs.in_flight.contains(&order.client_order_id)
                                && !rs.held.contains_key(&order.client_order_id) =>
                        {
                            if let Some(link) = rs.accounts.get(&order.exchange_account_id) {
                                pending.push((venue.clone(), Arc::clone(&link.exchange), order.clone()));
                            }
                        }
                        IntentState::Open => groups
                            .entry((venue.clone(), order.exchange_account_id, order.pair.clone()))
                            .or_default()
                            .push(order.clone()),
                        _ => {}
                    }
                }
            }
        }
        for ((venue, account, pair), orders) in groups {
            // The stream brings fills at once; polling is the fallback, so it spends little weight.
            let key = (account, pair.clone());
            if rs.polled_at.get(&key).is_some_and(|at| at.elapsed() < POLL_EVERY) {
                continue;
            }
            let Some(link) = rs.accounts.get(&account) else { continue };
            let exchange = Arc::clone(&link.exchange);
            rs.polled_at.insert(key, std::time::Instant::now());
            open.push((venue, exchange, pair, orders));
        }
    }
    let looked = batched(pending, look_up).await;
    for (venue, order, found) in looked {
        let event = match found {
            Looked::Found(update) => {
                state.runner.inner.lock().await.unseen.remove(&order.client_order_id);
                Event::Order(update)
            }
            Looked::Missing(venue_now) => {
                let mut rs = state.runner.inner.lock().await;
                if rs.in_flight.contains(&order.client_order_id)
                    || !missing_long_enough(&mut rs.unseen, &order.client_order_id, venue_now)
                {
                    continue;
                }
                Event::NotPlaced { client_order_id: order.client_order_id.clone() }
            }
            Looked::Unknown => continue,
        };
        process(state, &venue, event).await?;
    }
    let polled = batched(open, poll_open).await;
    for (venue, updates) in polled {
        for update in updates {
            process(state, &venue, Event::Order(update)).await?;
        }
    }
    Ok(())
}

/// What the venue said about a pending intent.
enum Looked {
    Found(OrderUpdate),
    /// Not found, at this venue time.
    Missing(Timestamp),
    /// No answer this time.
    Unknown,
}

async fn look_up((venue, exchange, order): (String, Arc<dyn Exchange>, OrderIntent)) -> (String, OrderIntent, Looked) {
    let looked = match ClientOrderId::parse(&order.client_order_id) {
        Err(_) => Looked::Unknown,
        Ok(id) => match exchange.query_order(&order.pair, &VenueOrderRef::Client(id)).await {
            Ok(report) => Looked::Found(update_of(&*exchange, &order, &report).await),
            Err(ExchangeError::OrderNotFound) => match exchange.server_time().await {
                Ok(venue_now) => Looked::Missing(venue_now),
                Err(_) => Looked::Unknown,
            },
            Err(err) => {
                tracing::debug!(order = %order.client_order_id, error = %err, "looking up an order failed");
                Looked::Unknown
            }
        },
    };
    (venue, order, looked)
}

/// The updates of an account's open orders on a pair: from the pair's open orders, and for one
/// no longer on the book, from a lookup by client order id.
async fn poll_open(
    (venue, exchange, pair, orders): (String, Arc<dyn Exchange>, Pair, Vec<OrderIntent>),
) -> (String, Vec<OrderUpdate>) {
    let updates = open_updates(&*exchange, &pair, orders).await;
    (venue, updates)
}

async fn open_updates(exchange: &dyn Exchange, pair: &Pair, orders: Vec<OrderIntent>) -> Vec<OrderUpdate> {
    let Ok(reports) = changed_reports(exchange, pair, orders).await else { return Vec::new() };
    let mut updates = Vec::with_capacity(reports.len());
    for (order, report) in reports {
        updates.push(update_of(exchange, &order, &report).await);
    }
    updates
}

/// The venue's reports of `orders` (open as far as Bulwark knows, all on `pair`) that say something
/// new: from the pair's open orders (one request), and for an order no longer on the book, from a
/// lookup by client order id. Shared with manual orders (`manual_orders`).
///
/// # Errors
/// When the pair's open orders cannot be read.
pub(crate) async fn changed_reports(
    exchange: &dyn Exchange,
    pair: &Pair,
    orders: Vec<OrderIntent>,
) -> Result<Vec<(OrderIntent, OrderReport)>, ExchangeError> {
    let on_book = exchange.open_orders(pair).await?;
    let on_book: HashMap<&str, &OrderReport> = on_book.iter().map(|r| (r.client_order_id.as_str(), r)).collect();
    let mut changed = Vec::new();
    for order in orders {
        let report = match on_book.get(order.client_order_id.as_str()) {
            Some(report)
                if report.executed_qty == order.executed_qty
                    && order.venue_order_id.as_deref() == Some(report.venue_order_id.as_str()) =>
            {
                continue;
            }
            Some(report) => (*report).clone(),
            None => {
                let Ok(id) = ClientOrderId::parse(&order.client_order_id) else { continue };
                match exchange.query_order(pair, &VenueOrderRef::Client(id)).await {
                    Ok(report) => report,
                    Err(err) => {
                        tracing::debug!(order = %order.client_order_id, error = %err, "looking up an order failed");
                        continue;
                    }
                }
            }
        };
        changed.push((order, report));
    }
    Ok(changed)
}

/// Notes that the order `client_order_id` was looked for at the venue and not found, with the
/// venue's clock at `venue_now`, and tells whether it has been missing long enough to count as
/// never placed: the venue's clock has passed the first miss by the receive window and a second
/// (`UNSEEN_GRACE_MS`), so no request signed before that miss can still be accepted. `unseen`
/// keeps each missing order's first miss (venue time); the entry goes once the answer is yes.
/// Shared with the manual-order reconciler (`manual_orders`).
pub(crate) fn missing_long_enough(
    unseen: &mut HashMap<String, Timestamp>,
    client_order_id: &str,
    venue_now: Timestamp,
) -> bool {
    let first = *unseen.entry(client_order_id.to_owned()).or_insert(venue_now);
    let missing = venue_now.as_unix_millis() - first.as_unix_millis() >= UNSEEN_GRACE_MS;
    if missing {
        unseen.remove(client_order_id);
    }
    missing
}

/// The engine's view of a venue report, with the fees split by asset: from the report's fills
/// when it has them, else (for an order that traded and will not trade any more) from the
/// account's trade history. Shared with manual orders (`manual_orders::reported`).
pub(crate) async fn update_of(exchange: &dyn Exchange, order: &OrderIntent, report: &OrderReport) -> OrderUpdate {
    let base = &order.pair.base;
    let quote = &order.pair.quote;
    let mut fee_base = Decimal::ZERO;
    let mut fee_quote = Decimal::ZERO;
    let mut add = |asset: &Asset, amount: Decimal| {
        if asset == base {
            fee_base += amount;
        } else if asset == quote {
            fee_quote += amount;
        }
    };
    if !report.fills.is_empty() {
        for fill in &report.fills {
            add(&fill.commission_asset, fill.commission);
        }
    } else if !report.executed_qty.is_zero() && report.status.is_terminal() {
        match exchange.my_trades(&order.pair, None).await {
            Ok(trades) => {
                for trade in trades.iter().filter(|t| t.venue_order_id == report.venue_order_id) {
                    add(&trade.commission_asset, trade.commission);
                }
            }
            Err(err) => tracing::debug!(error = %err, "reading the fees of an order failed"),
        }
    }
    OrderUpdate {
        client_order_id: order.client_order_id.clone(),
        venue_order_id: report.venue_order_id.clone(),
        status: report.status,
        executed_qty: report.executed_qty,
        executed_quote: report.cumulative_quote_qty,
        fee_base,
        fee_quote,
    }
}

/// A command for the venue, prepared under the runner's lock and carried out without it.
struct Job {
    command: Command,
    order: OrderIntent,
    exchange: Arc<dyn Exchange>,
    record: ExchangeAccountRecord,
    bot: BotId,
    ticker: Option<Ticker>,
}

/// What carrying out a job gave: events for the engine, a bot to disable (with the reason), a
/// price fetched on the way.
#[derive(Default)]
struct Outcome {
    events: Vec<Event>,
    disable: Option<(BotId, String)>,
    ticker: Option<Ticker>,
    /// Not sent, for the venue's rate limit: hold the placement this long, then send it again.
    held: Option<Duration>,
}

/// Feeds `event` to a venue's engine, then everything that follows from it: under the runner's
/// lock, the engine decides and the deals that changed are saved; then, without the lock, the
/// commands are carried out (each account's in order, accounts side by side), and their answers
/// are events again.
async fn process(state: &AppState, venue: &str, event: Event) -> Result<Vec<DealId>, ApiError> {
    process_signal(state, venue, event, None).await.map(|(touched, _)| touched)
}

/// `process`, for the event of a webhook signal: the first event's last deal save also finishes
/// the signal (one transaction), and when the engine does not take the event the signal is
/// finished as refused with the reason. Also answers whether the signal was finished (not when
/// the save was refused for a lost lease: the bot's new node acts on it).
async fn process_signal(
    state: &AppState,
    venue: &str,
    event: Event,
    signal: Option<&Signal>,
) -> Result<(Vec<DealId>, bool), ApiError> {
    let mut queue = VecDeque::from([event]);
    let mut first = true;
    let mut touched = Vec::new();
    let mut finished = false;
    while let Some(event) = queue.pop_front() {
        let jobs = {
            let mut guard = state.runner.inner.lock().await;
            let rs = &mut *guard;
            let now = state.now();
            let Some(engine) = rs.engines.get_mut(venue) else { return Ok((touched, finished)) };
            let output = match engine.handle(now, event) {
                Ok(output) => output,
                Err(err) if first => {
                    if let Some(signal) = signal {
                        let outcome = SignalOutcome {
                            id: signal.id,
                            state: SignalState::Refused,
                            outcome: format!("Not acted on: {}.", engine_error(&err).message().trim_end_matches('.')),
                        };
                        let done = state.store.finish_signal(&outcome, now).await?;
                        return Ok((touched, done));
                    }
                    return Err(engine_error(&err));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the engine did not take a follow-up event");
                    continue;
                }
            };
            let finishing = if first { signal } else { None };
            if first {
                touched.clone_from(&output.changed);
                if let Some(signal) = finishing
                    && output.changed.is_empty()
                {
                    let outcome = SignalOutcome {
                        id: signal.id,
                        state: SignalState::Done,
                        outcome: "Acted on: nothing needed to change.".to_owned(),
                    };
                    finished = state.store.finish_signal(&outcome, now).await?;
                }
            }
            first = false;
            let mut lost = HashSet::new();
            let last = output.changed.last().copied();
            for id in &output.changed {
                let Some(book) = engine.deal(*id) else { continue };
                let known = rs.saved.entry(*id).or_default();
                let changed: Vec<OrderIntent> =
                    book.orders.iter().filter(|o| known.get(&o.client_order_id) != Some(*o)).cloned().collect();
                let outcome = finishing.filter(|_| last == Some(*id)).map(|signal| SignalOutcome {
                    id: signal.id,
                    state: SignalState::Done,
                    outcome: signal_done(signal.action, &output.changed),
                });
                let saved =
                    state.store.save_deal(&state.runner.node, now, &book.deal, &changed, &[], outcome.as_ref()).await?;
                if saved {
                    finished |= outcome.is_some();
                    known.extend(changed.into_iter().map(|o| (o.client_order_id.clone(), o)));
                } else {
                    lost.insert(book.deal.bot_id);
                }
            }
            for bot in &lost {
                tracing::warn!(bot = %bot, "this node lost the bot's lease; another node runs it now");
                engine.remove_bot(*bot);
                rs.bot_venue.remove(bot);
            }
            for bot in &output.disable {
                if !lost.contains(bot) {
                    disable_bot(state, rs, venue, *bot, "stop_loss").await?;
                }
            }
            let mut jobs = Vec::new();
            for (deal, command) in output.commands {
                let Some(book) = rs.engines.get(venue).and_then(|e| e.deal(deal)) else { continue };
                let bot = book.deal.bot_id;
                let (Command::Place(id) | Command::Cancel(id)) = &command;
                if lost.contains(&bot) {
                    continue;
                }
                let Some(order) = book.order(id).cloned() else { continue };
                let Some(link) = rs.accounts.get(&order.exchange_account_id) else {
                    if matches!(command, Command::Place(_)) {
                        let reason = "account_unavailable: the exchange account is gone".to_owned();
                        queue.push_back(Event::Refused { client_order_id: order.client_order_id.clone(), reason });
                    }
                    continue;
                };
                if matches!(command, Command::Place(_)) {
                    rs.in_flight.insert(order.client_order_id.clone());
                }
                jobs.push(Job {
                    command,
                    exchange: Arc::clone(&link.exchange),
                    record: link.record.clone(),
                    bot,
                    ticker: rs.tickers.get(&(venue.to_owned(), order.pair.clone())).cloned(),
                    order,
                });
            }
            jobs
        };
        if jobs.is_empty() {
            continue;
        }
        let answers = carry_out(state, jobs).await;
        queue.extend(take_answers(state, venue, answers).await?);
    }
    Ok((touched, finished))
}

/// Takes the answers of carried-out jobs under the runner's lock: none is in flight any more,
/// placements refused for the venue's rate limit are held for their wait, and the events they gave
/// are returned (none when a store failure ends this early: the intents stay as saved, pending,
/// and the next cycle looks them up).
async fn take_answers(
    state: &AppState,
    venue: &str,
    answers: Vec<(OrderIntent, Result<Outcome, ApiError>)>,
) -> Result<Vec<Event>, ApiError> {
    let mut guard = state.runner.inner.lock().await;
    let rs = &mut *guard;
    // Every placement is answered (or left pending) now: none is in flight any more, even if a
    // store failure below ends this early.
    for (order, _) in &answers {
        rs.in_flight.remove(&order.client_order_id);
    }
    let mut events = Vec::new();
    let mut failure = None;
    for (order, outcome) in answers {
        match outcome {
            Ok(outcome) => {
                if let Some(wait) = outcome.held {
                    let until = std::time::Instant::now() + wait;
                    rs.held.insert(order.client_order_id.clone(), (venue.to_owned(), until));
                }
                if let Some(ticker) = outcome.ticker {
                    rs.tickers.insert((venue.to_owned(), order.pair.clone()), ticker);
                }
                if let Some((bot, reason)) = outcome.disable {
                    disable_bot(state, rs, venue, bot, &reason).await?;
                }
                events.extend(outcome.events);
            }
            Err(err) => failure = Some(err),
        }
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(events),
    }
}

/// Sends again the placements held for the venue's rate limit whose wait is over — under their
/// own client order id: the adapter refused to send them, or the venue answered 429 (a request it
/// rejected), so none was ever placed. One the engine no longer wants (canceled meanwhile) is left
/// to reconciliation, which looks it up like any pending intent.
async fn resend_held(state: &AppState) -> Result<(), ApiError> {
    let mut by_venue: HashMap<String, Vec<Job>> = HashMap::new();
    {
        let mut guard = state.runner.inner.lock().await;
        let rs = &mut *guard;
        let now = std::time::Instant::now();
        let due: Vec<(String, String)> = rs
            .held
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(id, (v, _))| (id.clone(), v.clone()))
            .collect();
        for (id, venue) in due {
            rs.held.remove(&id);
            let Some(engine) = rs.engines.get(&venue) else { continue };
            let Some(book) = engine.deal_of_order(&id).and_then(|deal| engine.deal(deal)) else { continue };
            let Some(order) = book.order(&id).cloned() else { continue };
            if order.state != IntentState::Pending || order.cancel_requested || book.deal.status.is_finished() {
                continue;
            }
            let Some(link) = rs.accounts.get(&order.exchange_account_id) else { continue };
            rs.in_flight.insert(id.clone());
            let job = Job {
                command: Command::Place(id),
                exchange: Arc::clone(&link.exchange),
                record: link.record.clone(),
                bot: book.deal.bot_id,
                ticker: rs.tickers.get(&(venue.clone(), order.pair.clone())).cloned(),
                order,
            };
            by_venue.entry(venue).or_default().push(job);
        }
    }
    for (venue, jobs) in by_venue {
        let answers = carry_out(state, jobs).await;
        for event in take_answers(state, &venue, answers).await? {
            process(state, &venue, event).await?;
        }
    }
    Ok(())
}

/// Carries out jobs: each account's in order under its lock, accounts side by side.
async fn carry_out(state: &AppState, jobs: Vec<Job>) -> Vec<(OrderIntent, Result<Outcome, ApiError>)> {
    let mut lanes: Vec<(ExchangeAccountId, Vec<Job>)> = Vec::new();
    for job in jobs {
        let account = job.order.exchange_account_id;
        match lanes.iter_mut().find(|(a, _)| *a == account) {
            Some((_, lane)) => lane.push(job),
            None => lanes.push((account, vec![job])),
        }
    }
    let mut running = Vec::with_capacity(lanes.len());
    for (account, jobs) in lanes {
        running.push(lane(state, account, jobs));
    }
    futures_util::future::join_all(running).await.into_iter().flatten().collect()
}

/// One account's jobs, in order, under the account's lock.
async fn lane(
    state: &AppState,
    account: ExchangeAccountId,
    jobs: Vec<Job>,
) -> Vec<(OrderIntent, Result<Outcome, ApiError>)> {
    let lock = state.runner.account_lock(account);
    let _held = lock.lock().await;
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = match job.command {
            Command::Place(_) => place(state, &job).await,
            Command::Cancel(_) => Ok(Outcome { events: cancel(&job).await, ..Outcome::default() }),
        };
        done.push((job.order, outcome));
    }
    done
}

/// Sends a recorded intent through the order guard.
async fn place(state: &AppState, job: &Job) -> Result<Outcome, ApiError> {
    let order = &job.order;
    let record = &job.record;
    let exchange = &job.exchange;
    let bot = job.bot;
    let refused = |reason: String, disable: Option<&str>| Outcome {
        events: vec![Event::Refused { client_order_id: order.client_order_id.clone(), reason }],
        disable: disable.map(|code| (bot, code.to_owned())),
        ticker: None,
        held: None,
    };
    if record.status != ExchangeAccountStatus::Active {
        let reason = "account_paused: trading on this exchange account is paused; check the key again".to_owned();
        return Ok(refused(reason, Some("account_paused")));
    }
    let (ticker, fetched) = match &job.ticker {
        Some(ticker) => (ticker.clone(), None),
        None => match exchange.ticker(&order.pair).await {
            Ok(ticker) => (ticker.clone(), Some(ticker)),
            Err(ExchangeError::RateLimited { retry_after } | ExchangeError::IpBanned { retry_after }) => {
                return Ok(Outcome { held: Some(retry_after), ..Outcome::default() });
            }
            // Left pending: the next cycle looks it up and, not finding it, asks again.
            Err(_) => return Ok(Outcome::default()),
        },
    };
    let now = state.now();
    let client = engine_client();
    if let Err(refusal) = order_guard::check(state, record, order, &ticker, now).await? {
        let detail = json!({
            "exchange_account_id": record.id, "client_order_id": order.client_order_id,
            "bot_id": bot, "deal_id": order.deal_id, "pair": order.pair.to_3commas(),
            "side": order.side.as_str().to_ascii_lowercase(), "code": refusal.code(), "reason": refusal.to_string(),
        });
        state.store.append_audit(&state.audit(Some(record.user_id), "order.refused", &client, detail)).await?;
        return Ok(refused(format!("{}: {refusal}", refusal.code()), Some(refusal.code())));
    }
    let Some(request) = request_of(order) else {
        return Ok(refused("invalid_order: the order cannot be expressed to the venue".to_owned(), None));
    };
    let detail = json!({
        "exchange_account_id": record.id, "exchange": record.exchange, "client_order_id": order.client_order_id,
        "bot_id": bot, "deal_id": order.deal_id, "pair": order.pair.to_3commas(),
        "side": order.side.as_str().to_ascii_lowercase(), "type": order.kind.as_str(),
    });
    state.store.append_audit(&state.audit(Some(record.user_id), "exchange_key.used", &client, detail)).await?;
    let events = match state.metrics.bot_order(&record.exchange, exchange.place_order(&request).await) {
        Ok(report) => vec![Event::Order(update_of(&**exchange, order, &report).await)],
        Err(ExchangeError::NotPlaced) => vec![Event::NotPlaced { client_order_id: order.client_order_id.clone() }],
        Err(
            err @ (ExchangeError::FilterFailure(_)
            | ExchangeError::OrderRejected { .. }
            | ExchangeError::InvalidRequest { .. }
            | ExchangeError::InvalidApiKey { .. }
            | ExchangeError::InvalidSignature),
        ) => return Ok(Outcome { ticker: fetched, ..refused(format!("venue_refused: {err}"), None) }),
        // Refused before it was sent (the adapter's weight budget) or by the venue's 429: never
        // placed. Held and sent again after the wait, rather than looked up — lookups would spend
        // the weight the wait is for.
        Err(ExchangeError::RateLimited { retry_after } | ExchangeError::IpBanned { retry_after }) => {
            tracing::info!(order = %order.client_order_id, wait_s = retry_after.as_secs(), "an order is held for the venue's rate limit");
            return Ok(Outcome { held: Some(retry_after), ticker: fetched, ..Outcome::default() });
        }
        Err(err) => {
            // Unknown outcome or not sent (rate limit, unreachable): the intent stays pending and the
            // next cycle resolves it by lookup.
            tracing::info!(order = %order.client_order_id, error = %err, "an order's outcome is left to reconciliation");
            Vec::new()
        }
    };
    Ok(Outcome { events, disable: None, ticker: fetched, held: None })
}

fn request_of(order: &OrderIntent) -> Option<OrderRequest> {
    let order_type = match order.kind {
        OrderKind::Limit => OrderType::Limit { price: Price::new(order.price).ok()?, time_in_force: TimeInForce::Gtc },
        OrderKind::Market => OrderType::Market,
    };
    let amount = match (order.quantity, order.quote_amount) {
        (Some(qty), _) => OrderAmount::Base(Qty::new(qty).ok()?),
        (None, Some(quote)) => OrderAmount::Quote(Qty::new(quote).ok()?),
        (None, None) => return None,
    };
    Some(OrderRequest {
        pair: order.pair.clone(),
        side: order.side,
        order_type,
        amount,
        client_order_id: ClientOrderId::parse(&order.client_order_id).ok()?,
    })
}

async fn cancel(job: &Job) -> Vec<Event> {
    let order = &job.order;
    let exchange = &job.exchange;
    let Ok(id) = ClientOrderId::parse(&order.client_order_id) else { return Vec::new() };
    let reference = VenueOrderRef::Client(id);
    let report = match exchange.cancel_order(&order.pair, &reference).await {
        Ok(report) => Ok(report),
        // Already filled or gone: what the venue says about it now settles it.
        Err(ExchangeError::CancelRejected(_) | ExchangeError::OrderNotFound) => {
            exchange.query_order(&order.pair, &reference).await
        }
        Err(err) => Err(err),
    };
    match report {
        Ok(report) => vec![Event::Order(update_of(&**exchange, order, &report).await)],
        Err(err) => {
            // Asked again by the engine's timer.
            tracing::debug!(order = %order.client_order_id, error = %err, "a cancel did not go through");
            Vec::new()
        }
    }
}

/// Stops a bot that caused a refusal: disabled with the reason, audited; its open deals go on.
async fn disable_bot(
    state: &AppState,
    rs: &mut RunnerState,
    venue: &str,
    bot: BotId,
    reason: &str,
) -> Result<(), ApiError> {
    let Some(engine) = rs.engines.get_mut(venue) else { return Ok(()) };
    let Some(current) = engine.bot(bot).cloned() else { return Ok(()) };
    if !current.bot.enabled {
        return Ok(());
    }
    let mut updated: Bot = current.bot.clone();
    updated.enabled = false;
    updated.disabled_reason = Some(reason.to_owned());
    updated.updated_at = state.now();
    let detail = json!({ "bot_id": bot, "reason": reason });
    let audit = state.audit(Some(updated.user_id), "bot.disabled", &engine_client(), detail);
    state.store.update_bot(&updated, &audit).await?;
    engine.upsert_bot(BotState { bot: updated, ..current });
    Ok(())
}

/// Acts on the pending signals due now whose bots this node runs, and now and then expires the
/// ones no node acted on in time.
async fn due_signals(state: &AppState) -> Result<(), ApiError> {
    let now = state.now();
    let expire = {
        let mut rs = state.runner.inner.lock().await;
        rs.signals_taken.retain(|_, at| at.elapsed() < SIGNAL_MEMORY);
        let due = rs.expired_at.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY);
        if due {
            rs.expired_at = Some(std::time::Instant::now());
        }
        due
    };
    if expire {
        let config = &state.config.webhooks;
        let expired =
            state.store.expire_signals(now.minus(config.expire_after), now.minus(config.dedupe_window), now).await?;
        if expired > 0 {
            tracing::warn!(signals = expired, "signals expired: their bots were not running while they were due");
        }
    }
    for signal in state.store.due_signals(&state.runner.node, now, 256).await? {
        // The signal task is on this bot: its signals wait for it (they stay pending meanwhile).
        if state.runner.signal_queues().contains_key(&signal.bot_id) {
            continue;
        }
        on_signal(state, signal).await?;
    }
    Ok(())
}

/// What a signal asks of the engine, for a bot of `strategy`.
fn signal_event(signal: &Signal, strategy: Strategy) -> Result<Event, String> {
    let bot = signal.bot_id;
    let pair = signal.pair.clone();
    let webhook = |pair: Option<Pair>, command| Event::Webhook { bot, pair, command };
    if signal.action.starts_deal(strategy) {
        return Ok(Event::Signal { bot, pair });
    }
    Ok(match signal.action {
        SignalAction::StartDeal | SignalAction::EnterLong | SignalAction::EnterShort => Event::Signal { bot, pair },
        SignalAction::CloseAtMarketPrice
        | SignalAction::ExitLong
        | SignalAction::ExitShort
        | SignalAction::Buy
        | SignalAction::Sell => webhook(pair, WebhookCommand::CloseAtMarket),
        SignalAction::CloseAtMarketPriceAll => webhook(None, WebhookCommand::CloseAtMarket),
        SignalAction::AddFundsInQuote => {
            let params: serde_json::Value = serde_json::from_str(&signal.params).map_err(|e| e.to_string())?;
            let number = |key: &str| params.get(key).and_then(|v| v.as_str()).and_then(|t| t.parse::<Decimal>().ok());
            let quote = number("volume").ok_or("the signal has no volume")?;
            webhook(pair, WebhookCommand::AddFunds { quote, price: number("price") })
        }
        SignalAction::StartTrailing => webhook(pair, WebhookCommand::StartTrailing),
    })
}

/// The signal log's sentence for a signal acted on.
fn signal_done(action: SignalAction, deals: &[DealId]) -> String {
    let what = match action {
        SignalAction::StartDeal | SignalAction::EnterLong | SignalAction::EnterShort => "deal started",
        SignalAction::AddFundsInQuote => "funds added to deal",
        SignalAction::StartTrailing => "trailing started for deal",
        SignalAction::Buy | SignalAction::Sell => "acted on deal",
        _ => "closing at market: deal",
    };
    let ids: Vec<String> = deals.iter().map(ToString::to_string).collect();
    format!("Acted on: {what} {}.", ids.join(", "))
}

/// Acts on one signal if this node runs its bot and it is due and not already taken up here.
async fn on_signal(state: &AppState, signal: Signal) -> Result<(), ApiError> {
    if signal.due_at > state.now() {
        return Ok(());
    }
    let (venue, strategy, account, pairs, exchange) = {
        let mut rs = state.runner.inner.lock().await;
        // Not run here: its node's cycle takes it up (or it expires).
        let Some(venue) = rs.bot_venue.get(&signal.bot_id).cloned() else { return Ok(()) };
        let Some(bot) = rs.engines.get(&venue).and_then(|e| e.bot(signal.bot_id)) else { return Ok(()) };
        let strategy = bot.settings.dca.strategy();
        let account = bot.bot.exchange_account_id;
        let pairs = match &signal.pair {
            Some(pair) => vec![pair.clone()],
            None => bot.bot.pairs.clone(),
        };
        if rs.signals_taken.contains_key(&signal.id) {
            return Ok(());
        }
        rs.signals_taken.insert(signal.id, std::time::Instant::now());
        let exchange = rs.accounts.get(&account).map(|link| Arc::clone(&link.exchange));
        (venue, strategy, account, pairs, exchange)
    };
    let event = match signal_event(&signal, strategy) {
        Ok(event) => event,
        Err(why) => {
            let outcome =
                SignalOutcome { id: signal.id, state: SignalState::Refused, outcome: format!("Not acted on: {why}.") };
            state.store.finish_signal(&outcome, state.now()).await?;
            return Ok(());
        }
    };
    fresh_prices(state, &venue, account, pairs, exchange).await;
    let result = process_signal(state, &venue, event, Some(&signal)).await;
    if !matches!(result, Ok((_, true))) {
        // Still pending in the store (a store failure, or the bot's lease was lost): the next
        // cycle of whichever node runs the bot takes it up again.
        state.runner.inner.lock().await.signals_taken.remove(&signal.id);
    }
    result.map(|_| ())
}

/// Gives the pairs of a command or signal a recent price (fetched if the last is older than
/// `PRICE_FRESH`) and their market rules.
async fn fresh_prices(
    state: &AppState,
    venue: &str,
    account: ExchangeAccountId,
    pairs: Vec<Pair>,
    exchange: Option<Arc<dyn Exchange>>,
) {
    refresh_markets(state, pairs.iter().map(|p| (venue.to_owned(), account, p.clone())).collect()).await;
    let Some(exchange) = exchange else { return };
    let stale: Vec<Pair> = {
        let rs = state.runner.inner.lock().await;
        pairs
            .into_iter()
            .filter(|p| rs.priced_at.get(&(venue.to_owned(), p.clone())).is_none_or(|at| at.elapsed() >= PRICE_FRESH))
            .collect()
    };
    if stale.is_empty() {
        return;
    }
    let asks = stale.into_iter().map(|pair| (venue.to_owned(), pair, Arc::clone(&exchange))).collect();
    let answers = batched(asks, ask_ticker).await;
    let mut guard = state.runner.inner.lock().await;
    let rs = &mut *guard;
    for (_, pair, answer) in answers {
        let Ok(ticker) = answer else { continue };
        let price = ticker.last_price;
        rs.tickers.insert((venue.to_owned(), pair.clone()), ticker);
        rs.priced_at.insert((venue.to_owned(), pair.clone()), std::time::Instant::now());
        if let Some(engine) = rs.engines.get_mut(venue)
            && price > Decimal::ZERO
        {
            // Only the price: a tick here must not start deals of other bots before the command.
            engine.set_market_price(&pair, price);
        }
    }
}

fn engine_error(err: &EngineError) -> ApiError {
    use axum::http::StatusCode;
    let refused = |status, code, message: &str| ApiError::Refused { status, code, message: message.to_owned() };
    match err {
        EngineError::Unknown => ApiError::NotFound,
        EngineError::BotDisabled => refused(StatusCode::CONFLICT, "bot_disabled", "Enable the bot first."),
        EngineError::MaxActiveDeals(n) => ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "max_active_deals",
            message: format!("The bot already runs {n} deals, its max_active_deals."),
        },
        EngineError::PairBusy => refused(
            StatusCode::CONFLICT,
            "pair_busy",
            "Every pair of the bot has as many deals as allowed_deals_on_same_pair allows.",
        ),
        EngineError::UnknownPair => {
            ApiError::InvalidInput { field: "pair", message: "The bot does not trade this pair.".to_owned() }
        }
        EngineError::NoMarket | EngineError::Deal(engine::DealError::NoPrice) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "market_unavailable",
            "The pair's price is not known yet; try again in a moment.",
        ),
        EngineError::Deal(engine::DealError::NotOpen) => {
            refused(StatusCode::CONFLICT, "deal_not_open", "The deal is already closing or closed.")
        }
        EngineError::Deal(engine::DealError::BelowFilters(why)) => {
            ApiError::OrderRejected(format!("The order does not fit the market's rules ({why})."))
        }
        EngineError::NoSignalStart => refused(
            StatusCode::CONFLICT,
            "no_signal_start",
            "The bot does not start deals on signals: set its start condition to TradingView.",
        ),
        EngineError::NoOpenDeal => refused(StatusCode::CONFLICT, "no_open_deal", "The bot has no open deal for this."),
        EngineError::PairNeeded => ApiError::InvalidInput {
            field: "pair",
            message: "The bot has several open deals: name the pair.".to_owned(),
        },
        EngineError::Deal(engine::DealError::NoTrailing) => {
            refused(StatusCode::CONFLICT, "no_trailing", "The bot has no trailing take profit.")
        }
        EngineError::Deal(engine::DealError::AlreadyTrailing) => {
            refused(StatusCode::CONFLICT, "already_trailing", "The deal's take profit is trailing already.")
        }
        EngineError::Deal(engine::DealError::NotInProfit) => refused(
            StatusCode::CONFLICT,
            "not_in_profit",
            "The deal is not far enough in profit to trail: the trailing exit would not be past its average price.",
        ),
    }
}

/// Carries out a user's command for one of their bots on this node; returns the deals it changed
/// (for `StartDeal`, the new deal).
///
/// # Errors
/// 404 for a bot or deal this node does not run for the user, 409 for what the engine refuses.
pub async fn command(
    state: &AppState,
    user: UserId,
    bot: BotId,
    command: UserCommand,
) -> Result<Vec<DealId>, ApiError> {
    let venue = prepare_command(state, user, bot, &command).await?;
    process(state, &venue, Event::User(command)).await
}

/// Checks that a command is the user's and this node's to carry out, and gives its pairs a fresh
/// price; returns the bot's venue.
async fn prepare_command(
    state: &AppState,
    user: UserId,
    bot: BotId,
    command: &UserCommand,
) -> Result<String, ApiError> {
    let mut rs = state.runner.inner.lock().await;
    if !rs.bot_venue.contains_key(&bot) {
        sync_bots(state, &mut rs).await?;
    }
    let venue = rs.bot_venue.get(&bot).cloned().ok_or(ApiError::Refused {
        status: axum::http::StatusCode::CONFLICT,
        code: "bot_not_running",
        message: "This bot is not running on this server right now (disabled without open deals, or run by another \
                  node); try again shortly."
            .to_owned(),
    })?;
    let Some(state_of_bot) = rs.engines.get(&venue).and_then(|e| e.bot(bot)) else { return Err(ApiError::NotFound) };
    if state_of_bot.bot.user_id != user {
        return Err(ApiError::NotFound);
    }
    // Fresh prices for the pairs the command may trade.
    let account = state_of_bot.bot.exchange_account_id;
    let mut pairs = state_of_bot.bot.pairs.clone();
    if let UserCommand::CloseAtMarket { deal } | UserCommand::Cancel { deal } | UserCommand::AddFunds { deal, .. } =
        command
    {
        let engine = rs.engines.get(&venue).ok_or(ApiError::NotFound)?;
        let book = engine.deal(*deal).ok_or(ApiError::NotFound)?;
        if book.deal.bot_id != bot {
            return Err(ApiError::NotFound);
        }
        pairs = vec![book.deal.pair.clone()];
    }
    let exchange = rs.accounts.get(&account).map(|link| Arc::clone(&link.exchange));
    drop(rs);
    fresh_prices(state, &venue, account, pairs, exchange).await;
    Ok(venue)
}

/// The kill switch's work on this node (TR-2): every deal of the user's bots is canceled (its
/// open orders canceled at the venue), and the ports of the user's accounts are dropped, so no
/// key of theirs is opened again until a bot runs. The bots are already disabled in the store.
///
/// # Errors
/// When the store fails.
pub async fn kill(state: &AppState, user: UserId) -> Result<usize, ApiError> {
    let (bots, deals) = {
        let mut rs = state.runner.inner.lock().await;
        sync_bots(state, &mut rs).await?;
        let bots: Vec<(BotId, String)> = rs
            .bot_venue
            .iter()
            .filter(|(id, venue)| {
                rs.engines.get(*venue).and_then(|e| e.bot(**id)).is_some_and(|b| b.bot.user_id == user)
            })
            .map(|(id, venue)| (*id, venue.clone()))
            .collect();
        let deals: usize =
            bots.iter().map(|(bot, venue)| rs.engines.get(venue).map_or(0, |e| e.active_deals(*bot))).sum();
        (bots, deals)
    };
    let wanted = pairs_in_use(&*state.runner.inner.lock().await);
    refresh_markets(state, wanted).await;
    for (bot, venue) in &bots {
        process(state, venue, Event::User(UserCommand::CancelAll { bot: *bot })).await?;
    }
    let mut rs = state.runner.inner.lock().await;
    let still_open: HashSet<ExchangeAccountId> = rs
        .engines
        .values()
        .flat_map(|e| {
            e.deals().filter(|d| d.orders.iter().any(|o| !o.state.is_final())).map(|d| d.deal.exchange_account_id)
        })
        .collect();
    rs.accounts.retain(|id, link| link.record.user_id != user || still_open.contains(id));
    Ok(deals)
}
