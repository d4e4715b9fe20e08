//! Bots trading real deals end to end: the app's runner, the real Binance adapter over HTTP, and the
//! paper exchange-sim moving along a price path the test replays. Each test waits for conditions
//! with a deadline (the runner cycles every 50 ms here), never for a fixed time.

use std::collections::BTreeSet;
use std::time::Duration;

use domain::Decimal;
use serde_json::{Value, json};

use crate::{Backend, PASSWORD, TestApp, logs, spawn_app_with};

async fn app(backend: Backend) -> TestApp {
    logs::install();
    spawn_app_with(backend, |config| config.engine_interval = Duration::from_millis(50)).await
}

fn dec(value: &Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("a decimal string, got {value}")).parse().expect("a decimal")
}

async fn paper_account(app: &TestApp, cookie: &str, balances: Value) -> String {
    let body = json!({"exchange": "paper", "name": "Paper", "balances": balances});
    let created = app.post("/api/v1/exchange-accounts", body, Some(cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap().to_owned()
}

/// Example A of spec/dca.md scaled to BTC at 30,000: BO 100, SO 100, 3 safety orders 1 % apart
/// (two on the book), TP 1 % of the total; started by hand.
fn bot_body(account: &str, changes: Value) -> Value {
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

async fn create_bot(app: &TestApp, cookie: &str, body: Value) -> String {
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
async fn wait_deal(app: &TestApp, cookie: &str, deal: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
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

fn orders<'a>(deal: &'a Value, role: &str) -> Vec<&'a Value> {
    deal["orders"].as_array().unwrap().iter().filter(|o| o["role"] == role).collect()
}

fn count(deal: &Value, role: &str, state: &str) -> usize {
    orders(deal, role).iter().filter(|o| o["state"] == state).count()
}

/// The venue holds each client order id once, and none of the deal's orders rests on the book.
fn assert_no_duplicates_and_nothing_left(app: &TestApp, deal: &Value) {
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
                    !matches!(
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

fn price(app: &TestApp, value: i64) {
    app.venue.paper.set_price("BTCUSDT", Decimal::new(value, 0)).expect("the paper market moves");
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
    assert_eq!(count(&done, "close", "filled"), 1);
    assert_no_duplicates_and_nothing_left(&app, &done);
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
