//! Why a webhook body was refused.
//!
//! Every message names the field by its JSON name (nested ones as `order.amount`) and never quotes
//! the body: a body carries the bot's secret, and an error may be logged or shown.

/// A webhook body that cannot be turned into a signal.
///
/// `code()` is the stable machine code for the API's error shape, `to_string()` the human sentence.
/// Nothing here retries: the sender has to fix the alert's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is longer than the parsers read. The server refuses such bodies before parsing.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not UTF-8 text")]
    NotUtf8,
    /// Position only, never the offending text.
    #[error("the body is not valid JSON (line {line}, column {column})")]
    Malformed { line: usize, column: usize },
    #[error("the body nests arrays or objects deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("`{field}` appears more than once")]
    DuplicateField { field: &'static str },
    #[error("`{field}` is required")]
    Missing { field: &'static str },
    /// `expected` completes the sentence "`field` must be ...".
    #[error("`{field}` must be {expected}")]
    Invalid { field: &'static str, expected: &'static str },
    /// A TradingView `{{placeholder}}` that TradingView did not fill in, usually because the alert
    /// was not created from a strategy, or the message was pasted as a template.
    #[error("`{field}` holds an unresolved TradingView placeholder such as {{{{close}}}}; check the alert's message")]
    Placeholder { field: &'static str },
}

impl ParseError {
    /// The machine code of `spec/api.md`'s error shape: `body_too_large`, `invalid_json` for a body
    /// that is not a JSON object, `invalid_signal` for a JSON object with a wrong field.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::TooLarge { .. } => "body_too_large",
            ParseError::NotUtf8
            | ParseError::Malformed { .. }
            | ParseError::TooDeep { .. }
            | ParseError::NotAnObject => "invalid_json",
            ParseError::DuplicateField { .. }
            | ParseError::Missing { .. }
            | ParseError::Invalid { .. }
            | ParseError::Placeholder { .. } => "invalid_signal",
        }
    }

    /// The JSON field the error is about, if it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ParseError::DuplicateField { field }
            | ParseError::Missing { field }
            | ParseError::Invalid { field, .. }
            | ParseError::Placeholder { field } => Some(field),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_sentences_are_stable() {
        let cases = [
            (ParseError::TooLarge { limit: 16384 }, "body_too_large", "the body is larger than 16384 bytes"),
            (ParseError::NotUtf8, "invalid_json", "the body is not UTF-8 text"),
            (
                ParseError::Malformed { line: 1, column: 7 },
                "invalid_json",
                "the body is not valid JSON (line 1, column 7)",
            ),
            (
                ParseError::TooDeep { limit: 32 },
                "invalid_json",
                "the body nests arrays or objects deeper than 32 levels",
            ),
            (ParseError::NotAnObject, "invalid_json", "the body must be a JSON object"),
            (ParseError::DuplicateField { field: "pair" }, "invalid_signal", "`pair` appears more than once"),
            (ParseError::Missing { field: "email_token" }, "invalid_signal", "`email_token` is required"),
            (
                ParseError::Invalid { field: "volume", expected: "a positive number" },
                "invalid_signal",
                "`volume` must be a positive number",
            ),
            (
                ParseError::Placeholder { field: "trigger_price" },
                "invalid_signal",
                "`trigger_price` holds an unresolved TradingView placeholder such as {{close}}; check the alert's message",
            ),
        ];
        for (error, code, sentence) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.to_string(), sentence);
        }
        assert_eq!(ParseError::Missing { field: "bot_uuid" }.field(), Some("bot_uuid"));
        assert_eq!(ParseError::NotAnObject.field(), None);
    }
}
