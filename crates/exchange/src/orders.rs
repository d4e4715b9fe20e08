//! Orders as Bulwark asks for them and as venues report them.

use std::fmt;

use domain::{Asset, Decimal, OrderStatus, Pair, Price, Qty, Side, Timestamp};

/// The id Bulwark gives an order before sending it, so a lost answer can be resolved by lookup and
/// a restart never sends an order twice. 1 to 36 characters from `A–Z a–z 0–9 . : / _ -`
/// (Binance's rule, which the other venues' rules contain).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientOrderId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client order id is 1 to 36 characters of A-Z a-z 0-9 . : / _ -")]
pub struct ClientOrderIdError;

impl ClientOrderId {
    /// # Errors
    /// `ClientOrderIdError` for an empty, long or oddly spelled id.
    pub fn parse(raw: &str) -> Result<ClientOrderId, ClientOrderIdError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'_' | b'-');
        if raw.is_empty() || raw.len() > 36 || !raw.bytes().all(allowed) {
            return Err(ClientOrderIdError);
        }
        Ok(ClientOrderId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientOrderId({})", self.0)
    }
}

impl fmt::Display for ClientOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How long a limit order may rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInForce {
    /// Good till canceled.
    Gtc,
    /// Immediate or cancel: fill what can be filled now, cancel the rest.
    Ioc,
    /// Fill or kill: all now, or nothing.
    Fok,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    Limit {
        price: Price,
        time_in_force: TimeInForce,
    },
    /// A limit order that is refused rather than taking liquidity.
    LimitMaker {
        price: Price,
    },
    Market,
}

/// How much to trade: an amount of the base asset, or (market orders only) of the quote asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAmount {
    Base(Qty),
    Quote(Qty),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub pair: Pair,
    pub side: Side,
    pub order_type: OrderType,
    pub amount: OrderAmount,
    pub client_order_id: ClientOrderId,
}

/// Names an order at the venue: by the venue's id or by ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueOrderRef {
    VenueId(String),
    Client(ClientOrderId),
}

/// One execution of an order, with the fee the venue charged for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fill {
    pub price: Decimal,
    pub qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: Asset,
    pub trade_id: Option<String>,
}

/// The venue's account of one order at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReport {
    pub venue_symbol: String,
    pub venue_order_id: String,
    pub client_order_id: String,
    pub side: Side,
    pub status: OrderStatus,
    /// The limit price; zero for a market order.
    pub price: Decimal,
    pub orig_qty: Decimal,
    pub executed_qty: Decimal,
    pub cumulative_quote_qty: Decimal,
    /// Fills reported with this answer (a placement's immediate fills; empty for lookups).
    pub fills: Vec<Fill>,
    pub updated_at: Timestamp,
}

/// One of the account's trades, as the trade history reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub id: String,
    pub venue_order_id: String,
    pub venue_symbol: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub quote_qty: Decimal,
    pub commission: Decimal,
    pub commission_asset: Asset,
    pub maker: bool,
    pub time: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_order_ids_follow_the_venue_rule() {
        for good in ["a", "bw-0123456789abcdef", "x.y:z/w_v-u", &"a".repeat(36)] {
            assert!(ClientOrderId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", &"a".repeat(37), "has space", "semi;colon", "ünï"] {
            assert_eq!(ClientOrderId::parse(bad), Err(ClientOrderIdError), "{bad}");
        }
    }
}
