//! Errors: the Binance error replies the simulator sends over HTTP, and the typed errors of the
//! library API (configuration and handle calls).
//!
//! Codes, messages and HTTP statuses follow binance-spot-api-docs `errors.md`; where a message has a
//! `%s`, the simulator fills it the way Binance does in practice.

use axum::http::StatusCode;

/// A Binance error reply: HTTP status plus `{"code": -NNNN, "msg": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: i32,
    pub(crate) msg: String,
    /// Seconds for a `Retry-After` header (429 and 418 replies).
    pub(crate) retry_after: Option<u64>,
}

/// The `legal range` Binance names for a decimal parameter.
pub(crate) const DECIMAL_RANGE: &str = r"^([0-9]{1,20})(\.[0-9]{1,20})?$";
/// The `legal range` Binance names for an integer (LONG/INT) parameter.
pub(crate) const INTEGER_RANGE: &str = "^[0-9]{1,20}$";
/// The `legal range` Binance names for a symbol parameter.
pub(crate) const SYMBOL_RANGE: &str = "^[A-Z0-9-_.]{1,20}$";
/// The `legal range` Binance names for a client order id.
pub(crate) const CLIENT_ORDER_ID_RANGE: &str = r"^[\.A-Z\:/a-z0-9_-]{1,36}$";
/// The `legal range` Binance names for the JSON array of `symbols`.
pub(crate) const SYMBOLS_RANGE: &str = r#"^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$"#;

impl ApiError {
    fn new(status: StatusCode, code: i32, msg: impl Into<String>) -> Self {
        Self { status, code, msg: msg.into(), retry_after: None }
    }

