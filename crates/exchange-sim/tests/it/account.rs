//! Account data: `account`, `apiRestrictions`, `openOrders`, `myTrades`.

use exchange_sim::SimPermissions;
use reqwest::Method;
use serde_json::json;

use crate::{Client, KEY, d, sim};

#[tokio::test]
async fn the_account_lists_balances_as_eight_decimal_strings() {
    let sim = sim().await;
    let reply = Client::hmac(&sim).signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!(reply.status, 200);
    let account = &reply.json;
    assert_eq!(account["makerCommission"], 10);
    assert_eq!(account["takerCommission"], 10);
    assert_eq!(account["commissionRates"]["taker"], "0.00100000");
    assert_eq!(
        (account["canTrade"].clone(), account["canWithdraw"].clone(), account["canDeposit"].clone()),
        (json!(true), json!(false), json!(true))
    );
    assert_eq!(account["accountType"], "SPOT");
    assert_eq!(account["permissions"], json!(["SPOT"]));
    assert_eq!(
        account["balances"],
        json!([
            {"asset": "BTC", "free": "0.50000000", "locked": "0.00000000"},
            {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"},
        ])
    );
}

#[tokio::test]
async fn omit_zero_balances_hides_empty_assets() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    // Selling all BTC leaves a zero BTC balance behind.
    let reply = client.order(&sim, "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.5").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let all = client.signed(&sim, Method::GET, "/api/v3/account", "").await;
    let assets = |reply: &crate::Reply| -> Vec<String> {
        reply.json["balances"]
            .as_array()
            .expect("balances")
            .iter()
            .map(|b| b["asset"].as_str().expect("asset").to_owned())
            .collect()
    };
    assert_eq!(assets(&all), ["BTC", "USDT"]);
    let non_zero = client.signed(&sim, Method::GET, "/api/v3/account", "omitZeroBalances=true").await;
    assert_eq!(assets(&non_zero), ["USDT"]);
    let bad = client.signed(&sim, Method::GET, "/api/v3/account", "omitZeroBalances=maybe").await;
    assert_eq!(bad.code(), -1130);
}

#[tokio::test]
async fn api_restrictions_reflect_the_key_permissions() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let reply = client.signed(&sim, Method::GET, "/sapi/v1/account/apiRestrictions", "").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let expected_keys = [
        "ipRestrict",
        "createTime",
        "enableReading",
        "enableWithdrawals",
        "enableInternalTransfer",
        "enableMargin",
        "enableFutures",
        "permitsUniversalTransfer",
        "enableVanillaOptions",
        "enableFixApiTrade",
        "enableFixReadOnly",
        "enableSpotAndMarginTrading",
        "enablePortfolioMarginTrading",
    ];
    let object = reply.json.as_object().expect("an object");
    assert_eq!(object.keys().map(String::as_str).collect::<Vec<_>>().len(), expected_keys.len());
    assert!(expected_keys.iter().all(|key| object.contains_key(*key)), "{}", reply.json);
    assert_eq!(reply.json["ipRestrict"], true);
    assert_eq!(reply.json["enableWithdrawals"], false);
    assert_eq!(reply.json["enableSpotAndMarginTrading"], true);
    assert!(reply.json["createTime"].as_i64().is_some_and(|time| time > 0));
    assert_eq!(reply.header("x-sapi-used-ip-weight-1m"), Some("1"));

    let risky = SimPermissions {
        spot_trading: false,
        withdrawals: true,
        internal_transfer: true,
        universal_transfer: true,
        ip_restricted: false,
        reading: true,
    };
    sim.set_permissions(KEY, risky).expect("a known key");
    let reply = client.signed(&sim, Method::GET, "/sapi/v1/account/apiRestrictions", "").await;
    for (field, value) in [
        ("ipRestrict", false),
        ("enableWithdrawals", true),
        ("enableInternalTransfer", true),
        ("permitsUniversalTransfer", true),
        ("enableSpotAndMarginTrading", false),
        ("enableReading", true),
    ] {
        assert_eq!(reply.json[field], value, "{field}");
    }
}

