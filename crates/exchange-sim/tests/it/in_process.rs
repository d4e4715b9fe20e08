//! Orders and cancels through the handle (`place_order_in_process`, `cancel_order_in_process`) take
//! the path of `POST` / `DELETE /api/v3/order`: the same refusals with the same statuses, codes and
//! messages, and the same orders, trades and balances afterwards.

use exchange_sim::{ExchangeSim, OrderParams, OrderType, Side, SimError, SimPermissions, TimeInForce};
use reqwest::Method;

use crate::{Client, KEY, d, sim_with};

const T0: i64 = 1_700_000_040_000;

/// What a placement or cancel came to: the order id, or (HTTP status, code, message).
type Outcome = Result<u64, (u16, i64, String)>;

async fn frozen_sim(change: impl FnOnce(&mut exchange_sim::SimConfig)) -> ExchangeSim {
    sim_with(|config| {
        config.frozen_clock_ms = Some(T0);
        change(config);
    })
    .await
}

/// The HTTP parameters of `order`.
fn query(order: &OrderParams) -> String {
    let side = match order.side {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    };
    let order_type = match order.order_type {
        OrderType::Limit => "LIMIT",
        OrderType::Market => "MARKET",
        OrderType::LimitMaker => "LIMIT_MAKER",
    };
    let mut query = format!("symbol={}&side={side}&type={order_type}", order.symbol);
    if let Some(tif) = order.time_in_force {
        let tif = match tif {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
        };
        query.push_str(&format!("&timeInForce={tif}"));
    }
    let decimals = [("quantity", order.quantity), ("quoteOrderQty", order.quote_order_qty), ("price", order.price)];
    for (name, value) in decimals {
        if let Some(value) = value {
            query.push_str(&format!("&{name}={value}"));
        }
    }
    if let Some(id) = &order.new_client_order_id {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        query.push_str(&format!("&newClientOrderId={id}"));
    }
    query
}

fn http_outcome(reply: &crate::Reply) -> Outcome {
    if reply.status == 200 {
        Ok(reply.json["orderId"].as_u64().expect("an order id"))
    } else {
        Err((reply.status, reply.code(), reply.msg().to_owned()))
    }
}

fn in_process_outcome(result: Result<exchange_sim::SimOrder, SimError>) -> Outcome {
    match result {
        Ok(order) => Ok(order.order_id),
        Err(SimError::Refused { status, code, msg }) => Err((status, i64::from(code), msg)),
        Err(other) => panic!("not a refusal: {other}"),
    }
}

fn limit(side: Side, qty: &str, price: &str) -> OrderParams {
    OrderParams::limit("BTCUSDT", side, d(qty), d(price))
}

fn market(side: Side, qty: &str) -> OrderParams {
    OrderParams::market("BTCUSDT", side, d(qty))
}

/// Accepted and refused orders of every kind, as a session would send them.
fn session() -> Vec<(&'static str, OrderParams)> {
    let with = |order: OrderParams, change: fn(&mut OrderParams)| {
        let mut order = order;
        change(&mut order);
        order
    };
    vec![
        (
            "resting limit buy",
            with(limit(Side::Buy, "0.10000", "25000.00"), |o| o.new_client_order_id = Some("bw-1".to_owned())),
        ),
        (
            "duplicate client order id",
            with(limit(Side::Buy, "0.01000", "25000.00"), |o| o.new_client_order_id = Some("bw-1".to_owned())),
        ),
        ("market buy", market(Side::Buy, "0.01000")),
        (
            "market sell by quote amount",
            with(market(Side::Sell, "0"), |o| {
                o.quantity = None;
                o.quote_order_qty = Some(d("100"));
            }),
        ),
        ("marketable limit sell", limit(Side::Sell, "0.01000", "29000.00")),
        (
            "limit maker that would take",
            with(limit(Side::Buy, "0.01000", "31000.00"), |o| {
                o.order_type = OrderType::LimitMaker;
                o.time_in_force = None;
            }),
        ),
        (
            "IOC that expires",
            with(limit(Side::Buy, "0.01000", "20000.00"), |o| o.time_in_force = Some(TimeInForce::Ioc)),
        ),
        ("price off the tick", limit(Side::Buy, "0.01000", "25000.001")),
        ("quantity off the step", limit(Side::Buy, "0.000001", "25000.00")),
        ("notional too small", market(Side::Buy, "0.00010")),
        ("insufficient balance", limit(Side::Buy, "1.00000", "25000.00")),
        ("limit without timeInForce", with(limit(Side::Buy, "0.01000", "25000.00"), |o| o.time_in_force = None)),
        ("market with a price", with(market(Side::Buy, "0.01000"), |o| o.price = Some(d("30000")))),
        ("market with both sizes", with(market(Side::Buy, "0.01000"), |o| o.quote_order_qty = Some(d("100")))),
        ("market with no size", with(market(Side::Buy, "0.01000"), |o| o.quantity = None)),
        ("unknown symbol", with(market(Side::Buy, "0.01000"), |o| o.symbol = "XRPUSDT".to_owned())),
        ("lower-case symbol", with(market(Side::Buy, "0.01000"), |o| o.symbol = "btcusdt".to_owned())),
        (
            "illegal client order id",
            with(market(Side::Buy, "0.01000"), |o| {
                o.new_client_order_id = Some("no spaces!".to_owned());
            }),
        ),
        ("a sell of more than the account holds", market(Side::Sell, "0.60000")),
    ]
}

