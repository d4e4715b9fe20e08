//! Floods against the limits of NET-1: what an attacker on many addresses gets, and what the
//! webhooks (the path that moves money) and `/healthz` get meanwhile. The whole app over real
//! HTTP on loopback (`test_support::spawn_app_with`, SQLite), with the default limits; the
//! attackers' connections come from addresses of their own (127.0.0.10 and up: Linux answers the
//! whole 127/8 on loopback; each part its own), so the per-address limits work as they would on the
//! internet.
//!
//! - **Page flood**: 16 addresses × 32 keep-alive connections asking for `/` as fast as they are
//!   answered, while a TradingView-like sender posts 100 signals a second (to a disabled signal
//!   bot: each recorded before its 202) and `/healthz` is asked every 100 ms. What the flood gets
//!   (200, 429 from the per-address rate, 503 from load shedding) and how the webhooks fare.
//! - **Slow bodies**: 16 × 40 connections send a sign-in's headers and half its body and stop,
//!   more than the 512 request slots of the pages and the API; the body read timeout is 5 s here
//!   (30 s by default). API probes meanwhile (503 while the slots are held), webhooks at 100/s,
//!   when the held requests get their 408, and when the API answers normally again.
//! - **Slowloris**: 16 × 60 connections send a request line and then a header byte a second,
//!   never finishing their headers; the header read timeout is the default 10 s. When each is
//!   closed, and how a normal client's page loads fare meanwhile.
//! - **One address**: 32 connections from one address asking as fast as they can: how many are
//!   refused 429 and how cheap a refusal is.
//!
//! Run: `cargo bench -p server --bench flood` (about a minute). Without `--bench` (as under
//! `cargo test --benches`) it runs once with tiny counts and short timeouts as a smoke test.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use server::config::Rate;
use test_support::{Backend, TestApp, spawn_app_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "violet kettle thunder 42";

#[derive(Debug, Clone, Copy)]
struct Scale {
    addresses: u8,
    page_connections: usize,
    flood_seconds: f64,
    slow_bodies: usize,
    body_timeout: Duration,
    slowloris: usize,
    header_timeout: Duration,
    one_address: usize,
    one_address_seconds: f64,
    webhook_rate: u32,
}

const FULL: Scale = Scale {
    addresses: 16,
    page_connections: 32,
    flood_seconds: 10.0,
    slow_bodies: 40,
    body_timeout: Duration::from_secs(5),
    slowloris: 60,
    header_timeout: Duration::from_secs(10),
    one_address: 32,
    one_address_seconds: 5.0,
    webhook_rate: 100,
};

const SMOKE: Scale = Scale {
    addresses: 2,
    page_connections: 2,
    flood_seconds: 0.3,
    slow_bodies: 2,
    body_timeout: Duration::from_millis(500),
    slowloris: 2,
    header_timeout: Duration::from_millis(500),
    one_address: 2,
    one_address_seconds: 0.3,
    webhook_rate: 20,
};

fn main() {
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let scale = if bench { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("flood bench: {cores} cores, {}", if bench { "full" } else { "smoke" });
    runtime.block_on(async {
        let fixture = Fixture::new(scale).await;
        fixture.page_flood().await;
        fixture.slow_bodies().await;
        fixture.slowloris().await;
        fixture.one_address().await;
    });
}

/// Latencies in milliseconds, summarized.
fn summary(latencies: &mut [Duration]) -> String {
    if latencies.is_empty() {
        return "none".to_owned();
    }
    latencies.sort();
    let at = |p: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index].as_secs_f64() * 1e3
    };
    format!("{} answers; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", latencies.len(), at(0.5), at(0.99), at(1.0))
}

/// A connection from `ip` (on loopback) to the app.
async fn connect_from(ip: [u8; 4], addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((ip, 0)))?;
    socket.connect(addr).await
}

