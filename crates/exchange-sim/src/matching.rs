//! The matching engine: order placement with Binance's filters and balance checks, immediate
//! execution of marketable orders, resting orders that fill when the price crosses them, price
//! paths stepping the market, and cancellation.
//!
//! A marketable order fills completely at once (at the current price, or the market price with
//! slippage for `MARKET`): takers find ample liquidity. Resting limit orders fill at their limit
//! price as makers, two ways:
//!
//! - a candle (a step of the symbol's price path, or one given through the handle) walks the price
//!   open → low/high → close; the orders it reaches fill in the order it reaches them (price
//!   priority), then by age (time priority), together at most the candle's volume, so an order can
//!   go `PARTIALLY_FILLED` over several candles before it is `FILLED`;
//! - a price set by hand ([`Exchange::set_price`]) fills every order it reaches completely.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::account::Account;
use crate::candles::{Candle, MINUTE_MS};
use crate::config::SimConfig;
use crate::error::{ApiError, SimError};
use crate::market::{SymbolState, is_multiple_of, round_to_step};
use crate::order::{OrderStatus, OrderType, Side, SimOrder, SimTrade, TimeInForce};
use crate::rng::SplitMix64;
use crate::stream::Execution;

/// Most path steps applied in one catch-up; a clock moved far ahead catches up over several calls.
const MAX_STEPS_PER_CATCH_UP: usize = 100_000;

/// How much of a new order is specified: base quantity, or (market orders only) quote amount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OrderSize {
    Base(Decimal),
    Quote(Decimal),
}

/// A new order whose parameters are complete and consistent for its type.
#[derive(Debug, Clone)]
pub(crate) struct NewOrder {
    pub(crate) symbol: String,
    pub(crate) side: Side,
    pub(crate) order_type: OrderType,
    pub(crate) time_in_force: TimeInForce,
    pub(crate) size: OrderSize,
    /// The limit price; `None` for market orders.
    pub(crate) price: Option<Decimal>,
    pub(crate) client_order_id: Option<String>,
}

/// Which order a query or cancel names.
#[derive(Debug, Clone)]
pub(crate) enum OrderSelector {
    Id(u64),
    ClientId(String),
    /// Both sent: the id decides, the client id must match it.
    Both(u64, String),
}

/// A placed order and the trades it made at once.
#[derive(Debug)]
pub(crate) struct Placement {
    pub(crate) order: SimOrder,
    pub(crate) fills: Vec<SimTrade>,
}

#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) symbols: BTreeMap<String, SymbolState>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) fee_rate: Decimal,
    slippage: Decimal,
    max_open_orders_per_symbol: usize,
    pub(crate) seed: u64,
    pub(crate) rng: SplitMix64,
}

impl Exchange {
    pub(crate) fn new(config: &SimConfig, now_ms: i64) -> Self {
        let step_every_ms = i64::try_from(config.step_every.as_millis()).unwrap_or(i64::MAX);
        Self {
            symbols: config
                .symbols
                .iter()
                .map(|rules| {
                    let state = SymbolState::with_path(rules.clone(), config.seed, now_ms, step_every_ms);
                    (rules.symbol.clone(), state)
                })
                .collect(),
            accounts: config
                .accounts
                .iter()
                .zip(1..)
                .map(|(account, uid)| Account::new(account, uid, now_ms))
                .collect(),
            fee_rate: config.fee_rate,
            slippage: config.slippage,
            max_open_orders_per_symbol: usize::try_from(config.limits.max_open_orders_per_symbol).unwrap_or(usize::MAX),
            seed: config.seed,
            rng: SplitMix64::new(config.seed),
        }
    }

    pub(crate) fn account_index(&self, api_key: &str) -> Option<usize> {
        self.accounts.iter().position(|account| account.api_key == api_key)
    }

    pub(crate) fn symbol(&self, name: &str) -> Result<&SymbolState, ApiError> {
        self.symbols.get(name).ok_or_else(ApiError::bad_symbol)
    }

    pub(crate) fn generate_client_order_id(&mut self) -> String {
        self.rng.client_order_id()
    }

