//! Injected faults: one-shot misbehaviour for the next request that matches, so that tests can
//! drive a client through 5xx replies, rate limits, bans, latency, timeouts and lost responses;
//! and faults drawn at random for every request at configured [`FaultRates`] (`--faults`).

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::error::ConfigError;
use crate::rng::SplitMix64;

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

/// Rates at which every request meets a fault, each a fraction of requests (0.02 = 2 %). At most
/// one fault hits a request: a lost response, a 5xx or a 429 (these three add up to at most 1),
/// or else, at its own rate, added latency.
///
/// Written as `KIND=RATE` pairs separated by commas ([`FaultRates::parse`]):
/// `latency=0.1:200ms,5xx=0.02,429=0.01,lost=0.01`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultRates {
    /// Share of requests delayed by [`FaultRates::latency`] before being handled.
    pub latency_rate: Decimal,
    /// The added delay.
    pub latency: Duration,
    /// Share answered HTTP 500 -1000 without being performed.
    pub server_error_rate: Decimal,
    /// Share answered HTTP 429 -1003 (`Retry-After: 1`) without being performed.
    pub rate_limited_rate: Decimal,
    /// Share performed whose answer is lost: 503 -1007, a bare 504 or a dropped connection, in
    /// turn at random.
    pub lost_rate: Decimal,
}

impl FaultRates {
    /// Parses `KIND=RATE[,KIND=RATE...]` with kinds `latency` (`latency=RATE:DELAY`, the delay in
    /// `ms` or `s`, e.g. `200ms`), `5xx`, `429` and `lost`; rates are fractions between 0 and 1.
    /// An empty text means no faults.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadFaults`] for an unknown or repeated kind, a malformed rate or delay, or
    /// rates out of range.
    pub fn parse(spec: &str) -> Result<Self, ConfigError> {
        let bad = |message: String| ConfigError::BadFaults(message);
        let mut rates = Self::default();
        let mut seen = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (kind, value) = item.split_once('=').ok_or_else(|| bad(format!("{item:?} is not KIND=RATE")))?;
            let kind = kind.trim();
            if seen.contains(&kind) {
                return Err(bad(format!("{kind} is given twice")));
            }
            seen.push(kind);
            let rate = |raw: &str| {
                Decimal::from_str(raw.trim()).map_err(|_| bad(format!("{kind}: {raw:?} is not a rate such as 0.02")))
            };
            match kind {
                "latency" => {
                    let (raw_rate, delay) = value
                        .split_once(':')
                        .ok_or_else(|| bad("latency needs RATE:DELAY, e.g. 0.1:200ms".to_owned()))?;
                    rates.latency_rate = rate(raw_rate)?;
                    rates.latency = parse_delay(delay.trim())
                        .ok_or_else(|| bad(format!("latency: {delay:?} is not a delay such as 200ms or 2s")))?;
                }
                "5xx" => rates.server_error_rate = rate(value)?,
                "429" => rates.rate_limited_rate = rate(value)?,
                "lost" => rates.lost_rate = rate(value)?,
                other => return Err(bad(format!("unknown kind {other:?} (latency, 5xx, 429, lost)"))),
            }
        }
        rates.validate()?;
        Ok(rates)
    }

    /// Every rate within 0..=1, and the exclusive ones (lost, 5xx, 429) adding up to at most 1.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let all = [self.latency_rate, self.server_error_rate, self.rate_limited_rate, self.lost_rate];
        if all.iter().any(|rate| *rate < Decimal::ZERO || *rate > Decimal::ONE) {
            return Err(ConfigError::BadFaults("rates must be between 0 and 1".to_owned()));
        }
        if self.server_error_rate + self.rate_limited_rate + self.lost_rate > Decimal::ONE {
            return Err(ConfigError::BadFaults("the 5xx, 429 and lost rates add up to more than 1".to_owned()));
        }
        Ok(())
    }

    fn is_none(&self) -> bool {
        [self.latency_rate, self.server_error_rate, self.rate_limited_rate, self.lost_rate].iter().all(Decimal::is_zero)
    }
}

/// `200ms`, `2s` or `1.5s`.
fn parse_delay(raw: &str) -> Option<Duration> {
    let (number, unit_ms) = match raw.strip_suffix("ms") {
        Some(number) => (number, Decimal::ONE),
        None => (raw.strip_suffix('s')?, Decimal::from(1_000)),
    };
    let ms = Decimal::from_str(number).ok()? * unit_ms;
    if ms.is_sign_negative() {
        return None;
    }
    u64::try_from(ms.trunc()).ok().map(Duration::from_millis)
}

/// Parts per million: the resolution of the random draws.
const PPM: u64 = 1_000_000;

fn to_ppm(rate: Decimal) -> u64 {
    u64::try_from((rate * Decimal::from(PPM)).trunc()).unwrap_or(0)
}

/// The queue of faults not yet fired, and the random ones drawn at [`FaultRates`].
#[derive(Debug)]
pub(crate) struct FaultQueue {
    pending: VecDeque<Fault>,
    rates: FaultRates,
    rng: SplitMix64,
}

