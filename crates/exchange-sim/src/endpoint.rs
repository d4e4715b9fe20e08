//! The endpoints the simulator serves, with their security type and request weight as documented
//! in binance-spot-api-docs (`rest-api.md`) and the wallet docs for `apiRestrictions`.
//! The listen-key endpoints are in `rest-api.md`'s (deprecated) user data stream section.

use axum::http::Method;

use crate::params::Params;
use crate::weights::Budget;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Ping,
    Time,
    ExchangeInfo,
    TickerPrice,
    Ticker24h,
    Depth,
    Klines,
    Account,
    ApiRestrictions,
    NewOrder,
    QueryOrder,
    CancelOrder,
    OpenOrders,
    MyTrades,
    StartUserDataStream,
    KeepAliveUserDataStream,
    CloseUserDataStream,
    /// The simulator's own: open an account (for a shared paper market).
    SimOpenAccount,
    /// The simulator's own: start an account over (SIGNED by it).
    SimResetAccount,
}

/// What a request must prove before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// NONE: anyone.
    Public,
    /// SIGNED (USER_DATA) needing the reading permission.
    Read,
    /// SIGNED (TRADE) needing the spot-trading permission.
    Trade,
    /// SIGNED, any live key (key-permission lookup).
    AnyKey,
    /// USER_STREAM: any live key in `X-MBX-APIKEY`, no timestamp or signature.
    ApiKeyOnly,
}

impl Endpoint {
    pub(crate) fn resolve(method: &Method, path: &str) -> Option<Self> {
        let endpoint = match (method.as_str(), path) {
            ("GET", "/api/v3/ping") => Self::Ping,
            ("GET", "/api/v3/time") => Self::Time,
            ("GET", "/api/v3/exchangeInfo") => Self::ExchangeInfo,
            ("GET", "/api/v3/ticker/price") => Self::TickerPrice,
            ("GET", "/api/v3/ticker/24hr") => Self::Ticker24h,
            ("GET", "/api/v3/depth") => Self::Depth,
            ("GET", "/api/v3/klines") => Self::Klines,
            ("GET", "/api/v3/account") => Self::Account,
            ("GET", "/sapi/v1/account/apiRestrictions") => Self::ApiRestrictions,
            ("POST", "/api/v3/order") => Self::NewOrder,
            ("GET", "/api/v3/order") => Self::QueryOrder,
            ("DELETE", "/api/v3/order") => Self::CancelOrder,
            ("GET", "/api/v3/openOrders") => Self::OpenOrders,
            ("GET", "/api/v3/myTrades") => Self::MyTrades,
            ("POST", "/api/v3/userDataStream") => Self::StartUserDataStream,
            ("PUT", "/api/v3/userDataStream") => Self::KeepAliveUserDataStream,
            ("DELETE", "/api/v3/userDataStream") => Self::CloseUserDataStream,
            ("POST", "/sim/v1/accounts") => Self::SimOpenAccount,
            ("POST", "/sim/v1/account/reset") => Self::SimResetAccount,
            _ => return None,
        };
        Some(endpoint)
    }

    pub(crate) fn security(self) -> Security {
        match self {
            Self::Ping
            | Self::Time
            | Self::ExchangeInfo
            | Self::TickerPrice
            | Self::Ticker24h
            | Self::Depth
            | Self::Klines
            | Self::SimOpenAccount => Security::Public,
            Self::Account | Self::QueryOrder | Self::OpenOrders | Self::MyTrades => Security::Read,
            Self::NewOrder | Self::CancelOrder => Security::Trade,
            Self::ApiRestrictions | Self::SimResetAccount => Security::AnyKey,
            Self::StartUserDataStream | Self::KeepAliveUserDataStream | Self::CloseUserDataStream => {
                Security::ApiKeyOnly
            }
        }
    }

    pub(crate) fn budget(self) -> Budget {
        match self {
            Self::ApiRestrictions => Budget::Sapi,
            _ => Budget::Api,
        }
    }

