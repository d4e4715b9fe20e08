//! The JSON reading both message formats share: the body checks (size, BOM, nesting), one object's
//! fields kept as raw JSON text, and typed reads of one field with errors that name it.
//!
//! Fields are kept as `RawValue`s, that is as slices of the body, so a number is read from the
//! digits the sender wrote, straight into `Decimal`; it never passes through `f64`. Only the fields a
//! format names are looked at; the others are skipped, as 3Commas does.

use std::fmt;
use std::str::FromStr;

use domain::{Decimal, Timestamp};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

use crate::ParseError;

/// The largest body the parsers read: the server answers 413 above it (`spec/webhooks.md` 4).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The deepest nesting of arrays and objects a body may have, the top-level object counting as one.
/// The formats need two; the limit is checked before serde parses anything.
pub const MAX_DEPTH: usize = 32;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The longest number text read into a Decimal, digits, sign, point and exponent together.
const MAX_NUMBER_CHARS: usize = 64;

/// A JSON object's fields, in body order, each as its raw JSON text.
#[derive(Debug)]
pub(crate) struct Object<'a> {
    entries: Vec<(String, &'a RawValue)>,
}

/// One field's raw JSON text and the name errors use for it (`order.amount` for a nested one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub name: &'static str,
    raw: &'a str,
}

/// Reads a body into its top-level object, whatever the Content-Type was: TradingView sends
/// `text/plain` when it thinks the message is not JSON, so the header says nothing about the body.
///
/// One UTF-8 byte order mark and whitespace around the JSON are allowed.
pub(crate) fn parse_body(body: &[u8]) -> Result<Object<'_>, ParseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge { limit: MAX_BODY_BYTES });
    }
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let text = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
    let trimmed = text.trim();
    if nesting_exceeds(trimmed, MAX_DEPTH) {
        return Err(ParseError::TooDeep { limit: MAX_DEPTH });
    }
    parse_object(trimmed).map_err(|error| match error {
        ParseError::Malformed { line, column } => {
            let skipped = &text[..text.len() - text.trim_start().len()];
            position_in_body(skipped, line, column)
        }
        other => other,
    })
}

/// Moves a position serde gave in the trimmed text back to the body's own lines and columns, so an
/// alert that starts with blank lines is told the line the sender sees.
fn position_in_body(skipped: &str, line: usize, column: usize) -> ParseError {
    let newlines = skipped.matches('\n').count();
    let column = match (line, skipped.rfind('\n')) {
        (1, Some(last)) => column + (skipped.len() - last - 1),
        (1, None) => column + skipped.len(),
        _ => column,
    };
    ParseError::Malformed { line: line + newlines, column }
}

