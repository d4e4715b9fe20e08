//! What two-factor sign-in costs, over real HTTP against the whole app (SQLite, default Argon2id),
//! with password-only sign-in measured in the same run as the baseline:
//! - sign-in with a TOTP code (unseal the seed, HMAC-SHA1 ×3, the step written in the sign-in's
//!   transaction);
//! - sign-in with a backup code (Argon2id against each unused code until one matches: 1 to 10);
//! - confirming a setup (ten Argon2id hashes for the backup codes);
//! - sealing and opening a seed in the vault (fresh data key, XChaCha20-Poly1305 twice each way),
//!   in process.
//!
//! Each figure is the median of sequential requests; the clock is the app's fake clock, moved one
//! TOTP step before each code so every code is fresh. Run: `cargo bench -p server --bench
//! two_factor`; without `--bench` it runs once with tiny counts as a smoke test.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::json;
use test_support::{Backend, TestApp, spawn_app_with};

const PASSWORD: &str = "violet kettle thunder 42";

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (rounds, n) = if bench { (5, 20) } else { (1, 2) };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let mut figures: Vec<[f64; 6]> = Vec::new();
    for round in 1..=rounds {
        let f = runtime.block_on(round_figures(round, n));
        println!(
            "round {round}: password {:.1} ms | totp {:.1} ms | backup code median {:.1} ms, max {:.1} ms | confirm {:.0} ms \
             | seal+open {:.2} us",
            f[0], f[1], f[2], f[3], f[4], f[5]
        );
        figures.push(f);
    }
    let names = [
        "sign-in, password only (ms)",
        "sign-in, password + TOTP (ms)",
        "sign-in, password + backup code, median (ms)",
        "sign-in, password + backup code, max (ms)",
        "confirm setup, 10 backup hashes (ms)",
        "vault seal + open of a seed (us)",
    ];
    println!("\nmedian of {rounds} rounds (min..max):");
    for (i, name) in names.iter().enumerate() {
        let mut v: Vec<f64> = figures.iter().map(|f| f[i]).collect();
        v.sort_by(f64::total_cmp);
        println!("  {name:<46} {:>9.2}  ({:.2}..{:.2})", v[v.len() / 2], v[0], v[v.len() - 1]);
    }
    let ratio: Vec<f64> = figures.iter().map(|f| f[1] / f[0]).collect();
    println!("  TOTP sign-in / password sign-in, per round: {ratio:.3?}");
}

async fn round_figures(round: usize, n: usize) -> [f64; 6] {
    let app = spawn_app_with(Backend::Sqlite, |cfg| cfg.throttles.login_ip.limit = u32::MAX).await;
    let email = format!("bench-{round}@example.com");
    let session = app.signed_in(&email, PASSWORD).await;
    let plain = format!("plain-{round}@example.com");
    app.signed_in(&plain, PASSWORD).await;

    let password_ms = median_ms(n, || async {
        let reply = login(&app, &plain, json!({})).await;
        assert_eq!(reply, 200);
    })
    .await;

    let setup = app.post("/api/v1/2fa/totp/setup", json!({}), Some(&session)).await;
    let secret = setup.json["secret"].as_str().expect("secret").to_owned();
    let seed = auth::totp::base32_decode(&secret).expect("seed");
    let start = Instant::now();
    let confirm = app.post("/api/v1/2fa/totp/confirm", json!({ "code": code(&app, &seed) }), Some(&session)).await;
    let confirm_ms = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(confirm.status, 200, "{}", confirm.text);
    let backup: Vec<String> =
        confirm.json["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();

    let totp_ms = median_ms(n, || async {
        app.next_totp_step();
        let reply = login(&app, &email, json!({ "totp_code": code(&app, &seed) })).await;
        assert_eq!(reply, 200);
    })
    .await;

    let mut backup_times = Vec::new();
    for c in &backup {
        let start = Instant::now();
        assert_eq!(login(&app, &email, json!({ "backup_code": c })).await, 200);
        backup_times.push(start.elapsed());
    }
    backup_times.sort();
    let backup_median = backup_times[backup_times.len() / 2].as_secs_f64() * 1e3;
    let backup_max = backup_times[backup_times.len() - 1].as_secs_f64() * 1e3;

    let ring = test_support::test_ring();
    let binding = vault::envelope::Binding::totp_seed("user");
    let iterations = 20_000u32;
    let start = Instant::now();
    for _ in 0..iterations {
        let blob = ring.seal(&binding, &seed).expect("seal");
        let opened = ring.open(&binding, &blob).expect("open");
        std::hint::black_box(opened);
    }
    let seal_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    [password_ms, totp_ms, backup_median, backup_max, confirm_ms, seal_us]
}

fn code(app: &TestApp, seed: &[u8]) -> String {
    let secs = u64::try_from(app.unix_secs()).expect("positive time");
    format!("{:06}", auth::totp::totp(auth::totp::TotpAlgorithm::Sha1, seed, secs, 6))
}

async fn login(app: &TestApp, email: &str, extra: serde_json::Value) -> u16 {
    app.try_login_with(email, PASSWORD, extra).await.status
}

async fn median_ms<F, Fut>(n: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f().await;
        samples.push(start.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}
