//! Orders: placement, the response types, query, cancel, balance locking, fills, and the named
//! rejections.

use exchange_sim::{OrderStatus, SimBalance};
use reqwest::Method;
use serde_json::json;

use crate::{Client, KEY, d, sim, sim_with};

fn balance(free: &str, locked: &str) -> SimBalance {
    SimBalance { free: d(free), locked: d(locked) }
}

#[tokio::test]
async fn a_resting_limit_buy_locks_quote_and_a_cancel_releases_it() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let placed = client
        .order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.10000&price=25000.00&newClientOrderId=bulwark-1")
        .await;
    assert_eq!(placed.status, 200, "{}", placed.json);
    let order = &placed.json;
    assert_eq!(order["symbol"], "BTCUSDT");
    assert_eq!(order["clientOrderId"], "bulwark-1");
    assert_eq!(order["orderListId"], -1);
    assert_eq!(
        (order["status"].clone(), order["type"].clone(), order["side"].clone()),
        (json!("NEW"), json!("LIMIT"), json!("BUY"))
    );
    assert_eq!(
        (order["price"].clone(), order["origQty"].clone(), order["executedQty"].clone()),
        (json!("25000.00000000"), json!("0.10000000"), json!("0.00000000"))
    );
    assert_eq!(
        (order["cummulativeQuoteQty"].clone(), order["origQuoteOrderQty"].clone()),
        (json!("0.00000000"), json!("0.00000000"))
    );
    assert_eq!((order["timeInForce"].clone(), order["selfTradePreventionMode"].clone()), (json!("GTC"), json!("NONE")));
    assert_eq!(order["fills"], json!([]));
    assert!(order["transactTime"].as_i64().is_some() && order["workingTime"].as_i64().is_some());
    assert_eq!(sim.balances(KEY)["USDT"], balance("7500", "2500"));

    let order_id = order["orderId"].as_u64().expect("an order id");
    let by_id = client.signed(&sim, Method::GET, "/api/v3/order", &format!("symbol=BTCUSDT&orderId={order_id}")).await;
    assert_eq!(by_id.status, 200, "{}", by_id.json);
    assert_eq!((by_id.json["clientOrderId"].clone(), by_id.json["status"].clone()), (json!("bulwark-1"), json!("NEW")));
    assert_eq!((by_id.json["isWorking"].clone(), by_id.json["stopPrice"].clone()), (json!(true), json!("0.00000000")));
    let by_client_id =
        client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=bulwark-1").await;
    assert_eq!(by_client_id.json["orderId"], order_id);
    let both = client
        .signed(
            &sim,
            Method::GET,
            "/api/v3/order",
            &format!("symbol=BTCUSDT&orderId={order_id}&origClientOrderId=other"),
        )
        .await;
    assert_eq!(both.code(), -2013, "the client id must match the order id");

    let canceled = client
        .signed(
            &sim,
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCUSDT&origClientOrderId=bulwark-1&newClientOrderId=cancel-1",
        )
        .await;
    assert_eq!(canceled.status, 200, "{}", canceled.json);
    assert_eq!(
        (canceled.json["status"].clone(), canceled.json["origClientOrderId"].clone()),
        (json!("CANCELED"), json!("bulwark-1"))
    );
    assert_eq!(
        (canceled.json["clientOrderId"].clone(), canceled.json["orderId"].clone()),
        (json!("cancel-1"), json!(order_id))
    );
    assert_eq!(sim.balances(KEY)["USDT"], balance("10000", "0"));
    let queried =
        client.signed(&sim, Method::GET, "/api/v3/order", &format!("symbol=BTCUSDT&orderId={order_id}")).await;
    assert_eq!(queried.json["status"], "CANCELED");

    let again =
        client.signed(&sim, Method::DELETE, "/api/v3/order", &format!("symbol=BTCUSDT&orderId={order_id}")).await;
    assert_eq!((again.status, again.code(), again.msg()), (400, -2011, "Unknown order sent."));
}

