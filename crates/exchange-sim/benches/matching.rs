//! How many orders per second exchange-sim's matching takes, in process, through the code the
//! `POST /api/v3/order` and `DELETE /api/v3/order` handlers run once a request is authenticated
//! (`ExchangeSim::place_order_in_process` / `cancel_order_in_process`: type checks, order-count
//! limits, filters, balance reservation, matching, fills, fees), and the handle's `apply_candle`
//! (the code a price-path step runs) and `set_price`:
//! - (a) market orders that fill at once: over `n / 200` accounts, all from one account (whose
//!   history then grows to every order of the round), and over 2,000 accounts (the API key lookup
//!   is a scan of the accounts);
//! - (b) limit orders that rest;
//! - (c) resting limit orders that one candle fills (volume-limited path: reach, price-time sort,
//!   fills), and the same filled by one `set_price`;
//! - (d) cancels of resting orders.
//!
//! Baselines measured in the same run: inserting as many entries into a `BTreeMap` keyed like an
//! order book (price, id), and the bare Decimal arithmetic of one fill (quote amount, fee rounded
//! to 8 decimals, three balance updates). Also, for scale, market orders over HTTP on loopback
//! through the real signed endpoint (sequential, one keep-alive reqwest client in the same process,
//! HMAC-SHA256 signatures made here with aws-lc-rs).
//!
//! The simulator keeps Binance's limit of 200 open orders per symbol and account, so the orders go
//! round-robin over `n / 200` accounts; the order-count and request-weight limits (rate limits in
//! wall time, not matching) are lifted. Every figure starts from a fresh simulator with the real
//! clock and a still price (30000).
//!
//! Run: `cargo bench -p exchange-sim --bench matching`; without `--bench` it runs once with tiny
//! counts as a smoke test.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use exchange_sim::{
    Candle, ExchangeSim, OrderParams, OrderStatus, Side, SimAccount, SimConfig, SimKey, SimPermissions,
};
use rust_decimal::{Decimal, RoundingStrategy};
use tokio::runtime::Runtime;

const SYMBOL: &str = "BTCUSDT";
/// Binance's (and the simulator's default) open orders per symbol and account.
const OPEN_PER_ACCOUNT: usize = 200;
/// The most accounts a figure uses.
const MANY_ACCOUNTS: usize = 2_000;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (rounds, n, http_n): (usize, usize, usize) = if bench { (5, 20_000, 2_000) } else { (1, 400, 10) };
    let accounts = n.div_ceil(OPEN_PER_ACCOUNT);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    println!("{n} orders per figure over {accounts} accounts; HTTP: {http_n} sequential orders\n");

    let mut figures: Vec<[f64; 10]> = Vec::new();
    for round in 1..=rounds {
        let btree = btree_baseline(n);
        let arithmetic = fill_arithmetic_baseline(n);
        let market = market_orders(&runtime, n, accounts);
        let market_one_account = market_orders(&runtime, n, 1);
        let market_many_accounts = market_orders(&runtime, n, MANY_ACCOUNTS.min(n));
        let resting = resting_orders(&runtime, n, accounts);
        let candle = filled_by_candle(&runtime, n, accounts);
        let price_move = filled_by_set_price(&runtime, n, accounts);
        let cancels = cancels(&runtime, n, accounts);
        let http = runtime.block_on(market_orders_over_http(http_n, accounts.min(10)));
        let f = [
            btree,
            arithmetic,
            market,
            resting,
            candle,
            price_move,
            cancels,
            http,
            market_one_account,
            market_many_accounts,
        ];
        println!(
            "round {round}: btree insert {:.0} ns | fill arithmetic {:.0} ns | market {:.0} /s | resting {:.0} /s \
             | candle fills {:.0} /s | set_price fills {:.0} /s | cancels {:.0} /s | HTTP market {:.0} /s \
             | market, one account {:.0} /s | market, {MANY_ACCOUNTS} accounts {:.0} /s",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]
        );
        figures.push(f);
    }

    let names = [
        "baseline: BTreeMap insert, (price, id) key (ns/entry)",
        "baseline: Decimal arithmetic of one fill (ns)",
        "(a) market orders, filled at once (orders/s)",
        "(b) limit orders that rest (orders/s)",
        "(c) resting orders filled by one candle (fills/s)",
        "(c) resting orders filled by one set_price (fills/s)",
        "(d) cancels of resting orders (cancels/s)",
        "HTTP: market orders, sequential, loopback (orders/s)",
        "(a) market orders, all from one account (orders/s)",
        "(a) market orders over 2,000 accounts (orders/s)",
    ];
    println!("\nmedian of {rounds} rounds (min..max):");
    for (i, name) in names.iter().enumerate() {
        let (median, min, max) = spread(figures.iter().map(|f| f[i]).collect());
        println!("  {name:<56} {median:>12.0}  ({min:.0}..{max:.0})");
    }
    println!("\nper-order time / baseline, median of the per-round ratios (min..max):");
    let ratios: [(&str, usize, usize); 6] = [
        ("(a) market order / BTreeMap insert", 2, 0),
        ("(a) market order / fill arithmetic", 2, 1),
        ("(b) resting order / BTreeMap insert", 3, 0),
        ("(c) candle fill / fill arithmetic", 4, 1),
        ("(d) cancel / BTreeMap insert", 6, 0),
        ("HTTP market order / in-process market order", 7, 2),
    ];
    for (name, rate, base) in ratios {
        let per_round = figures
            .iter()
            .map(|f| {
                // A rate's time per operation in ns, over the baseline's (a time) or the other rate's.
                let time = 1e9 / f[rate];
                let base = if base < 2 { f[base] } else { 1e9 / f[base] };
                time / base
            })
            .collect();
        let (median, min, max) = spread(per_round);
        println!("  {name:<46} {median:>8.1}  ({min:.1}..{max:.1})");
    }
}

fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn key(account: usize) -> String {
    // Distinct from the first character on, as random keys are.
    format!("{account:04}BenchKey")
}

fn secret(account: usize) -> String {
    format!("bench-secret-{account}")
}

/// A fresh simulator with `accounts` HMAC accounts, each holding plenty of both assets.
fn sim(runtime: &Runtime, accounts: usize) -> ExchangeSim {
    runtime.block_on(ExchangeSim::spawn(config(accounts))).expect("the simulator starts")
}

/// The test symbols (BTCUSDT at 30000), `accounts` accounts, order and weight limits lifted.
fn config(accounts: usize) -> SimConfig {
    let mut config = SimConfig::default_for_tests();
    config.limits.orders_per_10s = u32::MAX;
    config.limits.orders_per_day = u32::MAX;
    config.limits.request_weight_per_minute = u32::MAX;
    config.accounts = (0..accounts)
        .map(|i| SimAccount {
            api_key: key(i),
            key: SimKey::Hmac { secret: secret(i) },
            permissions: SimPermissions::trading(),
            balances: vec![
                ("USDT".to_owned(), Decimal::new(1_000_000_000, 0)),
                ("BTC".to_owned(), Decimal::from(10_000)),
            ],
        })
        .collect();
    config
}

/// 0.001 BTC, about 30 USDT at the starting price.
fn qty() -> Decimal {
    Decimal::new(1, 3)
}

/// `n` resting limit buys spread over 28000.00..29999.99, for account `i % accounts`.
fn resting_params(n: usize) -> Vec<OrderParams> {
    (0..n)
        .map(|i| {
            let cents = 2_800_000 + i64::try_from(i % 200_000).unwrap_or(0);
            OrderParams::limit(SYMBOL, Side::Buy, qty(), Decimal::new(cents, 2))
        })
        .collect()
}

fn place_all(sim: &ExchangeSim, keys: &[String], orders: &[OrderParams], expected: OrderStatus) -> Vec<u64> {
    let placed: Vec<_> = orders
        .iter()
        .enumerate()
        .map(|(i, order)| sim.place_order_in_process(&keys[i % keys.len()], order).expect("placed"))
        .collect();
    assert!(placed.iter().all(|order| order.status == expected));
    placed.iter().map(|order| order.order_id).collect()
}

fn keys(accounts: usize) -> Vec<String> {
    (0..accounts).map(key).collect()
}

fn market_orders(runtime: &Runtime, n: usize, accounts: usize) -> f64 {
    let sim = sim(runtime, accounts);
    let keys = keys(accounts);
    let orders: Vec<OrderParams> = (0..n)
        .map(|i| {
            // Each account alternates buys and sells, so balances stay where they were.
            let side = if (i / accounts).is_multiple_of(2) { Side::Buy } else { Side::Sell };
            OrderParams::market(SYMBOL, side, qty())
        })
        .collect();
    let start = Instant::now();
    place_all(&sim, &keys, &orders, OrderStatus::Filled);
    per_second(n, start.elapsed())
}

fn resting_orders(runtime: &Runtime, n: usize, accounts: usize) -> f64 {
    let sim = sim(runtime, accounts);
    let orders = resting_params(n);
    let start = Instant::now();
    place_all(&sim, &keys(accounts), &orders, OrderStatus::New);
    per_second(n, start.elapsed())
}

