//! Passwords: the policy a new password must meet (AU-1, AU-2) and Argon2id hashing (AU-3).

use std::fmt;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::Random;

/// A password as typed, normalized to Unicode NFKC (NIST SP 800-63B 5.1.1.2) so the same
/// passphrase typed on two keyboards is the same password. Never truncated. Redacted in `Debug`,
/// zeroized on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(raw: &str) -> Password {
        Password(Zeroizing::new(raw.nfkc().collect()))
    }

    /// A second copy, for the rare flow that needs the password twice (verify, then rehash).
    pub fn duplicate(&self) -> Password {
        Password(self.0.clone())
    }

    /// Length in Unicode scalar values, which is what a person counts as characters.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What a new password must meet. No composition rules and no expiry, by design (AU-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length for an account with a second factor.
    pub min_chars_with_second_factor: usize,
    /// Minimum length for an account protected by the password alone.
    pub min_chars_single_factor: usize,
    /// Upper bound, far above what people type; it only keeps the strength check and the request
    /// body small.
    pub max_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_chars_with_second_factor: 8, min_chars_single_factor: 15, max_chars: 256 }
    }
}

/// Why a password was refused, as a sentence for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WeakPassword {
    pub reason: String,
}

impl PasswordPolicy {
    /// Checks a new password. `context` holds words the password must not lean on (the email
    /// address and its local part); `has_second_factor` picks the minimum length.
    ///
    /// # Errors
    /// `WeakPassword` with the reason when the password is too short, too long, or guessable
    /// (zxcvbn score below 3 of 4, which covers its offline list of common passwords).
    pub fn check(&self, password: &Password, context: &[&str], has_second_factor: bool) -> Result<(), WeakPassword> {
        let min = if has_second_factor { self.min_chars_with_second_factor } else { self.min_chars_single_factor };
        let chars = password.char_count();
        if chars < min {
            let why = if has_second_factor { String::new() } else { " while two-factor sign-in is off".to_owned() };
            return Err(WeakPassword {
                reason: format!(
                    "Use at least {min} characters{why}; a few unrelated words make a long password that is easy to remember."
                ),
            });
        }
        if chars > self.max_chars {
            return Err(WeakPassword { reason: format!("Use at most {} characters.", self.max_chars) });
        }
        let lowered = password.0.to_lowercase();
        if context
            .iter()
            .map(|word| word.to_lowercase())
            .any(|word| word.chars().count() >= 4 && lowered.contains(&word))
        {
            return Err(WeakPassword { reason: "Do not use your email address in your password.".to_owned() });
        }
        let entropy = zxcvbn::zxcvbn(&password.0, context);
        if entropy.score() < zxcvbn::Score::Three {
            let warning = entropy
                .feedback()
                .and_then(|feedback| feedback.warning())
                .map(|warning| format!("{warning} "))
                .unwrap_or_default();
            return Err(WeakPassword {
                reason: format!(
                    "{warning}This password is too easy to guess; common passwords, names, dates and keyboard patterns are tried first by attackers."
                ),
            });
        }
        Ok(())
    }
}

/// Argon2id cost. The default is the OWASP minimum: 19 MiB, two passes, one lane (AU-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// A stored password hash as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_phc(phc: String) -> PasswordHash {
        PasswordHash(phc)
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The parameters are harmless and useful in a log; the salt and digest are not shown.
        let prefix: String = self.0.split('$').take(4).collect::<Vec<_>>().join("$");
        write!(f, "PasswordHash({prefix}$***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// The outcome of checking a password against its stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    /// The password is right; `needs_rehash` says the stored hash used other parameters than the
    /// current ones and should be replaced with a fresh hash (the upgrade-on-login of AU-3).
    Valid {
        needs_rehash: bool,
    },
}

