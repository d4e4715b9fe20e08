//! B3, B4, B5 and B7 of `spec/bench.md`: the webhook routes of the whole app over real HTTP on
//! loopback, with its real store (SQLite file with `synchronous=FULL`, or a PostgreSQL schema), its
//! runner, the real Binance adapter and the in-process exchange-sim as the venue
//! (`test_support::spawn_app_with`).
//!
//! - **B3, intake**: signals to disabled signal bots (each recorded — refused on arrival — with its
//!   audit row in one transaction before the 202; the runner has nothing to do), unique bodies, at
//!   1, 8 and 64 connections: accepted/s, p50, p99, max. Every 202 is a durably recorded signal.
//! - **B4, signal → order on the wire**: each signal to its own enabled signal bot (one market
//!   entry); from just before the client sends the webhook to the moment exchange-sim's handler has
//!   the order request (`RequestRecord::received_at`, same process, same monotonic clock). One
//!   signal at a time (the path alone), then paced at 100/s and 1,000/s (latency from each
//!   signal's scheduled time, so a backlog counts).
//! - **B5, fan-out**: one alert's worth of signals to 1,000 bots at once (TradingView sends one
//!   request per alert, and each Bulwark bot has its own secret, so a strategy driving 1,000 bots
//!   is 1,000 requests arriving together): time until every order is at the venue; the bots are on
//!   10 paper accounts, each under its own order guard. Then again with every venue request delayed
//!   50 ms (exchange-sim's latency fault), as an exchange across the internet answers.
//! - **B7**: the B3 path paced at 5,000/s while 8 clients sign in continuously (Argon2id at the
//!   default cost on the bounded hash pool): webhook p50/p99, against the same pacing without the
//!   sign-ins.
//!
//! Client and server share the machine and one tokio runtime. Rate limits are raised (they are
//! what B3 would otherwise measure); the Argon2 cost is the default.
//!
//! Run: `cargo bench -p server --bench webhooks` (both backends; PostgreSQL at
//! `BULWARK_TEST_DATABASE_URL` or the default of `test_support::pg_url`). Without `--bench` (as
//! under `cargo test --benches`) it runs once with tiny counts as a smoke test.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use server::config::Rate;
use test_support::{Backend, TestApp, spawn_app_with};
use tokio::sync::Semaphore;

const PASSWORD: &str = "violet kettle thunder 42";
/// B5's second run: the delay of every venue request, as from a home server to a distant exchange.
const VENUE_RTT_MS: u64 = 50;
const PATH: &str = "/signal_bots/webhooks";

#[derive(Debug, Clone, Copy)]
struct Scale {
    intake: [(usize, usize); 3],
    sequential: usize,
    paced: [(u32, usize); 2],
    fan_out: usize,
    flood_rate: u32,
    flood_seconds: f64,
}

const FULL: Scale = Scale {
    intake: [(1, 3_000), (8, 20_000), (64, 20_000)],
    sequential: 200,
    paced: [(100, 300), (1_000, 1_000)],
    fan_out: 1_000,
    flood_rate: 5_000,
    flood_seconds: 3.0,
};

const SMOKE: Scale = Scale {
    intake: [(1, 20), (8, 40), (64, 64)],
    sequential: 3,
    paced: [(100, 5), (1_000, 10)],
    fan_out: 20,
    flood_rate: 200,
    flood_seconds: 0.2,
};

