//! Injected faults: one-shot misbehaviour for the next request that matches, so that tests can
//! drive a client through 5xx replies, rate limits, bans, latency, timeouts and lost responses.

use std::collections::VecDeque;

/// A fault queued with [`ExchangeSim::inject`](crate::ExchangeSim::inject). Each fault fires once,
/// on the first later request it matches (faults with a `path` match that exact path, the others
/// any request), and each request fires at most one fault, the oldest that matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer HTTP 500 `{"code":-1000,...}` without performing the request.
    ServerError {
        /// E.g. `/api/v3/order`.
        path: String,
    },
    /// Answer HTTP 429 -1003 with this `Retry-After` without performing the request.
    RateLimited {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// Answer HTTP 418 -1003 (IP banned) with this `Retry-After` without performing the request.
    IpBanned {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// Perform the request (e.g. place the order), then do not deliver the answer: see
    /// [`LostReply`].
    LostResponse {
        /// E.g. `/api/v3/order`.
        path: String,
        /// What the client gets instead of the answer.
        reply: LostReply,
    },
    /// Delay the request by this many milliseconds, then handle it normally.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// Accept the request and hang without performing it, for `SimConfig::hang_for` or until the
    /// simulator shuts down, then answer 503 -1007.
    Timeout {
        /// E.g. `/api/v3/order`.
        path: String,
    },
}

/// What a client gets when the response to a performed request is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReply {
    /// HTTP 503 `{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status
    /// unknown; execution status unknown."}`.
    ServiceUnavailable,
    /// HTTP 504 with an empty body, as from a gateway.
    GatewayTimeout,
    /// The connection is closed without any response.
    ConnectionDropped,
    /// No answer until `SimConfig::hang_for` passes (the client's timeout fires first).
    Hang,
}

impl Fault {
    /// A lost response answered with 503 -1007.
    pub fn lost_response(path: &str) -> Self {
        Self::LostResponse { path: path.to_owned(), reply: LostReply::ServiceUnavailable }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::ServerError { path: wanted }
            | Self::LostResponse { path: wanted, .. }
            | Self::Timeout { path: wanted } => wanted == path,
            Self::RateLimited { .. } | Self::IpBanned { .. } | Self::Latency { .. } => true,
        }
    }
}

/// The queue of faults not yet fired.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    pending: VecDeque<Fault>,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.pending.push_back(fault);
    }

    /// Removes and returns the oldest fault matching a request for `path`.
    pub(crate) fn take_for(&mut self, path: &str) -> Option<Fault> {
        let index = self.pending.iter().position(|fault| fault.matches(path))?;
        self.pending.remove(index)
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_once_in_order_and_only_on_their_path() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::ServerError { path: "/api/v3/order".to_owned() });
        queue.push(Fault::Latency { ms: 5 });
        queue.push(Fault::lost_response("/api/v3/order"));
        assert_eq!(queue.take_for("/api/v3/time"), Some(Fault::Latency { ms: 5 }));
        assert_eq!(queue.take_for("/api/v3/time"), None);
        assert_eq!(queue.take_for("/api/v3/order"), Some(Fault::ServerError { path: "/api/v3/order".to_owned() }));
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.take_for("/api/v3/order"), Some(Fault::lost_response("/api/v3/order")));
        assert_eq!(queue.len(), 0);
    }
}