/// The address of attacker `n` in flood `part`: every part has addresses of its own, so one
/// part's spent buckets are not the next one's.
fn attacker(part: u8, n: u8) -> [u8; 4] {
    [127, 0, part, 10 + n]
}

/// Sends a request on a keep-alive connection and reads the answer; `None` when the connection
/// ended first.
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Option<u16> {
    stream.write_all(request).await.ok()?;
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..head_end + length);
    Some(status)
}

/// What a flood's clients saw: answers by status, with their latencies, and connections lost.
#[derive(Default)]
struct Tally {
    by_status: BTreeMap<u16, Vec<Duration>>,
    closed: usize,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (status, mut latencies) in other.by_status {
            self.by_status.entry(status).or_default().append(&mut latencies);
        }
        self.closed += other.closed;
    }

    fn print(&mut self, wall: Duration, indent: &str) {
        let total: usize = self.by_status.values().map(Vec::len).sum();
        #[allow(clippy::cast_precision_loss)]
        let rate = total as f64 / wall.as_secs_f64();
        println!(
            "{indent}{total} answers in {:.1} s = {rate:.0}/s; connections closed on them: {}",
            wall.as_secs_f64(),
            self.closed
        );
        for (status, latencies) in &mut self.by_status {
            println!("{indent}  {status}: {}", summary(latencies));
        }
    }
}

struct Fixture {
    app: Arc<TestApp>,
    scale: Scale,
    bot: (String, String),
}