fn main() {
    // `BENCH_LOG=warn` (any tracing filter) prints the app's log to stderr.
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let bench = std::env::args().any(|a| a == "--bench");
    // `BENCH_ONLY=b4` (b3, b4, b5, b7) runs one part, on SQLite.
    let only = std::env::var("BENCH_ONLY").ok();
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let scale = if bench { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("webhook bench: {cores} cores, {}", if bench { "full" } else { "smoke" });
    let backends: &[Backend] =
        if bench && only.is_none() { &[Backend::Sqlite, Backend::Postgres] } else { &[Backend::Sqlite] };
    for &backend in backends {
        runtime.block_on(async {
            if wants("b4") {
                let bots = scale.sequential + scale.paced.iter().map(|(_, n)| n).sum::<usize>() + 1;
                let b4 = Fixture::new(backend, bots, true, 10).await;
                b4.warm_up().await;
                println!("\nB4 signal -> order at the venue, bots on 10 paper accounts ({backend:?})");
                let mut next = 1;
                let line = |result: Result<Stats, String>| {
                    result.map_or_else(|why| format!("NOT MEASURED: {why}"), |s| s.line())
                };
                println!("  one at a time: {}", line(b4.to_the_wire(next..next + scale.sequential, None).await));
                next += scale.sequential;
                for (rate, count) in scale.paced {
                    println!("  paced {rate}/s:  {}", line(b4.to_the_wire(next..next + count, Some(rate)).await));
                    next += count;
                }
                drop(b4);
            }
            if wants("b3") {
                let b3 = Fixture::new(backend, 8, false, 1).await;
                println!("\nB3 intake ({backend:?})");
                // Warm-up: connections, page cache, allocator.
                let _ = b3.intake(8, 50, 0).await;
                for (i, (connections, count)) in scale.intake.iter().enumerate() {
                    let stats = b3.intake(*connections, *count, (i + 1) * 1_000_000).await;
                    println!("  {connections:>2} connections: {}", stats.line());
                }
                drop(b3);
            }
        });
    }
    runtime.block_on(async {
        if wants("b5") {
            let b5 = Fixture::new(Backend::Sqlite, scale.fan_out + 1, true, 10).await;
            b5.warm_up().await;
            println!("\nB5 fan-out (Sqlite)");
            b5.fan_out(1..scale.fan_out + 1).await;
            drop(b5);
            // The same with the venue 50 ms away (an exchange across the internet): every request
            // to it waits that long before it is handled, so a runner that waits for one bot's
            // order before the next bot's shows it.
            let far = Fixture::new(Backend::Sqlite, scale.fan_out + 1, true, 10).await;
            far.warm_up().await;
            for _ in 0..4 * scale.fan_out {
                far.app.venue.paper.inject(exchange_sim::Fault::Latency { ms: VENUE_RTT_MS });
            }
            println!("\nB5 fan-out, every venue request {VENUE_RTT_MS} ms late (Sqlite)");
            far.fan_out(1..scale.fan_out + 1).await;
            drop(far);
        }
        if wants("b7") {
            let b7 = Fixture::new(Backend::Sqlite, 8, false, 1).await;
            let logins = b7.sign_in_accounts(8).await;
            println!("\nB7 webhooks during a sign-in flood (Sqlite)");
            let quiet = b7.paced_intake(scale.flood_rate, scale.flood_seconds, 10_000_000).await;
            println!("  {}/s, no sign-ins:   {}", scale.flood_rate, quiet.line());
            let (loud, signed_in) =
                b7.paced_intake_with_logins(scale.flood_rate, scale.flood_seconds, 20_000_000, &logins).await;
            println!("  {}/s, 8 sign-ins at once, {signed_in} sign-ins done: {}", scale.flood_rate, loud.line());
            drop(b7);
        }
    });
}

/// Latencies of one measurement, and its wall time.
struct Stats {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index.min(sorted.len() - 1)]
    }

    fn line(&self) -> String {
        #[allow(clippy::cast_precision_loss)]
        let rate = self.latencies.len() as f64 / self.wall.as_secs_f64();
        format!(
            "{} in {:.2} s = {rate:.0}/s; p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.latencies.len(),
            self.wall.as_secs_f64(),
            self.percentile(0.5).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.percentile(1.0).as_secs_f64() * 1e3,
        )
    }
}

struct Fixture {
    app: Arc<TestApp>,
    /// (bot id, webhook secret), in creation order.
    bots: Vec<(String, String)>,
    cookie: String,
}

/// A distinct id for the `n`th object the bench writes.
fn uuid_of(n: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0xbe9c_0000_0000_4000_8000_0000_0000_0000 | n as u128)
}

fn message(bot: &(String, String), n: usize) -> String {
    // A trigger price unique to the request keeps every body apart (no replay inside the window).
    json!({
        "secret": bot.1, "bot_uuid": bot.0, "action": "buy", "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT",
        "trigger_price": format!("30000.{n:08}"),
    })
    .to_string()
}

