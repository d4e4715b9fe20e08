//! Throughput and latency of the account routes over real HTTP, against the whole app on a loopback
//! port with a real SQLite file (`test_support::spawn_app_with`).
//!
//! Measured, each round:
//! - baseline: one Argon2id hash (m=19 MiB, t=2, p=1) on one thread (median), and hashes/s with one
//!   thread per core;
//! - `POST /api/v1/auth/login` and `POST /api/v1/auth/register` (each bound by one Argon2id run);
//! - baseline: `GET /healthz` (no session lookup, one `SELECT 1`);
//! - `GET /api/v1/me` with a session cookie (cookie parse, SHA-256, session+user lookup, JSON).
//!
//! Throughput is a fixed count of requests with `CONCURRENCY` in flight; latency is the median of
//! single sequential requests. Client and server share the machine (one tokio runtime with one
//! worker per core; Argon2 runs on the server's bounded blocking pool). Throttle limits are raised
//! so the figures measure hashing and IO, not throttling; the Argon2 cost is the default.
//!
//! Run: `cargo bench -p server --bench http`. Without `--bench` (as under `cargo test --benches`) it
//! runs once with tiny counts as a smoke test.

#![allow(clippy::print_stdout)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::{Backend, TestApp, spawn_app_with};

const PASSWORD: &str = "violet kettle thunder 42";
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Counts {
    rounds: usize,
    hashes: usize,
    logins: usize,
    registrations: usize,
    gets: usize,
    slow_sequential: usize,
    fast_sequential: usize,
}

const FULL: Counts = Counts {
    rounds: 5,
    hashes: 20,
    logins: 200,
    registrations: 200,
    gets: 20_000,
    slow_sequential: 30,
    fast_sequential: 2_000,
};

const SMOKE: Counts =
    Counts { rounds: 1, hashes: 1, logins: 8, registrations: 8, gets: 100, slow_sequential: 2, fast_sequential: 10 };

struct Ctx {
    app: TestApp,
    /// Verified accounts the login benchmark signs in to, one per in-flight request.
    login_emails: Vec<String>,
    /// `Cookie` header of a live session for `GET /api/v1/me`.
    me_cookie: String,
}

/// One round's figures.
#[derive(Debug, Default, Clone, Copy)]
struct Round {
    hash_ms: f64,
    hash_parallel_per_s: f64,
    login_per_s: f64,
    login_ms: f64,
    register_per_s: f64,
    register_ms: f64,
    healthz_per_s: f64,
    healthz_us: f64,
    me_per_s: f64,
    me_us: f64,
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let counts = if bench { FULL } else { SMOKE };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let ctx = Arc::new(runtime.block_on(setup()));
    let hasher = auth::PasswordHasher::new(auth::HashParams::default()).expect("hasher");

    println!(
        "http bench: {cores} cores, {} rounds, concurrency {CONCURRENCY}, {} logins, {} registrations, {} GETs per round",
        counts.rounds, counts.logins, counts.registrations, counts.gets
    );
    // Warm-up: connections, SQLite page cache, allocator.
    let _ = runtime.block_on(http_round(&ctx, 0, SMOKE));

    let mut rounds = Vec::with_capacity(counts.rounds);
    for round in 0..counts.rounds {
        // Argon2 baselines run while the server is idle.
        let hash_ms =
            median_duration((0..counts.hashes).map(|_| time(|| hash_once(&hasher))).collect()).as_secs_f64() * 1e3;
        let hash_parallel_per_s = hash_parallel(&hasher, cores, counts.hashes);
        let mut r = runtime.block_on(http_round(&ctx, round + 1, counts));
        r.hash_ms = hash_ms;
        r.hash_parallel_per_s = hash_parallel_per_s;
        println!(
            "round {}: hash {:.1} ms, {:.1}/s on {cores} threads | login {:.1}/s, {:.1} ms | register {:.1}/s, {:.1} ms \
             | healthz {:.0}/s, {:.0} us | me {:.0}/s, {:.0} us",
            round + 1,
            r.hash_ms,
            r.hash_parallel_per_s,
            r.login_per_s,
            r.login_ms,
            r.register_per_s,
            r.register_ms,
            r.healthz_per_s,
            r.healthz_us,
            r.me_per_s,
            r.me_us
        );
        rounds.push(r);
    }
    report(&rounds, cores);
    runtime.block_on(async move { drop(ctx) });
}

