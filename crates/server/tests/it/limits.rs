//! Request limits (NET-1). Load shedding: when every request slot of the pages and the API is taken, one more
//! request is answered 503 `overloaded` with `Retry-After` at once (with the security headers),
//! while the webhook routes, counted apart, still get answers and `/healthz` answers too; when the
//! held requests finish, requests are taken again. Requests are held in flight for real: raw
//! connections that send a request's headers and half its body, so the handler waits for the rest.
//! And JSON nested deeper than the parser's limit is a clear 400, not a crash.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Backend, logs, spawn_app_with};

/// A sign-in whose body is promised (2 bytes) but only half sent: its handler holds a slot until
/// the rest arrives.
async fn half_sent(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                Content-Length: 2\r\nConnection: close\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
}

/// Sends the rest of the body and reads the whole answer.
async fn finish(mut stream: TcpStream) -> String {
    stream.write_all(b"}").await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("the held request is answered once its body is complete")
        .expect("read");
    answer
}

#[tokio::test]
async fn a_full_api_sheds_with_503_while_webhooks_and_health_answer() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.max_in_flight = 2;
        config.webhook_max_in_flight = 2;
    })
    .await;
    assert_eq!(app.get("/api/v1/me", None).await.status, 401, "below the cap requests are handled");

    let held = [half_sent(app.addr).await, half_sent(app.addr).await];
    // Both are in their handlers once a third request is shed; wait for that (with a deadline).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let reply = app.get("/api/v1/me", None).await;
        if reply.status == 503 {
            break reply;
        }
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert!(tokio::time::Instant::now() < deadline, "the two held requests never took their slots");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(shed.code(), "overloaded", "{}", shed.text);
    assert_eq!(shed.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(shed.headers.contains_key("content-security-policy"), "a shed answer still has the security headers");
    assert_eq!(app.get("/", None).await.status, 503, "the pages share the pool");

    // The webhooks have their own slots: a malformed signal is refused for what it is, not shed.
    let hook = app.post_raw("/trade_signal/trading_view", "{}", &[("content-type", "application/json")]).await;
    assert_eq!((hook.status, hook.code()), (422, "invalid_signal"), "{}", hook.text);
    assert_eq!(app.get("/healthz", None).await.status, 200, "health is never shed");

    for stream in held {
        let answer = finish(stream).await;
        // `{}` is no sign-in: answered for what it is once the body is whole.
        assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.get("/api/v1/me", None).await.status != 401 {
        assert!(tokio::time::Instant::now() < deadline, "slots are given back when the held requests end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Each webhook slot is its own too: with the webhook pool full, a signal is shed, the API is not.
#[tokio::test]
async fn a_full_webhook_pool_sheds_webhooks_only() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| config.webhook_max_in_flight = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let head = "POST /signal_bots/webhooks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                Content-Length: 2\r\nConnection: close\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = app.post_raw("/signal_bots/webhooks", "{}", &[("content-type", "application/json")]).await;
        if reply.status == 503 {
            assert_eq!(reply.code(), "overloaded");
            break;
        }
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert!(tokio::time::Instant::now() < deadline, "the held webhook never took its slot");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(app.get("/api/v1/me", None).await.status, 401, "the API is not shed for the webhooks' load");
    let answer = finish(stream).await;
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
}

/// A body nesting 10,000 arrays (20 KB, under the 1 MiB limit) is refused as `invalid_json` by the
/// API (serde_json's depth limit, 128) and the webhook routes (their parser's own, 32) alike, and
/// the server answers the next request normally.
#[tokio::test]
async fn deeply_nested_json_is_refused_not_a_crash() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let cookie = app.signed_in("deep@example.com", crate::PASSWORD).await;
    // The preview reads any JSON value first (its settings are checked after), so the nesting
    // reaches the parser.
    let deep = format!(r#"{{"base_order_volume":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let session = format!("__Host-bulwark_session={cookie}");
    let headers = [("content-type", "application/json"), ("cookie", session.as_str())];
    let api = app.post_raw("/api/v1/bots/preview", deep, &headers).await;
    assert_eq!((api.status, api.code()), (400, "invalid_json"), "{}", api.text);
    let nested = format!(r#"{{"message_type":"bot","x":{}{}}}"#, "[".repeat(7_000), "]".repeat(7_000));
    let hook = app.post_raw("/trade_signal/trading_view", nested, &[("content-type", "application/json")]).await;
    assert_eq!((hook.status, hook.code()), (400, "invalid_json"), "{}", hook.text);
    assert_eq!(app.get("/healthz", None).await.status, 200);
}
