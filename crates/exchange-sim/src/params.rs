//! Request parameters: the query string and the form body merged the Binance way, and parsed into
//! typed values with Binance's error replies for anything malformed.
//!
//! Rules (binance-spot-api-docs `rest-api.md`, "General Information on Endpoints"): parameters may
//! come in the query string, the `application/x-www-form-urlencoded` body, or both; when a name is in
//! both, the query string wins. The same name twice in one part is -1101.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::error::{ApiError, DECIMAL_RANGE, INTEGER_RANGE, SYMBOL_RANGE, SYMBOLS_RANGE};

/// The decoded parameters of one request.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Merges the raw query string and the raw form body.
    pub(crate) fn parse(query: &[u8], body: &[u8]) -> Result<Self, ApiError> {
        let from_query = decode_part(query)?;
        let mut values = decode_part(body)?;
        values.extend(from_query);
        Ok(Self { values })
    }

    /// The raw value, if the parameter was sent (possibly empty).
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A parameter that must be present and non-empty (-1102 otherwise).
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.raw(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ApiError::mandatory(name)),
        }
    }

    /// An optional parameter; sent but empty is -1105.
    pub(crate) fn optional(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.raw(name) {
            Some("") => Err(ApiError::empty_param(name)),
            other => Ok(other),
        }
    }

    /// An optional DECIMAL parameter.
    pub(crate) fn decimal(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        self.optional(name)?.map(|raw| parse_decimal(name, raw)).transpose()
    }

    /// An optional LONG parameter.
    pub(crate) fn long(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.optional(name)?.map(|raw| parse_long(name, raw)).transpose()
    }

    /// An optional BOOLEAN parameter (`true` / `false`).
    pub(crate) fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.optional(name)? {
            None => Ok(None),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid_param(name)),
        }
    }

    /// A mandatory `symbol`.
    pub(crate) fn required_symbol(&self) -> Result<&str, ApiError> {
        let raw = self.required("symbol")?;
        check_symbol_chars("symbol", raw)?;
        Ok(raw)
    }

    /// An optional `symbol`.
    pub(crate) fn optional_symbol(&self) -> Result<Option<&str>, ApiError> {
        let raw = self.optional("symbol")?;
        if let Some(raw) = raw {
            check_symbol_chars("symbol", raw)?;
        }
        Ok(raw)
    }

    /// An optional `symbols` JSON array such as `["BTCUSDT","ETHUSDT"]`.
    pub(crate) fn symbols(&self) -> Result<Option<Vec<String>>, ApiError> {
        let Some(raw) = self.optional("symbols")? else { return Ok(None) };
        let list: Vec<String> =
            serde_json::from_str(raw).map_err(|_| ApiError::illegal_chars("symbols", SYMBOLS_RANGE))?;
        if list.iter().any(|symbol| !is_symbol_shaped(symbol)) {
            return Err(ApiError::illegal_chars("symbols", SYMBOLS_RANGE));
        }
        let mut seen = std::collections::HashSet::new();
        if !list.iter().all(|symbol| seen.insert(symbol.as_str())) {
            return Err(ApiError::duplicate_symbols());
        }
        Ok(Some(list))
    }

    /// How many symbols a `symbols` parameter names, for the weight; 0 when absent or malformed.
    pub(crate) fn symbols_count(&self) -> usize {
        self.raw("symbols").and_then(|raw| serde_json::from_str::<Vec<String>>(raw).ok()).map_or(0, |list| list.len())
    }
}

/// Decodes one `a=1&b=2` part; the same name twice is -1101.
fn decode_part(raw: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut values = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if name.is_empty() {
            continue;
        }
        if values.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(ApiError::duplicate_param());
        }
    }
    Ok(values)
}