    /// Places an order for the account at `account_index`.
    ///
    /// Checks in Binance's order: symbol, filters (`PRICE_FILTER`, `LOT_SIZE`, `NOTIONAL`,
    /// `MAX_NUM_ORDERS`), then the matching engine's rejections (duplicate client id, post-only
    /// that would take, balance).
    pub(crate) fn place(&mut self, account_index: usize, new: NewOrder, now_ms: i64) -> Result<Placement, ApiError> {
        let client_order_id = match new.client_order_id.clone() {
            Some(id) => id,
            None => self.generate_client_order_id(),
        };
        let fee_rate = self.fee_rate;
        let slippage = self.slippage;
        let max_open = self.max_open_orders_per_symbol;
        let symbol = self.symbols.get_mut(&new.symbol).ok_or_else(ApiError::bad_symbol)?;
        let account = self.accounts.get_mut(account_index).ok_or_else(ApiError::rejected_key)?;
        let buying = new.side == Side::Buy;

        // What the order would execute at if it took liquidity now, and its base quantity.
        let (execution_price, qty) = match (new.order_type, new.size) {
            (OrderType::Market, OrderSize::Base(qty)) => (symbol.market_price(buying, slippage), qty),
            (OrderType::Market, OrderSize::Quote(quote)) => {
                let price = symbol.market_price(buying, slippage);
                (price, round_to_step(quote / price, symbol.rules.step_size, RoundingStrategy::ToZero))
            }
            (_, OrderSize::Base(qty)) => (symbol.price, qty),
            (_, OrderSize::Quote(_)) => return Err(ApiError::not_required("quoteOrderQty")),
        };
        check_filters(&symbol.rules, new.price, qty, symbol.price)?;
        let open_on_symbol = account.open.iter().filter(|&&i| account.orders[i].symbol == new.symbol).count();
        if open_on_symbol >= max_open {
            return Err(ApiError::filter_failure("MAX_NUM_ORDERS"));
        }
        if account.open.iter().any(|&i| account.orders[i].client_order_id == client_order_id) {
            return Err(ApiError::new_order_rejected("Duplicate order sent."));
        }
        let marketable = match new.price {
            None => true,
            Some(limit) if buying => symbol.price <= limit,
            Some(limit) => symbol.price >= limit,
        };
        if marketable && new.order_type == OrderType::LimitMaker {
            return Err(ApiError::new_order_rejected("Order would immediately match and take."));
        }
        let (reserve_asset, reserve_amount) = if buying {
            (symbol.rules.quote.clone(), new.price.unwrap_or(execution_price) * qty)
        } else {
            (symbol.rules.base.clone(), qty)
        };
        account.reserve(&reserve_asset, reserve_amount).map_err(|_| ApiError::insufficient_balance())?;

        let order = SimOrder {
            symbol: new.symbol.clone(),
            order_id: symbol.take_order_id(),
            client_order_id,
            side: new.side,
            order_type: new.order_type,
            time_in_force: new.time_in_force,
            price: new.price.unwrap_or(Decimal::ZERO),
            orig_qty: qty,
            executed_qty: Decimal::ZERO,
            cummulative_quote_qty: Decimal::ZERO,
            orig_quote_order_qty: match new.size {
                OrderSize::Quote(quote) => quote,
                OrderSize::Base(_) => Decimal::ZERO,
            },
            status: OrderStatus::New,
            time: now_ms,
            update_time: now_ms,
            working_time: now_ms,
            reserved: reserve_amount,
            reserved_asset: reserve_asset,
        };
        account.orders.push(order);
        account.update_time = now_ms;
        let index = account.orders.len() - 1;
        account.opened(index);
        account.outbox.order_event(&account.orders[index], Execution::New);

        let mut fills = Vec::new();
        if marketable {
            fills.push(execute(symbol, account, index, execution_price, qty, false, fee_rate, now_ms));
        } else if new.time_in_force != TimeInForce::Gtc {
            close(account, index, OrderStatus::Expired, now_ms);
        }
        Ok(Placement { order: account.orders[index].clone(), fills })
    }

