//! Identifiers. Each is a UUID behind its own type so a session id can never be passed as a user id.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Builds the id from 16 bytes the caller took from a random source (RFC 9562 version 4).
            pub fn from_random_bytes(bytes: [u8; 16]) -> $name {
                $name(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            pub const fn from_uuid(uuid: Uuid) -> $name {
                $name(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId
);
uuid_id!(
    /// A browser session. Public: shown in the session list. The secret is the session token.
    SessionId
);
uuid_id!(
    /// A row of the audit log.
    AuditId
);
uuid_id!(
    /// One backup code of a user (the code itself is only stored as a hash).
    BackupCodeId
);
uuid_id!(
    /// An exchange account: one API key at one venue. Bound into its sealed secret's associated data.
    ExchangeAccountId
);
uuid_id!(
    /// A trading bot (DCA).
    BotId
);
uuid_id!(
    /// One deal of a bot: a position opened by a base order and closed by take profit, stop loss or the user.
    DealId
);
uuid_id!(
    /// A webhook signal, recorded before its 202 answer; its id is in that answer.
    SignalId
);