impl Default for FaultQueue {
    fn default() -> Self {
        Self::new(FaultRates::default(), 0)
    }
}

impl FaultQueue {
    pub(crate) fn new(rates: FaultRates, seed: u64) -> Self {
        Self { pending: VecDeque::new(), rates, rng: SplitMix64::new(seed ^ 0xFA01_7FA0_17FA_017F) }
    }

    pub(crate) fn push(&mut self, fault: Fault) {
        self.pending.push_back(fault);
    }

    /// Removes and returns the oldest queued fault matching a request for `path`; without one, a
    /// fault drawn at the configured rates, if any.
    pub(crate) fn take_for(&mut self, path: &str) -> Option<Fault> {
        match self.pending.iter().position(|fault| fault.matches(path)) {
            Some(index) => self.pending.remove(index),
            None => self.draw(path),
        }
    }

    /// One draw for the exclusive faults, then one for latency; the same number of draws for every
    /// request, so the sequence of faults depends only on the seed and the number of requests.
    fn draw(&mut self, path: &str) -> Option<Fault> {
        if self.rates.is_none() {
            return None;
        }
        let rates = self.rates;
        let roll = self.rng.below(PPM);
        let latency_roll = self.rng.below(PPM);
        let kind = self.rng.below(3);
        let lost = to_ppm(rates.lost_rate);
        let server_error = lost + to_ppm(rates.server_error_rate);
        let rate_limited = server_error + to_ppm(rates.rate_limited_rate);
        if roll < lost {
            let reply = [LostReply::ServiceUnavailable, LostReply::GatewayTimeout, LostReply::ConnectionDropped]
                [usize::try_from(kind).unwrap_or(0)];
            Some(Fault::LostResponse { path: path.to_owned(), reply })
        } else if roll < server_error {
            Some(Fault::ServerError { path: path.to_owned() })
        } else if roll < rate_limited {
            Some(Fault::RateLimited { retry_after_secs: 1 })
        } else if latency_roll < to_ppm(rates.latency_rate) {
            Some(Fault::Latency { ms: u64::try_from(rates.latency.as_millis()).unwrap_or(u64::MAX) })
        } else {
            None
        }
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

    fn d(text: &str) -> Decimal {
        text.parse().expect("a decimal")
    }

    #[test]
    fn the_fault_syntax_parses() {
        let rates = FaultRates::parse("latency=0.1:200ms, 5xx=0.02,429=0.01,lost=0.01").expect("parses");
        assert_eq!(
            rates,
            FaultRates {
                latency_rate: d("0.1"),
                latency: Duration::from_millis(200),
                server_error_rate: d("0.02"),
                rate_limited_rate: d("0.01"),
                lost_rate: d("0.01"),
            }
        );
        assert_eq!(FaultRates::parse("latency=1:1.5s").map(|r| r.latency), Ok(Duration::from_millis(1_500)));
        assert_eq!(FaultRates::parse(""), Ok(FaultRates::default()));
        for bad in [
            "5xx",
            "5xx=x",
            "5xx=1.5",
            "418=0.1",
            "5xx=0.1,5xx=0.2",
            "latency=0.1",
            "latency=0.1:soon",
            "5xx=0.6,lost=0.5",
            "lost=-0.1",
        ] {
            assert!(matches!(FaultRates::parse(bad), Err(ConfigError::BadFaults(_))), "{bad}");
        }
    }

    #[test]
    fn random_faults_come_at_their_rates_and_from_the_seed() {
        let rates = FaultRates::parse("5xx=0.2,429=0.1,lost=0.1,latency=0.5:10ms").expect("parses");
        let count = |seed| {
            let mut queue = FaultQueue::new(rates, seed);
            let mut counts = [0u32; 5];
            for _ in 0..10_000 {
                let slot = match queue.take_for("/api/v3/order") {
                    Some(Fault::ServerError { .. }) => 0,
                    Some(Fault::RateLimited { .. }) => 1,
                    Some(Fault::LostResponse { .. }) => 2,
                    Some(Fault::Latency { ms: 10 }) => 3,
                    None => 4,
                    Some(other) => panic!("{other:?}"),
                };
                counts[slot] += 1;
            }
            counts
        };
        let counts = count(42);
        assert_eq!(counts, count(42), "the same seed, the same faults");
        // Expected: 2000, 1000, 1000, 3000 (half of the 6000 left), 3000.
        for (got, expected) in counts.iter().zip([2_000, 1_000, 1_000, 3_000, 3_000]) {
            assert!(got.abs_diff(expected) < 200, "{counts:?}");
        }
        let mut queue = FaultQueue::new(rates, 42);
        queue.push(Fault::IpBanned { retry_after_secs: 5 });
        assert_eq!(
            queue.take_for("/api/v3/time"),
            Some(Fault::IpBanned { retry_after_secs: 5 }),
            "queued faults first"
        );
        let mut none = FaultQueue::new(FaultRates::default(), 42);
        assert!((0..1_000).all(|_| none.take_for("/api/v3/time").is_none()));
    }
}
