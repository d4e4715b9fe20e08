//! Test support: a fake clock, a real SMTP server on loopback that keeps what it receives,
//! throwaway SQLite and PostgreSQL stores, and `spawn_app()` which serves the whole application
//! on a random loopback port. Only ever a dev-dependency.

mod app;
mod clock;
mod db;
mod smtp;

pub use app::{Backend, Reply, TestApp, spawn_app, spawn_app_with};
pub use clock::FakeClock;
pub use db::{DEFAULT_PG_URL, TestPg, TestSqlite, pg_store, pg_store_again, pg_url, sqlite_store};
pub use smtp::{ReceivedMail, SmtpSink};