impl<'a> Object<'a> {
    /// The field `key`, named `name` in errors. A JSON `null` counts as absent.
    ///
    /// # Errors
    /// `DuplicateField` when the key appears twice: which one a sender meant is unknowable, and two
    /// readers of the same body could disagree.
    pub fn get(&self, key: &str, name: &'static str) -> Result<Option<Field<'a>>, ParseError> {
        let mut found = None;
        for (entry_key, raw) in &self.entries {
            if entry_key == key {
                if found.is_some() {
                    return Err(ParseError::DuplicateField { field: name });
                }
                found = Some(raw.get());
            }
        }
        Ok(found.filter(|raw| *raw != "null").map(|raw| Field { name, raw }))
    }

    /// Like `get`, for a field without which the message means nothing.
    pub fn require(&self, key: &str, name: &'static str) -> Result<Field<'a>, ParseError> {
        self.get(key, name)?.ok_or(ParseError::Missing { field: name })
    }
}

impl<'a> Field<'a> {
    /// The text of a JSON string, at most `max_chars` characters, without control characters and
    /// without an unresolved `{{placeholder}}`.
    pub fn text(self, max_chars: usize, expected: &'static str) -> Result<String, ParseError> {
        let text = self.string().ok_or(self.invalid(expected))?;
        if is_placeholder(&text) {
            return Err(ParseError::Placeholder { field: self.name });
        }
        if text.is_empty() || text.chars().count() > max_chars || text.chars().any(char::is_control) {
            return Err(self.invalid(expected));
        }
        Ok(text)
    }

    /// The text of a JSON string, unchecked but for being a string: for secrets, which are only
    /// ever hashed and compared.
    pub fn raw_string(self, expected: &'static str) -> Result<String, ParseError> {
        self.string().ok_or(self.invalid(expected))
    }

    /// A JSON number or a string holding one, read exactly.
    pub fn decimal(self, expected: &'static str) -> Result<Decimal, ParseError> {
        let value = match self.string() {
            Some(text) if is_placeholder(&text) => return Err(ParseError::Placeholder { field: self.name }),
            Some(text) if is_number_text(&text) => parse_decimal(&text),
            Some(_) => None,
            None if self.is_number() => parse_decimal(self.raw),
            None => None,
        };
        value.ok_or(self.invalid(expected))
    }

    /// A whole number in `range`, written as a JSON integer or as a string of digits.
    pub fn whole(self, range: std::ops::RangeInclusive<u64>, expected: &'static str) -> Result<u64, ParseError> {
        let digits = match self.string() {
            Some(text) if is_placeholder(&text) => return Err(ParseError::Placeholder { field: self.name }),
            Some(text) => text,
            None => self.raw.to_owned(),
        };
        let value = (!digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| u64::from_str(&digits).ok())
            .flatten();
        value.filter(|value| range.contains(value)).ok_or(self.invalid(expected))
    }

    /// A JSON integer as the sender wrote it (JSON allows no leading zeros or `+`, so the text is the
    /// integer's decimal form), if the field is one.
    pub fn integer_text(self) -> Option<&'a str> {
        let digits = self.raw.strip_prefix('-').unwrap_or(self.raw);
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(self.raw)
    }

    /// An ISO-8601 date and time with a UTC offset, as TradingView's `{{timenow}}` writes it.
    pub fn timestamp(self, expected: &'static str) -> Result<Timestamp, ParseError> {
        let text = self.string().ok_or(self.invalid(expected))?;
        if is_placeholder(&text) {
            return Err(ParseError::Placeholder { field: self.name });
        }
        if text.len() > 64 {
            return Err(self.invalid(expected));
        }
        let parsed =
            OffsetDateTime::parse(&text, &Rfc3339).or_else(|_| OffsetDateTime::parse(&text, &Iso8601::PARSING));
        let nanos = parsed.map_err(|_| self.invalid(expected))?.unix_timestamp_nanos();
        let millis = i64::try_from(nanos.div_euclid(1_000_000)).map_err(|_| self.invalid(expected))?;
        Ok(Timestamp::from_unix_millis(millis))
    }

    /// A nested JSON object.
    pub fn object(self, expected: &'static str) -> Result<Object<'a>, ParseError> {
        if !self.raw.starts_with('{') {
            return Err(self.invalid(expected));
        }
        parse_object(self.raw)
    }

    pub fn invalid(self, expected: &'static str) -> ParseError {
        ParseError::Invalid { field: self.name, expected }
    }

    fn is_number(self) -> bool {
        self.raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
    }

    /// The decoded text when the field is a JSON string.
    fn string(self) -> Option<String> {
        if !self.raw.starts_with('"') {
            return None;
        }
        serde_json::from_str::<String>(self.raw).ok()
    }
}

/// Whether `text` holds a TradingView placeholder that was not filled in, such as `{{close}}`.
pub(crate) fn is_placeholder(text: &str) -> bool {
    text.find("{{").is_some_and(|open| text[open..].contains("}}"))
}

fn parse_object(text: &str) -> Result<Object<'_>, ParseError> {
    if !text.starts_with('{') {
        // Valid JSON of another kind and invalid JSON are told apart for the sender's sake.
        return match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Err(ParseError::NotAnObject),
            Err(error) => Err(malformed(&error)),
        };
    }
    let entries = serde_json::from_str::<Entries<'_>>(text).map_err(|error| malformed(&error))?;
    Ok(Object { entries: entries.0 })
}

fn malformed(error: &serde_json::Error) -> ParseError {
    ParseError::Malformed { line: error.line(), column: error.column() }
}

/// Whether arrays and objects nest deeper than `limit` anywhere in `text`. It only counts brackets
/// outside strings; whether the JSON is valid is serde's business afterwards.
fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `-?digits(.digits)?([eE][+-]?digits)?`: the JSON number grammar, leading zeros allowed, for
/// numbers sent as strings (`"volume": "10.5"`). Refuses what `Decimal`'s own parser would also
/// take, such as `1_000` or a trailing point.
fn is_number_text(text: &str) -> bool {
    fn digits(bytes: &[u8]) -> usize {
        bytes.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let bytes = text.as_bytes();
    if bytes.len() > MAX_NUMBER_CHARS {
        return false;
    }
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    let whole = digits(&bytes[at..]);
    if whole == 0 {
        return false;
    }
    at += whole;
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(&bytes[at + 1..]);
        if fraction == 0 {
            return false;
        }
        at += 1 + fraction;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(&bytes[at..]);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == bytes.len()
}

/// Reads number text already known to follow the JSON grammar. `None` when Decimal cannot hold it
/// exactly (more than 28 fraction digits, or out of range).
fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.len() > MAX_NUMBER_CHARS {
        return None;
    }
    if text.contains(['e', 'E']) { Decimal::from_scientific(text).ok() } else { Decimal::from_str_exact(text).ok() }
}

