//! API keys: how an adapter reaches the secret, what a key may do, and which keys Bulwark refuses.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::ExchangeError;

/// How the venue expects requests to be signed with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A shared secret; signatures are HMAC-SHA256.
    Hmac,
    /// An Ed25519 private key (PKCS#8 PEM) whose public half is registered at the venue.
    Ed25519,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Hmac => "hmac",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    pub fn parse(raw: &str) -> Option<KeyKind> {
        match raw {
            "hmac" => Some(KeyKind::Hmac),
            "ed25519" => Some(KeyKind::Ed25519),
            _ => None,
        }
    }
}

/// Where an adapter gets the key it signs with. The public API key is at hand; the secret is opened
/// on demand (from the vault, in the server) and dropped by the caller right after signing.
#[async_trait]
pub trait Credentials: Send + Sync + fmt::Debug {
    fn api_key(&self) -> &str;

    fn kind(&self) -> KeyKind;

    /// The secret, for one signature.
    ///
    /// # Errors
    /// `ExchangeError::SecretUnavailable` when it cannot be opened (sealed vault, tampered blob).
    async fn secret(&self) -> Result<Zeroizing<Vec<u8>>, ExchangeError>;
}

/// A key held in memory: a key being checked before it is sealed, or a test's key. `Debug` shows
/// the API key's last four characters only.
pub struct PlainCredentials {
    api_key: String,
    kind: KeyKind,
    secret: Zeroizing<Vec<u8>>,
}

impl PlainCredentials {
    pub fn new(api_key: impl Into<String>, kind: KeyKind, secret: Zeroizing<Vec<u8>>) -> PlainCredentials {
        PlainCredentials { api_key: api_key.into(), kind, secret }
    }
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("api_key", &api_key_hint(&self.api_key))
            .field("kind", &self.kind)
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[async_trait]
impl Credentials for PlainCredentials {
    fn api_key(&self) -> &str {
        &self.api_key
    }

    fn kind(&self) -> KeyKind {
        self.kind
    }

    async fn secret(&self) -> Result<Zeroizing<Vec<u8>>, ExchangeError> {
        Ok(Zeroizing::new(self.secret.to_vec()))
    }
}

/// `…` and the last four characters of a public API key: all the UI and the logs ever show of it.
pub fn api_key_hint(api_key: &str) -> String {
    let chars: Vec<char> = api_key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// What a key may do, as the venue's key-introspection endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct KeyPermissions {
    pub reading: bool,
    pub spot_trading: bool,
    pub withdrawals: bool,
    pub internal_transfer: bool,
    pub universal_transfer: bool,
    pub margin: bool,
    pub futures: bool,
    pub ip_restricted: bool,
}

/// Why Bulwark will not use a key. Checked on connect and on every re-check (EX-1, EX-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    WithdrawalsEnabled,
    TransferEnabled,
    TradingMissing,
    IpRestrictionMissing,
}

impl KeyPermissions {
    /// The first reason to refuse this key, if any. `require_ip_restriction` is strict mode (the
    /// default); a user on a dynamic IP may turn it off for one account, deliberately and audited.
    pub fn refusal(&self, require_ip_restriction: bool) -> Option<KeyRefusal> {
        if self.withdrawals {
            Some(KeyRefusal::WithdrawalsEnabled)
        } else if self.internal_transfer || self.universal_transfer {
            Some(KeyRefusal::TransferEnabled)
        } else if !self.spot_trading {
            Some(KeyRefusal::TradingMissing)
        } else if require_ip_restriction && !self.ip_restricted {
            Some(KeyRefusal::IpRestrictionMissing)
        } else {
            None
        }
    }
}

impl KeyRefusal {
    /// The error code of `spec/api.md`.
    pub fn code(self) -> &'static str {
        match self {
            KeyRefusal::WithdrawalsEnabled => "withdrawal_permission_enabled",
            KeyRefusal::TransferEnabled => "transfer_permission_enabled",
            KeyRefusal::TradingMissing => "trading_permission_missing",
            KeyRefusal::IpRestrictionMissing => "ip_restriction_missing",
        }
    }

    /// A plain sentence telling the user how to fix it on the exchange.
    pub fn explanation(self) -> &'static str {
        match self {
            KeyRefusal::WithdrawalsEnabled => {
                "This API key can withdraw funds. Bulwark never uses such a key: on the exchange's API \
                 management page, edit the key's restrictions, untick \"Enable Withdrawals\", save, and \
                 connect the key again. The secret was not stored."
            }
            KeyRefusal::TransferEnabled => {
                "This API key can move funds between accounts (internal or universal transfer). Untick \
                 those permissions in the key's restrictions on the exchange and connect it again. The \
                 secret was not stored."
            }
            KeyRefusal::TradingMissing => {
                "This API key cannot trade spot. Tick \"Enable Spot & Margin Trading\" in the key's \
                 restrictions on the exchange (and nothing that withdraws or transfers), then connect it \
                 again. The secret was not stored."
            }
            KeyRefusal::IpRestrictionMissing => {
                "This API key works from any IP address. Restrict it to this server's IP address in the \
                 key's restrictions on the exchange and connect it again; if your IP address changes \
                 often, you can turn off the IP requirement for this account deliberately. The secret \
                 was not stored."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tradable() -> KeyPermissions {
        KeyPermissions { reading: true, spot_trading: true, ip_restricted: true, ..KeyPermissions::default() }
    }

    #[test]
    fn each_dangerous_permission_is_refused_with_its_code() {
        assert_eq!(tradable().refusal(true), None);
        let cases = [
            (KeyPermissions { withdrawals: true, ..tradable() }, "withdrawal_permission_enabled"),
            (KeyPermissions { internal_transfer: true, ..tradable() }, "transfer_permission_enabled"),
            (KeyPermissions { universal_transfer: true, ..tradable() }, "transfer_permission_enabled"),
            (KeyPermissions { spot_trading: false, ..tradable() }, "trading_permission_missing"),
            (KeyPermissions { ip_restricted: false, ..tradable() }, "ip_restriction_missing"),
        ];
        for (permissions, code) in cases {
            assert_eq!(permissions.refusal(true).map(KeyRefusal::code), Some(code), "{permissions:?}");
        }
        // Withdrawals are refused even when IP restriction is waived.
        let withdraw_anywhere = KeyPermissions { withdrawals: true, ip_restricted: false, ..tradable() };
        assert_eq!(withdraw_anywhere.refusal(false), Some(KeyRefusal::WithdrawalsEnabled));
        assert_eq!(KeyPermissions { ip_restricted: false, ..tradable() }.refusal(false), None);
    }

    #[test]
    fn hints_and_debug_show_only_the_last_four() {
        assert_eq!(api_key_hint("vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"), "…Eh8A");
        assert_eq!(api_key_hint("ab"), "…ab");
        let creds = PlainCredentials::new("APIKEY1234", KeyKind::Hmac, Zeroizing::new(b"s3cr3t-value".to_vec()));
        let shown = format!("{creds:?}");
        assert!(shown.contains("…1234") && !shown.contains("APIKEY") && !shown.contains("s3cr3t"), "{shown}");
    }
}
