//! How the API writes and reads the values its routes share: amounts of money under the
//! hide-balances preference, decimals as strings, and pairs in 3Commas' `QUOTE_BASE` form.

use domain::{Decimal, Pair};

use crate::ApiError;
use crate::session::Authed;

/// What a masked amount reads as.
const MASK: &str = "***";

/// Amounts of money as strings, or the mask while the user hides balances, unless the request
/// asked to reveal them (`?reveal=true`).
#[derive(Debug, Clone, Copy)]
pub struct Amounts {
    masked: bool,
}

impl Amounts {
    pub fn new(authed: &Authed, reveal: Option<bool>) -> Amounts {
        Amounts { masked: authed.user.hide_balances && reveal != Some(true) }
    }

    pub fn show(&self, value: Decimal) -> String {
        if self.masked { MASK.to_owned() } else { text(value) }
    }

    pub fn maybe(&self, value: Option<Decimal>) -> Option<String> {
        value.map(|v| self.show(v))
    }
}

/// A decimal as the API writes it: a string without trailing zeros.
pub fn text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A pair named in a request (`USDT_BTC`); 422 on the `pair` field otherwise.
pub fn pair_of(raw: &str) -> Result<Pair, ApiError> {
    Pair::parse_3commas(raw).map_err(|_| ApiError::InvalidInput {
        field: "pair",
        message: "Write the pair quote first, as USDT_BTC.".to_owned(),
    })
}