async fn setup() -> Ctx {
    let app = spawn_app_with(Backend::Sqlite, |cfg| {
        for rule in [
            &mut cfg.throttles.login_account,
            &mut cfg.throttles.login_ip,
            &mut cfg.throttles.mail_ip,
            &mut cfg.throttles.mail_account,
        ] {
            rule.limit = u32::MAX;
        }
    })
    .await;
    let mut login_emails = Vec::with_capacity(CONCURRENCY);
    for k in 0..CONCURRENCY {
        let email = format!("login-{k}@example.com");
        app.signed_in(&email, PASSWORD).await;
        login_emails.push(email);
    }
    let token = app.signed_in("reader@example.com", PASSWORD).await;
    Ctx { app, login_emails, me_cookie: format!("__Host-bulwark_session={token}") }
}

async fn http_round(ctx: &Arc<Ctx>, round: usize, counts: Counts) -> Round {
    let login_per_s = throughput(ctx, counts.logins, |ctx, i| async move { login(&ctx, i).await }).await;
    let login_ms = median_latency(ctx, counts.slow_sequential, |ctx, i| async move { login(&ctx, i).await }).await;

    let mails = ctx.app.smtp.all().len();
    let register_per_s = throughput(ctx, counts.registrations, move |ctx, i| async move {
        register(&ctx, &format!("reg-{round}-{i}@example.com")).await;
    })
    .await;
    drain_mail(ctx, mails + counts.registrations).await;
    let mails = ctx.app.smtp.all().len();
    let register_ms = median_latency(ctx, counts.slow_sequential, move |ctx, i| async move {
        register(&ctx, &format!("seq-{round}-{i}@example.com")).await;
    })
    .await;
    drain_mail(ctx, mails + counts.slow_sequential).await;

    let healthz_per_s =
        throughput(ctx, counts.gets, |ctx, _| async move { get_ok(&ctx, "/healthz", None).await }).await;
    let healthz_us =
        median_latency(ctx, counts.fast_sequential, |ctx, _| async move { get_ok(&ctx, "/healthz", None).await }).await;
    let me_per_s =
        throughput(ctx, counts.gets, |ctx, _| async move { get_ok(&ctx, "/api/v1/me", Some(&ctx.me_cookie)).await })
            .await;
    let me_us = median_latency(ctx, counts.fast_sequential, |ctx, _| async move {
        get_ok(&ctx, "/api/v1/me", Some(&ctx.me_cookie)).await;
    })
    .await;

    Round {
        login_per_s,
        login_ms: login_ms.as_secs_f64() * 1e3,
        register_per_s,
        register_ms: register_ms.as_secs_f64() * 1e3,
        healthz_per_s,
        healthz_us: healthz_us.as_secs_f64() * 1e6,
        me_per_s,
        me_us: me_us.as_secs_f64() * 1e6,
        ..Round::default()
    }
}

async fn login(ctx: &Ctx, i: usize) {
    let email = &ctx.login_emails[i % ctx.login_emails.len()];
    let reply = ctx.app.post("/api/v1/auth/login", json!({ "email": email, "password": PASSWORD }), None).await;
    assert_eq!(reply.status, 200, "login: {}", reply.text);
}

async fn register(ctx: &Ctx, email: &str) {
    let reply = ctx.app.post("/api/v1/auth/register", json!({ "email": email, "password": PASSWORD }), None).await;
    assert_eq!(reply.status, 201, "register: {}", reply.text);
}

