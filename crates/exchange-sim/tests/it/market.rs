//! Market data (security NONE).

use serde_json::json;

use crate::{Client, d, sim};

#[tokio::test]
async fn ping_and_time() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let ping = client.public("/api/v3/ping", "").await;
    assert_eq!((ping.status, ping.json.clone()), (200, json!({})));
    assert!(ping.header("x-mbx-used-weight-1m").is_some());
    assert_eq!(ping.header("content-type"), Some("application/json;charset=UTF-8"));

    sim.freeze_clock_at(1_700_000_000_123);
    let time = client.public("/api/v3/time", "").await;
    assert_eq!(time.json, json!({"serverTime": 1_700_000_000_123_i64}));
}

#[tokio::test]
async fn exchange_info_describes_symbols_filters_and_limits() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let reply = client.public("/api/v3/exchangeInfo", "symbol=BTCUSDT").await;
    assert_eq!(reply.status, 200);
    let info = &reply.json;
    assert_eq!(info["timezone"], "UTC");
    assert!(info["serverTime"].as_i64().is_some());
    assert_eq!(
        info["rateLimits"][0],
        json!({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000})
    );
    assert_eq!(
        info["rateLimits"][1],
        json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50})
    );
    assert_eq!(
        info["rateLimits"][2],
        json!({"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000})
    );
    let symbols = info["symbols"].as_array().expect("symbols");
    assert_eq!(symbols.len(), 1);
    let btc = &symbols[0];
    assert_eq!(btc["symbol"], "BTCUSDT");
    assert_eq!(btc["status"], "TRADING");
    assert_eq!((btc["baseAsset"].clone(), btc["quoteAsset"].clone()), (json!("BTC"), json!("USDT")));
    assert_eq!(
        (btc["baseAssetPrecision"].clone(), btc["quotePrecision"].clone(), btc["quoteAssetPrecision"].clone()),
        (json!(8), json!(8), json!(8))
    );
    assert_eq!(btc["orderTypes"], json!(["LIMIT", "LIMIT_MAKER", "MARKET"]));
    assert_eq!(btc["isSpotTradingAllowed"], true);
    assert_eq!(btc["permissionSets"], json!([["SPOT"]]));
    assert_eq!(
        btc["filters"],
        json!([
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true, "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ])
    );
}

#[tokio::test]
async fn exchange_info_selects_symbols_and_rejects_unknown_ones() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let names = |reply: &crate::Reply| -> Vec<String> {
        reply.json["symbols"]
            .as_array()
            .expect("symbols")
            .iter()
            .map(|s| s["symbol"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&client.public("/api/v3/exchangeInfo", "").await), ["BTCUSDT", "ETHUSDT"]);
    let both = client.public("/api/v3/exchangeInfo", "symbols=%5B%22ETHUSDT%22,%22BTCUSDT%22%5D").await;
    assert_eq!(names(&both), ["ETHUSDT", "BTCUSDT"]);

    let unknown = client.public("/api/v3/exchangeInfo", "symbol=DOGEUSDT").await;
    assert_eq!((unknown.status, unknown.code(), unknown.msg()), (400, -1121, "Invalid symbol."));
    let unknown_in_list = client.public("/api/v3/exchangeInfo", r#"symbols=["BTCUSDT","NOPE"]"#).await;
    assert_eq!(unknown_in_list.code(), -1121);
    let lower = client.public("/api/v3/exchangeInfo", "symbol=btcusdt").await;
    assert_eq!(lower.code(), -1100);
    assert_eq!(lower.msg(), "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.");
    let combined = client.public("/api/v3/exchangeInfo", r#"symbol=BTCUSDT&symbols=["ETHUSDT"]"#).await;
    assert_eq!(combined.code(), -1128);
}

#[tokio::test]
async fn ticker_price_for_one_or_all_symbols_follows_set_price() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let one = client.public("/api/v3/ticker/price", "symbol=BTCUSDT").await;
    assert_eq!(one.json, json!({"symbol": "BTCUSDT", "price": "30000.00000000"}));
    sim.set_price("BTCUSDT", d("30123.45")).expect("a known symbol");
    let all = client.public("/api/v3/ticker/price", "").await;
    assert_eq!(
        all.json,
        json!([{"symbol": "BTCUSDT", "price": "30123.45000000"}, {"symbol": "ETHUSDT", "price": "2000.00000000"}])
    );
    assert_eq!(sim.price("BTCUSDT"), Some(d("30123.45")));
    assert!(sim.set_price("NOPE", d("1")).is_err());
    assert!(sim.set_price("BTCUSDT", d("0")).is_err());
}

#[tokio::test]
async fn the_24h_ticker_reports_quote_volume_and_counts_simulated_trades() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let before = client.public("/api/v3/ticker/24hr", "symbol=BTCUSDT").await;
    assert_eq!(before.status, 200);
    let ticker = &before.json;
    assert_eq!(ticker["symbol"], "BTCUSDT");
    assert_eq!(ticker["quoteVolume"], "1000000000.00000000");
    assert_eq!(ticker["lastPrice"], "30000.00000000");
    assert_eq!(
        (ticker["firstId"].clone(), ticker["lastId"].clone(), ticker["count"].clone()),
        (json!(-1), json!(-1), json!(0))
    );
    for field in [
        "priceChange",
        "priceChangePercent",
        "weightedAvgPrice",
        "prevClosePrice",
        "bidPrice",
        "askPrice",
        "openPrice",
        "highPrice",
        "lowPrice",
        "volume",
    ] {
        assert!(ticker[field].is_string(), "{field}: {ticker}");
    }
    assert!(ticker["openTime"].as_i64() < ticker["closeTime"].as_i64());

    client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.1").await;
    sim.set_price("BTCUSDT", d("33000")).expect("a known symbol");
    let after = client.public("/api/v3/ticker/24hr", "symbol=BTCUSDT").await.json;
    assert_eq!(after["quoteVolume"], "1000003000.00000000");
    assert_eq!(
        (after["count"].clone(), after["firstId"].clone(), after["lastId"].clone()),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(
        (after["priceChange"].clone(), after["priceChangePercent"].clone()),
        (json!("3000.00000000"), json!("10.000"))
    );
    assert_eq!(after["highPrice"], "33000.00000000");

    let all = client.public("/api/v3/ticker/24hr", "").await;
    assert_eq!(all.json.as_array().map(Vec::len), Some(2));
    let mini = client.public("/api/v3/ticker/24hr", "symbol=ETHUSDT&type=MINI").await.json;
    assert!(mini.get("priceChange").is_none() && mini["quoteVolume"].is_string(), "{mini}");
    assert_eq!(client.public("/api/v3/ticker/24hr", "type=HUGE").await.code(), -1139);
}

#[tokio::test]
async fn depth_is_a_book_around_the_price() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    let reply = client.public("/api/v3/depth", "symbol=BTCUSDT&limit=5").await;
    assert_eq!(reply.status, 200);
    let bids = reply.json["bids"].as_array().expect("bids");
    let asks = reply.json["asks"].as_array().expect("asks");
    assert_eq!((bids.len(), asks.len()), (5, 5));
    assert_eq!(asks[0][0], "30000.00000000");
    assert_eq!(bids[0][0], "29999.99000000");
    assert_eq!(bids[4][0], "29999.95000000");
    assert!(reply.json["lastUpdateId"].as_u64().is_some());
    assert_eq!(client.public("/api/v3/depth", "limit=5").await.code(), -1102);
    assert_eq!(client.public("/api/v3/depth", "symbol=BTCUSDT&limit=lots").await.code(), -1100);
    let default = client.public("/api/v3/depth", "symbol=ETHUSDT").await;
    assert_eq!(default.json["bids"].as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let sim = sim().await;
    let reply = Client::hmac(&sim).public("/api/v3/uiKlines", "symbol=BTCUSDT&interval=1m").await;
    assert_eq!(reply.status, 404);
}
