//! Price paths and `klines`: the random walk steps once per simulated minute and is reproducible
//! from the seed, a replay walks the price through its candles, resting orders a path crosses fill,
//! and `klines` serves what the path produced in Binance's array shape. Time moves only through the
//! handle's clock controls.

use std::sync::Arc;

use exchange_sim::{Candle, ExchangeSim, OrderStatus, PricePath, SimConfig};
use serde_json::{Value, json};

use crate::{Client, KEY, d, sim_with};

/// A minute boundary: 2023-11-14 22:14:00 UTC.
const T0: i64 = 1_700_000_040_000;
const MINUTE: i64 = 60_000;

fn walking(config: &mut SimConfig) {
    config.frozen_clock_ms = Some(T0);
    config.symbols[0].path = PricePath::RandomWalk { volatility: d("0.001") };
}

async fn walk_for(seed: u64, minutes: i64) -> Vec<Candle> {
    let sim = sim_with(|config| {
        walking(config);
        config.seed = seed;
    })
    .await;
    sim.advance_clock_ms(minutes * MINUTE);
    sim.candles("BTCUSDT")
}

#[tokio::test]
async fn the_random_walk_steps_once_per_simulated_minute() {
    let sim = sim_with(walking).await;
    assert_eq!(sim.price("BTCUSDT"), Some(d("30000")));
    sim.advance_clock_ms(MINUTE - 1);
    assert!(sim.candles("BTCUSDT").is_empty(), "the first minute is not over");
    assert_eq!(sim.price("BTCUSDT"), Some(d("30000")));
    sim.advance_clock_ms(1);
    let candles = sim.candles("BTCUSDT");
    assert_eq!(candles.len(), 1);
    assert_eq!((candles[0].open_time_ms, candles[0].open), (T0, d("30000")));
    assert_eq!(sim.price("BTCUSDT"), Some(candles[0].close));

    sim.advance_clock_ms(4 * MINUTE);
    let candles = sim.candles("BTCUSDT");
    assert_eq!(candles.len(), 5);
    for pair in candles.windows(2) {
        assert_eq!(pair[1].open, pair[0].close, "each minute opens at the last close");
        assert_eq!(pair[1].open_time_ms, pair[0].open_time_ms + MINUTE);
    }
    assert_ne!(candles[0].close, candles[4].close, "the price moves");
    assert!(candles.iter().all(|c| c.low > d("29000") && c.high < d("31000")), "0.1 % a minute stays close");
    assert_eq!(sim.price("ETHUSDT"), Some(d("2000")), "a symbol without a path stays still");
    assert!(sim.candles("ETHUSDT").is_empty());
}

#[tokio::test]
async fn the_walk_is_reproducible_from_the_seed() {
    let first = walk_for(42, 30).await;
    assert_eq!(first.len(), 30);
    assert_eq!(first, walk_for(42, 30).await);
    assert_ne!(first, walk_for(7, 30).await);
}

#[tokio::test]
async fn a_resting_order_the_walk_reaches_fills_at_its_limit() {
    let sim = sim_with(walking).await;
    let client = Client::hmac(&sim);
    let placed =
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01000&price=29990.00").await;
    assert_eq!(placed.json["status"], "NEW", "{}", placed.json);
    sim.advance_clock_ms(60 * MINUTE);
    let candles = sim.candles("BTCUSDT");
    let reached =
        candles.iter().position(|candle| candle.low <= d("29990")).expect("an hour of walk reaches 10 ticks down");
    let order = &sim.orders(KEY)[0];
    assert_eq!(order.status, OrderStatus::Filled);
    let trade = &sim.trades(KEY)[0];
    assert_eq!((trade.price, trade.qty, trade.is_maker), (d("29990"), d("0.01"), true));
    let reached_at = T0 + i64::try_from(reached).expect("small") * MINUTE + MINUTE;
    assert_eq!(trade.time, reached_at, "the fill carries the time of the step that reached it");
}