async fn get_ok(ctx: &Ctx, path: &str, cookie: Option<&str>) {
    let mut request = ctx.app.client.get(ctx.app.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("send");
    assert!(response.status().is_success(), "GET {path}: {}", response.status());
    response.bytes().await.expect("body");
}

/// Waits (untimed) until the verification mails of a registration phase have reached the SMTP
/// sink, so their sending does not overlap the next measurement.
async fn drain_mail(ctx: &Ctx, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.app.smtp.all().len() < expected {
        assert!(Instant::now() < deadline, "mails did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Requests per second over `total` requests, `CONCURRENCY` of them in flight at any time.
async fn throughput<F, Fut>(ctx: &Arc<Ctx>, total: usize, request: F) -> f64
where
    F: Fn(Arc<Ctx>, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (ctx, next, request) = (ctx.clone(), next.clone(), request.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                request(ctx.clone(), i).await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }
    count_f64(total) / start.elapsed().as_secs_f64()
}

/// Median latency of `n` requests sent one after another.
async fn median_latency<F, Fut>(ctx: &Arc<Ctx>, n: usize, request: F) -> Duration
where
    F: Fn(Arc<Ctx>, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        request(ctx.clone(), i).await;
        samples.push(start.elapsed());
    }
    median_duration(samples)
}

fn hash_once(hasher: &auth::PasswordHasher) {
    let hash = hasher.hash(&auth::Password::new(PASSWORD), &auth::OsRandom).expect("hash");
    std::hint::black_box(hash);
}

/// Hashes per second with one thread per core, each hashing `per_thread` times.
fn hash_parallel(hasher: &auth::PasswordHasher, threads: usize, per_thread: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    hash_once(hasher);
                }
            });
        }
    });
    count_f64(threads * per_thread) / start.elapsed().as_secs_f64()
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median_duration(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

#[allow(clippy::cast_precision_loss)]
fn count_f64(n: usize) -> f64 {
    n as f64
}

/// A line of the summary: name, unit, figure.
type Row = (&'static str, &'static str, fn(&Round) -> f64);

fn report(rounds: &[Round], cores: usize) {
    let stat = |f: fn(&Round) -> f64| {
        let values: Vec<f64> = rounds.iter().map(f).collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (median(values), min, max)
    };
    let cores_f = count_f64(cores);
    // The theoretical limit: every core hashing back to back at the single-thread median.
    let argon_limit = |r: &Round| cores_f * 1e3 / r.hash_ms;
    let rows: [Row; 10] = [
        ("Argon2id hash, 1 thread", "ms", |r| r.hash_ms),
        ("Argon2id hashes, 1 thread/core", "/s", |r| r.hash_parallel_per_s),
        ("POST /api/v1/auth/login", "req/s", |r| r.login_per_s),
        ("POST /api/v1/auth/login, sequential", "ms", |r| r.login_ms),
        ("POST /api/v1/auth/register", "req/s", |r| r.register_per_s),
        ("POST /api/v1/auth/register, sequential", "ms", |r| r.register_ms),
        ("GET /healthz", "req/s", |r| r.healthz_per_s),
        ("GET /healthz, sequential", "us", |r| r.healthz_us),
        ("GET /api/v1/me", "req/s", |r| r.me_per_s),
        ("GET /api/v1/me, sequential", "us", |r| r.me_us),
    ];
    println!();
    println!("{} rounds; median (min..max)", rounds.len());
    for (name, unit, f) in rows {
        let (med, min, max) = stat(f);
        println!("{name:<40} {med:>10.1} {unit:<6} ({min:.1}..{max:.1})");
    }
    let ratio = |name: &str, f: &dyn Fn(&Round) -> f64| {
        println!("{name:<40} {:>10.3}", median(rounds.iter().map(f).collect()));
    };
    ratio("login / (cores / hash time)", &|r| r.login_per_s / argon_limit(r));
    ratio("register / (cores / hash time)", &|r| r.register_per_s / argon_limit(r));
    ratio("login / measured parallel hashes", &|r| r.login_per_s / r.hash_parallel_per_s);
    ratio("me / healthz", &|r| r.me_per_s / r.healthz_per_s);
}