#[tokio::test]
async fn my_trades_lists_fills_with_fees_and_roles() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let taker = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.1").await;
    let maker =
        client.order(&sim, "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.1&price=31000").await;
    sim.set_price("BTCUSDT", d("31500")).expect("a known symbol");
    let reply = client.signed(&sim, Method::GET, "/api/v3/myTrades", "symbol=BTCUSDT").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let trades = reply.json.as_array().expect("trades");
    assert_eq!(trades.len(), 2);
    assert_eq!(trades[0]["orderId"], taker.json["orderId"]);
    assert_eq!(
        (trades[0]["price"].clone(), trades[0]["qty"].clone(), trades[0]["quoteQty"].clone()),
        (json!("30000.00000000"), json!("0.10000000"), json!("3000.00000000"))
    );
    assert_eq!(
        (trades[0]["commission"].clone(), trades[0]["commissionAsset"].clone()),
        (json!("0.00010000"), json!("BTC"))
    );
    assert_eq!((trades[0]["isBuyer"].clone(), trades[0]["isMaker"].clone()), (json!(true), json!(false)));
    assert_eq!(trades[1]["orderId"], maker.json["orderId"]);
    assert_eq!(
        (trades[1]["price"].clone(), trades[1]["commission"].clone()),
        (json!("31000.00000000"), json!("3.10000000"))
    );
    assert_eq!(
        (trades[1]["commissionAsset"].clone(), trades[1]["isBuyer"].clone(), trades[1]["isMaker"].clone()),
        (json!("USDT"), json!(false), json!(true))
    );
    assert_eq!(trades[1]["isBestMatch"], true);

    let by_order = client
        .signed(&sim, Method::GET, "/api/v3/myTrades", &format!("symbol=BTCUSDT&orderId={}", maker.json["orderId"]))
        .await;
    assert_eq!(by_order.json.as_array().map(Vec::len), Some(1));
    let limited = client.signed(&sim, Method::GET, "/api/v3/myTrades", "symbol=BTCUSDT&limit=1").await;
    assert_eq!(limited.json[0]["orderId"], maker.json["orderId"], "the most recent trades");
    let from = client.signed(&sim, Method::GET, "/api/v3/myTrades", "symbol=BTCUSDT&fromId=1&limit=1").await;
    assert_eq!(from.json[0]["id"], 1);
    let missing = client.signed(&sim, Method::GET, "/api/v3/myTrades", "").await;
    assert_eq!(missing.code(), -1102);
    let too_long =
        client.signed(&sim, Method::GET, "/api/v3/myTrades", "symbol=BTCUSDT&startTime=0&endTime=86400001").await;
    assert_eq!((too_long.code(), too_long.msg()), (-1127, "More than 24 hours between startTime and endTime."));
}

#[tokio::test]
async fn open_orders_filter_by_symbol() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    client.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000").await;
    client.order(&sim, "symbol=ETHUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.1&price=1000").await;
    client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    let all = client.signed(&sim, Method::GET, "/api/v3/openOrders", "").await;
    assert_eq!(all.json.as_array().map(Vec::len), Some(2));
    let btc = client.signed(&sim, Method::GET, "/api/v3/openOrders", "symbol=BTCUSDT").await;
    let btc = btc.json.as_array().expect("orders");
    assert_eq!(btc.len(), 1);
    assert_eq!(
        (btc[0]["symbol"].clone(), btc[0]["status"].clone(), btc[0]["isWorking"].clone()),
        (json!("BTCUSDT"), json!("NEW"), json!(true))
    );
    let unknown = client.signed(&sim, Method::GET, "/api/v3/openOrders", "symbol=DOGEUSDT").await;
    assert_eq!(unknown.code(), -1121);
}
