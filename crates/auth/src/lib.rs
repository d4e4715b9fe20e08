//! Passwords, the password policy and opaque tokens.
//!
//! Pure in the sense of ARCHITECTURE.md: no IO and no clock; randomness comes in through [`Random`]
//! so callers decide the source. Every secret here lives in a type that redacts `Debug` and zeroizes
//! its memory on drop.

mod password;
mod random;
mod token;
pub mod totp;

pub use password::{
    HashParams, Password, PasswordError, PasswordHash, PasswordHasher, PasswordPolicy, Verification, WeakPassword,
};
pub use random::{OsRandom, Random};
pub use token::{OpaqueToken, TokenError, TokenHash};
pub use totp::{CodeError, TotpCode, TotpSecret};
