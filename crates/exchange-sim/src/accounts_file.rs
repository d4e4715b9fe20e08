//! The accounts file (`--accounts FILE`): several accounts in TOML, each with its API key, an
//! HMAC secret or an Ed25519 public key (PEM), its permissions and its starting balances.
//!
//! ```toml
//! [[account]]
//! api_key = "Alice0001"
//! secret = "alice-hmac-secret"
//! balances = { USDT = "10000", BTC = "0.5" }
//!
//! [[account]]
//! api_key = "Bob0001"
//! ed25519_public_key = """
//! -----BEGIN PUBLIC KEY-----
//! MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
//! -----END PUBLIC KEY-----
//! """
//! permissions = { withdrawals = true, ip_restricted = false, spot_trading = false }
//! ```
//!
//! Permissions left out are those of the command line's account: spot trading and reading,
//! IP-restricted, no withdrawals or transfers. Balances are strings (or whole numbers), never TOML
//! floats, which would pass amounts through binary floating point.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::config::{SimAccount, SimKey, SimPermissions};
use crate::error::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    account: Vec<AccountEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    api_key: String,
    secret: Option<String>,
    ed25519_public_key: Option<String>,
    #[serde(default)]
    permissions: PermissionsEntry,
    #[serde(default)]
    balances: BTreeMap<String, toml::Value>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsEntry {
    spot_trading: Option<bool>,
    reading: Option<bool>,
    withdrawals: Option<bool>,
    internal_transfer: Option<bool>,
    universal_transfer: Option<bool>,
    ip_restricted: Option<bool>,
}

impl SimAccount {
    /// Reads the accounts of an accounts file (module `accounts_file` shows the format).
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadAccountsFile`] for malformed TOML (with the line, never the text, which
    /// may hold a secret), an unknown field, an account with both or neither of `secret` and
    /// `ed25519_public_key`, a bad PEM, a balance that is a float or not a number, or no account.
    /// The accounts themselves are checked by [`SimConfig::validate`](crate::SimConfig::validate).
    pub fn parse_toml_list(text: &str) -> Result<Vec<Self>, ConfigError> {
        let bad = |message: String| ConfigError::BadAccountsFile(message);
        let file: AccountsFile = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
            bad(format!("line {line}: {}", error.message()))
        })?;
        if file.account.is_empty() {
            return Err(bad("no [[account]] entry".to_owned()));
        }
        file.account
            .into_iter()
            .map(|entry| {
                let name = entry.api_key.clone();
                let key = match (entry.secret, entry.ed25519_public_key) {
                    (Some(secret), None) => SimKey::Hmac { secret },
                    (None, Some(pem)) => {
                        SimKey::ed25519_from_pem(&pem).map_err(|error| bad(format!("account {name:?}: {error}")))?
                    }
                    _ => return Err(bad(format!("account {name:?} needs either secret or ed25519_public_key"))),
                };
                let defaults = SimPermissions::trading();
                let given = entry.permissions;
                let permissions = SimPermissions {
                    spot_trading: given.spot_trading.unwrap_or(defaults.spot_trading),
                    reading: given.reading.unwrap_or(defaults.reading),
                    withdrawals: given.withdrawals.unwrap_or(defaults.withdrawals),
                    internal_transfer: given.internal_transfer.unwrap_or(defaults.internal_transfer),
                    universal_transfer: given.universal_transfer.unwrap_or(defaults.universal_transfer),
                    ip_restricted: given.ip_restricted.unwrap_or(defaults.ip_restricted),
                };
                let mut balances = entry
                    .balances
                    .into_iter()
                    .map(|(asset, value)| {
                        let amount = match &value {
                            toml::Value::String(text) => Decimal::from_str(text.trim()).ok(),
                            toml::Value::Integer(whole) => Some(Decimal::from(*whole)),
                            _ => None,
                        };
                        amount.map(|amount| (asset.to_ascii_uppercase(), amount)).ok_or_else(|| {
                            bad(format!("account {name:?}: balance of {asset} must be a string such as \"0.5\""))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                balances.sort();
                Ok(Self { api_key: entry.api_key, key, permissions, balances })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_ACCOUNTS: &str = r#"
# Two accounts for a test run.
[[account]]
api_key = "Alice0001"
secret = "alice-hmac-secret"
balances = { USDT = "10000", btc = "0.5", ETH = 3 }

[[account]]
api_key = "Bob0001"
ed25519_public_key = """
-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
"""
permissions = { withdrawals = true, ip_restricted = false, spot_trading = false }
"#;

    #[test]
    fn accounts_read_with_their_keys_permissions_and_balances() {
        let accounts = SimAccount::parse_toml_list(TWO_ACCOUNTS).expect("parses");
        assert_eq!(accounts.len(), 2);
        let alice = &accounts[0];
        assert!(matches!(&alice.key, SimKey::Hmac { secret } if secret == "alice-hmac-secret"));
        assert_eq!(alice.permissions, SimPermissions::trading());
        assert_eq!(
            alice.balances,
            [
                ("BTC".to_owned(), Decimal::new(5, 1)),
                ("ETH".to_owned(), Decimal::from(3)),
                ("USDT".to_owned(), Decimal::from(10_000))
            ]
        );
        let bob = &accounts[1];
        assert!(matches!(&bob.key, SimKey::Ed25519 { public_key } if public_key.len() == 32));
        assert_eq!(
            bob.permissions,
            SimPermissions {
                withdrawals: true,
                ip_restricted: false,
                spot_trading: false,
                ..SimPermissions::trading()
            }
        );
        assert!(bob.balances.is_empty());
    }

    #[test]
    fn mistakes_are_named_without_echoing_secrets() {
        let message = |text: &str| match SimAccount::parse_toml_list(text) {
            Err(ConfigError::BadAccountsFile(message)) => message,
            other => panic!("{text:?}: {other:?}"),
        };
        assert!(message("").contains("no [[account]]"));
        assert!(message("[[account]]\napi_key = \"A\"\n").contains("either secret or ed25519_public_key"));
        assert!(
            message("[[account]]\napi_key = \"A\"\nsecret = \"s\"\ned25519_public_key = \"x\"\n").contains("either")
        );
        assert!(message("[[account]]\napi_key = \"A\"\nsecret = \"s\"\nbalances = { BTC = 0.5 }\n").contains("string"));
        assert!(
            message("[[account]]\napi_key = \"A\"\nsecret = \"s\"\npermissions = { trade = true }\n")
                .contains("line 4")
        );
        let leaked = message("[[account]]\napi_key = \"A\"\nsecret = \"hunter2\" oops\n");
        assert!(leaked.contains("line 3") && !leaked.contains("hunter2"), "{leaked}");
        assert!(message("[[account]]\napi_key = \"A\"\ned25519_public_key = \"garbage\"\n").contains("PEM"));
    }
}