/// Parses a DECIMAL the way Binance accepts it: `^([0-9]{1,20})(\.[0-9]{1,20})?$`.
pub(crate) fn parse_decimal(name: &str, raw: &str) -> Result<Decimal, ApiError> {
    let illegal = || ApiError::illegal_chars(name, DECIMAL_RANGE);
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (raw, None),
    };
    let digits = |part: &str| (1..=20).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|fraction| !digits(fraction)) {
        return Err(illegal());
    }
    raw.parse::<Decimal>().map_err(|_| illegal())
}

/// Parses a LONG the way Binance accepts it: `^[0-9]{1,20}$`, within range.
pub(crate) fn parse_long(name: &str, raw: &str) -> Result<u64, ApiError> {
    if !(1..=20).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::illegal_chars(name, INTEGER_RANGE));
    }
    raw.parse::<u64>().map_err(|_| ApiError::illegal_chars(name, INTEGER_RANGE))
}

fn is_symbol_shaped(raw: &str) -> bool {
    (1..=20).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn check_symbol_chars(name: &str, raw: &str) -> Result<(), ApiError> {
    if is_symbol_shaped(raw) { Ok(()) } else { Err(ApiError::illegal_chars(name, SYMBOL_RANGE)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_wins_over_the_body() {
        let params = Params::parse(b"symbol=BTCUSDT&side=BUY", b"side=SELL&quantity=1").expect("parses");
        assert_eq!(params.raw("side"), Some("BUY"));
        assert_eq!(params.raw("quantity"), Some("1"));
    }

    #[test]
    fn a_name_twice_in_one_part_is_rejected() {
        let error = Params::parse(b"side=BUY&side=SELL", b"").expect_err("duplicate");
        assert_eq!(error.code, -1101);
    }

    #[test]
    fn decimals_follow_binances_pattern() {
        assert_eq!(parse_decimal("quantity", "0.10000000"), Ok(Decimal::new(1, 1)));
        assert_eq!(parse_decimal("quantity", "12"), Ok(Decimal::new(12, 0)));
        for bad in ["-1", "1e5", ".5", "5.", "1.2.3", "abc", "", " 1", "123456789012345678901"] {
            assert_eq!(parse_decimal("quantity", bad).map_err(|e| e.code), Err(-1100), "{bad:?}");
        }
    }

    #[test]
    fn longs_follow_binances_pattern() {
        assert_eq!(parse_long("orderId", "42"), Ok(42));
        for bad in ["-1", "1.0", "x", "", "99999999999999999999"] {
            assert_eq!(parse_long("orderId", bad).map_err(|e| e.code), Err(-1100), "{bad:?}");
        }
    }

    #[test]
    fn symbols_are_upper_case_and_listed_once() {
        let params = Params::parse(br#"symbols=["BTCUSDT","ETHUSDT"]"#, b"").expect("parses");
        assert_eq!(params.symbols(), Ok(Some(vec!["BTCUSDT".to_owned(), "ETHUSDT".to_owned()])));
        let params = Params::parse(b"symbols=%5B%22BTCUSDT%22%2C%22BTCUSDT%22%5D", b"").expect("parses");
        assert_eq!(params.symbols().map_err(|e| e.code), Err(-1151));
        let params = Params::parse(b"symbols=BTCUSDT", b"").expect("parses");
        assert_eq!(params.symbols().map_err(|e| e.code), Err(-1100));
        let params = Params::parse(b"symbol=btcusdt", b"").expect("parses");
        assert_eq!(params.required_symbol().map_err(|e| e.code), Err(-1100));
    }

    #[test]
    fn missing_and_empty_parameters_have_their_codes() {
        let params = Params::parse(b"a=&b=1", b"").expect("parses");
        assert_eq!(params.required("a").map_err(|e| e.code), Err(-1102));
        assert_eq!(params.required("c").map_err(|e| e.code), Err(-1102));
        assert_eq!(params.optional("a").map_err(|e| e.code), Err(-1105));
        assert_eq!(params.optional("c"), Ok(None));
        assert_eq!(params.boolean("b").map_err(|e| e.code), Err(-1130));
    }
}
