//! The JSON API under `/api/v1`.

pub mod account;
pub mod auth;
pub mod bots;
pub mod deals;
pub mod exchange_accounts;
pub mod operator;
pub mod shown;
pub mod trading;
pub mod two_factor;