#[tokio::test]
async fn a_session_in_process_ends_as_the_same_session_over_http() {
    let (over_http, in_process) = (frozen_sim(|_| {}).await, frozen_sim(|_| {}).await);
    let client = Client::hmac(&over_http);
    let mut refused = 0;
    for (name, order) in session() {
        let expected = http_outcome(&client.order(&over_http, &query(&order)).await);
        let got = in_process_outcome(in_process.place_order_in_process(KEY, &order));
        assert_eq!(got, expected, "{name}");
        refused += usize::from(expected.is_err());
    }
    assert_eq!(refused, 14, "the session has its refusals");

    // Cancels: the resting order (id 1), then it again, an id that does not exist, a bad symbol.
    let cancels = [("BTCUSDT", 1), ("BTCUSDT", 1), ("BTCUSDT", 999), ("XRPUSDT", 1)];
    for (symbol, order_id) in cancels {
        let reply = client
            .signed(&over_http, Method::DELETE, "/api/v3/order", &format!("symbol={symbol}&orderId={order_id}"))
            .await;
        let got = in_process_outcome(in_process.cancel_order_in_process(KEY, symbol, order_id));
        assert_eq!(got, http_outcome(&reply), "cancel {symbol} {order_id}");
    }

    assert_eq!(in_process.orders(KEY), over_http.orders(KEY));
    assert_eq!(in_process.trades(KEY), over_http.trades(KEY));
    assert_eq!(in_process.balances(KEY), over_http.balances(KEY));
    assert_eq!(in_process.trades(KEY).len(), 3, "market buy, market sell, marketable limit");
    assert_eq!(in_process.balances(KEY)["USDT"].locked, d("0"), "the cancel released the lock");
}

#[tokio::test]
async fn keys_are_refused_as_over_http() {
    let sim = frozen_sim(|_| {}).await;
    let order = market(Side::Buy, "0.01000");
    let refusal = |result: Result<exchange_sim::SimOrder, SimError>| match in_process_outcome(result) {
        Err((status, code, _)) => (status, code),
        Ok(id) => panic!("placed {id}"),
    };

    assert_eq!(refusal(sim.place_order_in_process("not a key!", &order)), (401, -2014));
    assert_eq!(over_http(&sim, "not a key!", &order).await, (401, -2014));
    assert_eq!(refusal(sim.place_order_in_process("UnknownKey01", &order)), (401, -2015));
    assert_eq!(over_http(&sim, "UnknownKey01", &order).await, (401, -2015));
    assert_eq!(refusal(sim.cancel_order_in_process("UnknownKey01", "BTCUSDT", 1)), (401, -2015));

    sim.set_permissions(KEY, SimPermissions::read_only()).expect("a known key");
    assert_eq!(refusal(sim.place_order_in_process(KEY, &order)), (401, -2015), "reading only");
    assert_eq!(over_http(&sim, KEY, &order).await, (401, -2015));

    sim.set_permissions(KEY, SimPermissions::trading()).expect("a known key");
    sim.revoke_key(KEY).expect("a known key");
    assert_eq!(refusal(sim.place_order_in_process(KEY, &order)), (401, -2015), "revoked");
    assert_eq!(over_http(&sim, KEY, &order).await, (401, -2015));
    assert!(sim.orders(KEY).is_empty());
}

/// (status, code) of `order` sent over HTTP with `key`, signed with the test secret.
async fn over_http(sim: &ExchangeSim, key: &str, order: &OrderParams) -> (u16, i64) {
    let client = Client::new(sim, Some(key), crate::Signer::Hmac(crate::SECRET.to_owned()));
    let reply = client.order(sim, &query(order)).await;
    (reply.status, reply.code())
}

#[tokio::test]
async fn in_process_orders_count_toward_the_order_limits_with_http_ones() {
    let sim = frozen_sim(|config| config.limits.orders_per_10s = 2).await;
    let client = Client::hmac(&sim);
    let order = limit(Side::Buy, "0.01000", "25000.00");
    sim.place_order_in_process(KEY, &order).expect("the first order");
    assert_eq!(client.order(&sim, &query(&order)).await.status, 200, "the second order");
    let Err(SimError::Refused { status, code, .. }) = sim.place_order_in_process(KEY, &order) else {
        panic!("the third order in 10 s is refused");
    };
    assert_eq!((status, code), (429, -1015));
    let over_http = client.order(&sim, &query(&order)).await;
    assert_eq!((over_http.status, over_http.code()), (429, -1015));
    assert_eq!(sim.orders(KEY).len(), 2);
}