    /// The request weight; `params` is `None` when they could not be parsed (the base weight is
    /// charged then).
    pub(crate) fn weight(self, params: Option<&Params>) -> u32 {
        let has = |name: &str| params.is_some_and(|params| params.raw(name).is_some());
        match self {
            Self::Ping
            | Self::Time
            | Self::ApiRestrictions
            | Self::NewOrder
            | Self::CancelOrder
            | Self::SimOpenAccount
            | Self::SimResetAccount => 1,
            Self::ExchangeInfo | Self::Account => 20,
            Self::Klines | Self::StartUserDataStream | Self::KeepAliveUserDataStream | Self::CloseUserDataStream => 2,
            Self::QueryOrder => 4,
            Self::TickerPrice => {
                if has("symbol") {
                    2
                } else {
                    4
                }
            }
            Self::Ticker24h => {
                if has("symbol") {
                    2
                } else if has("symbols") {
                    match params.map_or(0, Params::symbols_count) {
                        0..=20 => 2,
                        21..=100 => 40,
                        _ => 80,
                    }
                } else {
                    80
                }
            }
            Self::Depth => {
                let limit = params.and_then(|params| params.raw("limit")).and_then(|raw| raw.parse::<u64>().ok());
                match limit.unwrap_or(100) {
                    0..=100 => 5,
                    101..=500 => 25,
                    501..=1000 => 50,
                    _ => 250,
                }
            }
            Self::OpenOrders => {
                if has("symbol") {
                    6
                } else {
                    80
                }
            }
            Self::MyTrades => {
                if has("orderId") {
                    5
                } else {
                    20
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(endpoint: Endpoint, query: &str) -> u32 {
        endpoint.weight(Some(&Params::parse(query.as_bytes(), b"").expect("parses")))
    }

    #[test]
    fn weights_follow_the_documentation() {
        assert_eq!(weight(Endpoint::ExchangeInfo, ""), 20);
        assert_eq!(weight(Endpoint::TickerPrice, "symbol=BTCUSDT"), 2);
        assert_eq!(weight(Endpoint::TickerPrice, ""), 4);
        assert_eq!(weight(Endpoint::Ticker24h, "symbol=BTCUSDT"), 2);
        assert_eq!(weight(Endpoint::Ticker24h, ""), 80);
        assert_eq!(weight(Endpoint::Ticker24h, r#"symbols=["A","B"]"#), 2);
        assert_eq!(weight(Endpoint::Depth, ""), 5);
        assert_eq!(weight(Endpoint::Depth, "limit=500"), 25);
        assert_eq!(weight(Endpoint::Depth, "limit=5000"), 250);
        assert_eq!(weight(Endpoint::OpenOrders, "symbol=BTCUSDT"), 6);
        assert_eq!(weight(Endpoint::OpenOrders, ""), 80);
        assert_eq!(weight(Endpoint::MyTrades, "symbol=BTCUSDT&orderId=1"), 5);
        assert_eq!(weight(Endpoint::MyTrades, "symbol=BTCUSDT"), 20);
        assert_eq!(weight(Endpoint::QueryOrder, "symbol=BTCUSDT&orderId=1"), 4);
        assert_eq!(Endpoint::Account.weight(None), 20);
        assert_eq!(Endpoint::StartUserDataStream.weight(None), 2);
        assert_eq!(weight(Endpoint::KeepAliveUserDataStream, "listenKey=x"), 2);
    }

    #[test]
    fn only_known_method_and_path_pairs_resolve() {
        assert_eq!(Endpoint::resolve(&Method::POST, "/api/v3/order"), Some(Endpoint::NewOrder));
        assert_eq!(Endpoint::resolve(&Method::DELETE, "/api/v3/order"), Some(Endpoint::CancelOrder));
        assert_eq!(Endpoint::resolve(&Method::POST, "/api/v3/time"), None);
        assert_eq!(Endpoint::resolve(&Method::GET, "/api/v3/klines"), Some(Endpoint::Klines));
        assert_eq!(Endpoint::resolve(&Method::GET, "/api/v3/uiKlines"), None);
        assert_eq!(Endpoint::resolve(&Method::PUT, "/api/v3/userDataStream"), Some(Endpoint::KeepAliveUserDataStream));
        assert_eq!(Endpoint::resolve(&Method::GET, "/api/v3/userDataStream"), None);
    }
}