    fn bad_request(code: i32, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, msg)
    }

    /// -1000, HTTP 500: what an injected server error answers.
    pub(crate) fn unknown() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, -1000, "An unknown error occurred while processing the request.")
    }

    /// -1003, HTTP 429: the request weight per minute is used up.
    pub(crate) fn too_much_weight(limit: u32, retry_after: u64) -> Self {
        let msg = format!(
            "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. \
             Please use WebSocket Streams for live updates to avoid polling the API."
        );
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, -1003, msg) }
    }

    /// -1003, HTTP 418: the IP is banned until `until_ms`.
    pub(crate) fn ip_banned(until_ms: i64, retry_after: u64) -> Self {
        let msg = format!(
            "Way too much request weight used; IP banned until {until_ms}. \
             Please use WebSocket Streams for live updates to avoid bans."
        );
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::IM_A_TEAPOT, -1003, msg) }
    }

    /// -1007, HTTP 503: the backend did not answer in time; the execution status is unknown.
    pub(crate) fn backend_timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        )
    }

    /// -1013: a symbol filter rejected the order (`PRICE_FILTER`, `LOT_SIZE`, `NOTIONAL`, ...).
    pub(crate) fn filter_failure(filter: &str) -> Self {
        Self::bad_request(-1013, format!("Filter failure: {filter}"))
    }

    /// -1015, HTTP 429: too many new orders in an order-count interval.
    pub(crate) fn too_many_orders(limit: u32, interval: &str, retry_after: u64) -> Self {
        let msg = format!("Too many new orders; current limit is {limit} orders per {interval}.");
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, -1015, msg) }
    }

    /// -1021: the timestamp is more than 1000 ms ahead of the server's clock.
    pub(crate) fn timestamp_ahead() -> Self {
        Self::bad_request(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    }

    /// -1021: the timestamp is older than `recvWindow`.
    pub(crate) fn timestamp_outside_window() -> Self {
        Self::bad_request(-1021, "Timestamp for this request is outside of the recvWindow.")
    }

    /// -1022, HTTP 400.
    pub(crate) fn invalid_signature() -> Self {
        Self::bad_request(-1022, "Signature for this request is not valid.")
    }

    /// -1100: a parameter does not match its legal pattern.
    pub(crate) fn illegal_chars(param: &str, range: &str) -> Self {
        Self::bad_request(-1100, format!("Illegal characters found in parameter '{param}'; legal range is '{range}'."))
    }

    /// -1101: the same parameter was sent twice in one part of the request.
    pub(crate) fn duplicate_param() -> Self {
        Self::bad_request(-1101, "Duplicate values for a parameter detected.")
    }

    /// -1102: a mandatory parameter is missing or empty.
    pub(crate) fn mandatory(param: &str) -> Self {
        Self::bad_request(-1102, format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."))
    }

    /// -1102: neither of two alternative parameters was sent.
    pub(crate) fn one_of(first: &str, second: &str) -> Self {
        Self::bad_request(-1102, format!("Param '{first}' or '{second}' must be sent, but both were empty/null!"))
    }

    /// -1102: a value is above its maximum (e.g. `recvWindow` above 60000).
    pub(crate) fn too_great(param: &str, max: &str) -> Self {
        Self::bad_request(-1102, format!("'{param}' contains unexpected value. Cannot be greater than {max}."))
    }

    /// -1105: an optional parameter was sent with an empty value.
    pub(crate) fn empty_param(param: &str) -> Self {
        Self::bad_request(-1105, format!("Parameter '{param}' was empty."))
    }

    /// -1106: a parameter was sent that this order type does not take.
    pub(crate) fn not_required(param: &str) -> Self {
        Self::bad_request(-1106, format!("Parameter '{param}' sent when not required."))
    }

    /// -1115.
    pub(crate) fn invalid_time_in_force() -> Self {
        Self::bad_request(-1115, "Invalid timeInForce.")
    }

    /// -1116.
    pub(crate) fn invalid_order_type() -> Self {
        Self::bad_request(-1116, "Invalid orderType.")
    }

    /// -1117.
    pub(crate) fn invalid_side() -> Self {
        Self::bad_request(-1117, "Invalid side.")
    }

    /// -1120: a kline interval the simulator does not know.
    pub(crate) fn bad_interval() -> Self {
        Self::bad_request(-1120, "Invalid interval.")
    }

    /// -1121.
    pub(crate) fn bad_symbol() -> Self {
        Self::bad_request(-1121, "Invalid symbol.")
    }

    /// -1128: optional parameters that cannot be combined.
    pub(crate) fn bad_combination() -> Self {
        Self::bad_request(-1128, "Combination of optional parameters invalid.")
    }

    /// -1127: a `startTime`..`endTime` range longer than 24 hours.
    pub(crate) fn more_than_24_hours() -> Self {
        Self::bad_request(-1127, "More than 24 hours between startTime and endTime.")
    }

    /// -1130: a parameter has a value outside its enumeration.
    pub(crate) fn invalid_param(param: &str) -> Self {
        Self::bad_request(-1130, format!("Data sent for parameter '{param}' is not valid."))
    }

    /// -1139: `type` of `ticker/24hr` is neither `FULL` nor `MINI`.
    pub(crate) fn invalid_ticker_type() -> Self {
        Self::bad_request(-1139, "Invalid ticker type.")
    }

    /// -1145.
    pub(crate) fn invalid_cancel_restrictions() -> Self {
        Self::bad_request(-1145, "Invalid cancelRestrictions")
    }

    /// -1151.
    pub(crate) fn duplicate_symbols() -> Self {
        Self::bad_request(-1151, "Symbol is present multiple times in the list.")
    }

    /// -2010: the matching engine rejected the new order; `msg` is one of `errors.md`'s messages.
    pub(crate) fn new_order_rejected(msg: &str) -> Self {
        Self::bad_request(-2010, msg)
    }

    /// -2010 "Account has insufficient balance for requested action."
    pub(crate) fn insufficient_balance() -> Self {
        Self::new_order_rejected("Account has insufficient balance for requested action.")
    }

    /// -2011 "Unknown order sent.": the order to cancel is not open.
    pub(crate) fn unknown_order_on_cancel() -> Self {
        Self::bad_request(-2011, "Unknown order sent.")
    }

    /// -2011: the order is open but not in the status `cancelRestrictions` allows.
    pub(crate) fn cancel_restricted() -> Self {
        Self::bad_request(-2011, "Order was not canceled due to cancel restrictions.")
    }

    /// -2013.
    pub(crate) fn no_such_order() -> Self {
        Self::bad_request(-2013, "Order does not exist.")
    }

    /// -2014, HTTP 401: the API key header is missing or not shaped like a key.
    pub(crate) fn bad_api_key_format() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, -2014, "API-key format invalid.")
    }

    /// -2015, HTTP 401: unknown or revoked key, or a key without the permission for the action.
    pub(crate) fn rejected_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, -2015, "Invalid API-key, IP, or permissions for action.")
    }

    /// -1125: the listen key is not live (never made, closed, expired, or another account's).
    pub(crate) fn invalid_listen_key() -> Self {
        Self::bad_request(-1125, "This listenKey does not exist.")
    }
}

