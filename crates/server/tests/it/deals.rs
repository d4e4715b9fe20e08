//! Bots trading real deals end to end: the app's runner, the real Binance adapter over HTTP, and the
//! paper exchange-sim moving along a price path the test replays. Each test waits for conditions
//! with a deadline (the runner cycles every 50 ms here), never for a fixed time.

use std::collections::BTreeSet;
use std::time::Duration;

use domain::Decimal;
use serde_json::{Value, json};

use crate::{Backend, PASSWORD, TestApp, logs, spawn_app_with};

pub(crate) async fn app(backend: Backend) -> TestApp {
    logs::install();
    spawn_app_with(backend, |config| config.engine_interval = Duration::from_millis(50)).await
}

pub(crate) fn dec(value: &Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("a decimal string, got {value}")).parse().expect("a decimal")
}

pub(crate) async fn paper_account(app: &TestApp, cookie: &str, balances: Value) -> String {
    let body = json!({"exchange": "paper", "name": "Paper", "balances": balances});
    let created = app.post("/api/v1/exchange-accounts", body, Some(cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap().to_owned()
}

/// Example A of spec/dca.md scaled to BTC at 30,000: BO 100, SO 100, 3 safety orders 1 % apart
/// (two on the book), TP 1 % of the total; started by hand.
pub(crate) fn bot_body(account: &str, changes: Value) -> Value {
    let mut body = json!({
        "type": "dca", "name": "Example A", "exchange_account_id": account, "pairs": ["USDT_BTC"],
        "enabled": true,
        "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
        "active_safety_orders_count": 2, "safety_order_step_percentage": "1",
        "take_profit": "1", "take_profit_type": "total", "strategy": "long",
        "strategy_list": [{"strategy": "manual"}],
    });
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

pub(crate) async fn create_bot(app: &TestApp, cookie: &str, body: Value) -> String {
    let created = app.post("/api/v1/bots", body, Some(cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["webhook_secret"].as_str().map(str::len), Some(64));
    created.json["id"].as_str().unwrap().to_owned()
}

async fn start(app: &TestApp, cookie: &str, bot: &str) -> String {
    let started = app.post(&format!("/api/v1/bots/{bot}/start_new_deal"), json!({}), Some(cookie)).await;
    assert_eq!(started.status, 200, "{}", started.text);
    started.json["id"].as_str().unwrap().to_owned()
}

/// Polls the deal until `done` holds, for at most 20 s.
pub(crate) async fn wait_deal(
    app: &TestApp,
    cookie: &str,
    deal: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = app.get(&format!("/api/v1/deals/{deal}?reveal=true"), Some(cookie)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        if done(&reply.json) {
            return reply.json;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited 20 s for {what}; the deal is {:#}", reply.json);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(crate) fn orders<'a>(deal: &'a Value, role: &str) -> Vec<&'a Value> {
    deal["orders"].as_array().unwrap().iter().filter(|o| o["role"] == role).collect()
}

pub(crate) fn count(deal: &Value, role: &str, state: &str) -> usize {
    orders(deal, role).iter().filter(|o| o["state"] == state).count()
}

/// The venue holds each client order id once, and none of the deal's orders rests on the book.
fn assert_no_duplicates_and_nothing_left(app: &TestApp, deal: &Value) {
    assert_sent_once(app, deal, true);
}

/// The venue holds each client order id of the deal once (`settled`: and none rests on the book).
pub(crate) fn assert_sent_once(app: &TestApp, deal: &Value, settled: bool) {
    let ids: Vec<String> =
        deal["orders"].as_array().unwrap().iter().map(|o| o["client_order_id"].as_str().unwrap().to_owned()).collect();
    let mut seen = BTreeSet::new();
    for key in app.venue.paper.api_keys() {
        for order in app.venue.paper.orders(&key) {
            if ids.contains(&order.client_order_id) {
                assert!(
                    seen.insert(order.client_order_id.clone()),
                    "order {} reached the venue twice",
                    order.client_order_id
                );
                assert!(
                    !settled
                        || !matches!(
                            order.status,
                            exchange_sim::OrderStatus::New | exchange_sim::OrderStatus::PartiallyFilled
                        ),
                    "order {} is still open: {order:?}",
                    order.client_order_id
                );
            }
        }
    }
    let sent: BTreeSet<String> = deal["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["state"] != "not_placed" && o["state"] != "rejected")
        .map(|o| o["client_order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, sent, "every order the deal sent is at the venue, once");
}

/// Replays one one-minute candle from the market's price to `value` (large volume, so no resting
/// order is left unfilled for want of it): the simulator fills what the candle reaches.
pub(crate) fn price(app: &TestApp, value: i64) {
    let to = Decimal::new(value, 0);
    let from = app.venue.paper.price("BTCUSDT").expect("the paper market lists BTCUSDT");
    let minute = app.venue.paper.server_time_ms().div_euclid(60_000) * 60_000;
    let candle = exchange_sim::Candle::new(minute, from, from.max(to), from.min(to), to, Decimal::new(1_000, 0));
    app.venue.paper.apply_candle("BTCUSDT", &candle).expect("the paper market replays the candle");
}

pub async fn a_long_deal_completes_at_take_profit_after_safety_orders(backend: Backend) {
    let app = app(backend).await;
    let cookie = app.signed_in("long@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let bot = create_bot(&app, &cookie, bot_body(&account, json!({}))).await;
    let deal = start(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the ladder and the take profit", |d| {
        d["status"] == "bought" && count(d, "safety", "open") == 2 && count(d, "take_profit", "open") == 1
    })
    .await;
    assert_eq!(dec(&bought["base_price"]), Decimal::new(30_000, 0));
    let prices: Vec<Decimal> = orders(&bought, "safety").iter().map(|o| dec(&o["price"])).collect();
    assert_eq!(prices, [Decimal::new(29_700, 0), Decimal::new(29_400, 0)]);

    price(&app, 29_650);
    let after_so = wait_deal(&app, &cookie, &deal, "SO1 filled and the take profit moved", |d| {
        count(d, "safety", "filled") == 1
            && count(d, "take_profit", "canceled") == 1
            && count(d, "take_profit", "open") == 1
            && count(d, "safety", "open") == 2
    })
    .await;
    let tps = orders(&after_so, "take_profit");
    assert!(dec(&tps[1]["price"]) < dec(&tps[0]["price"]), "the average fell, so did the take profit");
    assert!(dec(&tps[1]["quantity"]) > dec(&tps[0]["quantity"]));

    price(&app, 31_000);
    let done = wait_deal(&app, &cookie, &deal, "completion", |d| d["status"] == "completed").await;
    assert_eq!(done["close_reason"], "take_profit");
    assert!(dec(&done["profit_quote"]) > Decimal::ZERO, "{done:#}");
    wait_deal(&app, &cookie, &deal, "the last safety orders canceled", |d| count(d, "safety", "open") == 0).await;
    let done = app.get(&format!("/api/v1/deals/{deal}?reveal=true"), Some(&cookie)).await.json;
    assert_no_duplicates_and_nothing_left(&app, &done);

    // The bot's totals and the deal list agree.
    let shown = app.get(&format!("/api/v1/bots/{bot}?reveal=true"), Some(&cookie)).await.json;
    assert_eq!(shown["finished_deals"], 1);
    assert_eq!(dec(&shown["profit_quote"]), dec(&done["profit_quote"]));
    let listed = app.get(&format!("/api/v1/deals?bot_id={bot}&status=completed"), Some(&cookie)).await.json;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

crate::on_both!(a_long_deal_completes_at_take_profit_after_safety_orders);

#[tokio::test]
async fn a_short_deal_sells_first_and_buys_back_lower() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("short@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "1000", "BTC": "1"})).await;
    price(&app, 30_000);
    let bot = create_bot(&app, &cookie, bot_body(&account, json!({"strategy": "short"}))).await;
    let deal = start(&app, &cookie, &bot).await;
    let sold = wait_deal(&app, &cookie, &deal, "the ladder above", |d| {
        d["status"] == "bought" && count(d, "safety", "open") == 2 && count(d, "take_profit", "open") == 1
    })
    .await;
    assert!(orders(&sold, "safety").iter().all(|o| o["side"] == "sell" && dec(&o["price"]) > Decimal::new(30_000, 0)));
    assert!(orders(&sold, "take_profit").iter().all(|o| o["side"] == "buy"));
    price(&app, 30_350);
    wait_deal(&app, &cookie, &deal, "SO1 filled", |d| {
        count(d, "safety", "filled") == 1
            && count(d, "take_profit", "open") == 1
            && count(d, "take_profit", "canceled") == 1
    })
    .await;
    price(&app, 29_000);
    let done = wait_deal(&app, &cookie, &deal, "completion", |d| d["status"] == "completed").await;
    assert!(dec(&done["profit_quote"]) > Decimal::ZERO, "{done:#}");
    wait_deal(&app, &cookie, &deal, "nothing left open", |d| count(d, "safety", "open") == 0).await;
    let done = app.get(&format!("/api/v1/deals/{deal}?reveal=true"), Some(&cookie)).await.json;
    assert_no_duplicates_and_nothing_left(&app, &done);
}

#[tokio::test]
async fn a_stop_loss_closes_the_deal_at_market() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("stop@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let bot = create_bot(&app, &cookie, bot_body(&account, json!({"stop_loss_percentage": "2"}))).await;
    let deal = start(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &deal, "bought", |d| d["status"] == "bought" && count(d, "take_profit", "open") == 1)
        .await;
    price(&app, 29_350);
    wait_deal(&app, &cookie, &deal, "two safety orders filled", |d| count(d, "safety", "filled") == 2).await;
    price(&app, 28_500);
    let done = wait_deal(&app, &cookie, &deal, "the stop loss", |d| d["status"] == "panic_sold").await;
    assert_eq!(done["close_reason"], "stop_loss");
    assert!(dec(&done["profit_quote"]) < Decimal::ZERO, "{done:#}");
    assert_eq!(done["trailing_deviation"], Value::Null, "no trailing take profit configured");
    assert_eq!(count(&done, "close", "filled"), 1);
    assert_no_duplicates_and_nothing_left(&app, &done);
}

#[tokio::test]
async fn a_stop_loss_of_type_disable_bot_disables_its_bot() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("stopdisable@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let changes = json!({"stop_loss_percentage": "2", "stop_loss_type": "stop_loss_and_disable_bot"});
    let bot = create_bot(&app, &cookie, bot_body(&account, changes)).await;
    let deal = start(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &deal, "bought", |d| d["status"] == "bought" && count(d, "take_profit", "open") == 1)
        .await;
    price(&app, 28_500);
    let done = wait_deal(&app, &cookie, &deal, "the stop loss", |d| d["status"] == "panic_sold").await;
    assert_eq!(done["close_reason"], "stop_loss");
    let shown = app.get(&format!("/api/v1/bots/{bot}"), Some(&cookie)).await.json;
    assert_eq!((&shown["enabled"], &shown["disabled_reason"]), (&json!(false), &json!("stop_loss")), "{shown:#}");
    let again = app.post(&format!("/api/v1/bots/{bot}/start_new_deal"), json!({}), Some(&cookie)).await;
    assert_eq!(again.status, 409, "a disabled bot starts no deal: {}", again.text);
    assert_no_duplicates_and_nothing_left(&app, &done);
}

/// Two take-profit steps, the last one trailing: the first sells half at +1 % as a limit order and
/// stops the safety orders; the second waits past +2 %, follows the peak and sells at market 0.5 %
/// below it.
#[tokio::test]
async fn take_profit_steps_with_a_trailing_last_step() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("steps@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let changes = json!({
        "take_profit": null,
        "take_profit_steps": [
            {"amount_percentage": "50", "profit_percentage": "1"},
            {"amount_percentage": "50", "profit_percentage": "2"},
        ],
        "trailing_enabled": true,
        "trailing_deviation": "0.5",
    });
    let bot = create_bot(&app, &cookie, bot_body(&account, changes)).await;
    let deal = start(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the first step on the book", |d| {
        d["status"] == "bought" && count(d, "take_profit", "open") == 1 && count(d, "safety", "open") == 2
    })
    .await;
    let targets = bought["take_profit_targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{bought:#}");
    assert_eq!((&bought["trailing_deviation"], &bought["trailing_peak"]), (&json!("0.5"), &Value::Null));
    let first = orders(&bought, "take_profit")[0];
    assert_eq!((first["safety_index"].as_u64(), first["type"].as_str()), (Some(1), Some("limit")));
    price(&app, 30_350);
    wait_deal(&app, &cookie, &deal, "the first step sold, the safety orders canceled", |d| {
        count(d, "take_profit", "filled") == 1 && count(d, "safety", "open") == 0 && d["status"] == "bought"
    })
    .await;
    price(&app, 30_700);
    wait_deal(&app, &cookie, &deal, "trailing armed", |d| d["trailing_peak"].is_string()).await;
    price(&app, 30_650);
    let still = app.get(&format!("/api/v1/deals/{deal}?reveal=true"), Some(&cookie)).await.json;
    assert_eq!(still["status"], "bought", "0.16 % off the peak: still trailing");
    price(&app, 30_500);
    let done = wait_deal(&app, &cookie, &deal, "completion", |d| d["status"] == "completed").await;
    let tps = orders(&done, "take_profit");
    assert_eq!(tps.len(), 2, "{done:#}");
    assert_eq!((tps[1]["safety_index"].as_u64(), tps[1]["type"].as_str()), (Some(2), Some("market")));
    assert!(dec(&done["profit_quote"]) > Decimal::ZERO, "{done:#}");
    // What is left is below the market's quantity step (0.00001 BTC): dust no order can sell.
    assert!(dec(&done["position_base"]) < Decimal::new(1, 5), "{done:#}");
    assert_no_duplicates_and_nothing_left(&app, &done);
}

/// The runner asks the venue without holding its lock: while one account's order placement hangs
/// at the venue (5 s to the client's timeout, then lookups by client order id), another user's bot
/// starts a deal, buys and places its ladder. Before, the hung request held every bot of the node.
#[tokio::test]
async fn a_hung_order_of_one_account_does_not_stall_another() {
    let app = app(Backend::Sqlite).await;
    let alice = app.signed_in("alice-hang@example.com", PASSWORD).await;
    let bob = app.signed_in("bob-hang@example.com", PASSWORD).await;
    let alice_account = paper_account(&app, &alice, json!({"USDT": "10000"})).await;
    let bob_account = paper_account(&app, &bob, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let alice_bot = create_bot(&app, &alice, bot_body(&alice_account, json!({}))).await;
    let bob_bot = create_bot(&app, &bob, bot_body(&bob_account, json!({}))).await;
    app.venue.paper.inject(exchange_sim::Fault::Timeout { path: "/api/v3/order".to_owned() });
    let alice_path = format!("/api/v1/bots/{alice_bot}/start_new_deal");
    let alice_start = app.post(&alice_path, json!({}), Some(&alice));
    let bob_trades = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while app.venue.paper.pending_faults() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "Alice's base order never reached the venue");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let deal = start(&app, &bob, &bob_bot).await;
        let bought = wait_deal(&app, &bob, &deal, "Bob's deal bought with its ladder", |d| {
            d["status"] == "bought" && count(d, "safety", "open") == 2 && count(d, "take_profit", "open") == 1
        })
        .await;
        let alice_deals = app.get(&format!("/api/v1/deals?bot_id={alice_bot}"), Some(&alice)).await.json;
        let alice_deals = alice_deals.as_array().unwrap();
        assert_eq!(alice_deals.len(), 1);
        assert_eq!(
            (&alice_deals[0]["status"], &alice_deals[0]["orders"][0]["state"]),
            (&json!("base_order_placed"), &json!("pending")),
            "Alice's placement is still hanging while Bob traded"
        );
        (bought, alice_deals[0]["id"].as_str().unwrap().to_owned())
    };
    let (alice_started, (bob_deal, alice_deal)) = tokio::join!(alice_start, bob_trades);
    assert_eq!(alice_started.status, 200, "{}", alice_started.text);
    let alice_bought = wait_deal(&app, &alice, &alice_deal, "Alice's deal bought after the hang", |d| {
        d["status"] == "bought" && count(d, "take_profit", "open") == 1
    })
    .await;
    assert_sent_once(&app, &alice_bought, false);
    assert_sent_once(&app, &bob_deal, false);
}

#[tokio::test]
async fn close_at_market_and_cancel_by_hand() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("hands@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let bot =
        create_bot(&app, &cookie, bot_body(&account, json!({"max_active_deals": 2, "allowed_deals_on_same_pair": 2})))
            .await;

    let first = start(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &first, "bought", |d| d["status"] == "bought" && count(d, "take_profit", "open") == 1)
        .await;
    let closing = app.post(&format!("/api/v1/deals/{first}/close_at_market"), json!({}), Some(&cookie)).await;
    assert_eq!(closing.status, 200, "{}", closing.text);
    let closed = wait_deal(&app, &cookie, &first, "closed at market", |d| d["status"] == "panic_sold").await;
    assert_eq!(closed["close_reason"], "closed_at_market");
    assert_no_duplicates_and_nothing_left(&app, &closed);
    let again = app.post(&format!("/api/v1/deals/{first}/close_at_market"), json!({}), Some(&cookie)).await;
    assert_eq!((again.status, again.code()), (409, "deal_not_open"), "{}", again.text);

    let second = start(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &second, "bought", |d| d["status"] == "bought" && count(d, "take_profit", "open") == 1)
        .await;
    let canceling = app.post(&format!("/api/v1/deals/{second}/cancel"), json!({}), Some(&cookie)).await;
    assert_eq!(canceling.status, 200, "{}", canceling.text);
    let canceled = wait_deal(&app, &cookie, &second, "canceled", |d| d["status"] == "canceled").await;
    assert_eq!(count(&canceled, "close", "filled"), 0, "a canceled deal sells nothing");
    assert!(dec(&canceled["position_base"]) > Decimal::ZERO, "the position stays");
    assert_no_duplicates_and_nothing_left(&app, &canceled);
}

#[tokio::test]
async fn panic_sell_all_and_cancel_all_deals_of_a_bot() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("all@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let bot =
        create_bot(&app, &cookie, bot_body(&account, json!({"max_active_deals": 2, "allowed_deals_on_same_pair": 2})))
            .await;
    for (action, status) in [("panic_sell_all_deals", "panic_sold"), ("cancel_all_deals", "canceled")] {
        let deals = [start(&app, &cookie, &bot).await, start(&app, &cookie, &bot).await];
        for deal in &deals {
            wait_deal(&app, &cookie, deal, "bought", |d| count(d, "take_profit", "open") == 1).await;
        }
        let reply = app.post(&format!("/api/v1/bots/{bot}/{action}"), json!({}), Some(&cookie)).await;
        assert_eq!((reply.status, &reply.json["deals"]), (200, &json!(2)), "{}", reply.text);
        for deal in &deals {
            let done = wait_deal(&app, &cookie, deal, status, |d| d["status"] == status).await;
            assert_no_duplicates_and_nothing_left(&app, &done);
        }
    }
}

#[tokio::test]
async fn the_order_guard_refuses_an_order_outside_policy_and_stops_the_bot() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("guard@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let policy = format!("/api/v1/exchange-accounts/{account}/policy");
    app.clock.advance(Duration::from_secs(6 * 60));
    let refused = app.send("PUT", &policy, Some(json!({"max_order_notional": "50"})), Some(&cookie), &[]).await;
    assert_eq!((refused.status, refused.code()), (403, "reauth_required"), "loosening or tightening needs step-up");
    let reauth = app.post("/api/v1/auth/reauth", json!({"password": PASSWORD}), Some(&cookie)).await;
    assert_eq!(reauth.status, 204);
    let cookie = reauth.session_cookie().unwrap();
    let set = app.send("PUT", &policy, Some(json!({"max_order_notional": "50"})), Some(&cookie), &[]).await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.json["max_order_notional"], "50");

    let bot = create_bot(&app, &cookie, bot_body(&account, json!({}))).await;
    let deal = start(&app, &cookie, &bot).await;
    let failed = wait_deal(&app, &cookie, &deal, "the refusal", |d| d["status"] == "failed").await;
    let base = &orders(&failed, "base")[0];
    assert_eq!(base["state"], "rejected");
    assert!(base["error"].as_str().unwrap().starts_with("order_too_large"), "{base}");
    let shown = app.get(&format!("/api/v1/bots/{bot}"), Some(&cookie)).await.json;
    assert_eq!((shown["enabled"].as_bool(), shown["disabled_reason"].as_str()), (Some(false), Some("order_too_large")));
    let audit = app.get("/api/v1/audit-log", Some(&cookie)).await.json;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "order.refused" && e["detail"]["code"] == "order_too_large"),
        "{audit:#}"
    );
    // Nothing reached the venue.
    for key in app.venue.paper.api_keys() {
        assert!(app.venue.paper.orders(&key).is_empty());
    }
    // A disabled bot starts nothing.
    let again = app.post(&format!("/api/v1/bots/{bot}/start_new_deal"), json!({}), Some(&cookie)).await;
    assert_eq!(again.status, 409, "{}", again.text);
}

/// Fills arrive from the venue's user data stream: with the runner's polling cycle an hour apart,
/// a safety order's fill still moves the take profit within moments.
#[tokio::test]
async fn fills_pushed_by_the_venue_move_the_deal_without_polling() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| config.engine_interval = Duration::from_secs(3600)).await;
    let cookie = app.signed_in("stream@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let bot = create_bot(&app, &cookie, bot_body(&account, json!({}))).await;
    let deal = start(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the ladder", |d| count(d, "take_profit", "open") == 1).await;
    assert_eq!(count(&bought, "safety", "open"), 2, "placed by the start command itself");
    let key = app.venue.paper.api_keys().into_iter().last().expect("the paper account");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.venue.paper.stream_listeners(&key) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the runner never opened the account's order stream");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    price(&app, 29_650);
    wait_deal(&app, &cookie, &deal, "the pushed fill to move the take profit", |d| {
        count(d, "safety", "filled") == 1
            && count(d, "take_profit", "canceled") == 1
            && count(d, "take_profit", "open") == 1
    })
    .await;
}

/// `spec`: "with exchange-sim injecting 5xx, timeouts, 429 and lost responses, 200 deals finish
/// with zero duplicate orders". A nonstop bot runs 10 deals at a time while the price swings
/// between 30,000 and 31,000 (every swing up fills the take profits) and the paper market fails
/// order requests in turn: a 500, a performed order whose answer is a 503, a 504 or a dropped
/// connection, a 429, and now and then a request that hangs until the client gives up.
#[tokio::test]
async fn two_hundred_deals_under_venue_faults_send_no_order_twice() {
    use exchange_sim::{Fault, LostReply};
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| config.engine_interval = Duration::from_millis(100)).await;
    let cookie = app.signed_in("faults@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "1000000"})).await;
    price(&app, 30_000);
    let body = bot_body(
        &account,
        json!({
            "base_order_volume": "20", "safety_order_volume": "20", "max_safety_orders": 1,
            "active_safety_orders_count": 1, "take_profit": "0.3", "max_active_deals": 10,
            "allowed_deals_on_same_pair": 10, "strategy_list": [{"strategy": "nonstop"}],
        }),
    );
    let bot = create_bot(&app, &cookie, body).await;
    let order_path = "/api/v3/order";
    let started = tokio::time::Instant::now();
    let mut high = false;
    let mut round = 0u32;
    let completed = loop {
        let fault = match round % 6 {
            0 => Fault::ServerError { path: order_path.to_owned() },
            1 => Fault::LostResponse { path: order_path.to_owned(), reply: LostReply::ServiceUnavailable },
            2 => Fault::LostResponse { path: order_path.to_owned(), reply: LostReply::GatewayTimeout },
            3 => Fault::LostResponse { path: order_path.to_owned(), reply: LostReply::ConnectionDropped },
            4 => Fault::RateLimited { retry_after_secs: 1 },
            _ if round % 18 == 5 => Fault::LostResponse { path: order_path.to_owned(), reply: LostReply::Hang },
            _ => Fault::Latency { ms: 200 },
        };
        app.venue.paper.inject(fault);
        // Wait until the bot runs its 10 deals and they are quiet: bought, each with one take
        // profit resting, nothing pending, and every order the deal thinks open still resting
        // at the venue (so the runner has seen every fill the last move made).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let deals = loop {
            let reply = app.get(&format!("/api/v1/deals?bot_id={bot}&limit=1000&reveal=true"), Some(&cookie)).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let deals = reply.json.as_array().unwrap().clone();
            let resting: BTreeSet<String> = app
                .venue
                .paper
                .api_keys()
                .iter()
                .flat_map(|key| app.venue.paper.orders(key))
                .filter(|o| {
                    matches!(o.status, exchange_sim::OrderStatus::New | exchange_sim::OrderStatus::PartiallyFilled)
                })
                .map(|o| o.client_order_id)
                .collect();
            let open: Vec<&Value> = deals
                .iter()
                .filter(|d| !["completed", "panic_sold", "canceled", "failed"].contains(&d["status"].as_str().unwrap()))
                .collect();
            let quiet = open.len() == 10
                && open.iter().all(|d| {
                    d["status"] == "bought"
                        && count(d, "take_profit", "open") == 1
                        && d["orders"].as_array().unwrap().iter().all(|o| {
                            o["state"] != "pending"
                                && o["cancel_requested"] == false
                                && (o["state"] != "open" || resting.contains(o["client_order_id"].as_str().unwrap()))
                        })
                });
            if quiet || tokio::time::Instant::now() > deadline {
                break deals;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            !deals.iter().any(|d| d["status"] == "failed"),
            "a deal failed: {:#}",
            deals.iter().find(|d| d["status"] == "failed").unwrap()
        );
        let completed = deals.iter().filter(|d| d["status"] == "completed").count();
        if completed >= 200 {
            break completed;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "only {completed} deals completed in 10 minutes");
        high = !high;
        price(&app, if high { 31_000 } else { 30_000 });
        // Time passes for the app too, so cancels the venue's rate limit turned away are asked
        // again (every 10 s of the app's clock).
        app.clock.advance(Duration::from_secs(11));
        round += 1;
    };
    assert!(completed >= 200);
    assert_eq!(app.post(&format!("/api/v1/bots/{bot}/disable"), json!({}), Some(&cookie)).await.status, 200);

    // The venue saw each client order id once, and holds every order the deals say they sent.
    let key = app.venue.paper.api_keys().into_iter().last().expect("the paper account");
    let at_venue = app.venue.paper.orders(&key);
    let mut ids = BTreeSet::new();
    for order in &at_venue {
        assert!(ids.insert(order.client_order_id.clone()), "order {} reached the venue twice", order.client_order_id);
    }
    let deals = app.get(&format!("/api/v1/deals?bot_id={bot}&limit=1000"), Some(&cookie)).await.json;
    let mut sent = 0;
    let mut not_placed = 0;
    for deal in deals.as_array().unwrap() {
        for order in deal["orders"].as_array().unwrap() {
            let id = order["client_order_id"].as_str().unwrap();
            match order["state"].as_str().unwrap() {
                "not_placed" => {
                    not_placed += 1;
                    assert!(!ids.contains(id), "{id} was declared not placed but the venue has it");
                }
                "pending" => {}
                _ => {
                    sent += 1;
                    assert!(ids.contains(id), "{id} is not at the venue: {order}");
                }
            }
        }
    }
    eprintln!(
        "fault run: {completed} deals completed in {round} swings, {sent} orders sent, {not_placed} not placed, {} orders at the venue, {:?}",
        at_venue.len(),
        started.elapsed()
    );
    assert!(sent >= 600, "at least base, take profit and a safety order per deal: {sent}");
}

/// TR-2: the kill switch stops every bot at once, cancels what they have on the book, revokes
/// their webhook secrets and ends the other sessions; afterwards nothing is signed for them.
#[tokio::test]
async fn the_kill_switch_stops_every_bot_and_cancels_their_orders() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("kill@example.com", PASSWORD).await;
    let other_session = app.login("kill@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let bot = create_bot(&app, &cookie, bot_body(&account, json!({}))).await;
    let nonstop =
        create_bot(&app, &cookie, bot_body(&account, json!({"strategy_list": [{"strategy": "nonstop"}]}))).await;
    let deal = start(&app, &cookie, &bot).await;
    wait_deal(&app, &cookie, &deal, "the ladder", |d| {
        count(d, "take_profit", "open") == 1 && count(d, "safety", "open") == 2
    })
    .await;

    app.clock.advance(Duration::from_secs(6 * 60));
    let refused = app.post("/api/v1/kill-switch", json!({}), Some(&cookie)).await;
    assert_eq!((refused.status, refused.code()), (403, "reauth_required"));
    let reauth = app.post("/api/v1/auth/reauth", json!({"password": PASSWORD}), Some(&cookie)).await;
    let cookie = reauth.session_cookie().unwrap();
    let killed = app.post("/api/v1/kill-switch", json!({}), Some(&cookie)).await;
    assert_eq!(killed.status, 200, "{}", killed.text);
    assert_eq!(killed.json["bots_disabled"], 2);
    assert_eq!(killed.json["sessions_ended"], 1);

    let canceled = wait_deal(&app, &cookie, &deal, "the deal canceled", |d| d["status"] == "canceled").await;
    assert_no_duplicates_and_nothing_left(&app, &canceled);
    for id in [&bot, &nonstop] {
        let shown = app.get(&format!("/api/v1/bots/{id}"), Some(&cookie)).await.json;
        assert_eq!((shown["enabled"].as_bool(), shown["disabled_reason"].as_str()), (Some(false), Some("kill_switch")));
    }
    assert_eq!(app.get("/api/v1/me", Some(&other_session)).await.status, 401, "the other session ended");
    let secrets = app.store.webhook_secrets(bot.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((secrets.current, secrets.previous), (None, None), "webhook secrets revoked");

    // Nothing more is signed for these bots: no deal starts, the market moving changes nothing.
    let key = app.venue.paper.api_keys().into_iter().last().unwrap();
    let sent = app.venue.paper.orders(&key).len();
    let again = app.post(&format!("/api/v1/bots/{bot}/start_new_deal"), json!({}), Some(&cookie)).await;
    assert_eq!((again.status, again.code()), (409, "bot_disabled"), "{}", again.text);
    price(&app, 29_000);
    price(&app, 31_000);
    // An absence needs a window: 40 runner cycles (50 ms each) in which the nonstop bot would
    // have started a deal had it still been enabled.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        assert_eq!(app.venue.paper.orders(&key).len(), sent, "no order was sent after the kill switch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = app.get("/api/v1/audit-log", Some(&cookie)).await.json;
    assert!(audit.as_array().unwrap().iter().any(|e| e["kind"] == "kill_switch"));
}

/// `POST /api/v1/bots/{id}/rotate_webhook_secret`: step-up first; a new 256-bit secret shown once,
/// the old one still accepted for 24 h; only hashes stored; audited without either secret; another
/// user's bot is 404.
#[tokio::test]
async fn rotating_a_webhook_secret_keeps_the_old_one_for_a_day() {
    use domain::Clock as _;
    use sha2::{Digest as _, Sha256};
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("rotate@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "1000"})).await;
    let created = app.post("/api/v1/bots", bot_body(&account, json!({})), Some(&cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let first = created.json["webhook_secret"].as_str().unwrap().to_owned();
    let bot = created.json["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/bots/{bot}/rotate_webhook_secret");

    app.clock.advance(Duration::from_secs(6 * 60));
    let refused = app.post(&path, json!({}), Some(&cookie)).await;
    assert_eq!((refused.status, refused.code()), (403, "reauth_required"), "{}", refused.text);
    let reauth = app.post("/api/v1/auth/reauth", json!({"password": PASSWORD}), Some(&cookie)).await;
    let cookie = reauth.session_cookie().unwrap();
    let rotated = app.post(&path, json!({}), Some(&cookie)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let second = rotated.json["webhook_secret"].as_str().unwrap().to_owned();
    assert_eq!(second.len(), 64);
    assert!(second.bytes().all(|b| b.is_ascii_hexdigit()) && second != first);

    let hash = |secret: &str| -> [u8; 32] { Sha256::digest(secret.as_bytes()).into() };
    let secrets = app.store.webhook_secrets(bot.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(secrets.current, Some(hash(&second)));
    assert_eq!(secrets.previous, Some(hash(&first)));
    assert_eq!(secrets.previous_until, Some(app.clock.now().plus(Duration::from_secs(24 * 3600))));

    let log = app.get("/api/v1/audit-log", Some(&cookie)).await;
    assert!(log.text.contains("bot.webhook_rotated"), "{}", log.text);
    assert!(!log.text.contains(&first) && !log.text.contains(&second), "no secret in the audit log");

    let stranger = app.signed_in("rotate-stranger@example.com", PASSWORD).await;
    let theirs = app.post(&path, json!({}), Some(&stranger)).await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    let unchanged = app.store.webhook_secrets(bot.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(unchanged, secrets);
}

/// A placement refused for the venue's rate limit (429 with Retry-After, or the adapter's own
/// weight budget after it) was never placed: it is held and sent once the wait is over, under its
/// own client order id — not looked up (which would spend the weight the wait is for) and not
/// declared `not_placed` and asked again under a new id. Found by the B4/B5 benchmarks.
#[tokio::test]
async fn a_placement_refused_for_the_rate_limit_is_held_then_sent_once() {
    let app = app(Backend::Sqlite).await;
    let cookie = app.signed_in("rate-limited@example.com", PASSWORD).await;
    let account = paper_account(&app, &cookie, json!({"USDT": "10000"})).await;
    price(&app, 30_000);
    let body = json!({"max_safety_orders": 1, "active_safety_orders_count": 1});
    // A first deal makes the pair's market and price known to the runner.
    let first = create_bot(&app, &cookie, bot_body(&account, body.clone())).await;
    let deal = start(&app, &cookie, &first).await;
    wait_deal(&app, &cookie, &deal, "the first deal to buy", |d| d["status"] == "bought").await;
    let bot = create_bot(&app, &cookie, bot_body(&account, body)).await;
    // Whatever the runner sends next (a price, a poll or the order) is answered 429: the adapter
    // pauses for 2 s, so the base order is refused, before or at the venue's door.
    app.venue.paper.inject(exchange_sim::Fault::RateLimited { retry_after_secs: 2 });
    app.venue.paper.clear_request_log();
    let deal = start(&app, &cookie, &bot).await;
    let bought = wait_deal(&app, &cookie, &deal, "the held base order to fill", |d| d["status"] == "bought").await;
    let bases = orders(&bought, "base");
    assert_eq!(bases.len(), 1, "one base order, sent once its wait was over: {bought:#}");
    assert_eq!(bases[0]["state"], "filled");
    let id = bases[0]["client_order_id"].as_str().unwrap();
    let log = app.venue.paper.request_log();
    let lookups = log.iter().filter(|r| r.method == "GET" && r.path == "/api/v3/order" && r.query.contains(id)).count();
    assert_eq!(lookups, 0, "a held order is never looked up");
    let refused = log.iter().filter(|r| r.status == Some(429)).count();
    assert_eq!(refused, 1, "the fault fired once");
    // The base order reached the venue once. (Not every order of the deal: its take profit, asked
    // for as the base filled, may itself still be held for the same wait.)
    let at_venue: usize = app
        .venue
        .paper
        .api_keys()
        .iter()
        .map(|key| app.venue.paper.orders(key).iter().filter(|o| o.client_order_id == id).count())
        .sum();
    assert_eq!(at_venue, 1, "the held base order is at the venue once");
}
