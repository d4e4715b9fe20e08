//! The endpoint handlers. Each takes the locked state and a parsed request and returns the JSON
//! body or a Binance error; headers, weights, faults and authentication are done by the caller
//! ([`crate::routes`]).

pub(crate) mod account;
pub(crate) mod klines;
pub(crate) mod market;
pub(crate) mod sim_admin;
pub(crate) mod stream;
pub(crate) mod trade;

use serde::Serialize;

use crate::error::{ApiError, CLIENT_ORDER_ID_RANGE};
use crate::matching::OrderSelector;
use crate::params::Params;
use crate::weights::OrderCounts;

/// A request that passed authentication.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) params: &'a Params,
    /// The authenticated account, for SIGNED endpoints.
    pub(crate) account: Option<usize>,
    pub(crate) now_ms: i64,
}

impl Request<'_> {
    /// The authenticated account; SIGNED endpoints are never called without one.
    pub(crate) fn account(&self) -> Result<usize, ApiError> {
        self.account.ok_or_else(ApiError::rejected_key)
    }
}

/// A successful reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) body: String,
    /// Set by a successful new order: the `X-MBX-ORDER-COUNT-*` headers.
    pub(crate) order_counts: Option<OrderCounts>,
}

pub(crate) fn json(value: &impl Serialize) -> Result<Reply, ApiError> {
    let body = serde_json::to_string(value).map_err(|error| {
        tracing::error!(%error, "exchange-sim: reply does not serialize");
        ApiError::unknown()
    })?;
    Ok(Reply { body, order_counts: None })
}

/// `orderId` and/or `origClientOrderId`.
pub(crate) fn order_selector(params: &Params) -> Result<OrderSelector, ApiError> {
    let order_id = params.long("orderId")?;
    let client_id = params.optional("origClientOrderId")?.map(str::to_owned);
    match (order_id, client_id) {
        (Some(id), Some(client_id)) => Ok(OrderSelector::Both(id, client_id)),
        (Some(id), None) => Ok(OrderSelector::Id(id)),
        (None, Some(client_id)) => Ok(OrderSelector::ClientId(client_id)),
        (None, None) => Err(ApiError::one_of("origClientOrderId", "orderId")),
    }
}

/// An optional client order id parameter, checked against Binance's pattern.
pub(crate) fn client_order_id(params: &Params, name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = params.optional(name)? else { return Ok(None) };
    check_client_order_id(name, raw)?;
    Ok(Some(raw.to_owned()))
}

/// A client order id against Binance's pattern (-1100 otherwise).
pub(crate) fn check_client_order_id(name: &str, raw: &str) -> Result<(), ApiError> {
    let legal = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-');
    if raw.len() > 36 || !raw.bytes().all(legal) {
        return Err(ApiError::illegal_chars(name, CLIENT_ORDER_ID_RANGE));
    }
    Ok(())
}
