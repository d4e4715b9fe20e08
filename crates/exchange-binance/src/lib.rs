//! The Binance spot adapter (`spec/exchanges.md`).
//!
//! [`BinanceClient`] holds what is shared per venue URL: the HTTP client (rustls with aws-lc-rs),
//! the request-weight budget and the measured clock skew. [`BinanceAccount`] is one API key and
//! implements the `exchange::Exchange` port. Every signed request goes through [`sign`], which can
//! sign only the endpoints on its allowlist (EX-2) and reproduces Binance's published vectors (EX-4).
//! A placement whose answer is lost is looked up by its client order id, never resent. Order
//! updates arrive over the user data stream (the `stream` module: an unsigned listen key, a
//! WebSocket over rustls with aws-lc-rs, a keepalive task that lives as long as the stream).

mod client;
mod limits;
pub mod sign;
mod stream;
// Public for the fuzz target of the exchange's answers (fuzz/fuzz_targets/exchange_response.rs).
pub mod wire;

pub use client::{BinanceAccount, BinanceClient, BinanceConfig, BinanceVenue, binance_symbol, map_error};
