//! `GET /metrics`: the Prometheus text format, parsed line by line; counters that move with the
//! requests a test sends (pages, shed 503s, 429s, webhook refusals, edge refusals and header
//! timeouts); the access rule (a bearer token when one is configured, otherwise a loopback peer
//! that is not a trusted proxy; anyone else gets the 404 of an unknown route); and labels that
//! never carry a path segment, an id or a query.
//!
//! A non-loopback peer is real: the test's client binds this machine's own non-loopback address
//! (the one its default route uses) and connects to the app on 127.0.0.1, so the app sees that
//! address as the peer.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use server::config::{MetricsToken, Rate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::half_sent;
use crate::{Backend, Reply, TestApp, logs, spawn_app_with};

const TOKEN: &str = "metrics-token-4f1c9a7e2b8d6035c1e0a9b7d4f2e8c6";

/// One parsed exposition: every sample with its labels, and the TYPE of every family.
#[derive(Debug)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    /// Parses every line; panics on any line that is not a HELP, a TYPE or a valid sample of a
    /// family typed before it.
    fn parse(text: &str) -> Exposition {
        let mut types = BTreeMap::new();
        let mut helped = std::collections::BTreeSet::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("HELP without text: {line}"));
                assert!(!help.trim().is_empty(), "empty HELP: {line}");
                assert!(helped.insert(name.to_owned()), "HELP twice for {name}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("TYPE without a type: {line}"));
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
                assert!(helped.contains(name), "TYPE before HELP: {line}");
                assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "TYPE twice: {line}");
                continue;
            }
            assert!(!line.starts_with('#') && !line.trim().is_empty(), "unexpected line: {line:?}");
            let (name, labels, value) = parse_sample(line);
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix).filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
                })
                .unwrap_or(&name)
                .to_owned();
            let kind = types.get(&family).unwrap_or_else(|| panic!("sample before its TYPE: {line}"));
            assert!(family.starts_with("bulwark_"), "{line}");
            if kind == "counter" {
                assert!(family.ends_with("_total"), "a counter's name ends in _total: {line}");
                assert!(value >= 0.0, "{line}");
            }
            samples.push((name, labels, value));
        }
        assert!(!samples.is_empty(), "no samples in {text}");
        Exposition { types, samples }
    }

    /// The value of the sample `name` whose labels include every pair of `labels`; 0 when the
    /// exposition has none (a labelled counter appears once it counted something).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).is_some_and(|x| x == v)))
            .map(|(_, _, v)| *v)
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {} samples", found.len());
        found.first().copied().unwrap_or(0.0)
    }
}

/// `name{k="v",...} value` (labels optional), with the format's escapes in label values.
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "bad metric name: {line}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let close;
        loop {
            let start = chars.peek().map(|(i, _)| *i).unwrap_or_else(|| panic!("unclosed labels: {line}"));
            if inner[start..].starts_with('}') {
                close = start;
                break;
            }
            let eq = inner[start..].find('=').unwrap_or_else(|| panic!("label without '=': {line}")) + start;
            let key = &inner[start..eq];
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad label name {key:?}: {line}"
            );
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "unquoted label value: {line}");
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            }
            assert!(labels.insert(key.to_owned(), value).is_none(), "label twice: {line}");
            if chars.peek().is_some_and(|(_, c)| *c == ',') {
                chars.next();
            }
        }
        rest = &inner[close + 1..];
    }
    let value_text = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no space before the value: {line}"));
    assert!(!value_text.contains(' '), "a timestamp or junk after the value: {line}");
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        text => text.parse::<f64>().unwrap_or_else(|_| panic!("not a float: {line}")),
    };
    (name.to_owned(), labels, value)
}

/// Scrapes `/metrics` from loopback and checks the answer's headers.
async fn scrape(app: &TestApp) -> Exposition {
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.headers.contains_key("content-security-policy"), "the security headers apply");
    Exposition::parse(&reply.text)
}

/// This machine's address on its default route: not loopback.
fn outside_address() -> IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket
        .connect("198.51.100.1:9")
        .expect("this test needs a non-loopback IPv4 address with a default route (to act as a remote peer)");
    let ip = socket.local_addr().expect("local address").ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip} is no remote-looking address");
    ip
}

