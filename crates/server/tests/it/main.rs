//! The HTTP API and pages over real sockets: each test starts the whole app on its own port with its
//! own database (SQLite file or a fresh PostgreSQL schema), a fake clock and a real SMTP sink.

mod accounts;
mod audit;
mod bots;
mod deals;
mod edge;
mod email_change;
mod exchange_accounts;
mod limits;
mod logs;
mod manual_orders;
mod metrics;
mod operator;
mod pages;
mod rotation;
mod secrets;
mod security;
mod sessions;
mod throttling;
mod two_factor;
mod webhooks;

pub use test_support::{Backend, Reply, TestApp, oathtool_totp as oathtool_at, spawn_app_with};

pub const PASSWORD: &str = "violet kettle thunder 42";

/// Runs each named `async fn(Backend)` of the calling module once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::Backend::Sqlite).await } )+
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::Backend::Postgres).await } )+
        }
    };
}

pub async fn app(backend: Backend) -> TestApp {
    logs::install();
    spawn_app_with(backend, |_| {}).await
}

pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).expect("a token in the link").to_owned()
}