/// Argon2id with fixed parameters. Hashing is CPU- and memory-bound by design: callers run it on
/// a bounded blocking pool, never on an async worker.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl PasswordHasher {
    /// # Errors
    /// `PasswordError::Params` when Argon2 refuses the parameters (for example memory below 8 KiB
    /// per lane).
    pub fn new(params: HashParams) -> Result<PasswordHasher, PasswordError> {
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(PasswordHasher { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// # Errors
    /// `PasswordError::Hash` only if Argon2 itself fails (it does not for valid parameters).
    pub fn hash(&self, password: &Password, random: &dyn Random) -> Result<PasswordHash, PasswordError> {
        let mut salt = [0u8; 16];
        random.fill(&mut salt);
        let hash = self
            .argon2()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// Verifies in constant time with respect to the password (Argon2 always runs in full). A stored
    /// string that does not parse counts as a wrong password, never as a success.
    pub fn verify(&self, password: &Password, stored: &PasswordHash) -> Verification {
        let Ok(parsed) = argon2::PasswordHash::new(&stored.0) else {
            return Verification::Invalid;
        };
        // Verify with the parameters recorded in the hash, whatever the current ones are.
        if Argon2::default().verify_password(password.as_bytes(), &parsed).is_err() {
            return Verification::Invalid;
        }
        let current = parsed.algorithm == argon2::ARGON2ID_IDENT
            && parsed.version == Some(Version::V0x13.into())
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() == self.params.m_cost()
                    && p.t_cost() == self.params.t_cost()
                    && p.p_cost() == self.params.p_cost()
            });
        Verification::Valid { needs_rehash: !current }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::default()
    }

    const STRONG_15: &str = "violet-kettle-9"; // 15 characters, not in any list

    // AU-1: length limits, table-driven.
    #[test]
    fn lengths() {
        let p = policy();
        let ok = |s: &str, second| p.check(&Password::new(s), &[], second).is_ok();
        assert!(!ok("violet-", false), "7 chars");
        assert!(!ok("vio!et-k", false), "8 chars without a second factor");
        assert!(ok("zq7!Vkp#w", true), "9 random chars with a second factor");
        assert!(!ok("zq7!Vkp", true), "7 chars with a second factor");
        assert!(!ok("violet-kettle-", false), "14 chars");
        assert!(ok(STRONG_15, false), "15 chars");
        let long64: String = "tangerine orbit quietly ".repeat(3).chars().take(64).collect();
        assert_eq!(long64.chars().count(), 64);
        assert!(ok(&long64, false), "64 chars");
        let long128 = format!("{long64}{}", "marble cactus whistles softly under neon rain ok".repeat(2));
        assert!(ok(&long128[..128], false), "128 chars");
        assert!(!ok(&"x7Kq".repeat(65), false), "over the maximum");
    }

    #[test]
    fn unicode_and_spaces_are_characters() {
        let p = policy();
        // 15 characters, 30+ bytes: counted as characters, not bytes.
        assert!(p.check(&Password::new("ключ от сейфа 7"), &[], false).is_ok());
        assert!(p.check(&Password::new("ключ от сейф"), &[], false).is_err());
    }

    // AU-2: the blocklist.
    #[test]
    fn common_passwords_are_refused_with_a_reason() {
        let p = policy();
        for common in ["password", "123456", "qwerty123", "passwordpassword", "qwertyuiopasdfgh", "iloveyou12345678"] {
            let err = p.check(&Password::new(common), &[], true).expect_err(common);
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn the_email_is_context() {
        let p = policy();
        let err = p
            .check(
                &Password::new("margaret.hamilton1936!"),
                &["margaret.hamilton@example.com", "margaret.hamilton"],
                false,
            )
            .expect_err("contains the email's local part");
        assert!(err.reason.contains("email"), "{}", err.reason);
    }

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(HashParams { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    // AU-3: the PHC string carries Argon2id and the OWASP minimum.
    #[test]
    fn default_hash_is_argon2id_at_owasp_minimum() {
        let hasher = PasswordHasher::new(HashParams::default()).unwrap();
        let hash = hasher.hash(&Password::new(STRONG_15), &OsRandom).unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash.as_phc());
        assert_eq!(hasher.verify(&Password::new(STRONG_15), &hash), Verification::Valid { needs_rehash: false });
        assert_eq!(hasher.verify(&Password::new("violet-kettle-8"), &hash), Verification::Invalid);
    }

    // AU-1: no truncation: a 100-character password does not verify with its first 72 characters.
    #[test]
    fn no_truncation() {
        let hasher = cheap();
        let long: String = "abcdefghij".repeat(10);
        let hash = hasher.hash(&Password::new(&long), &OsRandom).unwrap();
        assert_eq!(hasher.verify(&Password::new(&long[..72]), &hash), Verification::Invalid);
        assert_eq!(hasher.verify(&Password::new(&long[..99]), &hash), Verification::Invalid);
        assert!(matches!(hasher.verify(&Password::new(&long), &hash), Verification::Valid { .. }));
    }

    #[test]
    fn other_parameters_ask_for_a_rehash() {
        let old = cheap().hash(&Password::new(STRONG_15), &OsRandom).unwrap();
        let current = PasswordHasher::new(HashParams::default()).unwrap();
        assert_eq!(current.verify(&Password::new(STRONG_15), &old), Verification::Valid { needs_rehash: true });
    }

    #[test]
    fn garbage_hashes_never_verify() {
        let hasher = cheap();
        for junk in ["", "$argon2id$", "plaintext", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$"] {
            assert_eq!(
                hasher.verify(&Password::new(junk), &PasswordHash::from_phc(junk.to_owned())),
                Verification::Invalid
            );
        }
    }

    #[test]
    fn normalization_makes_equivalent_input_equal() {
        // "e" + combining acute and the precomposed "é" are one password.
        let hasher = cheap();
        let hash = hasher.hash(&Password::new("caf\u{e9} au lait, s'il vous pla\u{ee}t"), &OsRandom).unwrap();
        assert!(matches!(
            hasher.verify(&Password::new("cafe\u{301} au lait, s'il vous plai\u{302}t"), &hash),
            Verification::Valid { .. }
        ));
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(format!("{:?}", Password::new("hunter2hunter2hunter2")), "Password(***)");
        let hash = cheap().hash(&Password::new("x"), &OsRandom).unwrap();
        let shown = format!("{hash:?}");
        assert!(shown.starts_with("PasswordHash($argon2id$v=19$m=64,t=1,p=1$***"), "{shown}");
    }
}