/// A client whose connections come from `outside_address()`.
fn outside_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(outside_address())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get_with(client: &reqwest::Client, app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = client.get(app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::of(request.send().await.expect("send")).await
}

/// The same answer as an unknown route: status, body and every header but the date.
fn assert_same_as_unknown(reply: &Reply, unknown: &Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {}", reply.text);
    assert_eq!(reply.text, unknown.text, "{what}: the body of an unknown route");
    let headers = |r: &Reply| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
            .collect();
        all.sort();
        all
    };
    assert_eq!(headers(reply), headers(unknown), "{what}: the headers of an unknown route");
}

/// Loopback scrapes parse, and the counters move by what the test sent: 3 unknown pages, a 429
/// from a webhook limit, a 503 from load shedding (scraped while the pool is full: /metrics is
/// never shed), and the histogram agrees with the request counts.
async fn counters_follow_the_requests_sent(backend: Backend) {
    logs::install();
    let app = spawn_app_with(backend, |c| {
        c.max_in_flight = 1;
        c.webhooks.per_ip = Rate { per_minute: 1, burst: 1 };
    })
    .await;
    let before = scrape(&app).await;
    assert_eq!(before.types.get("bulwark_http_request_duration_seconds").map(String::as_str), Some("histogram"));
    assert_eq!(before.value("bulwark_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert!(before.value("bulwark_process_start_time_seconds", &[]) > 1.7e9, "a Unix time");
    assert!(before.value("bulwark_connections_open", &[]) >= 1.0, "the scrape's own connection");

    let page_404 = [("class", "page"), ("code", "404")];
    for _ in 0..3 {
        assert_eq!(app.get("/no-such-page", None).await.status, 404);
    }
    let after = scrape(&app).await;
    assert_eq!(
        after.value("bulwark_http_requests_total", &page_404) - before.value("bulwark_http_requests_total", &page_404),
        3.0
    );
    assert_eq!(after.value("bulwark_http_requests_total", &[("class", "metrics"), ("code", "200")]), 1.0);

    // The webhook address limit: one hit passes it (and is refused for its body), the next is 429.
    let json = [("content-type", "application/json")];
    assert_eq!(app.post_raw("/trade_signal/trading_view", "{}", &json).await.status, 422);
    assert_eq!(app.post_raw("/trade_signal/trading_view", "{}", &json).await.status, 429);
    let limited = scrape(&app).await;
    assert_eq!(limited.value("bulwark_http_requests_rate_limited_total", &[("class", "webhook")]), 1.0);
    assert_eq!(limited.value("bulwark_http_requests_total", &[("class", "webhook"), ("code", "429")]), 1.0);
    assert_eq!(
        limited.value("bulwark_webhook_signals_refused_total", &[("format", "dca"), ("code", "rate_limited")]),
        1.0
    );
    assert_eq!(
        limited.value("bulwark_webhook_signals_refused_total", &[("format", "dca"), ("code", "invalid_signal")]),
        1.0
    );
    assert_eq!(limited.value("bulwark_webhook_signals_accepted_total", &[("format", "dca")]), 0.0);

    // Shedding: one request holds the only slot; /metrics still answers and shows it in flight.
    let held = half_sent(app.addr).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The held request and this scrape.
        if scrape(&app).await.value("bulwark_http_requests_in_flight", &[]) >= 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the held request never reached its handler");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = app.get("/api/v1/me", None).await;
    assert_eq!((shed.status, shed.code()), (503, "overloaded"), "{}", shed.text);
    let full = scrape(&app).await;
    assert_eq!(full.value("bulwark_http_requests_shed_total", &[]), 1.0);
    assert_eq!(full.value("bulwark_http_requests_total", &[("class", "api"), ("code", "503")]), 1.0);
    drop(held);

    // The histogram: cumulative buckets, +Inf equal to the count, and the count equal to the
    // requests counted for the class.
    for class in ["api", "page", "webhook", "metrics"] {
        let buckets: Vec<f64> = full
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == "bulwark_http_request_duration_seconds_bucket" && l.get("class").is_some_and(|c| c == class)
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert!(buckets.len() >= 2 && buckets.windows(2).all(|w| w[0] <= w[1]), "{class}: {buckets:?}");
        let count = full.value("bulwark_http_request_duration_seconds_count", &[("class", class)]);
        assert_eq!(
            full.value("bulwark_http_request_duration_seconds_bucket", &[("class", class), ("le", "+Inf")]),
            count
        );
        let requests: f64 = full
            .samples
            .iter()
            .filter(|(n, l, _)| n == "bulwark_http_requests_total" && l.get("class").is_some_and(|c| c == class))
            .map(|(_, _, v)| *v)
            .sum();
        // The scrape that produced `full` is counted once it has answered, so not in itself.
        assert_eq!(count, requests, "{class}");
    }
}

crate::on_both!(counters_follow_the_requests_sent);

/// Requests naming ids, uuids, tokens and queries leave no trace of them in any label.
#[tokio::test]
async fn labels_never_carry_a_path_an_id_or_a_query() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let canary = "Qz9canaryTOKEN";
    for path in [
        "/api/v1/bots/9876543".to_owned(),
        "/bots/9876543".to_owned(),
        "/api/v1/deals/0b7c9e52-8f4a-4d1e-9c3b-7a2f6e1d5c48".to_owned(),
        format!("/verify-email?token={canary}"),
        format!("/assets/{canary}.css"),
        format!("/api/v1/exchange-accounts/9876543/balances?reveal={canary}"),
    ] {
        let reply = app.get(&path, None).await;
        assert!(reply.status >= 200, "{path}");
    }
    let hook = app.post_raw("/signal_bots/webhooks", format!("{{\"secret\":\"{canary}\"}}"), &[]).await;
    assert!(hook.status >= 400, "{}", hook.text);
    let text = app.get("/metrics", None).await.text;
    assert!(!text.contains(canary) && !text.contains("9876543") && !text.contains("0b7c9e52"), "{text}");
    let exposition = Exposition::parse(&text);
    let uuid_like = |v: &str| v.len() == 36 && v.chars().filter(|c| *c == '-').count() == 4;
    for (name, labels, _) in &exposition.samples {
        for (key, value) in labels {
            assert!(!value.contains('/') && !value.contains('?') && !uuid_like(value), "{name} {key}={value}");
            let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            if key == "le" {
                assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{name} {key}={value}");
            } else if digits_only {
                // Only a status code (and a bucket bound) is a number.
                assert_eq!(key, "code", "{name} {key}={value}");
                assert!((100..=599).contains(&value.parse::<u32>().unwrap()), "{name} {key}={value}");
            }
            match key.as_str() {
                "class" => assert!(["api", "page", "webhook", "asset", "health", "metrics"].contains(&value.as_str())),
                "code" | "le" | "version" | "format" | "cap" | "reason" | "venue" | "source" => {}
                other => panic!("unexpected label {other} on {name}"),
            }
        }
    }
    assert_eq!(exposition.value("bulwark_http_requests_total", &[("class", "asset"), ("code", "404")]), 1.0);
    let api: f64 = exposition
        .samples
        .iter()
        .filter(|(n, l, _)| n == "bulwark_http_requests_total" && l.get("class").is_some_and(|c| c == "api"))
        .map(|(_, _, v)| *v)
        .sum();
    assert_eq!(api, 3.0, "the three API requests, whatever their ids");
}

/// With a token configured: no token or a wrong one (from loopback too) gets exactly the 404 of an
/// unknown route; the right one is answered, from a remote peer as well.
#[tokio::test]
async fn a_configured_token_is_required_and_refusals_look_like_an_unknown_route() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |c| c.metrics_token = Some(MetricsToken::parse(TOKEN).unwrap())).await;
    let unknown = app.get("/no-such-route", None).await;
    assert_eq!(unknown.status, 404);
    assert_same_as_unknown(&app.get("/metrics", None).await, &unknown, "no token");
    for wrong in [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        "Bearer ".to_owned(),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
    ] {
        let reply = app.send("GET", "/metrics", None, None, &[("authorization", &wrong)]).await;
        assert_same_as_unknown(&reply, &unknown, &format!("Authorization: {wrong}"));
    }
    let bearer = format!("Bearer {TOKEN}");
    let unknown_post = app.send("POST", "/no-such-route", None, None, &[]).await;
    let post = app.send("POST", "/metrics", None, None, &[("authorization", &bearer)]).await;
    assert_same_as_unknown(&post, &unknown_post, "POST with the token");

    let right = app.send("GET", "/metrics", None, None, &[("authorization", &bearer)]).await;
    assert_eq!(right.status, 200, "{}", right.text);
    Exposition::parse(&right.text);
    let remote = get_with(&outside_client(), &app, "/metrics", &[("authorization", &bearer)]).await;
    assert_eq!(remote.status, 200, "the token opens it from anywhere: {}", remote.text);
    let counted = Exposition::parse(&remote.text);
    assert!(counted.value("bulwark_http_requests_total", &[("class", "metrics"), ("code", "404")]) >= 7.0);
    assert!(!right.text.contains(TOKEN) && !logs::captured().contains(TOKEN), "the token is never shown or logged");
}

