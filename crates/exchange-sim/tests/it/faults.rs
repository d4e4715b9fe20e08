//! Injected faults, one kind per test: what the client sees, and whether the request was performed.

use std::time::{Duration, Instant};

use exchange_sim::{Fault, LostReply, OrderStatus};
use reqwest::Method;

use crate::{Client, KEY, SECRET, Signer, order_posts, sim, sim_with};

const ORDER: &str = "/api/v3/order";
const BUY: &str = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newClientOrderId=intent-1";

#[tokio::test]
async fn a_server_error_is_500_and_the_order_is_not_placed() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::ServerError { path: ORDER.to_owned() });
    // Other paths do not fire it.
    assert_eq!(client.public("/api/v3/ping", "").await.status, 200);
    assert_eq!(sim.pending_faults(), 1);

    let reply = client.order(&sim, BUY).await;
    assert_eq!((reply.status, reply.code()), (500, -1000));
    assert!(sim.orders(KEY).is_empty());
    assert_eq!(sim.pending_faults(), 0);
    // One-shot: the retry goes through.
    assert_eq!(client.order(&sim, BUY).await.status, 200);
    assert_eq!(sim.orders(KEY).len(), 1);
}

#[tokio::test]
async fn an_injected_rate_limit_is_429_with_retry_after() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::RateLimited { retry_after_secs: 17 });
    let reply = client.public("/api/v3/exchangeInfo", "").await;
    assert_eq!((reply.status, reply.code(), reply.header("retry-after")), (429, -1003, Some("17")));
    assert!(reply.header("x-mbx-used-weight-1m").is_some());
    assert_eq!(client.public("/api/v3/exchangeInfo", "").await.status, 200);
}

#[tokio::test]
async fn an_injected_ip_ban_is_418_with_retry_after() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::IpBanned { retry_after_secs: 120 });
    let reply = client.order(&sim, BUY).await;
    assert_eq!((reply.status, reply.code(), reply.header("retry-after")), (418, -1003, Some("120")));
    assert!(reply.msg().starts_with("Way too much request weight used; IP banned until "), "{}", reply.msg());
    assert!(sim.orders(KEY).is_empty());
}

/// After a lost response the order exists exactly once and a lookup by client id finds it: what an
/// adapter must do instead of resending.
async fn assert_placed_once(sim: &exchange_sim::ExchangeSim, client: &Client) {
    assert_eq!(order_posts(sim), 1);
    let orders = sim.orders(KEY);
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status, OrderStatus::Filled);
    let lookup = client.signed(sim, Method::GET, ORDER, "symbol=BTCUSDT&origClientOrderId=intent-1").await;
    assert_eq!((lookup.status, lookup.json["status"].as_str()), (200, Some("FILLED")));
}

#[tokio::test]
async fn a_lost_response_as_503_still_places_the_order() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::lost_response(ORDER));
    let reply = client.order(&sim, BUY).await;
    assert_eq!((reply.status, reply.code()), (503, -1007));
    assert_eq!(
        reply.msg(),
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
    );
    assert_placed_once(&sim, &client).await;
}

#[tokio::test]
async fn a_lost_response_as_504_still_places_the_order() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::LostResponse { path: ORDER.to_owned(), reply: LostReply::GatewayTimeout });
    let reply = client.order(&sim, BUY).await;
    assert_eq!((reply.status, reply.json.clone()), (504, serde_json::Value::Null));
    assert_placed_once(&sim, &client).await;
}

#[tokio::test]
async fn a_dropped_connection_gives_no_response_but_places_the_order() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::LostResponse { path: ORDER.to_owned(), reply: LostReply::ConnectionDropped });
    let body = client.sign_query(BUY, sim.server_time_ms());
    let error = client.send(Method::POST, ORDER, "", &body).await.expect_err("no response");
    assert!(!error.is_timeout(), "{error}");
    assert_eq!(sim.request_log()[0].status, None);
    assert_placed_once(&sim, &client).await;
}

#[tokio::test]
async fn a_hanging_lost_response_times_the_client_out_after_placing_the_order() {
    let sim = sim().await;
    let impatient = Client::with_timeout(&sim, Some(KEY), Signer::Hmac(SECRET.to_owned()), Duration::from_millis(300));
    sim.inject(Fault::LostResponse { path: ORDER.to_owned(), reply: LostReply::Hang });
    let body = impatient.sign_query(BUY, sim.server_time_ms());
    let error = impatient.send(Method::POST, ORDER, "", &body).await.expect_err("no response in time");
    assert!(error.is_timeout(), "{error}");
    assert_placed_once(&sim, &Client::hmac(&sim)).await;
}

#[tokio::test]
async fn a_timeout_hangs_without_performing_the_request() {
    let sim = sim().await;
    let impatient = Client::with_timeout(&sim, Some(KEY), Signer::Hmac(SECRET.to_owned()), Duration::from_millis(300));
    sim.inject(Fault::Timeout { path: ORDER.to_owned() });
    let body = impatient.sign_query(BUY, sim.server_time_ms());
    let error = impatient.send(Method::POST, ORDER, "", &body).await.expect_err("no response in time");
    assert!(error.is_timeout(), "{error}");
    assert!(sim.orders(KEY).is_empty());
}

#[tokio::test]
async fn a_timeout_ends_with_503_once_the_hang_is_over() {
    let sim = sim_with(|config| config.hang_for = Duration::from_millis(50)).await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::Timeout { path: ORDER.to_owned() });
    let reply = client.order(&sim, BUY).await;
    assert_eq!((reply.status, reply.code()), (503, -1007));
    assert!(sim.orders(KEY).is_empty());
}

#[tokio::test]
async fn latency_delays_the_request_then_handles_it() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::Latency { ms: 250 });
    let started = Instant::now();
    let reply = client.public("/api/v3/time", "").await;
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    assert_eq!(reply.status, 200);
    assert_eq!(sim.pending_faults(), 0);
}

#[tokio::test]
async fn faults_fire_in_the_order_they_were_queued() {
    let sim = sim().await;
    let client = Client::hmac(&sim);
    sim.inject(Fault::RateLimited { retry_after_secs: 1 });
    sim.inject(Fault::IpBanned { retry_after_secs: 2 });
    assert_eq!(client.public("/api/v3/ping", "").await.status, 429);
    assert_eq!(client.public("/api/v3/ping", "").await.status, 418);
    assert_eq!(client.public("/api/v3/ping", "").await.status, 200);
}
