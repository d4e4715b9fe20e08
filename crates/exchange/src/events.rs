//! Order updates pushed by a venue (Binance's user data stream), normalized.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use domain::{Decimal, OrderStatus, Side, Timestamp};
use futures_util::stream::{BoxStream, FusedStream, Stream, StreamExt as _};

use crate::{ExchangeError, Fill};

/// One change of one of the account's orders, as the venue pushed it: the order's state after the
/// change and, for an execution, the fill it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// The venue's own name for the market, e.g. Binance `BTCUSDT`.
    pub venue_symbol: String,
    /// The id the order was placed with. For a cancel it is the canceled order's id, never the id
    /// the venue gave the cancel request (Binance reports that one in `c` and the order's in `C`).
    pub client_order_id: String,
    pub venue_order_id: String,
    pub side: Side,
    pub status: OrderStatus,
    /// The limit price; zero for a market order.
    pub price: Decimal,
    pub orig_qty: Decimal,
    pub executed_qty: Decimal,
    pub cumulative_quote_qty: Decimal,
    /// The execution this event reports, with its fee; `None` for a placement, cancel or expiry.
    pub last_fill: Option<Fill>,
    /// When the venue made the change (its transaction time).
    pub at: Timestamp,
}

/// The order updates of one account, in the order the venue sent them, until the connection ends.
///
/// It ends with exactly one `Err` (the connection closed, the subscription expired, an event could
/// not be read) followed by `None`; whatever the wrapped stream would yield after its first `Err`
/// is never seen. The caller then reconnects, and polls orders meanwhile: events sent while no
/// connection was open are not replayed. Dropping it closes the connection and stops whatever the
/// adapter runs to keep it open.
pub struct OrderEventStream {
    inner: Option<BoxStream<'static, Result<OrderEvent, ExchangeError>>>,
}

impl OrderEventStream {
    pub fn new(stream: impl Stream<Item = Result<OrderEvent, ExchangeError>> + Send + 'static) -> OrderEventStream {
        OrderEventStream { inner: Some(stream.boxed()) }
    }
}

impl fmt::Debug for OrderEventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderEventStream").field("ended", &self.inner.is_none()).finish()
    }
}

impl Stream for OrderEventStream {
    type Item = Result<OrderEvent, ExchangeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(event))) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(Some(Err(err))) => {
                // Dropping the inner stream here releases the connection at once.
                this.inner = None;
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
        }
    }
}

impl FusedStream for OrderEventStream {
    fn is_terminated(&self) -> bool {
        self.inner.is_none()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    fn event(id: &str) -> OrderEvent {
        OrderEvent {
            venue_symbol: "BTCUSDT".to_owned(),
            client_order_id: id.to_owned(),
            venue_order_id: "1".to_owned(),
            side: Side::Buy,
            status: OrderStatus::New,
            price: Decimal::ONE,
            orig_qty: Decimal::ONE,
            executed_qty: Decimal::ZERO,
            cumulative_quote_qty: Decimal::ZERO,
            last_fill: None,
            at: Timestamp::from_unix_millis(1),
        }
    }

    #[test]
    fn the_stream_ends_after_its_first_error() {
        let items = vec![
            Ok(event("a")),
            Err(ExchangeError::Unreachable("closed".to_owned())),
            Ok(event("b")),
            Err(ExchangeError::Protocol("later".to_owned())),
        ];
        let mut events = OrderEventStream::new(stream::iter(items));
        let seen = futures_util::FutureExt::now_or_never(async {
            let mut seen = Vec::new();
            while let Some(item) = events.next().await {
                seen.push(item);
            }
            seen
        })
        .unwrap();
        assert_eq!(seen, vec![Ok(event("a")), Err(ExchangeError::Unreachable("closed".to_owned()))]);
        assert!(events.is_terminated());
        assert_eq!(futures_util::FutureExt::now_or_never(events.next()), Some(None));
    }
}