/// Without a token: a remote peer gets the unknown-route 404, with or without a forwarded header
/// naming loopback; behind a trusted proxy on loopback, the proxy's connections are no operator's.
#[tokio::test]
async fn without_a_token_only_a_loopback_peer_that_is_no_proxy_reads_it() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let outside = outside_client();
    let unknown = get_with(&outside, &app, "/no-such-route", &[]).await;
    assert_eq!(unknown.status, 404, "the remote client reaches the app");
    assert_same_as_unknown(&get_with(&outside, &app, "/metrics", &[]).await, &unknown, "remote peer");
    let forwarded = get_with(&outside, &app, "/metrics", &[("x-forwarded-for", "127.0.0.1")]).await;
    assert_same_as_unknown(&forwarded, &unknown, "remote peer claiming loopback");
    assert_eq!(app.get("/metrics", None).await.status, 200, "the loopback peer reads it");

    let proxied = spawn_app_with(Backend::Sqlite, |c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let unknown = proxied.get("/no-such-route", None).await;
    assert_same_as_unknown(&proxied.get("/metrics", None).await, &unknown, "a trusted proxy's connection");
    let forwarded = proxied.send("GET", "/metrics", None, None, &[("x-forwarded-for", "127.0.0.1")]).await;
    assert_same_as_unknown(&forwarded, &unknown, "a proxy forwarding a client that claims loopback");
    let from_outside = get_with(&outside, &proxied, "/metrics", &[("x-forwarded-for", "127.0.0.1")]).await;
    assert_same_as_unknown(&from_outside, &unknown, "an untrusted peer forwarding loopback");
}

