//! Manual orders followed at the venue after their placement (`server::manual_orders`): a lost
//! answer, a request that never arrived, and resting orders that fill or are canceled later all
//! end in the orders table as the venue has them. The reconciler runs every 50 ms here; each test
//! waits for the table with a deadline and moves the app's and the venue's clocks by hand.

use std::time::Duration;

use domain::{Decimal, ExchangeAccountId, IntentState, OrderIntent, Timestamp};
use exchange_sim::Fault;
use serde_json::{Value, json};
use server::manual_orders::PLACEMENT_ALLOWANCE;

use crate::{Backend, PASSWORD, TestApp, logs, spawn_app_with};

crate::on_both!(
    a_manual_order_whose_answer_was_lost_takes_the_venues_state,
    a_manual_order_that_never_reached_the_venue_ends_not_placed,
    resting_manual_orders_that_fill_or_are_canceled_later_are_written_back,
);

/// Failed lookups after which the Binance adapter reports a lost placement's outcome as unknown
/// (`BinanceConfig::max_lookups`, which the test venue keeps).
const ADAPTER_LOOKUPS: usize = 20;
const ORDER_PATH: &str = "/api/v3/order";
/// Past the runner's grace for an unseen order (the receive window and a second).
const PAST_THE_GRACE_MS: i64 = 7_000;

async fn app(backend: Backend) -> TestApp {
    logs::install();
    spawn_app_with(backend, |config| config.manual_order_interval = Duration::from_millis(50)).await
}

fn dec(raw: &str) -> Decimal {
    raw.parse().expect("a decimal")
}

