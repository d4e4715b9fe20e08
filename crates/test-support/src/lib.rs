//! Test support: a fake clock, a real SMTP server on loopback that keeps what it receives,
//! throwaway SQLite and PostgreSQL stores, and `spawn_app()` which serves the whole application
//! on a random loopback port. Only ever a dev-dependency.

mod app;
mod clock;
mod db;
mod smtp;
pub mod tls;
mod venue;

pub use app::{Backend, Reply, TestApp, spawn_app, spawn_app_with, test_ring};
pub use clock::FakeClock;
pub use db::{
    DEFAULT_PG_URL, EmptyPgSchema, TestPg, TestSqlite, pg_store, pg_store_again, pg_unmigrated, pg_url, sqlite_store,
    sqlite_unmigrated,
};
pub use smtp::{ReceivedMail, SmtpSink};
pub use venue::{ED25519_API_KEY, TestVenue, WallClock};

/// The TOTP code for `secret_base32` at `unix_secs`, computed by `oathtool` (RFC 6238, SHA-1,
/// six digits, 30 s): an implementation independent of ours. `scripts/test` installs it.
///
/// # Panics
/// When `oathtool` is missing or fails.
pub fn oathtool_totp(secret_base32: &str, unix_secs: i64) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{unix_secs}"), secret_base32])
        .output()
        .expect("oathtool must be installed (./scripts/test installs it: apt-get install oathtool)");
    assert!(out.status.success(), "oathtool failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}
