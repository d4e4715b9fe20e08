//! The state file: a restart keeps accounts, balances, open and partly filled orders, trades,
//! prices, candles, ids and the random walk's position; it is written periodically and atomically;
//! a file that is not a state file stops the start.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use exchange_sim::{Candle, ExchangeSim, OrderStatus, PricePath, SimConfig};
use reqwest::Method;
use serde_json::json;

use crate::{Client, KEY, d};

const T0: i64 = 1_700_000_040_000;
const MINUTE: i64 = 60_000;

fn config_with_state(path: &Path) -> SimConfig {
    let mut config = SimConfig::default_for_tests();
    config.frozen_clock_ms = Some(T0);
    config.state_file = Some(path.to_owned());
    config
}

#[tokio::test]
async fn a_restart_with_the_state_file_keeps_orders_balances_trades_prices_and_ids() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("sim-state.json");
    let sim = ExchangeSim::spawn(config_with_state(&path)).await.expect("starts");
    let client = Client::hmac(&sim);
    let placed = client
        .order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.10000&price=29000.00&newClientOrderId=keep-me")
        .await;
    assert_eq!(placed.status, 200, "{}", placed.json);
    let order_id = placed.json["orderId"].as_u64().expect("an order id");
    let candle = Candle::new(T0, d("30000"), d("30000"), d("28900"), d("29500"), d("0.04"));
    assert_eq!(sim.apply_candle("BTCUSDT", &candle), Ok(1));
    sim.set_price("ETHUSDT", d("2100")).expect("set");
    sim.advance_clock_ms(5_000);
    let balances = sim.balances(KEY);
    let trades = sim.trades(KEY);
    drop(sim);
    assert!(path.exists(), "written when the simulator stops");

    let sim = ExchangeSim::spawn(config_with_state(&path)).await.expect("restarts");
    assert_eq!(sim.server_time_ms(), T0 + 5_000, "the clock comes back as it was");
    let client = Client::hmac(&sim);
    let queried =
        client.signed(&sim, Method::GET, "/api/v3/order", &format!("symbol=BTCUSDT&orderId={order_id}")).await;
    assert_eq!(queried.status, 200, "{}", queried.json);
    assert_eq!(
        (queried.json["clientOrderId"].clone(), queried.json["status"].clone(), queried.json["executedQty"].clone()),
        (json!("keep-me"), json!("PARTIALLY_FILLED"), json!("0.04000000"))
    );
    let open = client.signed(&sim, Method::GET, "/api/v3/openOrders", "").await;
    assert_eq!(open.json.as_array().map(Vec::len), Some(1));
    assert_eq!(sim.balances(KEY), balances);
    assert_eq!(sim.trades(KEY), trades);
    assert_eq!(sim.price("BTCUSDT"), Some(d("29500")));
    assert_eq!(sim.price("ETHUSDT"), Some(d("2100")));
    assert_eq!(sim.candles("BTCUSDT"), [candle]);

    // Ids go on, and the order still fills and still releases its funds.
    let next =
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100&price=20000.00").await;
    assert_eq!(next.json["orderId"], order_id + 1);
    assert_eq!(sim.set_price("BTCUSDT", d("28000")), Ok(1));
    assert_eq!(sim.orders(KEY)[0].status, OrderStatus::Filled);
    assert_eq!(sim.trades(KEY).last().map(|trade| trade.id), Some(2), "trade ids go on");
}

#[tokio::test]
async fn the_random_walk_resumes_where_it_stopped() {
    let walking = |path: Option<&Path>| {
        let mut config = SimConfig::default_for_tests();
        config.frozen_clock_ms = Some(T0);
        config.state_file = path.map(Path::to_owned);
        config.symbols[0].path = PricePath::RandomWalk { volatility: d("0.002") };
        config
    };
    let straight = ExchangeSim::spawn(walking(None)).await.expect("starts");
    straight.advance_clock_ms(6 * MINUTE);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("walk.json");
    let first = ExchangeSim::spawn(walking(Some(&path))).await.expect("starts");
    first.advance_clock_ms(3 * MINUTE);
    assert_eq!(first.candles("BTCUSDT").len(), 3);
    drop(first);
    let second = ExchangeSim::spawn(walking(Some(&path))).await.expect("restarts");
    second.advance_clock_ms(3 * MINUTE);
    assert_eq!(second.candles("BTCUSDT"), straight.candles("BTCUSDT"), "the same six minutes");
    assert_eq!(second.price("BTCUSDT"), straight.price("BTCUSDT"));
}

#[tokio::test]
async fn the_state_file_is_written_while_the_simulator_runs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("periodic.json");
    let mut config = config_with_state(&path);
    config.state_save_every = Duration::from_millis(50);
    let sim = ExchangeSim::spawn(config).await.expect("starts");
    let placed = Client::hmac(&sim)
        .order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.10000&price=25000.00&newClientOrderId=periodic-1")
        .await;
    assert_eq!(placed.status, 200);
    // Waits for the writer to run (an event), never for a guessed time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        if written.contains("periodic-1") {
            break;
        }
        assert!(Instant::now() < deadline, "the state file was not written while running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("listable").map(|entry| entry.expect("an entry").file_name()).collect();
    assert!(names.iter().all(|name| name == "periodic.json" || name == "periodic.json.tmp"), "{names:?}");
    sim.save_state().expect("saves on demand");
    assert!(serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&path).expect("readable")).is_ok());
}

#[tokio::test]
async fn a_file_that_is_not_a_state_file_stops_the_start() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("garbage.json");
    std::fs::write(&path, "this is not JSON").expect("written");
    let error = ExchangeSim::spawn(config_with_state(&path)).await.expect_err("refused");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    assert_eq!(std::fs::read_to_string(&path).expect("readable"), "this is not JSON", "left as it was");

    let sim = ExchangeSim::spawn(SimConfig::default_for_tests()).await.expect("starts");
    assert_eq!(sim.save_state().map_err(|error| error.kind()), Err(io::ErrorKind::InvalidInput), "no state file");
}
