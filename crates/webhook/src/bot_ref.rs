//! The bot a webhook names, as the sender wrote it.

use std::fmt;

use crate::ParseError;
use crate::json::{Field, is_placeholder};

/// The longest bot reference read. Bulwark's bot ids are UUIDs (36 characters).
pub const MAX_BOT_REF_CHARS: usize = 64;

/// A bot id as it arrived: 1 to 64 printable ASCII characters, not yet looked up. Bulwark's ids are
/// UUID strings, but anything of this shape is kept, so that an id of another shape (a 3Commas
/// integer id left in a migrated alert) gets the same 401 from the server as an unknown bot.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BotRef(String);

impl BotRef {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads a JSON string, or also a JSON integer (kept as its decimal text) if `integer_ok`.
    pub(crate) fn read(field: Field<'_>, integer_ok: bool, expected: &'static str) -> Result<BotRef, ParseError> {
        if integer_ok && let Some(digits) = field.integer_text() {
            return BotRef::check(field, digits.to_owned(), expected);
        }
        let text = field.raw_string(expected)?;
        if is_placeholder(&text) {
            return Err(ParseError::Placeholder { field: field.name });
        }
        BotRef::check(field, text, expected)
    }

    fn check(field: Field<'_>, text: String, expected: &'static str) -> Result<BotRef, ParseError> {
        let valid = !text.is_empty() && text.len() <= MAX_BOT_REF_CHARS && text.bytes().all(|b| b.is_ascii_graphic());
        if valid { Ok(BotRef(text)) } else { Err(field.invalid(expected)) }
    }
}

impl fmt::Debug for BotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BotRef({})", self.0)
    }
}

impl fmt::Display for BotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