#[tokio::test]
async fn a_resting_sell_locks_base_and_fills_when_the_price_rises_to_it() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let placed =
        client.order(&sim, "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.2&price=32000").await;
    assert_eq!(placed.json["status"], "NEW");
    assert_eq!(sim.balances(KEY)["BTC"], balance("0.3", "0.2"));

    assert_eq!(sim.set_price("BTCUSDT", d("31999.99")), Ok(0));
    assert_eq!(sim.orders(KEY)[0].status, OrderStatus::New);
    assert_eq!(sim.set_price("BTCUSDT", d("32100")), Ok(1));
    let order = &sim.orders(KEY)[0];
    assert_eq!(
        (order.status, order.executed_qty, order.cummulative_quote_qty),
        (OrderStatus::Filled, d("0.2"), d("6400"))
    );
    // 6400 USDT received minus the 0.1 % fee, charged in USDT.
    assert_eq!(sim.balances(KEY)["BTC"], balance("0.3", "0"));
    assert_eq!(sim.balances(KEY)["USDT"], balance("16393.6", "0"));
    let trades = sim.trades(KEY);
    assert_eq!(trades.len(), 1);
    assert!(trades[0].is_maker && !trades[0].is_buyer);
    assert_eq!(
        (trades[0].price, trades[0].commission, trades[0].commission_asset.as_str()),
        (d("32000"), d("6.4"), "USDT")
    );

    let queried = client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT&orderId=1").await;
    assert_eq!(
        (queried.json["status"].clone(), queried.json["executedQty"].clone()),
        (json!("FILLED"), json!("0.20000000"))
    );
    let open = client.signed(&sim, Method::GET, "/api/v3/openOrders", "symbol=BTCUSDT").await;
    assert_eq!(open.json, json!([]));
    let cancel = client.signed(&sim, Method::DELETE, "/api/v3/order", "symbol=BTCUSDT&orderId=1").await;
    assert_eq!(cancel.code(), -2011, "a filled order cannot be cancelled");
}

#[tokio::test]
async fn a_resting_buy_fills_at_its_limit_when_the_price_falls_through_it() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=29000").await;
    assert_eq!(sim.set_price("BTCUSDT", d("28000")), Ok(1));
    // Paid 2900 at the limit price (not 2800); received 0.1 BTC minus 0.0001 BTC fee.
    assert_eq!(sim.balances(KEY)["USDT"], balance("7100", "0"));
    assert_eq!(sim.balances(KEY)["BTC"], balance("0.5999", "0"));
}

#[tokio::test]
async fn a_market_buy_fills_at_once_with_the_full_response() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let reply = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let order = &reply.json;
    assert_eq!(
        (order["status"].clone(), order["type"].clone(), order["price"].clone()),
        (json!("FILLED"), json!("MARKET"), json!("0.00000000"))
    );
    assert_eq!(
        (order["executedQty"].clone(), order["cummulativeQuoteQty"].clone()),
        (json!("0.01000000"), json!("300.00000000"))
    );
    assert_eq!(
        order["fills"],
        json!([{"price": "30000.00000000", "qty": "0.01000000", "commission": "0.00001000", "commissionAsset": "BTC", "tradeId": 1}])
    );
    assert_eq!(sim.balances(KEY)["USDT"], balance("9700", "0"));
    assert_eq!(sim.balances(KEY)["BTC"], balance("0.50999", "0"));
}

#[tokio::test]
async fn a_market_order_by_quote_amount_buys_whole_steps() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let reply = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=100").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // 100 / 30000 = 0.0033333.., rounded down to the 0.00001 step.
    assert_eq!(
        (reply.json["origQty"].clone(), reply.json["executedQty"].clone()),
        (json!("0.00333000"), json!("0.00333000"))
    );
    assert_eq!(
        (reply.json["cummulativeQuoteQty"].clone(), reply.json["origQuoteOrderQty"].clone()),
        (json!("99.90000000"), json!("100.00000000"))
    );
    assert_eq!(sim.balances(KEY)["USDT"], balance("9900.1", "0"));
}

#[tokio::test]
async fn market_orders_pay_the_configured_slippage() {
    let sim = sim_with(|config| config.slippage = d("0.001")).await;
    let client = Client::hmac(&sim);
    let buy = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!(buy.json["fills"][0]["price"], "30030.00000000");
    let sell = client.order(&sim, "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.01").await;
    assert_eq!(sell.json["fills"][0]["price"], "29970.00000000");
}

#[tokio::test]
async fn a_marketable_limit_order_executes_at_the_better_current_price() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let reply = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=31000").await;
    assert_eq!(reply.json["status"], "FILLED");
    assert_eq!(reply.json["fills"][0]["price"], "30000.00000000");
    // The 100 USDT reserved above the execution price came back.
    assert_eq!(sim.balances(KEY)["USDT"], balance("7000", "0"));
}

#[tokio::test]
async fn ioc_and_fok_orders_that_cannot_fill_expire_and_release_funds() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    for tif in ["IOC", "FOK"] {
        let reply = client
            .order(&sim, &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce={tif}&quantity=0.1&price=29000"))
            .await;
        assert_eq!(
            (reply.status, reply.json["status"].clone(), reply.json["timeInForce"].clone()),
            (200, json!("EXPIRED"), json!(tif))
        );
    }
    assert_eq!(sim.balances(KEY)["USDT"], balance("10000", "0"));
    let filled =
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.1&price=30000").await;
    assert_eq!(filled.json["status"], "FILLED");
}