impl Fixture {
    async fn new(scale: Scale) -> Fixture {
        let app = spawn_app_with(Backend::Sqlite, |config| {
            // The sender of the signals is one address: its own limits are not what is measured.
            let open = Rate { per_minute: u32::MAX / 2, burst: u32::MAX / 2 };
            config.webhooks.per_ip = open;
            config.webhooks.per_bot = open;
            config.edge.body_read_timeout = scale.body_timeout;
            config.edge.header_read_timeout = scale.header_timeout;
        })
        .await;
        let cookie = app.signed_in("flood@example.com", PASSWORD).await;
        let reply =
            app.post("/api/v1/exchange-accounts", json!({"exchange": "paper", "name": "Paper"}), Some(&cookie)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let account = reply.json["id"].as_str().expect("id").to_owned();
        let body = json!({
            "type": "signal", "name": "Flood", "exchange_account_id": account, "pairs": ["USDT_BTC"],
            "enabled": false, "base_order_volume": "20",
        });
        let reply = app.post("/api/v1/bots", body, Some(&cookie)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let bot = (
            reply.json["id"].as_str().expect("id").to_owned(),
            reply.json["webhook_secret"].as_str().expect("secret").to_owned(),
        );
        Fixture { app: Arc::new(app), scale, bot }
    }

    /// Signals at `webhook_rate` a second until `until`, each latency from its scheduled time;
    /// also `/healthz` every 100 ms. Returns (webhook tally, health latencies).
    fn side_traffic(&self, until: Instant, salt: usize) -> tokio::task::JoinHandle<(Tally, Vec<Duration>)> {
        let (app, bot, rate) = (Arc::clone(&self.app), self.bot.clone(), self.scale.webhook_rate);
        tokio::spawn(async move {
            let health_app = Arc::clone(&app);
            let health = tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let reply = health_app.client.get(health_app.url("/healthz")).send().await;
                    if reply.is_ok_and(|r| r.status() == 200) {
                        latencies.push(sent.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                latencies
            });
            let tally = Arc::new(Mutex::new(Tally::default()));
            let started = Instant::now();
            let mut sends = Vec::new();
            for n in 0.. {
                let due = started + Duration::from_secs_f64(f64::from(n) / f64::from(rate));
                if due >= until {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let body = json!({
                    "secret": bot.1, "bot_uuid": bot.0, "action": "buy", "tv_exchange": "BINANCE",
                    "tv_instrument": "BTCUSDT", "trigger_price": format!("30000.{:08}", salt + n as usize),
                })
                .to_string();
                let (app, tally) = (Arc::clone(&app), Arc::clone(&tally));
                sends.push(tokio::spawn(async move {
                    let reply = app
                        .client
                        .post(app.url("/signal_bots/webhooks"))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let mut tally = tally.lock().expect("tally");
                    match reply {
                        Ok(reply) => tally.by_status.entry(reply.status().as_u16()).or_default().push(due.elapsed()),
                        Err(_) => tally.closed += 1,
                    }
                }));
            }
            for send in sends {
                let _ = send.await;
            }
            let tally = std::mem::take(&mut *tally.lock().expect("tally"));
            (tally, health.await.unwrap_or_default())
        })
    }

    fn print_side(&self, tally: &mut Tally, health: &mut [Duration], wall: Duration) {
        println!("  webhooks at {}/s meanwhile:", self.scale.webhook_rate);
        tally.print(wall, "    ");
        println!("  /healthz every 100 ms: {}", summary(health));
    }

    async fn page_flood(&self) {
        let scale = self.scale;
        println!(
            "\nPage flood: {} addresses x {} connections asking for / ({:.0} s)",
            scale.addresses, scale.page_connections, scale.flood_seconds
        );
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(scale.flood_seconds);
        let side = self.side_traffic(until, 1_000_000);
        let mut clients = Vec::new();
        for a in 0..scale.addresses {
            for _ in 0..scale.page_connections {
                let addr = self.app.addr;
                clients.push(tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
                    while Instant::now() < until {
                        let Ok(mut stream) = connect_from(attacker(1, a), addr).await else {
                            tally.closed += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let mut buf = Vec::new();
                        while Instant::now() < until {
                            let sent = Instant::now();
                            match exchange(&mut stream, request, &mut buf).await {
                                Some(status) => tally.by_status.entry(status).or_default().push(sent.elapsed()),
                                None => {
                                    tally.closed += 1;
                                    break;
                                }
                            }
                        }
                    }
                    tally
                }));
            }
        }
        let mut flood = Tally::default();
        for client in clients {
            flood.merge(client.await.expect("client"));
        }
        let wall = started.elapsed();
        println!("  the flood got:");
        flood.print(wall, "    ");
        let (mut hooks, mut health) = side.await.expect("side traffic");
        self.print_side(&mut hooks, &mut health, wall);
    }

    async fn slow_bodies(&self) {
        let scale = self.scale;
        let count = usize::from(scale.addresses) * scale.slow_bodies;
        println!(
            "\nSlow bodies: {} addresses x {} sign-ins with half a body ({count} in all; body read timeout {:?})",
            scale.addresses, scale.slow_bodies, scale.body_timeout
        );
        let started = Instant::now();
        let mut held = Vec::new();
        for a in 0..scale.addresses {
            for _ in 0..scale.slow_bodies {
                let addr = self.app.addr;
                held.push(tokio::spawn(async move {
                    let mut stream = connect_from(attacker(2, a), addr).await.ok()?;
                    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                                Content-Length: 40\r\n\r\n{\"email\":";
                    stream.write_all(head.as_bytes()).await.ok()?;
                    let mut answer = Vec::new();
                    let _ = stream.read_to_end(&mut answer).await;
                    let status: Option<u16> = String::from_utf8_lossy(&answer).get(9..12).and_then(|s| s.parse().ok());
                    Some((status, started.elapsed()))
                }));
            }
        }
        let until = started + scale.body_timeout + Duration::from_secs_f64(scale.flood_seconds.min(3.0));
        let side = self.side_traffic(until, 2_000_000);
        let mut probes = Tally::default();
        let mut normal_again: Option<Duration> = None;
        while Instant::now() < until {
            let sent = Instant::now();
            let status = self.app.get("/api/v1/me", None).await.status;
            probes.by_status.entry(status).or_default().push(sent.elapsed());
            if status == 401 && normal_again.is_none() && probes.by_status.contains_key(&503) {
                normal_again = Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut answered: BTreeMap<Option<u16>, Vec<Duration>> = BTreeMap::new();
        for task in held {
            if let Some((status, at)) = task.await.expect("held") {
                answered.entry(status).or_default().push(at);
            }
        }
        let wall = started.elapsed();
        for (status, mut at) in answered {
            println!("  held sign-ins answered {status:?}: {} (after {})", at.len(), summary(&mut at));
        }
        println!("  API probes every 50 ms:");
        probes.print(wall, "    ");
        println!("  API answering normally again after: {normal_again:?}");
        let (mut hooks, mut health) = side.await.expect("side traffic");
        self.print_side(&mut hooks, &mut health, wall);
    }

    async fn slowloris(&self) {
        let scale = self.scale;
        let count = usize::from(scale.addresses) * scale.slowloris;
        println!(
            "\nSlowloris: {} addresses x {} connections never finishing their headers ({count}; header timeout {:?})",
            scale.addresses, scale.slowloris, scale.header_timeout
        );
        let started = Instant::now();
        let mut slow = Vec::new();
        for a in 0..scale.addresses {
            for _ in 0..scale.slowloris {
                let addr = self.app.addr;
                slow.push(tokio::spawn(async move {
                    let mut stream = connect_from(attacker(3, a), addr).await.ok()?;
                    let opened = Instant::now();
                    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: ").await.ok()?;
                    let mut byte = [0u8; 1];
                    loop {
                        tokio::select! {
                            read = stream.read(&mut byte) => {
                                if matches!(read, Ok(0) | Err(_)) {
                                    return Some(opened.elapsed());
                                }
                            }
                            () = tokio::time::sleep(Duration::from_millis(1_000)) => {
                                if stream.write_all(b"a").await.is_err() {
                                    return Some(opened.elapsed());
                                }
                            }
                        }
                        if opened.elapsed() > Duration::from_secs(120) {
                            return None;
                        }
                    }
                }));
            }
        }
        let until = started + scale.header_timeout + Duration::from_secs(1);
        let mut pages = Tally::default();
        while Instant::now() < until {
            let sent = Instant::now();
            match self.app.client.get(self.app.url("/")).send().await {
                Ok(reply) => pages.by_status.entry(reply.status().as_u16()).or_default().push(sent.elapsed()),
                Err(_) => pages.closed += 1,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut closed_after = Vec::new();
        let mut never = 0;
        for task in slow {
            match task.await.expect("slow") {
                Some(after) => closed_after.push(after),
                None => never += 1,
            }
        }
        println!(
            "  slow connections closed after: {} (not closed, or not opened: {never})",
            summary(&mut closed_after)
        );
        println!("  a normal client's page loads every 50 ms meanwhile:");
        pages.print(started.elapsed(), "    ");
    }

    async fn one_address(&self) {
        let scale = self.scale;
        println!(
            "\nOne address, {} connections asking for /api/v1/me as fast as they can ({:.0} s)",
            scale.one_address, scale.one_address_seconds
        );
        // A fresh address: the earlier parts' buckets are not this one's.
        let ip = [127, 0, 4, 1];
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(scale.one_address_seconds);
        let mut clients = Vec::new();
        for _ in 0..scale.one_address {
            let addr = self.app.addr;
            clients.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                let Ok(mut stream) = connect_from(ip, addr).await else { return tally };
                let mut buf = Vec::new();
                while Instant::now() < until {
                    let sent = Instant::now();
                    match exchange(&mut stream, b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\n\r\n", &mut buf).await {
                        Some(status) => tally.by_status.entry(status).or_default().push(sent.elapsed()),
                        None => {
                            tally.closed += 1;
                            break;
                        }
                    }
                }
                tally
            }));
        }
        let mut tally = Tally::default();
        for client in clients {
            tally.merge(client.await.expect("client"));
        }
        tally.print(started.elapsed(), "  ");
    }
}