    /// Cancels an open order.
    pub(crate) fn cancel(
        &mut self,
        account_index: usize,
        symbol: &str,
        selector: &OrderSelector,
        now_ms: i64,
    ) -> Result<SimOrder, ApiError> {
        self.symbol(symbol)?;
        let account = self.accounts.get_mut(account_index).ok_or_else(ApiError::rejected_key)?;
        let index = find_order(account, symbol, selector)
            .filter(|&index| account.orders[index].is_open())
            .ok_or_else(ApiError::unknown_order_on_cancel)?;
        close(account, index, OrderStatus::Canceled, now_ms);
        Ok(account.orders[index].clone())
    }

    /// Looks an order up.
    pub(crate) fn order(
        &self,
        account_index: usize,
        symbol: &str,
        selector: &OrderSelector,
    ) -> Result<&SimOrder, ApiError> {
        self.symbol(symbol)?;
        let account = self.accounts.get(account_index).ok_or_else(ApiError::rejected_key)?;
        find_order(account, symbol, selector).map(|index| &account.orders[index]).ok_or_else(ApiError::no_such_order)
    }

    /// Moves the price of `symbol`; resting limit orders the new price reaches fill at their limit
    /// price as makers. Returns how many orders filled.
    pub(crate) fn set_price(&mut self, symbol_name: &str, price: Decimal, now_ms: i64) -> Result<usize, SimError> {
        if price <= Decimal::ZERO {
            return Err(SimError::BadPrice(price.to_string()));
        }
        let fee_rate = self.fee_rate;
        let symbol =
            self.symbols.get_mut(symbol_name).ok_or_else(|| SimError::UnknownSymbol(symbol_name.to_owned()))?;
        symbol.move_price(price);
        if !symbol.path.moves() {
            symbol.candles.record_price(now_ms.div_euclid(MINUTE_MS) * MINUTE_MS, price);
        }
        let mut filled = 0;
        for account in &mut self.accounts {
            for index in account.open.clone() {
                let order = &account.orders[index];
                let crossed = match order.side {
                    Side::Buy => price <= order.price,
                    Side::Sell => price >= order.price,
                };
                if order.is_open() && order.symbol == symbol_name && crossed {
                    let (limit, remaining) = (order.price, order.remaining_qty());
                    execute(symbol, account, index, limit, remaining, true, fee_rate, now_ms);
                    filled += 1;
                }
            }
        }
        Ok(filled)
    }

    /// Walks the price of `symbol_name` through `candle` at `now_ms` (see the module's notes);
    /// returns how many fills it made.
    pub(crate) fn apply_candle(&mut self, symbol_name: &str, candle: &Candle, now_ms: i64) -> Result<usize, SimError> {
        candle.check().map_err(SimError::BadCandle)?;
        let fee_rate = self.fee_rate;
        let symbol =
            self.symbols.get_mut(symbol_name).ok_or_else(|| SimError::UnknownSymbol(symbol_name.to_owned()))?;
        Ok(run_candle(symbol, &mut self.accounts, candle, fee_rate, now_ms))
    }

    /// Takes every path step due by `now_ms`, oldest first across symbols, each at the time it
    /// fell due. Returns how many steps it took.
    pub(crate) fn advance_market(&mut self, now_ms: i64) -> usize {
        let fee_rate = self.fee_rate;
        let mut steps = 0;
        while steps < MAX_STEPS_PER_CATCH_UP {
            let next = self.symbols.iter().filter_map(|(name, symbol)| Some((symbol.path.due(now_ms)?, name))).min();
            let Some((due_ms, name)) = next else { break };
            let name = name.clone();
            let Some(symbol) = self.symbols.get_mut(&name) else { break };
            if let Some(candle) = symbol.path.step(&symbol.rules, symbol.price) {
                run_candle(symbol, &mut self.accounts, &candle, fee_rate, due_ms);
            }
            steps += 1;
        }
        steps
    }
}

