//! Request limits (NET-1). Load shedding: when every request slot of the pages and the API is taken, one more
//! request is answered 503 `overloaded` with `Retry-After` at once (with the security headers),
//! while the webhook routes, counted apart, still get answers and `/healthz` answers too; when the
//! held requests finish, requests are taken again. Requests are held in flight for real: raw
//! connections that send a request's headers and half its body, so the handler waits for the rest.
//! And JSON nested deeper than the parser's limit is a clear 400, not a crash. A body that trickles
//! in slower than the body read timeout is answered 408 and its connection closed; a chunked
//! request (the shape of ambiguous framing) is refused with 411; the per-address and per-account request rates answer 429 with
//! `Retry-After`, per client as far as the server can tell (a forwarded header from an untrusted
//! peer changes nothing).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Backend, logs, spawn_app_with};

/// A sign-in whose body is promised (2 bytes) but only half sent: its handler holds a slot until
/// the rest arrives.
pub(crate) async fn half_sent(addr: std::net::SocketAddr) -> TcpStream {
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

/// Reads what the server sends until it closes the connection (with a deadline).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes the connection within 10 s")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_gets_408_and_the_connection_closes() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| config.edge.body_read_timeout = Duration::from_secs(1)).await;
    for path in ["/api/v1/auth/login", "/signal_bots/webhooks"] {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"a\""
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let started = tokio::time::Instant::now();
        // A byte now and then keeps the connection busy, never finishing the body.
        let (mut read, mut write) = stream.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if write.write_all(b" ").await.is_err() {
                    break;
                }
            }
        });
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer))
            .await
            .expect("answered and closed within 10 s")
            .expect("read");
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"request_timeout\""), "{path}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{path}: {answer}");
        assert!(started.elapsed() >= Duration::from_secs(1), "{path}: not before the timeout");
    }
    // A body that arrives in time is taken whole, however it is cut up.
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let body = r#"{"email":"slow@example.com","password":"x"}"#;
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    for part in [&body[..10], &body[10..]] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(part.as_bytes()).await.expect("write");
    }
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "an unknown account, answered for what it is: {answer}");
}

#[tokio::test]
async fn a_chunked_request_is_refused_and_nothing_behind_it_is_served() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    for (path, length) in [
        ("/api/v1/auth/login", "Content-Length: 3\r\n"),
        ("/trade_signal/trading_view", "Content-Length: 3\r\n"),
        ("/signal_bots/webhooks", ""),
    ] {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        // A chunked body of `{}` (beside a Content-Length claiming 3 bytes: the smuggling shape),
        // and a second request behind it on the same connection.
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{length}\
             Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 411"), "{path}: {answer}");
        assert!(answer.contains("\"length_required\""), "{path}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{path}: nothing after it is served: {answer}");
    }
    // Two different lengths are refused by the HTTP parser itself.
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let request = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                   Content-Length: 2\r\nContent-Length: 4\r\n\r\n{}{}";
    stream.write_all(request.as_bytes()).await.expect("write");
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

#[tokio::test]
async fn requests_beyond_the_per_address_rate_get_429_with_retry_after() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.request_rates.per_ip = server::config::Rate { per_minute: 1, burst: 5 };
    })
    .await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/me", None).await.status, 401, "within the burst");
    }
    let refused = app.get("/api/v1/me", None).await;
    assert_eq!((refused.status, refused.code()), (429, "rate_limited"), "{}", refused.text);
    let wait: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}: a token a minute");
    assert_eq!(app.get("/", None).await.status, 429, "the pages share the address's bucket");
    // A forwarded header from a peer that is not a trusted proxy is not believed.
    let forged = app.send("GET", "/api/v1/me", None, None, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(forged.status, 429, "{}", forged.text);
    // Health, assets and the webhook routes (limited on their own) are not counted here.
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(app.get("/assets/app.css", None).await.status, 200);
    let hook = app.post_raw("/trade_signal/trading_view", "{}", &[("content-type", "application/json")]).await;
    assert_eq!(hook.status, 422, "{}", hook.text);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_rate() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.request_rates.per_ip = server::config::Rate { per_minute: 1, burst: 3 };
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..3 {
        assert_eq!(app.send("GET", "/api/v1/me", None, None, &from("198.51.100.1")).await.status, 401);
    }
    assert_eq!(app.send("GET", "/api/v1/me", None, None, &from("198.51.100.1")).await.status, 429);
    assert_eq!(app.send("GET", "/api/v1/me", None, None, &from("198.51.100.2")).await.status, 401, "another client");
}

#[tokio::test]
async fn signed_in_requests_beyond_the_per_account_rate_get_429_from_any_address() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.request_rates.per_account = server::config::Rate { per_minute: 1, burst: 4 };
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let alice = app.signed_in("alice@example.com", crate::PASSWORD).await;
    let bob = app.signed_in("bob@example.com", crate::PASSWORD).await;
    // Each request comes from another client address: the account's bucket is what runs out.
    let mut answers = Vec::new();
    for n in 1..=6 {
        let ip = format!("198.51.100.{n}");
        let reply = app.send("GET", "/api/v1/me", None, Some(&alice), &[("x-forwarded-for", &ip)]).await;
        answers.push(reply.status);
        if reply.status == 429 {
            assert_eq!(reply.code(), "rate_limited", "{}", reply.text);
            assert!(reply.headers.contains_key("retry-after"));
        }
    }
    assert_eq!(answers, [200, 200, 200, 200, 429, 429], "the burst of 4, then refused");
    assert_eq!(app.get("/api/v1/me", Some(&bob)).await.status, 200, "another account has its own bucket");
}