/// An invalid [`SimConfig`](crate::SimConfig).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// API keys are 1 to 64 ASCII letters or digits (Binance's are 64).
    #[error("API key {0:?} is not 1 to 64 ASCII letters or digits")]
    MalformedApiKey(String),
    /// Two accounts share an API key.
    #[error("API key {0:?} is configured twice")]
    DuplicateApiKey(String),
    /// An HMAC secret must not be empty.
    #[error("the HMAC secret of API key {0:?} is empty")]
    EmptySecret(String),
    /// An Ed25519 public key is 32 raw bytes (or an SPKI PEM holding them).
    #[error("the Ed25519 public key of API key {0:?} is not 32 bytes")]
    BadEd25519Key(String),
    /// A PEM document could not be read as an Ed25519 SubjectPublicKeyInfo.
    #[error("not an Ed25519 public key PEM: {0}")]
    BadPem(&'static str),
    /// Symbols, assets and their rules must be usable (positive sizes, `min <= max`, upper-case names).
    #[error("symbol {symbol:?}: {reason}")]
    BadSymbol {
        /// The symbol named in the configuration.
        symbol: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two symbols share a name.
    #[error("symbol {0:?} is configured twice")]
    DuplicateSymbol(String),
    /// Fees and slippage are fractions in `[0, 1)`.
    #[error("{0} must be at least 0 and below 1")]
    BadRate(&'static str),
    /// A starting balance must not be negative.
    #[error("the balance of {asset} for API key {api_key:?} is negative")]
    NegativeBalance {
        /// The account's key.
        api_key: String,
        /// The asset.
        asset: String,
    },
    /// The market's step and the state file's save interval must be longer than zero.
    #[error("the market step and the state save interval must be longer than zero")]
    BadInterval,
    /// A candle file could not be read (line 0: the file as a whole).
    #[error("candle file, line {line}: {reason}")]
    BadCandles {
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A fault specification (`latency=0.1:200ms,5xx=0.02,...`) could not be read, or its rates
    /// are outside 0..=1 or add up to more than 1.
    #[error("faults: {0}")]
    BadFaults(String),
    /// An accounts file could not be read.
    #[error("accounts file: {0}")]
    BadAccountsFile(String),
}

/// A call on the [`ExchangeSim`](crate::ExchangeSim) handle that names something the simulator does
/// not have, or asks for an impossible state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// No account has this API key.
    #[error("no account has API key {0:?}")]
    UnknownApiKey(String),
    /// No such symbol is configured.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// Prices must be positive.
    #[error("price {0} is not positive")]
    BadPrice(String),
    /// A candle's prices or volume are inconsistent.
    #[error("bad candle: {0}")]
    BadCandle(String),
    /// An account added at run time is malformed or reuses an API key.
    #[error("bad account: {0}")]
    BadAccount(String),
    /// The handle was asked to save state but no state file is configured.
    #[error("no state file is configured")]
    NoStateFile,
    /// The simulator refused an order or cancel placed through the handle, with the error Binance's
    /// API would answer (what the same request over HTTP gets).
    #[error("refused with {code}: {msg}")]
    Refused {
        /// The HTTP status the request would get (400, 401, 429).
        status: u16,
        /// Binance's error code, e.g. -2010.
        code: i32,
        /// Binance's message, e.g. `Account has insufficient balance for requested action.`.
        msg: String,
    },
}

impl From<ApiError> for SimError {
    fn from(error: ApiError) -> Self {
        Self::Refused { status: error.status.as_u16(), code: error.code, msg: error.msg }
    }
}
