//! Partial fills: a candle fills the resting orders it reaches at their limit price, in price-time
//! priority across accounts, together at most its volume; orders go `PARTIALLY_FILLED` then
//! `FILLED`, each fill with its fee and trade, and locked funds follow.

use exchange_sim::{Candle, ExchangeSim, OrderStatus, SimAccount, SimBalance, SimKey, SimPermissions};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::{Client, KEY, Signer, d, sim_with};

const OTHER_KEY: &str = "OtherAccount01";
const OTHER_SECRET: &str = "other-secret";
const T0: i64 = 1_700_000_040_000;

fn candle(open: &str, high: &str, low: &str, close: &str, volume: &str) -> Candle {
    Candle::new(T0, d(open), d(high), d(low), d(close), d(volume))
}

async fn query(sim: &ExchangeSim, client: &Client, order_id: u64) -> Value {
    client.signed(sim, Method::GET, "/api/v3/order", &format!("symbol=BTCUSDT&orderId={order_id}")).await.json
}

fn limit(side: &str, qty: &str, price: &str) -> String {
    format!("symbol=BTCUSDT&side={side}&type=LIMIT&timeInForce=GTC&quantity={qty}&price={price}")
}

#[tokio::test]
async fn a_candle_fills_resting_orders_up_to_its_volume_in_price_time_priority() {
    let sim = sim_with(|config| {
        config.frozen_clock_ms = Some(T0);
        config.accounts.push(SimAccount {
            api_key: OTHER_KEY.to_owned(),
            key: SimKey::Hmac { secret: OTHER_SECRET.to_owned() },
            permissions: SimPermissions::trading(),
            balances: vec![("USDT".to_owned(), Decimal::from(1_000))],
        });
    })
    .await;
    let alice = Client::hmac(&sim);
    let bob = Client::new(&sim, Some(OTHER_KEY), Signer::Hmac(OTHER_SECRET.to_owned()));
    let first = alice.order(&sim, &limit("BUY", "0.03000", "29900.00")).await;
    let better = bob.order(&sim, &limit("BUY", "0.02000", "29950.00")).await;
    let later = alice.order(&sim, &limit("BUY", "0.01000", "29900.00")).await;
    let far = alice.order(&sim, &limit("BUY", "0.01000", "29000.00")).await;
    let id = |reply: &crate::Reply| reply.json["orderId"].as_u64().expect("an order id");
    assert_eq!(sim.balances(KEY)["USDT"], SimBalance { free: d("8514"), locked: d("1486") });

    // Falling candle: open, high, low, close. It reaches 29950 before 29900 and never 29000.
    let fills = sim.apply_candle("BTCUSDT", &candle("30000", "30010", "29850", "29880", "0.045")).expect("applied");
    assert_eq!(fills, 2, "bob's better price first, then alice's older order; the volume ends there");
    assert_eq!(sim.price("BTCUSDT"), Some(d("29880")));

    let bob_order = query(&sim, &bob, id(&better)).await;
    assert_eq!((bob_order["status"].clone(), bob_order["executedQty"].clone()), (json!("FILLED"), json!("0.02000000")));
    let partial = query(&sim, &alice, id(&first)).await;
    assert_eq!(
        (partial["status"].clone(), partial["executedQty"].clone(), partial["cummulativeQuoteQty"].clone()),
        (json!("PARTIALLY_FILLED"), json!("0.02500000"), json!("747.50000000"))
    );
    assert_eq!(query(&sim, &alice, id(&later)).await["status"], "NEW", "same price, placed later: nothing left for it");
    assert_eq!(query(&sim, &alice, id(&far)).await["status"], "NEW");
    let open = alice.signed(&sim, Method::GET, "/api/v3/openOrders", "symbol=BTCUSDT").await;
    assert_eq!(open.json.as_array().map(Vec::len), Some(3));

    // 0.025 BTC at 29900 came out of the locked quote; the fee is in the BTC received.
    assert_eq!(sim.balances(KEY)["USDT"], SimBalance { free: d("8514"), locked: d("738.5") });
    assert_eq!(sim.balances(KEY)["BTC"], SimBalance { free: d("0.524975"), locked: d("0") });
    let trades = alice.signed(&sim, Method::GET, "/api/v3/myTrades", "symbol=BTCUSDT").await;
    assert_eq!(trades.json.as_array().map(Vec::len), Some(1));
    let trade = &trades.json[0];
    assert_eq!(
        (trade["price"].clone(), trade["qty"].clone(), trade["commission"].clone(), trade["isMaker"].clone()),
        (json!("29900.00000000"), json!("0.02500000"), json!("0.00002500"), json!(true))
    );

    // The next candle passes again: the rest of the first order, then the later one.
    let fills = sim.apply_candle("BTCUSDT", &candle("29880", "29905", "29870", "29890", "1")).expect("applied");
    assert_eq!(fills, 2);
    assert_eq!(query(&sim, &alice, id(&first)).await["status"], "FILLED");
    assert_eq!(query(&sim, &alice, id(&later)).await["status"], "FILLED");
    let first_trades =
        alice.signed(&sim, Method::GET, "/api/v3/myTrades", &format!("symbol=BTCUSDT&orderId={}", id(&first))).await;
    let qtys: Vec<_> = first_trades.json.as_array().expect("trades").iter().map(|t| t["qty"].clone()).collect();
    assert_eq!(qtys, [json!("0.02500000"), json!("0.00500000")], "one trade and one fee per fill");
    assert_eq!(sim.balances(KEY)["USDT"], SimBalance { free: d("8514"), locked: d("290") }, "only the far order left");
    assert_eq!(sim.orders(KEY).iter().filter(|order| order.status == OrderStatus::Filled).count(), 2);
}