async fn post(app: &TestApp, body: String) -> Instant {
    let reply = app
        .client
        .post(app.url(PATH))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the webhook answers");
    let status = reply.status().as_u16();
    let done = Instant::now();
    let text = reply.text().await.unwrap_or_default();
    assert_eq!(status, 202, "{text}");
    done
}

impl Fixture {
    /// An app with limits out of the way, `bots` signal bots (20 USDT market entries on BTC at
    /// 30,000) spread over `accounts` paper accounts, enabled or not.
    async fn new(backend: Backend, bots: usize, enabled: bool, accounts: usize) -> Fixture {
        let app = spawn_app_with(backend, |config| {
            let open = Rate { per_minute: u32::MAX / 2, burst: u32::MAX / 2 };
            config.webhooks.per_ip = open;
            config.webhooks.per_bot = open;
            config.webhooks.failures_per_ip = open;
            for rule in [&mut config.throttles.login_account, &mut config.throttles.login_ip] {
                rule.limit = u32::MAX;
            }
        })
        .await;
        app.venue.paper.set_price("BTCUSDT", domain::Decimal::from(30_000)).expect("the paper market lists BTCUSDT");
        let cookie = app.signed_in("bench@example.com", PASSWORD).await;
        let mut account_ids = Vec::new();
        for k in 0..accounts {
            let body = json!({"exchange": "paper", "name": format!("Paper {k}"), "balances": {"USDT": "10000000"}});
            let reply = app.post("/api/v1/exchange-accounts", body, Some(&cookie)).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            account_ids.push(reply.json["id"].as_str().expect("id").to_owned());
        }
        // One bot through the API (what it stores is the reference), the rest written to the store
        // the same way: creating a bot asks the venue for its markets, and a thousand of those
        // would spend the venue's request-weight budget.
        let body = json!({
            "type": "signal", "name": "Bench 0", "exchange_account_id": account_ids[0],
            "pairs": ["USDT_BTC"], "enabled": enabled, "base_order_volume": "20",
        });
        let reply = app.post("/api/v1/bots", body, Some(&cookie)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let first: domain::BotId = reply.json["id"].as_str().expect("id").parse().expect("a bot id");
        let user: domain::UserId =
            app.get("/api/v1/me", Some(&cookie)).await.json["id"].as_str().expect("id").parse().expect("a user id");
        let template = app.store.bot(user, first).await.expect("store").expect("the bot");
        let mut made = vec![(first.to_string(), reply.json["webhook_secret"].as_str().expect("secret").to_owned())];
        for n in 1..bots {
            let secret = exchange_sim::random_alnum(64).expect("random").as_str().to_owned();
            let mut bot = template.clone();
            bot.id = domain::BotId::from_uuid(uuid_of(n));
            bot.name = format!("Bench {n}");
            bot.exchange_account_id = account_ids[n % accounts].parse().expect("an account id");
            let audit = store::AuditRecord {
                id: domain::AuditId::from_uuid(uuid_of(1_000_000 + n)),
                user_id: Some(user),
                at: template.created_at,
                kind: "bot.created".to_owned(),
                ip: "127.0.0.1".to_owned(),
                user_agent: "bench".to_owned(),
                detail: "{}".to_owned(),
            };
            let binding = vault::envelope::Binding::webhook_secret(&user.to_string(), &bot.id.to_string());
            let sealed = app.keys.seal(&binding, secret.as_bytes()).await.expect("seal");
            let stored = store::NewWebhookSecret { hash: webhook::secret::hash(secret.as_bytes()), sealed };
            app.store.insert_bot(&bot, &stored, &audit).await.expect("insert bot");
            made.push((bot.id.to_string(), secret));
        }
        Fixture { app: Arc::new(app), bots: made, cookie }
    }

    /// Sends a signal to bot 0 and waits for its order at the venue: every bot created before is
    /// then leased and loaded by the runner (it claims them all in one cycle).
    async fn warm_up(&self) {
        self.to_the_wire(0..1, None).await.expect("the warm-up signal's order reaches the venue");
    }

    /// B3: `count` signals over `connections` connections, round robin over the bots.
    async fn intake(&self, connections: usize, count: usize, salt: usize) -> Stats {
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(connections);
        for c in 0..connections {
            let app = Arc::clone(&self.app);
            let bots = self.bots.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = c;
                while n < count {
                    let body = message(&bots[n % bots.len()], salt + n);
                    let sent = Instant::now();
                    let done = post(&app, body).await;
                    latencies.push(done - sent);
                    n += connections;
                }
                latencies
            }));
        }
        let mut latencies = Vec::with_capacity(count);
        for task in tasks {
            latencies.extend(task.await.expect("client task"));
        }
        Stats { latencies, wall: started.elapsed() }
    }

    /// B3 paced: `rate` signals a second for `seconds`; each latency from its scheduled time.
    async fn paced_intake(&self, rate: u32, seconds: f64, salt: usize) -> Stats {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = (f64::from(rate) * seconds) as usize;
        let gate = Arc::new(Semaphore::new(256));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for n in 0..count {
            #[allow(clippy::cast_precision_loss)]
            let due = started + Duration::from_secs_f64(n as f64 / f64::from(rate));
            tokio::time::sleep_until(due.into()).await;
            let permit = Arc::clone(&gate).acquire_owned().await.expect("semaphore");
            let app = Arc::clone(&self.app);
            let body = message(&self.bots[n % self.bots.len()], salt + n);
            tasks.push(tokio::spawn(async move {
                let done = post(&app, body).await;
                drop(permit);
                done - due
            }));
        }
        let mut latencies = Vec::with_capacity(count);
        for task in tasks {
            latencies.push(task.await.expect("client task"));
        }
        Stats { latencies, wall: started.elapsed() }
    }

    /// Registers and verifies `n` accounts for the sign-in flood.
    async fn sign_in_accounts(&self, n: usize) -> Vec<String> {
        let mut emails = Vec::with_capacity(n);
        for k in 0..n {
            let email = format!("flood-{k}@example.com");
            self.app.signed_in(&email, PASSWORD).await;
            emails.push(email);
        }
        emails
    }

    /// B7: `paced_intake` while one client per email signs in over and over; returns the stats and
    /// how many sign-ins completed.
    async fn paced_intake_with_logins(
        &self,
        rate: u32,
        seconds: f64,
        salt: usize,
        emails: &[String],
    ) -> (Stats, usize) {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut flood = Vec::new();
        for email in emails {
            let (app, stop, email) = (Arc::clone(&self.app), Arc::clone(&stop), email.clone());
            flood.push(tokio::spawn(async move {
                let mut done = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let reply =
                        app.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD}), None).await;
                    // 429 is the hash pool refusing the excess: part of the flood, counted apart.
                    assert!(matches!(reply.status, 200 | 429), "{}", reply.text);
                    done += usize::from(reply.status == 200);
                }
                done
            }));
        }
        // Let the flood fill the hash pool first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stats = self.paced_intake(rate, seconds, salt).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut signed_in = 0;
        for task in flood {
            signed_in += task.await.expect("flood task");
        }
        (stats, signed_in)
    }

    /// B4: one signal to each bot in `bots` (one at a time, or paced at `rate`), then the time from
    /// each send to its entry order reaching the venue.
    async fn to_the_wire(&self, bots: std::ops::Range<usize>, rate: Option<u32>) -> Result<Stats, String> {
        let started = Instant::now();
        let mut sent = Vec::with_capacity(bots.len());
        let mut tasks = Vec::new();
        for (i, b) in bots.clone().enumerate() {
            let body = message(&self.bots[b], 90_000_000 + b);
            match rate {
                None => {
                    let at = Instant::now();
                    post(&self.app, body).await;
                    sent.push((b, at));
                    self.orders_at_venue(&[b], Duration::from_secs(30)).await?;
                }
                Some(rate) => {
                    #[allow(clippy::cast_precision_loss)]
                    let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate));
                    tokio::time::sleep_until(due.into()).await;
                    sent.push((b, due));
                    let app = Arc::clone(&self.app);
                    tasks.push(tokio::spawn(async move { post(&app, body).await }));
                }
            }
        }
        for task in tasks {
            task.await.expect("client task");
        }
        let which: Vec<usize> = sent.iter().map(|(b, _)| *b).collect();
        let arrived = self.orders_at_venue(&which, Duration::from_secs(60)).await?;
        let last = arrived.iter().copied().max().unwrap_or(started);
        let latencies =
            sent.iter().zip(&arrived).map(|((_, at), arrived)| arrived.saturating_duration_since(*at)).collect();
        Ok(Stats { latencies, wall: last - started })
    }

    /// B5: a signal to every bot in `bots` at once (64 connections), then the time until every
    /// entry order is at the venue.
    async fn fan_out(&self, bots: std::ops::Range<usize>) {
        let count = bots.len();
        let gate = Arc::new(Semaphore::new(64));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for b in bots.clone() {
            let permit = Arc::clone(&gate).acquire_owned().await.expect("semaphore");
            let app = Arc::clone(&self.app);
            let body = message(&self.bots[b], 80_000_000 + b);
            tasks.push(tokio::spawn(async move {
                let done = post(&app, body).await;
                drop(permit);
                done
            }));
        }
        let mut answered = started;
        for task in tasks {
            answered = answered.max(task.await.expect("client task"));
        }
        let which: Vec<usize> = bots.collect();
        let arrived = match self.orders_at_venue(&which, Duration::from_secs(120)).await {
            Ok(arrived) => arrived,
            Err(why) => {
                println!(
                    "  {count} signals: all answered 202 after {:.1} ms; NOT MEASURED: {why}",
                    (answered - started).as_secs_f64() * 1e3
                );
                return;
            }
        };
        let last = arrived.iter().copied().max().unwrap_or(started);
        let mut arrivals: Vec<Duration> = arrived.iter().map(|a| a.saturating_duration_since(started)).collect();
        arrivals.sort();
        println!(
            "  {count} signals: all answered 202 after {:.1} ms; orders at the venue: first {:.1} ms, half {:.1} ms, \
             every one {:.1} ms",
            (answered - started).as_secs_f64() * 1e3,
            arrivals[0].as_secs_f64() * 1e3,
            arrivals[count / 2].as_secs_f64() * 1e3,
            (last - started).as_secs_f64() * 1e3,
        );
    }

    /// When the entry order of each bot's deal reached the venue, in the bots' order (waits for
    /// the deals and the orders, at most `patience`).
    async fn orders_at_venue(&self, bots: &[usize], patience: Duration) -> Result<Vec<Instant>, String> {
        let deadline = Instant::now() + patience;
        let mut ids = Vec::with_capacity(bots.len());
        for &b in bots {
            let bot = &self.bots[b].0;
            loop {
                let reply = self.app.get(&format!("/api/v1/deals?bot_id={bot}"), Some(&self.cookie)).await;
                let id = reply.json.as_array().and_then(|deals| deals.first()).and_then(|deal| {
                    deal["orders"].as_array()?.first()?["client_order_id"].as_str().map(str::to_owned)
                });
                if let Some(id) = id {
                    ids.push(format!("newClientOrderId={id}"));
                    break;
                }
                assert!(Instant::now() < deadline, "bot {b}: no deal after {patience:?}: {}", reply.text);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        loop {
            let log = self.app.venue.paper.request_log();
            let found: Vec<Option<Instant>> = ids
                .iter()
                .map(|needle| {
                    log.iter()
                        .find(|r| {
                            r.method == "POST"
                                && r.path == "/api/v3/order"
                                && (r.query.contains(needle.as_str()) || r.body.contains(needle.as_str()))
                        })
                        .map(|r| r.received_at)
                })
                .collect();
            if found.iter().all(Option::is_some) {
                return Ok(found.into_iter().flatten().collect());
            }
            if Instant::now() >= deadline {
                let missing = found.iter().position(Option::is_none).unwrap_or(0);
                let bot = &self.bots[bots[missing]].0;
                let deal = self.app.get(&format!("/api/v1/deals?bot_id={bot}"), Some(&self.cookie)).await;
                let count = found.iter().filter(|f| f.is_none()).count();
                let mut by_path = std::collections::BTreeMap::new();
                for r in &log {
                    *by_path.entry((r.method.clone(), r.path.clone(), r.status)).or_insert(0_usize) += 1;
                }
                return Err(format!(
                    "{count} of {} orders never reached the venue in {patience:?}; requests seen: {by_path:?}; one \
                     such deal: {}",
                    ids.len(),
                    deal.text
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