fn filled_by_candle(runtime: &Runtime, n: usize, accounts: usize) -> f64 {
    let sim = sim(runtime, accounts);
    place_all(&sim, &keys(accounts), &resting_params(n), OrderStatus::New);
    let open = |v: i64| Decimal::from(v);
    // Falling: open → high → low → close; the low reaches every order, the volume covers them all.
    let candle = Candle::new(0, open(30_000), open(30_000), open(27_000), open(27_500), Decimal::from(1_000_000));
    let start = Instant::now();
    let fills = sim.apply_candle(SYMBOL, &candle).expect("applied");
    let elapsed = start.elapsed();
    assert_eq!(fills, n);
    per_second(n, elapsed)
}

fn filled_by_set_price(runtime: &Runtime, n: usize, accounts: usize) -> f64 {
    let sim = sim(runtime, accounts);
    place_all(&sim, &keys(accounts), &resting_params(n), OrderStatus::New);
    let start = Instant::now();
    let filled = sim.set_price(SYMBOL, Decimal::from(27_500)).expect("moved");
    let elapsed = start.elapsed();
    assert_eq!(filled, n);
    per_second(n, elapsed)
}

fn cancels(runtime: &Runtime, n: usize, accounts: usize) -> f64 {
    let sim = sim(runtime, accounts);
    let keys = keys(accounts);
    let ids = place_all(&sim, &keys, &resting_params(n), OrderStatus::New);
    let start = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let canceled = sim.cancel_order_in_process(&keys[i % accounts], SYMBOL, *id).expect("canceled");
        debug_assert_eq!(canceled.status, OrderStatus::Canceled);
    }
    per_second(n, start.elapsed())
}

/// Inserting `n` entries into a `BTreeMap` keyed by (price, id), as an order book would: ns each.
fn btree_baseline(n: usize) -> f64 {
    let prices: Vec<Decimal> = (0..n).map(|i| Decimal::new(2_800_000 + (i as i64 * 7_919) % 200_000, 2)).collect();
    let start = Instant::now();
    let mut book = BTreeMap::new();
    for (id, price) in prices.iter().enumerate() {
        book.insert((*price, id), qty());
    }
    black_box(&book);
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// The Decimal arithmetic of one fill, as the engine does it: ns each.
fn fill_arithmetic_baseline(n: usize) -> f64 {
    let (price, qty, fee_rate) = (Decimal::new(2_999_999, 2), qty(), Decimal::new(1, 3));
    let (mut quote_free, mut base_free, mut quote_locked) =
        (Decimal::from(1_000_000_000), Decimal::ZERO, Decimal::from(1_000_000_000));
    let start = Instant::now();
    for _ in 0..n {
        let (price, qty) = (black_box(price), black_box(qty));
        let quote_qty = price * qty;
        let fee = (qty * fee_rate).round_dp_with_strategy(8, RoundingStrategy::MidpointAwayFromZero);
        quote_locked -= quote_qty;
        base_free += qty - fee;
        quote_free += black_box(Decimal::ZERO);
    }
    black_box((quote_free, base_free, quote_locked));
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// `n` market orders over HTTP, one after another on one keep-alive connection, round-robin over
/// `accounts` accounts (alternating buys and sells): orders per second of wall time.
async fn market_orders_over_http(n: usize, accounts: usize) -> f64 {
    let sim = ExchangeSim::spawn(config(accounts)).await.expect("the simulator starts");
    let hmac_keys: Vec<hmac::Key> =
        (0..accounts).map(|i| hmac::Key::new(hmac::HMAC_SHA256, secret(i).as_bytes())).collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client");
    let url = format!("{}/api/v3/order", sim.base_url());
    let start = Instant::now();
    for i in 0..n {
        let account = i % accounts;
        let side = if (i / accounts).is_multiple_of(2) { "BUY" } else { "SELL" };
        let payload = format!(
            "symbol={SYMBOL}&side={side}&type=MARKET&quantity=0.00100&newOrderRespType=FULL&timestamp={}",
            sim.server_time_ms()
        );
        let tag = hmac::sign(&hmac_keys[account], payload.as_bytes());
        let body = format!("{payload}&signature={}", hex(tag.as_ref()));
        let response = client
            .post(&url)
            .header("X-MBX-APIKEY", key(account))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status().as_u16(), 200);
        black_box(response.bytes().await.expect("a body"));
    }
    per_second(n, start.elapsed())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
