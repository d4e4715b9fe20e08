//! Request weight: the `X-MBX-USED-WEIGHT-1M` header, 429 with `Retry-After` past the limit, and
//! the reset at the next minute. The clock is frozen so no assertion can straddle a minute.

use reqwest::Method;

use crate::{Client, sim_with};

/// 40 seconds into a minute.
const FROZEN_AT: i64 = 1_700_000_020_000;

#[tokio::test]
async fn every_response_reports_the_weight_used_this_minute() {
    let sim = sim_with(|config| config.frozen_clock_ms = Some(FROZEN_AT)).await;
    let client = Client::hmac(&sim);
    let steps = [
        ("/api/v3/ping", "", 1),
        ("/api/v3/exchangeInfo", "", 21),
        ("/api/v3/depth", "symbol=BTCUSDT&limit=500", 46),
        ("/api/v3/ticker/24hr", "", 126),
        ("/api/v3/ticker/price", "symbol=BTCUSDT", 128),
        ("/api/v3/exchangeInfo", "symbol=NOPE", 148),
    ];
    for (path, query, used) in steps {
        let reply = client.public(path, query).await;
        assert_eq!(reply.header("x-mbx-used-weight-1m"), Some(used.to_string().as_str()), "{path}?{query}");
    }
    let account = client.signed(&sim, Method::GET, "/api/v3/account", "").await;
    assert_eq!(account.header("x-mbx-used-weight-1m"), Some("168"));
    let order = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!(order.header("x-mbx-used-weight-1m"), Some("169"));
    let query = client.signed(&sim, Method::GET, "/api/v3/order", "symbol=BTCUSDT&orderId=1").await;
    assert_eq!(query.header("x-mbx-used-weight-1m"), Some("173"));
    // SAPI weight is counted apart; the header still shows the API weight.
    let restrictions = client.signed(&sim, Method::GET, "/sapi/v1/account/apiRestrictions", "").await;
    assert_eq!(restrictions.header("x-mbx-used-weight-1m"), Some("173"));
    assert_eq!(restrictions.header("x-sapi-used-ip-weight-1m"), Some("1"));

    sim.advance_clock_ms(20_000);
    assert_eq!(client.public("/api/v3/ping", "").await.header("x-mbx-used-weight-1m"), Some("1"), "a new minute");
}

#[tokio::test]
async fn past_the_limit_requests_get_429_with_retry_after_until_the_minute_ends() {
    let sim = sim_with(|config| {
        config.frozen_clock_ms = Some(FROZEN_AT);
        config.limits.request_weight_per_minute = 45;
    })
    .await;
    let client = Client::hmac(&sim);
    assert_eq!(client.public("/api/v3/exchangeInfo", "").await.status, 200);
    assert_eq!(client.public("/api/v3/exchangeInfo", "").await.status, 200);
    let refused = client.public("/api/v3/exchangeInfo", "").await;
    assert_eq!((refused.status, refused.code()), (429, -1003));
    assert_eq!(
        refused.msg(),
        "Too much request weight used; current limit is 45 request weight per 1 MINUTE. \
         Please use WebSocket Streams for live updates to avoid polling the API."
    );
    assert_eq!(refused.header("retry-after"), Some("20"));
    assert_eq!(refused.header("x-mbx-used-weight-1m"), Some("60"));

    // Signed requests are refused before they are performed.
    let order = client.order(&sim, "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01").await;
    assert_eq!(order.status, 429);
    assert!(sim.orders(crate::KEY).is_empty());

    sim.advance_clock_ms(19_000);
    assert_eq!(client.public("/api/v3/ping", "").await.header("retry-after"), Some("1"));
    sim.advance_clock_ms(1_000);
    let next_minute = client.public("/api/v3/exchangeInfo", "").await;
    assert_eq!((next_minute.status, next_minute.header("x-mbx-used-weight-1m")), (200, Some("20")));
}