#[tokio::test]
async fn a_limit_maker_rests_or_is_rejected_when_it_would_take() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let resting = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&quantity=0.1&price=29000").await;
    assert_eq!(resting.status, 200, "{}", resting.json);
    assert_eq!(resting.json.get("status"), None, "LIMIT_MAKER answers ACK by default");
    assert_eq!(sim.orders(KEY)[0].status, OrderStatus::New);
    let taking = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&quantity=0.1&price=30000").await;
    assert_eq!((taking.code(), taking.msg()), (-2010, "Order would immediately match and take."));
}

#[tokio::test]
async fn the_response_type_selects_ack_result_or_full() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let ack = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newOrderRespType=ACK").await;
    let keys = |reply: &crate::Reply| -> Vec<String> {
        let mut keys: Vec<String> = reply.json.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&ack), ["clientOrderId", "orderId", "orderListId", "symbol", "transactTime"]);
    assert_eq!(ack.json["clientOrderId"].as_str().map(str::len), Some(22), "a generated client id");
    let result = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newOrderRespType=RESULT").await;
    assert!(result.json.get("fills").is_none() && result.json["status"] == "FILLED");
    let full = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newOrderRespType=FULL").await;
    assert_eq!(full.json["fills"].as_array().map(Vec::len), Some(1));
    let bad = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newOrderRespType=ALL").await;
    assert_eq!(bad.code(), -1130);
}

#[tokio::test]
async fn a_duplicate_open_client_order_id_is_rejected_and_reusable_after_cancel() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let order = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000&newClientOrderId=dup";
    assert_eq!(client.order(&sim, order).await.status, 200);
    let duplicate = client.order(&sim, order).await;
    assert_eq!((duplicate.status, duplicate.code(), duplicate.msg()), (400, -2010, "Duplicate order sent."));
    assert_eq!(sim.orders(KEY).len(), 1);
    client.signed(&sim, Method::DELETE, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=dup").await;
    assert_eq!(client.order(&sim, order).await.status, 200);
    // The query by client id finds the newest order with that id.
    let newest = client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=dup").await;
    assert_eq!((newest.json["orderId"].clone(), newest.json["status"].clone()), (json!(2), json!("NEW")));
}

#[tokio::test]
async fn unknown_orders_are_minus_2013_on_query_and_minus_2011_on_cancel() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let query = client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT&orderId=99").await;
    assert_eq!((query.status, query.code(), query.msg()), (400, -2013, "Order does not exist."));
    let query = client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=never-sent").await;
    assert_eq!(query.code(), -2013);
    let cancel = client.signed(&sim, Method::DELETE, "/api/v3/order", "symbol=BTCUSDT&orderId=99").await;
    assert_eq!((cancel.code(), cancel.msg()), (-2011, "Unknown order sent."));
    let neither = client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT").await;
    assert_eq!(
        (neither.code(), neither.msg()),
        (-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    );
}

#[tokio::test]
async fn filter_failures_name_the_filter() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let cases = [
        ("quantity=0.01&price=25000.001", "Filter failure: PRICE_FILTER"),
        ("quantity=0.01&price=2000000", "Filter failure: PRICE_FILTER"),
        ("quantity=0.000015&price=25000", "Filter failure: LOT_SIZE"),
        ("quantity=0.000001&price=25000", "Filter failure: LOT_SIZE"),
        ("quantity=10000&price=25000", "Filter failure: LOT_SIZE"),
        ("quantity=0.0001&price=25000", "Filter failure: NOTIONAL"),
    ];
    for (params, msg) in cases {
        let reply = client.order(&sim, &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&{params}")).await;
        assert_eq!((reply.status, reply.code(), reply.msg()), (400, -1013, msg), "{params}");
    }
    let small_market = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.0001").await;
    assert_eq!(small_market.msg(), "Filter failure: NOTIONAL", "minNotional applies to market orders");
    assert!(sim.orders(KEY).is_empty());
}

#[tokio::test]
async fn the_open_order_limit_per_symbol_is_max_num_orders() {
    let sim = sim_with(|config| config.limits.max_open_orders_per_symbol = 2).await;
    let client = Client::hmac(&sim);
    for _ in 0..2 {
        let reply =
            client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000").await;
        assert_eq!(reply.status, 200);
    }
    let third =
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000").await;
    assert_eq!(third.msg(), "Filter failure: MAX_NUM_ORDERS");
    let other_symbol =
        client.order(&sim, "symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000").await;
    assert_eq!(other_symbol.status, 200);
}

