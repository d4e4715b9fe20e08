//! Email addresses, parsed once at the edge.

use std::fmt;

use serde::Serialize;

/// A syntactically plausible email address, trimmed and with its domain lower-cased.
///
/// The check is deliberately modest (one `@`, a non-empty local part, a dotted domain of letters,
/// digits and hyphens, no spaces or control characters, at most 254 bytes): the real proof of an
/// address is the verification mail. Two addresses that differ only in the case of the local part
/// are treated as one account, because users do not expect `Alice@x` and `alice@x` to be different
/// people; `canonical` is the form used for uniqueness.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("enter an email address")]
    Empty,
    #[error("an email address is at most 254 characters long")]
    TooLong,
    #[error("an email address looks like name@example.com")]
    Malformed,
}

impl Email {
    /// # Errors
    /// `EmailError` with a sentence fit for the user when `raw` is not a plausible address.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[]\\,;:\"".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(EmailError::Malformed);
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form under which accounts are unique.
    pub fn canonical(&self) -> String {
        self.0.to_lowercase()
    }

    /// The part before the `@`, used as context for the password-strength check.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(self.0.as_str(), |(local, _)| local)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in ["a@b.co", "Alice.Smith+bots@Example.COM", " bob@mail.example.org "] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().as_str(), "Alice@example.com");
        assert_eq!(Email::parse("Alice@Example.COM").unwrap().canonical(), "alice@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
            "a@b_c.com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a\u{7}b@c.com",
            "<a>@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Email::parse(&format!("{}@b.com", "a".repeat(260))), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_idempotent(raw in ".{0,300}") {
            if let Ok(email) = Email::parse(&raw) {
                let again = Email::parse(email.as_str()).expect("a parsed address parses again");
                prop_assert_eq!(again, email);
            }
        }
    }
}
