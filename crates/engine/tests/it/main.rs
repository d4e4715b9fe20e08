//! The engine's deals driven through whole lifecycles by a small venue model: a market that fills
//! limit orders when the price crosses them and market orders at once, charging 0.1 % in the asset
//! received, like exchange-sim. The model is only the engine's counterpart here; the real venue
//! path (adapter, exchange-sim over HTTP) is tested in the server's end-to-end tests.

mod exits;
mod lifecycle;
mod properties;
mod signals;
mod venue;