#[tokio::test]
async fn insufficient_balance_is_minus_2010() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let buy = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price=25000").await;
    assert_eq!(
        (buy.status, buy.code(), buy.msg()),
        (400, -2010, "Account has insufficient balance for requested action.")
    );
    let sell = client.order(&sim, "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.50001").await;
    assert_eq!(sell.code(), -2010);
    let eth = client.order(&sim, "symbol=ETHUSDT&side=SELL&type=MARKET&quantity=0.01").await;
    assert_eq!(eth.code(), -2010, "no ETH at all");
    // Locked funds are not free: two resting buys of 6000 USDT do not both fit in 10000.
    assert_eq!(
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.3&price=20000").await.status,
        200
    );
    assert_eq!(
        client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.3&price=20000").await.code(),
        -2010
    );
    assert_eq!(sim.balances(KEY)["USDT"], balance("4000", "6000"));
}

#[tokio::test]
async fn malformed_orders_get_binances_parameter_errors() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let cases: [(&str, i64, &str); 12] = [
        (
            "side=BUY&type=MARKET&quantity=1",
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ),
        ("symbol=NOPE&side=BUY&type=MARKET&quantity=1", -1121, "Invalid symbol."),
        ("symbol=BTCUSDT&side=UP&type=MARKET&quantity=1", -1117, "Invalid side."),
        ("symbol=BTCUSDT&side=BUY&type=BEST&quantity=1", -1116, "Invalid orderType."),
        (
            "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1",
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTD&quantity=1&price=1", -1115, "Invalid timeInForce."),
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&price=1", -1106, "Parameter 'price' sent when not required."),
        (
            "symbol=BTCUSDT&side=BUY&type=MARKET",
            -1102,
            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=-1",
            -1100,
            r"Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\.[0-9]{1,20})?$'.",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1e3",
            -1100,
            r"Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\.[0-9]{1,20})?$'.",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=STOP_LOSS_LIMIT&quantity=1&price=1&stopPrice=1&timeInForce=GTC",
            -2010,
            "Stop loss limit orders are not supported for this symbol.",
        ),
        (
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&newClientOrderId=has%20space",
            -1100,
            r"Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\.A-Z\:/a-z0-9_-]{1,36}$'.",
        ),
    ];
    for (params, code, msg) in cases {
        let reply = client.order(&sim, params).await;
        assert_eq!((reply.status, reply.code(), reply.msg()), (400, code, msg), "{params}");
    }
    assert!(sim.orders(KEY).is_empty());
}

#[tokio::test]
async fn successful_orders_carry_the_order_count_headers() {
    let sim = sim().await;
    sim.freeze_clock_at(1_700_000_000_000);
    let client = Client::hmac(&sim);
    let first = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!((first.header("x-mbx-order-count-10s"), first.header("x-mbx-order-count-1d")), (Some("1"), Some("1")));
    let second = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!((second.header("x-mbx-order-count-10s"), second.header("x-mbx-order-count-1d")), (Some("2"), Some("2")));
    let rejected = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=100").await;
    assert_eq!(rejected.header("x-mbx-order-count-10s"), None);
    sim.advance_clock_ms(10_000);
    let later = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!((later.header("x-mbx-order-count-10s"), later.header("x-mbx-order-count-1d")), (Some("1"), Some("3")));
}

#[tokio::test]
async fn too_many_orders_in_ten_seconds_is_429_minus_1015() {
    let sim = sim_with(|config| {
        config.limits.orders_per_10s = 2;
        config.frozen_clock_ms = Some(1_700_000_003_000);
    })
    .await;
    let client = Client::hmac(&sim);
    for _ in 0..2 {
        assert_eq!(client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await.status, 200);
    }
    let third = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!((third.status, third.code()), (429, -1015));
    assert_eq!(third.msg(), "Too many new orders; current limit is 2 orders per 10 SECOND.");
    assert_eq!(third.header("retry-after"), Some("7"));
    assert_eq!(sim.orders(KEY).len(), 2);
    sim.advance_clock_ms(7_000);
    assert_eq!(client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await.status, 200);
}

#[tokio::test]
async fn cancel_restrictions_are_checked() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000").await;
    let restricted = client
        .signed(
            &sim,
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCUSDT&orderId=1&cancelRestrictions=ONLY_PARTIALLY_FILLED",
        )
        .await;
    assert_eq!((restricted.code(), restricted.msg()), (-2011, "Order was not canceled due to cancel restrictions."));
    let bad = client
        .signed(&sim, Method::DELETE, "/api/v3/order", "symbol=BTCUSDT&orderId=1&cancelRestrictions=SOMETIMES")
        .await;
    assert_eq!(bad.code(), -1145);
    let allowed = client
        .signed(&sim, Method::DELETE, "/api/v3/order", "symbol=BTCUSDT&orderId=1&cancelRestrictions=ONLY_NEW")
        .await;
    assert_eq!(allowed.json["status"], "CANCELED");
}