fn replay_candles() -> Arc<[Candle]> {
    let csv = "\
open_time,open,high,low,close,volume,close_time,quote_volume,trades,taker_base,taker_quote,ignore
1624559520000,34970.90000000,35047.03000000,34800.01000000,35047.03000000,1.5,1624559579999,52000.1,37,0.7,24000.5,0
1624559580000,35047.03,35100.00,34990.00,35010.50,2.25,1624559639999,78800,41,1.1,38500,0
1624559640000,35010.50,35020.00,34500.00,34600.00,0.001,1624559699999,34.6,3,0,0,0
";
    Candle::parse_csv(csv).expect("a kline file").into()
}

async fn replaying() -> ExchangeSim {
    sim_with(|config| {
        config.frozen_clock_ms = Some(T0);
        config.step_every = std::time::Duration::from_secs(1);
        config.symbols[0].path = PricePath::Replay { candles: replay_candles() };
    })
    .await
}

#[tokio::test]
async fn a_replay_walks_the_price_through_its_candles_and_fills_what_they_reach() {
    let sim = replaying().await;
    let client = Client::hmac(&sim);
    assert_eq!(sim.price("BTCUSDT"), Some(d("34970.90")), "a replay starts at its first open");
    let sell =
        client.order(&sim, "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.10000&price=35040.00").await;
    let buy =
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01000&price=34900.00").await;
    assert_eq!((sell.json["status"].clone(), buy.json["status"].clone()), (json!("NEW"), json!("NEW")));

    sim.advance_clock_ms(1_000);
    assert_eq!(sim.price("BTCUSDT"), Some(d("35047.03")), "the first candle's close");
    let orders = sim.orders(KEY);
    assert_eq!(orders[0].status, OrderStatus::Filled, "the high passed the sell");
    assert_eq!(orders[1].status, OrderStatus::Filled, "the low (34800.01) passed the buy");

    sim.advance_clock_ms(60_000);
    assert_eq!(sim.price("BTCUSDT"), Some(d("34600.00")), "the replay stops at its last close");
    assert_eq!(sim.candles("BTCUSDT").len(), 3);

    let klines = client.public("/api/v3/klines", "symbol=BTCUSDT&interval=1m").await;
    assert_eq!(klines.status, 200, "{}", klines.json);
    assert_eq!(klines.header("x-mbx-used-weight-1m"), Some("2"));
    assert_eq!(
        klines.json[0],
        json!([
            1_624_559_520_000_i64,
            "34970.90000000",
            "35047.03000000",
            "34800.01000000",
            "35047.03000000",
            "1.50000000",
            1_624_559_579_999_i64,
            "52000.10000000",
            37,
            "0.70000000",
            "24000.50000000",
            "0"
        ])
    );
    // Three-minute klines open at multiples of three minutes since the epoch: the first candle
    // ends one, the other two begin the next.
    let three = client.public("/api/v3/klines", "symbol=BTCUSDT&interval=3m").await;
    assert_eq!(three.json.as_array().map(Vec::len), Some(2), "{}", three.json);
    let row = &three.json[1];
    assert_eq!((row[0].clone(), row[6].clone()), (json!(1_624_559_580_000_i64), json!(1_624_559_759_999_i64)));
    assert_eq!(
        (row[1].clone(), row[2].clone(), row[3].clone(), row[4].clone()),
        (json!("35047.03000000"), json!("35100.00000000"), json!("34500.00000000"), json!("34600.00000000"))
    );
    assert_eq!((row[5].clone(), row[8].clone()), (json!("2.25100000"), json!(44)));
}

fn open_times(reply: &Value) -> Vec<i64> {
    reply.as_array().expect("an array").iter().map(|row| row[0].as_i64().expect("an open time")).collect()
}