/// Moves `symbol` through `candle`: fills the resting orders the price reaches (at most the
/// candle's volume together, on the symbol's step grid), leaves the price at the close, and keeps
/// the candle for `klines`. Returns how many fills it made.
fn run_candle(
    symbol: &mut SymbolState,
    accounts: &mut [Account],
    candle: &Candle,
    fee_rate: Decimal,
    now_ms: i64,
) -> usize {
    let waypoints = candle.waypoints();
    // (where on the path the price reaches the order, the order id for age, account, order index)
    let mut reached: Vec<((usize, Decimal), u64, usize, usize)> = Vec::new();
    for (account_index, account) in accounts.iter().enumerate() {
        for (order_index, order) in account.open.iter().map(|&i| (i, &account.orders[i])) {
            if order.is_open()
                && order.symbol == symbol.rules.symbol
                && let Some(position) = reach(&waypoints, order.side, order.price)
            {
                reached.push((position, order.order_id, account_index, order_index));
            }
        }
    }
    reached.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut volume_left = candle.volume;
    let mut fills = 0;
    for (_, _, account_index, order_index) in reached {
        let account = &mut accounts[account_index];
        let order = &account.orders[order_index];
        let qty =
            round_to_step(order.remaining_qty().min(volume_left), symbol.rules.step_size, RoundingStrategy::ToZero);
        if qty <= Decimal::ZERO {
            break;
        }
        let limit = order.price;
        execute(symbol, account, order_index, limit, qty, true, fee_rate, now_ms);
        volume_left -= qty;
        fills += 1;
    }
    symbol.move_price(candle.close);
    symbol.stats.high = symbol.stats.high.max(candle.high);
    symbol.stats.low = symbol.stats.low.min(candle.low);
    symbol.candles.record(candle);
    fills
}

/// Where along the path through `waypoints` the price first reaches `limit` for an order on
/// `side` (a buy when the price is at or below it, a sell at or above): the leg and the distance
/// travelled on it. `None` when the candle never reaches it.
fn reach(waypoints: &[Decimal; 4], side: Side, limit: Decimal) -> Option<(usize, Decimal)> {
    let reached = |price: Decimal| match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    };
    if reached(waypoints[0]) {
        return Some((0, Decimal::ZERO));
    }
    (0..3).find(|&leg| reached(waypoints[leg + 1])).map(|leg| (leg, (waypoints[leg] - limit).abs()))
}

/// Binance's symbol filters for a new order (`filters.md`). Market orders are checked against the
/// current price for `NOTIONAL` (`applyMinToMarket: true`, `applyMaxToMarket: false`).
fn check_filters(
    rules: &crate::config::SimSymbol,
    limit_price: Option<Decimal>,
    qty: Decimal,
    current_price: Decimal,
) -> Result<(), ApiError> {
    if let Some(price) = limit_price {
        let in_range = price >= rules.min_price && price <= rules.max_price && price > Decimal::ZERO;
        if !in_range || !is_multiple_of(price, rules.tick_size) {
            return Err(ApiError::filter_failure("PRICE_FILTER"));
        }
    }
    if qty < rules.min_qty || qty > rules.max_qty || !is_multiple_of(qty, rules.step_size) {
        return Err(ApiError::filter_failure("LOT_SIZE"));
    }
    let notional = limit_price.unwrap_or(current_price) * qty;
    let above_max = limit_price.is_some() && notional > rules.max_notional;
    if notional < rules.min_notional || above_max {
        return Err(ApiError::filter_failure("NOTIONAL"));
    }
    Ok(())
}

/// The newest order of `account` on `symbol` that `selector` names.
fn find_order(account: &Account, symbol: &str, selector: &OrderSelector) -> Option<usize> {
    account.orders.iter().rposition(|order| {
        order.symbol == symbol
            && match selector {
                OrderSelector::Id(id) => order.order_id == *id,
                OrderSelector::ClientId(client_id) => order.client_order_id == *client_id,
                OrderSelector::Both(id, client_id) => order.order_id == *id && order.client_order_id == *client_id,
            }
    })
}