/// A signed-in user with a paper account holding 10,000 USDT; the session and the account id.
async fn trader(app: &TestApp, email: &str) -> (String, ExchangeAccountId) {
    let cookie = app.signed_in(email, PASSWORD).await;
    let body = json!({"exchange": "paper", "name": "Paper", "balances": {"USDT": "10000"}});
    let created = app.post("/api/v1/exchange-accounts", body, Some(&cookie)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    (cookie, created.json["id"].as_str().unwrap().parse().unwrap())
}

async fn place(app: &TestApp, cookie: &str, account: ExchangeAccountId, order: Value) -> crate::Reply {
    app.post(&format!("/api/v1/exchange-accounts/{account}/orders"), order, Some(cookie)).await
}

/// The account's orders as the orders table holds them, oldest first.
async fn recorded(app: &TestApp, account: ExchangeAccountId) -> Vec<OrderIntent> {
    app.store.orders_since(account, Timestamp::from_unix_millis(0)).await.unwrap()
}

/// Polls the table until the account's order `id` satisfies `done`, for at most 20 s.
async fn wait_order(
    app: &TestApp,
    account: ExchangeAccountId,
    id: &str,
    what: &str,
    done: impl Fn(&OrderIntent) -> bool,
) -> OrderIntent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let order = recorded(app, account).await.into_iter().find(|o| o.client_order_id == id).expect("recorded");
        if done(&order) {
            return order;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited 20 s for {what}; the order is {order:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The paper account's orders at the venue with this client order id.
fn at_venue(app: &TestApp, client_order_id: &str) -> Vec<exchange_sim::SimOrder> {
    let key = app.venue.paper.api_keys().into_iter().last().expect("the paper account");
    app.venue.paper.orders(&key).into_iter().filter(|o| o.client_order_id == client_order_id).collect()
}

/// The venue answers the placement's every lookup with a 500, so the adapter gives up and the
/// handler records no outcome: the intent is left pending.
fn fail_the_lookups(app: &TestApp) {
    for _ in 0..ADAPTER_LOOKUPS {
        app.venue.paper.inject(Fault::ServerError { path: ORDER_PATH.to_owned() });
    }
}

fn assert_outcome_unknown(reply: &crate::Reply) {
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(reply.json["message"].as_str().unwrap().contains("did not answer whether"), "{}", reply.text);
}

/// The venue placed (and filled) the order but its answer was lost and no lookup got through: the
/// order still ends filled in the table, with the venue's id and the fee, and is never resent.
pub async fn a_manual_order_whose_answer_was_lost_takes_the_venues_state(backend: Backend) {
    let app = app(backend).await;
    let (cookie, account) = trader(&app, "lost-answer@example.com").await;
    app.venue.paper.inject(Fault::lost_response(ORDER_PATH));
    fail_the_lookups(&app);
    let buy = json!({"pair": "USDT_BTC", "side": "buy", "type": "market", "quantity": "0.01"});
    assert_outcome_unknown(&place(&app, &cookie, account, buy).await);
    let orders = recorded(&app, account).await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    let id = orders[0].client_order_id.clone();
    assert_eq!(orders[0].state, IntentState::Pending);
    let venue = at_venue(&app, &id);
    assert_eq!(venue.len(), 1, "the venue performed the order");

    // Within the placement's allowance the request may still be on its way: not looked at.
    app.clock.advance(PLACEMENT_ALLOWANCE / 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorded(&app, account).await[0].state, IntentState::Pending);

    app.clock.advance(PLACEMENT_ALLOWANCE);
    let order = wait_order(&app, account, &id, "the lost order found", |o| o.state != IntentState::Pending).await;
    assert_eq!(order.state, IntentState::Filled, "{order:?}");
    assert_eq!(order.venue_order_id, Some(venue[0].order_id.to_string()));
    assert_eq!(order.executed_qty, dec("0.01"));
    assert_eq!(order.executed_quote, dec("300"));
    assert_eq!((order.fee_base, order.fee_quote), (dec("0.00001"), Decimal::ZERO), "the 0.1 % fee, paid in BTC");
    assert_eq!(at_venue(&app, &id).len(), 1, "never sent again");
    assert!(app.store.unresolved_manual_orders().await.unwrap().is_empty());
}

/// The placement failed before the venue performed it and no lookup got through: once the venue's
/// clock has passed the first miss by the grace, the order is `not_placed`, and not before.
pub async fn a_manual_order_that_never_reached_the_venue_ends_not_placed(backend: Backend) {
    let app = app(backend).await;
    let (cookie, account) = trader(&app, "never-placed@example.com").await;
    app.venue.paper.inject(Fault::ServerError { path: ORDER_PATH.to_owned() });
    fail_the_lookups(&app);
    let buy = json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.01", "price": "29000"});
    assert_outcome_unknown(&place(&app, &cookie, account, buy).await);
    let id = recorded(&app, account).await[0].client_order_id.clone();
    assert!(at_venue(&app, &id).is_empty());

    app.clock.advance(PLACEMENT_ALLOWANCE + Duration::from_secs(1));
    // Wait for the reconciler's first lookup that finds nothing, then move the venue's clock past
    // the grace from it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let missed = |app: &TestApp| {
        app.venue.paper.request_log().iter().any(|r| {
            r.method == "GET"
                && r.path == ORDER_PATH
                && r.query.contains(&format!("origClientOrderId={id}"))
                && r.status == Some(400)
        })
    };
    while !missed(&app) {
        assert!(tokio::time::Instant::now() < deadline, "the reconciler never looked the order up");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let order = recorded(&app, account).await.remove(0);
    assert_eq!(order.state, IntentState::Pending, "one miss is not enough");
    app.venue.paper.advance_clock_ms(PAST_THE_GRACE_MS);
    let order = wait_order(&app, account, &id, "not_placed", |o| o.state != IntentState::Pending).await;
    assert_eq!(order.state, IntentState::NotPlaced, "{order:?}");
    assert_eq!(order.venue_order_id, None);
    assert!(at_venue(&app, &id).is_empty(), "never sent again");
    assert!(app.store.unresolved_manual_orders().await.unwrap().is_empty());
}

/// Two limit buys rest on the book: one is canceled through the API, the price falls through the
/// other. Both are written back as the venue has them.
pub async fn resting_manual_orders_that_fill_or_are_canceled_later_are_written_back(backend: Backend) {
    let app = app(backend).await;
    let (cookie, account) = trader(&app, "resting@example.com").await;
    let buy =
        |price: &str| json!({"pair": "USDT_BTC", "side": "buy", "type": "limit", "quantity": "0.01", "price": price});
    let filling = place(&app, &cookie, account, buy("29000")).await;
    assert_eq!((filling.status, filling.json["status"].as_str()), (201, Some("new")), "{}", filling.text);
    let canceling = place(&app, &cookie, account, buy("25000")).await;
    assert_eq!(canceling.status, 201, "{}", canceling.text);
    let orders = recorded(&app, account).await;
    assert_eq!(orders.iter().map(|o| o.state).collect::<Vec<_>>(), [IntentState::Open, IntentState::Open]);
    let id_of = |venue_id: &Value| {
        orders.iter().find(|o| o.venue_order_id.as_deref() == venue_id.as_str()).unwrap().client_order_id.clone()
    };
    let (filling_id, canceling_id) = (id_of(&filling.json["id"]), id_of(&canceling.json["id"]));

    let path =
        format!("/api/v1/exchange-accounts/{account}/orders/{}?pair=USDT_BTC", canceling.json["id"].as_str().unwrap());
    let canceled = app.send("DELETE", &path, None, Some(&cookie), &[]).await;
    assert_eq!(canceled.json["status"], "canceled", "{}", canceled.text);
    let from = app.venue.paper.price("BTCUSDT").unwrap();
    let minute = app.venue.paper.server_time_ms().div_euclid(60_000) * 60_000;
    let to = dec("28900");
    let candle = exchange_sim::Candle::new(minute, from, from, to, to, dec("1000"));
    app.venue.paper.apply_candle("BTCUSDT", &candle).unwrap();

    let canceled = wait_order(&app, account, &canceling_id, "the cancel", |o| o.state != IntentState::Open).await;
    assert_eq!((canceled.state, canceled.executed_qty), (IntentState::Canceled, Decimal::ZERO), "{canceled:?}");
    let filled = wait_order(&app, account, &filling_id, "the fill", |o| o.state != IntentState::Open).await;
    assert_eq!(filled.state, IntentState::Filled, "{filled:?}");
    assert_eq!((filled.executed_qty, filled.executed_quote), (dec("0.01"), dec("290")));
    assert_eq!(filled.fee_base, dec("0.00001"), "the fee from the account's trades");
    assert!(app.store.unresolved_manual_orders().await.unwrap().is_empty());
}