#[tokio::test]
async fn klines_select_by_time_and_limit_and_refuse_what_binance_refuses() {
    let sim = sim_with(walking).await;
    sim.advance_clock_ms(10 * MINUTE);
    let client = Client::hmac(&sim);
    let get = |query: &'static str| client.public("/api/v3/klines", query);
    let all = get("symbol=BTCUSDT&interval=1m").await;
    assert_eq!(open_times(&all.json), (0..10).map(|m| T0 + m * MINUTE).collect::<Vec<_>>());
    let latest = get("symbol=BTCUSDT&interval=1m&limit=3").await;
    assert_eq!(open_times(&latest.json), [T0 + 7 * MINUTE, T0 + 8 * MINUTE, T0 + 9 * MINUTE]);
    let from = client
        .public("/api/v3/klines", &format!("symbol=BTCUSDT&interval=1m&startTime={}&limit=2", T0 + 2 * MINUTE))
        .await;
    assert_eq!(open_times(&from.json), [T0 + 2 * MINUTE, T0 + 3 * MINUTE]);
    let until = client
        .public("/api/v3/klines", &format!("symbol=BTCUSDT&interval=1m&endTime={}&limit=2", T0 + 4 * MINUTE))
        .await;
    assert_eq!(open_times(&until.json), [T0 + 3 * MINUTE, T0 + 4 * MINUTE]);
    let window = client
        .public(
            "/api/v3/klines",
            &format!("symbol=BTCUSDT&interval=5m&startTime={}&endTime={}", T0 - 10 * MINUTE, T0 + 5 * MINUTE),
        )
        .await;
    assert_eq!(window.json.as_array().map(Vec::len), Some(2), "{}", window.json);
    let row = &window.json[0];
    for field in [1, 2, 3, 4, 5, 7, 9, 10] {
        assert!(row[field].as_str().is_some_and(|s| s.contains('.')), "numbers travel as strings: {row}");
    }
    assert_eq!(get("symbol=ETHUSDT&interval=1m").await.json, json!([]), "no path, no candles yet");

    assert_eq!(get("symbol=BTCUSDT&interval=1s").await.code(), -1120);
    assert_eq!(get("symbol=BTCUSDT&interval=2m").await.code(), -1120);
    assert_eq!(get("symbol=BTCUSDT").await.code(), -1102);
    assert_eq!(get("interval=1m").await.code(), -1102);
    assert_eq!(get("symbol=NOPE&interval=1m").await.code(), -1121);
    assert_eq!(get("symbol=BTCUSDT&interval=1m&limit=0").await.code(), -1130);
    assert_eq!(get("symbol=BTCUSDT&interval=1m&startTime=soon").await.code(), -1100);
    assert_eq!(get("symbol=BTCUSDT&interval=1m&timeZone=8").await.code(), -1130);
    assert_eq!(get("symbol=BTCUSDT&interval=1m&timeZone=0").await.status, 200);
}

#[tokio::test]
async fn prices_set_by_hand_make_minute_candles_for_a_still_symbol() {
    let sim = sim_with(|config| config.frozen_clock_ms = Some(T0 + 5_000)).await;
    sim.set_price("ETHUSDT", d("2010")).expect("set");
    sim.set_price("ETHUSDT", d("1990")).expect("set");
    sim.set_price("ETHUSDT", d("2001")).expect("set");
    sim.advance_clock_ms(MINUTE);
    sim.set_price("ETHUSDT", d("2002")).expect("set");
    let reply = Client::hmac(&sim).public("/api/v3/klines", "symbol=ETHUSDT&interval=1m").await;
    let rows = reply.json.as_array().expect("an array");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0][0].clone(), rows[0][1].clone(), rows[0][2].clone(), rows[0][3].clone(), rows[0][4].clone()),
        (json!(T0), json!("2010.00000000"), json!("2010.00000000"), json!("1990.00000000"), json!("2001.00000000"))
    );
    let ticker = Client::hmac(&sim).public("/api/v3/ticker/price", "symbol=ETHUSDT").await;
    assert_eq!(ticker.json["price"], "2002.00000000");
}