/// Executes `qty` of the order at `index` at `price`: moves the funds, charges the fee in the
/// received asset, records the trade and updates the order.
#[allow(clippy::too_many_arguments)] // the engine's one primitive; a parameter struct would only rename them
fn execute(
    symbol: &mut SymbolState,
    account: &mut Account,
    index: usize,
    price: Decimal,
    qty: Decimal,
    is_maker: bool,
    fee_rate: Decimal,
    now_ms: i64,
) -> SimTrade {
    let (base, quote) = (symbol.rules.base.clone(), symbol.rules.quote.clone());
    let quote_qty = price * qty;
    let order = &account.orders[index];
    let (side, order_id, order_type, limit) = (order.side, order.order_id, order.order_type, order.price);
    let (commission, commission_asset) = match side {
        Side::Buy => (round_fee(qty * fee_rate), base.clone()),
        Side::Sell => (round_fee(quote_qty * fee_rate), quote.clone()),
    };
    match side {
        Side::Buy => {
            account.spend_locked(&quote, quote_qty);
            account.credit(&base, qty - commission);
        }
        Side::Sell => {
            account.spend_locked(&base, qty);
            account.credit(&quote, quote_qty - commission);
        }
    }
    let trade_id = symbol.record_trade(price, qty);
    let order = &mut account.orders[index];
    order.executed_qty += qty;
    order.cummulative_quote_qty += quote_qty;
    order.reserved -= match side {
        Side::Buy => quote_qty,
        Side::Sell => qty,
    };
    order.update_time = now_ms;
    order.status = if order.remaining_qty().is_zero() { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
    // What the rest of the order still needs reserved; a buy that executed below its limit gets
    // the difference back.
    let still_needed = match (order.status, side, order_type) {
        (OrderStatus::Filled, _, _) => Decimal::ZERO,
        (_, Side::Buy, OrderType::Market) => order.reserved,
        (_, Side::Buy, _) => limit * order.remaining_qty(),
        (_, Side::Sell, _) => order.remaining_qty(),
    };
    let surplus = (order.reserved - still_needed).max(Decimal::ZERO);
    order.reserved -= surplus;
    let reserve_asset = order.reserved_asset.clone();
    if order.status == OrderStatus::Filled {
        account.closed(index);
    }
    account.release(&reserve_asset, surplus);
    account.update_time = now_ms;
    let trade = SimTrade {
        symbol: symbol.rules.symbol.clone(),
        id: trade_id,
        order_id,
        price,
        qty,
        quote_qty,
        commission,
        commission_asset,
        time: now_ms,
        is_buyer: side == Side::Buy,
        is_maker,
    };
    account.outbox.order_event(&account.orders[index], Execution::Trade(&trade));
    account.trades.push(trade.clone());
    trade
}

/// Ends an open order without further execution and returns what it still reserved.
pub(crate) fn close(account: &mut Account, index: usize, status: OrderStatus, now_ms: i64) {
    let order = &mut account.orders[index];
    let reserved = std::mem::take(&mut order.reserved);
    let asset = order.reserved_asset.clone();
    order.status = status;
    order.update_time = now_ms;
    account.closed(index);
    account.release(&asset, reserved);
    account.update_time = now_ms;
    account.outbox.order_event(&account.orders[index], Execution::Ended);
}

/// Fees are rounded to 8 decimals, the precision of Binance's commission fields.
fn round_fee(fee: Decimal) -> Decimal {
    fee.round_dp_with_strategy(8, RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::SimConfig;

    /// One step of a random session against the engine.
    #[derive(Debug, Clone)]
    enum Step {
        /// A limit order `ticks` hundred-tick steps from the price (negative: below).
        Limit {
            buy: bool,
            ticks: i64,
            steps: u32,
            tif: u8,
        },
        Market {
            buy: bool,
            steps: u32,
        },
        MarketQuote {
            buy: bool,
            quote: u32,
        },
        Cancel {
            nth: usize,
        },
        /// Moves the price by `ticks` hundred-tick steps.
        Move {
            ticks: i64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (any::<bool>(), -20i64..20, 1u32..5_000, 0u8..3).prop_map(|(buy, ticks, steps, tif)| Step::Limit {
                buy,
                ticks,
                steps,
                tif
            }),
            (any::<bool>(), 1u32..5_000).prop_map(|(buy, steps)| Step::Market { buy, steps }),
            (any::<bool>(), 5u32..2_000).prop_map(|(buy, quote)| Step::MarketQuote { buy, quote }),
            (0usize..10).prop_map(|nth| Step::Cancel { nth }),
            (-30i64..30).prop_map(|ticks| Step::Move { ticks }),
        ]
    }

    fn apply(exchange: &mut Exchange, step: &Step, now: i64) {
        let price = exchange.symbols["BTCUSDT"].price;
        let side = |buy: bool| if buy { Side::Buy } else { Side::Sell };
        let order = |side, order_type, time_in_force, size, price| NewOrder {
            symbol: "BTCUSDT".to_owned(),
            side,
            order_type,
            time_in_force,
            size,
            price,
            client_order_id: None,
        };
        let qty = |steps: u32| Decimal::from(steps) * Decimal::new(1, 5);
        // Rejections (filters, balance) are part of the session; only the state after matters.
        let _ = match *step {
            Step::Limit { buy, ticks, steps, tif } => {
                let limit = (price + Decimal::from(ticks)).max(Decimal::ONE);
                let tif = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok][usize::from(tif)];
                exchange
                    .place(0, order(side(buy), OrderType::Limit, tif, OrderSize::Base(qty(steps)), Some(limit)), now)
                    .map(drop)
            }
            Step::Market { buy, steps } => exchange
                .place(0, order(side(buy), OrderType::Market, TimeInForce::Gtc, OrderSize::Base(qty(steps)), None), now)
                .map(drop),
            Step::MarketQuote { buy, quote } => exchange
                .place(
                    0,
                    order(side(buy), OrderType::Market, TimeInForce::Gtc, OrderSize::Quote(Decimal::from(quote)), None),
                    now,
                )
                .map(drop),
            Step::Cancel { nth } => {
                let open: Vec<u64> =
                    exchange.accounts[0].orders.iter().filter(|o| o.is_open()).map(|o| o.order_id).collect();
                match open.get(nth) {
                    Some(&id) => exchange.cancel(0, "BTCUSDT", &OrderSelector::Id(id), now).map(drop),
                    None => Ok(()),
                }
            }
            Step::Move { ticks } => {
                let _ = exchange.set_price("BTCUSDT", (price + Decimal::from(ticks * 10)).max(Decimal::ONE), now);
                Ok(())
            }
        };
    }

    proptest! {
        /// Whatever happens, balances never go negative, locked funds are exactly what open orders
        /// reserve, and every unit of each asset is accounted for by the trades and their fees.
        #[test]
        fn funds_are_conserved_and_reservations_add_up(steps in proptest::collection::vec(step(), 1..40)) {
            let config = SimConfig::default_for_tests();
            let mut exchange = Exchange::new(&config, 0);
            for (now, step) in (1..).zip(&steps) {
                apply(&mut exchange, step, now);
                let account = &exchange.accounts[0];
                for (asset, balance) in &account.balances {
                    prop_assert!(balance.free >= Decimal::ZERO && balance.locked >= Decimal::ZERO, "{asset}: {balance:?}");
                    let reserved: Decimal = account.orders.iter().filter(|o| o.is_open() && &o.reserved_asset == asset).map(|o| o.reserved).sum();
                    prop_assert_eq!(balance.locked, reserved, "{}", asset);
                }
                prop_assert!(account.orders.iter().filter(|o| !o.is_open()).all(|o| o.reserved.is_zero()));
                let open: Vec<usize> = (0..account.orders.len()).filter(|&i| account.orders[i].is_open()).collect();
                prop_assert_eq!(&account.open, &open, "the open-order index");
                let (mut base, mut quote) = (Decimal::new(5, 1), Decimal::new(10_000, 0));
                for trade in &account.trades {
                    let (base_fee, quote_fee) = if trade.commission_asset == "BTC" { (trade.commission, Decimal::ZERO) } else { (Decimal::ZERO, trade.commission) };
                    if trade.is_buyer {
                        base += trade.qty - base_fee;
                        quote -= trade.quote_qty;
                    } else {
                        base -= trade.qty;
                        quote += trade.quote_qty - quote_fee;
                    }
                }
                let total = |asset: &str| account.balances.get(asset).map_or(Decimal::ZERO, |b| b.free + b.locked);
                prop_assert_eq!(total("BTC"), base);
                prop_assert_eq!(total("USDT"), quote);
            }
        }
    }
}