/// Every key of one object with its value's raw text, duplicates kept (see `Object::get`).
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(raw: &str) -> Field<'_> {
        Field { name: "f", raw }
    }

    #[test]
    fn nesting_counts_brackets_outside_strings_only() {
        assert!(!nesting_exceeds(r#"{"a":[[1]]}"#, 3));
        assert!(nesting_exceeds(r#"{"a":[[[1]]]}"#, 3));
        assert!(!nesting_exceeds(r#"{"a":"[[[[[[{{{{"}"#, 1));
        assert!(!nesting_exceeds(r#"{"a":"\"[[[["}"#, 1));
        assert!(nesting_exceeds(r#"{"a":"\\",  "b":[[1]]}"#, 2));
    }

    #[test]
    fn number_text_follows_the_json_grammar() {
        for good in ["0", "10", "-1", "0.5", "007", "1e3", "1.5E-3", "2e+2"] {
            assert!(is_number_text(good), "{good}");
        }
        for bad in ["", "-", "1.", ".5", "1_000", "+1", "1e", "1e+", " 1", "1 ", "NaN", "inf", "0x10", "1.2.3"] {
            assert!(!is_number_text(bad), "{bad}");
        }
        assert!(!is_number_text(&"1".repeat(MAX_NUMBER_CHARS + 1)));
    }

    #[test]
    fn decimals_are_exact() {
        let read = |raw| field(raw).decimal("a number");
        assert_eq!(read("0.1"), Ok(Decimal::new(1, 1)));
        assert_eq!(read(r#""0.1""#), Ok(Decimal::new(1, 1)));
        assert_eq!(read("1.5e-3"), Ok(Decimal::new(15, 4)));
        assert_eq!(read(r#""1.5E-3""#), Ok(Decimal::new(15, 4)));
        assert_eq!(read("2E+2"), Ok(Decimal::new(200, 0)));
        assert!(read("1e-29").is_err());
        assert_eq!(
            read("12345678901234567890.123456789"),
            Ok(Decimal::from_str_exact("12345678901234567890.123456789").unwrap())
        );
        // More digits than a Decimal holds are refused, not rounded.
        assert!(read("0.00000000000000000000000000001").is_err());
        assert!(read("1e400").is_err());
        assert!(read("true").is_err());
        assert!(read(r#""1,5""#).is_err());
        assert_eq!(read(r#""{{close}}""#), Err(ParseError::Placeholder { field: "f" }));
    }

    #[test]
    fn whole_numbers_from_integers_or_digit_strings() {
        let read = |raw| field(raw).whole(0..=86_400, "seconds");
        assert_eq!(read("0"), Ok(0));
        assert_eq!(read(r#""300""#), Ok(300));
        assert_eq!(read("86400"), Ok(86_400));
        for bad in ["86401", "-1", "1.0", "1e2", r#""""#, r#"" 5""#, r#""5s""#, "99999999999999999999999", "[]"] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_positions_count_from_the_body() {
        let position = |body: &str| match parse_body(body.as_bytes()) {
            Err(ParseError::Malformed { line, column }) => (line, column),
            other => panic!("{other:?}"),
        };
        assert_eq!(position(r#"{"a":x}"#), (1, 6));
        assert_eq!(position(r#"  {"a":x}"#), (1, 8));
        assert_eq!(position("\n\n  {\"a\":x}"), (3, 8));
        assert_eq!(position("\r\n{\n\"a\":x}"), (3, 5));
        assert_eq!(position("\u{feff}{\"a\":x}"), (1, 6));
    }

    #[test]
    fn placeholders_need_both_braces_in_order() {
        assert!(is_placeholder("{{close}}"));
        assert!(is_placeholder("USDT_{{ticker}}"));
        assert!(!is_placeholder("}}{{"));
        assert!(!is_placeholder("{close}"));
    }
}