#[tokio::test]
async fn sells_fill_on_the_way_up_and_a_candle_without_volume_fills_nothing() {
    let sim = sim_with(|config| config.frozen_clock_ms = Some(T0)).await;
    let client = Client::hmac(&sim);
    let sell = client.order(&sim, &limit("SELL", "0.01000", "30100.00")).await;
    assert_eq!(sim.balances(KEY)["BTC"], SimBalance { free: d("0.49"), locked: d("0.01") });
    assert_eq!(sim.apply_candle("BTCUSDT", &candle("30000", "30200", "29990", "30150", "0")), Ok(0));
    assert_eq!(sim.orders(KEY)[0].status, OrderStatus::New, "no volume, no fill");
    assert_eq!(sim.apply_candle("BTCUSDT", &candle("30150", "30160", "30050", "30080", "0.004")), Ok(1));
    let order = &sim.orders(KEY)[0];
    assert_eq!((order.status, order.executed_qty), (OrderStatus::PartiallyFilled, d("0.004")));
    assert_eq!(sim.balances(KEY)["BTC"], SimBalance { free: d("0.49"), locked: d("0.006") });
    // 0.004 x 30100 = 120.4 USDT, less 0.1 %.
    assert_eq!(sim.balances(KEY)["USDT"].free, d("10000") + d("120.4") - d("0.1204"));
    let canceled = client
        .signed(&sim, Method::DELETE, "/api/v3/order", &format!("symbol=BTCUSDT&orderId={}", sell.json["orderId"]))
        .await;
    assert_eq!(
        (canceled.json["status"].clone(), canceled.json["executedQty"].clone()),
        (json!("CANCELED"), json!("0.00400000"))
    );
    assert_eq!(sim.balances(KEY)["BTC"], SimBalance { free: d("0.496"), locked: d("0") }, "the rest comes back");
}

#[tokio::test]
async fn a_bad_candle_or_symbol_is_refused() {
    let sim = sim_with(|_| {}).await;
    assert!(sim.apply_candle("BTCUSDT", &candle("100", "90", "80", "85", "1")).is_err(), "high below open");
    assert!(sim.apply_candle("NOPE", &candle("100", "110", "90", "95", "1")).is_err());
    assert_eq!(sim.price("BTCUSDT"), Some(d("30000")));
}