/// A keep-alive connection that got one answer, so the server holds it open.
async fn served_connection(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("\"status\":\"ok\"}") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&chunk[..n]);
    }
    stream
}

/// Waits until the server closes `stream` (EOF or reset), with a deadline.
async fn closed_by_server(mut stream: TcpStream) {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open"),
        }
    }
}

/// The edge's counters: a connection over the per-address cap and a header-read timeout.
#[tokio::test]
async fn the_edge_counts_refused_connections_and_header_timeouts() {
    logs::install();
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.edge.max_connections_per_ip = 1;
        c.metrics_token = Some(MetricsToken::parse(TOKEN).unwrap());
    })
    .await;
    let held = served_connection(app.addr).await;
    closed_by_server(TcpStream::connect(app.addr).await.expect("connect")).await;
    // Read from another address: loopback has no connection to spare.
    let bearer = format!("Bearer {TOKEN}");
    let reply = get_with(&outside_client(), &app, "/metrics", &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let seen = Exposition::parse(&reply.text);
    assert_eq!(seen.value("bulwark_connections_refused_total", &[("cap", "per_address")]), 1.0);
    assert_eq!(seen.value("bulwark_connections_refused_total", &[("cap", "total")]), 0.0);
    assert!(seen.value("bulwark_connections_open", &[]) >= 2.0, "the held one and the scrape's");
    drop(held);

    let slow = spawn_app_with(Backend::Sqlite, |c| c.edge.header_read_timeout = Duration::from_millis(300)).await;
    assert_eq!(scrape(&slow).await.value("bulwark_http_header_timeouts_total", &[]), 0.0);
    let mut stream = TcpStream::connect(slow.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").await.expect("write");
    closed_by_server(stream).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    // The close and the count happen in the connection's task; the count may trail the close.
    while scrape(&slow).await.value("bulwark_http_header_timeouts_total", &[]) < 1.0 {
        assert!(Instant::now() < deadline, "the header timeout was never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
