//! The 3Commas DCA-bot "TradingView custom signal" message (`spec/webhooks.md` 2), received at
//! `POST /trade_signal/trading_view`.
//!
//! ```json
//! {"message_type": "bot", "bot_id": "<bot uuid>", "email_token": "<bot secret>",
//!  "delay_seconds": 0, "pair": "USDT_BTC", "action": "add_funds_in_quote", "volume": "25.5"}
//! ```
//!
//! Read: `message_type` (must be `"bot"`), `bot_id` (string, or an integer as 3Commas wrote it),
//! `email_token` (the bot's secret), `delay_seconds` (0 to 86400, absent = 0), `pair` (`QUOTE_BASE`),
//! `action` (absent = start a deal), `volume` and `price` (with `add_funds_in_quote` only), and
//! Bulwark's additions `timestamp` and `max_lag` (see `freshness`). Numbers may be JSON numbers or
//! strings holding one. Every other field is ignored, as 3Commas does.

use std::time::Duration;

use domain::{Pair, Price, Qty, Timestamp};

use crate::bot_ref::BotRef;
use crate::json::{Field, Object, parse_body};
use crate::secret::PresentedSecret;
use crate::{MAX_DELAY_SECONDS, MAX_LAG_SECONDS, ParseError};

/// A DCA-bot signal, every field checked. The secret is not yet compared with anything.
#[derive(Debug)]
pub struct DcaSignal {
    bot_id: BotRef,
    email_token: Option<PresentedSecret>,
    delay: Duration,
    pair: Option<Pair>,
    action: DcaAction,
    timestamp: Option<Timestamp>,
    max_lag: Option<Duration>,
}

/// What the signal asks the bot to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcaAction {
    /// No `action`: start a new deal.
    StartDeal,
    /// `close_at_market_price`: close the bot's deal (on `pair`, for a multi-pair bot) at market.
    CloseAtMarketPrice,
    /// `close_at_market_price_all`: close all the bot's deals at market.
    CloseAtMarketPriceAll,
    /// `add_funds_in_quote`: a manual safety order of `volume` in the quote asset, at `price` if
    /// given (a limit order) or at market.
    AddFundsInQuote { volume: Qty, price: Option<Price> },
    /// `start_trailing`: start trailing the take profit.
    StartTrailing,
}

impl DcaSignal {
    /// Parses a body, whatever its Content-Type.
    ///
    /// # Errors
    /// `ParseError`, naming the field at fault; see `ParseError::code` for the API code.
    pub fn parse(body: &[u8]) -> Result<DcaSignal, ParseError> {
        DcaSignal::read(body, true)
    }

    /// Parses the body of a signed request (`Bulwark-Signature`): the same, but `email_token` may be
    /// left out, as the signature proves the sender holds the secret without carrying it.
    ///
    /// # Errors
    /// As [`DcaSignal::parse`].
    pub fn parse_signed(body: &[u8]) -> Result<DcaSignal, ParseError> {
        DcaSignal::read(body, false)
    }

    fn read(body: &[u8], secret_required: bool) -> Result<DcaSignal, ParseError> {
        let object = parse_body(body)?;
        let message_type = object.require("message_type", "message_type")?;
        if message_type.raw_string("\"bot\"")? != "bot" {
            return Err(message_type.invalid("\"bot\""));
        }
        let bot_id = BotRef::read(object.require("bot_id", "bot_id")?, true, "a bot id: a string or a whole number")?;
        let email_token = match object.get("email_token", "email_token")? {
            Some(field) => Some(PresentedSecret::read(field)?),
            None if secret_required => return Err(ParseError::Missing { field: "email_token" }),
            None => None,
        };
        let delay = match object.get("delay_seconds", "delay_seconds")? {
            Some(field) => field.whole(0..=MAX_DELAY_SECONDS, "a whole number of seconds from 0 to 86400")?,
            None => 0,
        };
        let pair = match object.get("pair", "pair")? {
            Some(field) => Some(read_pair(field)?),
            None => None,
        };
        let action = read_action(&object)?;
        let timestamp = match object.get("timestamp", "timestamp")? {
            Some(field) => Some(field.timestamp(crate::TIMESTAMP_EXPECTED)?),
            None => None,
        };
        let max_lag = match object.get("max_lag", "max_lag")? {
            Some(field) => Some(Duration::from_secs(field.whole(1..=MAX_LAG_SECONDS, crate::MAX_LAG_EXPECTED)?)),
            None => None,
        };
        Ok(DcaSignal { bot_id, email_token, delay: Duration::from_secs(delay), pair, action, timestamp, max_lag })
    }

    pub fn bot_id(&self) -> &BotRef {
        &self.bot_id
    }

    /// The bot's webhook secret as presented; compare it with `secret::matches`. Always there
    /// from [`DcaSignal::parse`]; may be absent from [`DcaSignal::parse_signed`].
    pub fn email_token(&self) -> Option<&PresentedSecret> {
        self.email_token.as_ref()
    }

    /// `delay_seconds`: how long to wait before acting, at most a day.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn pair(&self) -> Option<&Pair> {
        self.pair.as_ref()
    }

    pub fn action(&self) -> &DcaAction {
        &self.action
    }

    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    pub fn max_lag(&self) -> Option<Duration> {
        self.max_lag
    }
}

fn read_pair(field: Field<'_>) -> Result<Pair, ParseError> {
    const EXPECTED: &str = "a pair written QUOTE_BASE, e.g. USDT_BTC";
    let text = field.text(41, EXPECTED)?;
    Pair::parse_3commas(&text).map_err(|_| field.invalid(EXPECTED))
}

fn read_action(object: &Object<'_>) -> Result<DcaAction, ParseError> {
    const EXPECTED: &str = "absent (start a deal) or one of close_at_market_price, close_at_market_price_all, \
                            add_funds_in_quote, start_trailing";
    let Some(field) = object.get("action", "action")? else {
        return Ok(DcaAction::StartDeal);
    };
    Ok(match field.text(64, EXPECTED)?.as_str() {
        "close_at_market_price" => DcaAction::CloseAtMarketPrice,
        "close_at_market_price_all" => DcaAction::CloseAtMarketPriceAll,
        "start_trailing" => DcaAction::StartTrailing,
        "add_funds_in_quote" => {
            const VOLUME: &str = "a positive number (the amount in the quote asset)";
            const PRICE: &str = "a positive number";
            let volume = object.require("volume", "volume")?;
            let volume = Qty::new(volume.decimal(VOLUME)?).map_err(|_| volume.invalid(VOLUME))?;
            let price = match object.get("price", "price")? {
                Some(price) => Some(Price::new(price.decimal(PRICE)?).map_err(|_| price.invalid(PRICE))?),
                None => None,
            };
            DcaAction::AddFundsInQuote { volume, price }
        }
        _ => return Err(field.invalid(EXPECTED)),
    })
}

#[cfg(test)]
mod tests {
    use domain::Decimal;
    use proptest::prelude::*;

    use super::*;

    const TOKEN: &str = "00000000-0000-0000-0000-000000000000";

    fn parse(body: &str) -> Result<DcaSignal, ParseError> {
        DcaSignal::parse(body.as_bytes())
    }

    fn invalid(field: &'static str) -> impl Fn(Result<DcaSignal, ParseError>) -> bool {
        move |result| matches!(result, Err(ParseError::Invalid { field: f, .. }) if f == field)
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn spec_example_start_deal() {
        let signal = parse(
            r#"{"message_type": "bot", "bot_id": 12345678, "email_token": "00000000-0000-0000-0000-000000000000", "delay_seconds": 0, "pair": "USDT_BTC"}"#,
        )
        .unwrap();
        assert_eq!(signal.bot_id().as_str(), "12345678");
        assert_eq!(signal.email_token().unwrap().expose(), TOKEN.as_bytes());
        assert_eq!(signal.delay(), Duration::ZERO);
        assert_eq!(signal.pair(), Some(&Pair::parse_3commas("USDT_BTC").unwrap()));
        assert_eq!(signal.pair().unwrap().base.as_str(), "BTC");
        assert_eq!(signal.action(), &DcaAction::StartDeal);
        assert_eq!(signal.timestamp(), None);
        assert_eq!(signal.max_lag(), None);
    }

    #[test]
    fn spec_example_close() {
        let signal = parse(
            r#"{"message_type": "bot", "bot_id": 12345678, "email_token": "00000000-0000-0000-0000-000000000000", "delay_seconds": 0, "pair": "USDT_BTC", "action": "close_at_market_price"}"#,
        )
        .unwrap();
        assert_eq!(signal.action(), &DcaAction::CloseAtMarketPrice);
        assert_eq!(signal.pair().unwrap().to_3commas(), "USDT_BTC");
    }

    #[test]
    fn bulwark_uuid_bot_id_and_minimal_message() {
        let signal = parse(
            r#"{"message_type":"bot","bot_id":"5b0c2d7e-9f4a-4c1e-8a55-0d3f6b2e7a19","email_token":"Zm9vYmFyYmF6cXV4"}"#,
        )
        .unwrap();
        assert_eq!(signal.bot_id().as_str(), "5b0c2d7e-9f4a-4c1e-8a55-0d3f6b2e7a19");
        assert_eq!(signal.delay(), Duration::ZERO);
        assert_eq!(signal.pair(), None);
        assert_eq!(signal.action(), &DcaAction::StartDeal);
    }

    #[test]
    fn every_action() {
        let with = |action: &str| {
            parse(&format!(
                r#"{{"message_type":"bot","bot_id":"b","email_token":"t","action":"{action}","volume":10}}"#
            ))
        };
        assert_eq!(with("close_at_market_price").unwrap().action(), &DcaAction::CloseAtMarketPrice);
        assert_eq!(with("close_at_market_price_all").unwrap().action(), &DcaAction::CloseAtMarketPriceAll);
        assert_eq!(with("start_trailing").unwrap().action(), &DcaAction::StartTrailing);
        assert_eq!(
            with("add_funds_in_quote").unwrap().action(),
            &DcaAction::AddFundsInQuote { volume: Qty::new(dec("10")).unwrap(), price: None }
        );
        for unknown in ["start_deal", "CLOSE_AT_MARKET_PRICE", "close", ""] {
            assert!(invalid("action")(with(unknown)), "{unknown}");
        }
        let placeholder = with("{{strategy.order.action}}");
        assert_eq!(placeholder.unwrap_err(), ParseError::Placeholder { field: "action" });
    }

    #[test]
    fn add_funds_reads_volume_and_price_exactly() {
        let signal = parse(
            r#"{"message_type":"bot","bot_id":"b","email_token":"t","action":"add_funds_in_quote","volume":"25.123456789012345678","price":27123.45}"#,
        )
        .unwrap();
        assert_eq!(
            signal.action(),
            &DcaAction::AddFundsInQuote {
                volume: Qty::new(dec("25.123456789012345678")).unwrap(),
                price: Some(Price::new(dec("27123.45")).unwrap()),
            }
        );
        let add = |extra: &str| {
            parse(&format!(
                r#"{{"message_type":"bot","bot_id":"b","email_token":"t","action":"add_funds_in_quote"{extra}}}"#
            ))
        };
        assert_eq!(add("").unwrap_err(), ParseError::Missing { field: "volume" });
        assert_eq!(add(r#","volume":null"#).unwrap_err(), ParseError::Missing { field: "volume" });
        for bad in ["0", "-5", r#""0.0""#, r#""abc""#, "true", "[1]", r#""1,5""#, r#""""#] {
            let error = add(&format!(r#","volume":{bad}"#)).unwrap_err();
            assert_eq!(
                error.to_string(),
                "`volume` must be a positive number (the amount in the quote asset)",
                "{bad}"
            );
            assert_eq!(error.code(), "invalid_signal");
        }
        assert!(invalid("price")(add(r#","volume":1,"price":0"#)));
        assert_eq!(
            add(r#","volume":"{{strategy.order.contracts}}""#).unwrap_err(),
            ParseError::Placeholder { field: "volume" }
        );
        assert_eq!(add(r#","volume":1,"price":"{{close}}""#).unwrap_err(), ParseError::Placeholder { field: "price" });
        // Other actions do not read volume or price.
        let close = parse(
            r#"{"message_type":"bot","bot_id":"b","email_token":"t","action":"close_at_market_price","volume":-1}"#,
        );
        assert_eq!(close.unwrap().action(), &DcaAction::CloseAtMarketPrice);
    }

    #[test]
    fn a_signed_body_may_leave_the_secret_out_but_not_carry_a_bad_one() {
        let bare = r#"{"message_type":"bot","bot_id":"b","action":"close_at_market_price"}"#;
        assert!(matches!(parse(bare), Err(ParseError::Missing { field: "email_token" })));
        let signed = DcaSignal::parse_signed(bare.as_bytes()).unwrap();
        assert!(signed.email_token().is_none());
        assert_eq!(signed.action(), &DcaAction::CloseAtMarketPrice);
        let carried = r#"{"message_type":"bot","bot_id":"b","email_token":"t"}"#;
        assert_eq!(DcaSignal::parse_signed(carried.as_bytes()).unwrap().email_token().unwrap().expose(), b"t");
        let bad = r#"{"message_type":"bot","bot_id":"b","email_token":12}"#;
        assert!(invalid("email_token")(DcaSignal::parse_signed(bad.as_bytes())));
        let no_bot = r#"{"message_type":"bot","email_token":"t"}"#;
        assert!(matches!(DcaSignal::parse_signed(no_bot.as_bytes()), Err(ParseError::Missing { field: "bot_id" })));
    }

    #[test]
    fn required_fields() {
        let full = r#"{"message_type":"bot","bot_id":"b","email_token":"t"}"#;
        assert!(parse(full).is_ok());
        for field in ["message_type", "bot_id", "email_token"] {
            let without = full.replace(&format!(r#""{field}""#), r#""other""#);
            assert_eq!(parse(&without).unwrap_err(), ParseError::Missing { field }, "{without}");
        }
        assert!(invalid("message_type")(parse(r#"{"message_type":"Bot","bot_id":"b","email_token":"t"}"#)));
        assert!(invalid("message_type")(parse(r#"{"message_type":1,"bot_id":"b","email_token":"t"}"#)));
    }

    #[test]
    fn bad_types_are_named() {
        let base = |extra: &str| parse(&format!(r#"{{"message_type":"bot","bot_id":"b","email_token":"t",{extra}}}"#));
        assert!(invalid("delay_seconds")(base(r#""delay_seconds":-1"#)));
        assert!(invalid("delay_seconds")(base(r#""delay_seconds":86401"#)));
        assert!(invalid("delay_seconds")(base(r#""delay_seconds":1.5"#)));
        assert!(invalid("delay_seconds")(base(r#""delay_seconds":"soon""#)));
        assert_eq!(base(r#""delay_seconds":"30""#).unwrap().delay(), Duration::from_secs(30));
        assert_eq!(base(r#""delay_seconds":86400"#).unwrap().delay(), Duration::from_secs(86_400));
        assert!(invalid("pair")(base(r#""pair":"BTCUSDT""#)));
        assert!(invalid("pair")(base(r#""pair":"USDT_USDT""#)));
        assert!(invalid("pair")(base(r#""pair":["USDT","BTC"]"#)));
        assert_eq!(base(r#""pair":"USDT_{{ticker}}""#).unwrap_err(), ParseError::Placeholder { field: "pair" });
        assert!(invalid("bot_id")(parse(r#"{"message_type":"bot","bot_id":1.5,"email_token":"t"}"#)));
        assert!(invalid("bot_id")(parse(r#"{"message_type":"bot","bot_id":true,"email_token":"t"}"#)));
        assert!(invalid("bot_id")(parse(r#"{"message_type":"bot","bot_id":"","email_token":"t"}"#)));
        assert!(invalid("bot_id")(parse(r#"{"message_type":"bot","bot_id":"a b","email_token":"t"}"#)));
        assert!(invalid("email_token")(parse(r#"{"message_type":"bot","bot_id":"b","email_token":123}"#)));
        assert!(invalid("email_token")(parse(r#"{"message_type":"bot","bot_id":"b","email_token":""}"#)));
        assert!(invalid("action")(base(r#""action":7"#)));
    }

    #[test]
    fn oversized_strings_are_refused() {
        let long_id = "a".repeat(65);
        let result = parse(&format!(r#"{{"message_type":"bot","bot_id":"{long_id}","email_token":"t"}}"#));
        assert!(invalid("bot_id")(result));
        let ok_id = "a".repeat(64);
        assert!(parse(&format!(r#"{{"message_type":"bot","bot_id":"{ok_id}","email_token":"t"}}"#)).is_ok());
        let long_token = "t".repeat(257);
        let result = parse(&format!(r#"{{"message_type":"bot","bot_id":"b","email_token":"{long_token}"}}"#));
        assert!(invalid("email_token")(result));
        let long_pair = format!("USDT_{}", "B".repeat(40));
        let result = parse(&format!(r#"{{"message_type":"bot","bot_id":"b","email_token":"t","pair":"{long_pair}"}}"#));
        assert!(invalid("pair")(result));
    }

    #[test]
    fn timestamp_and_max_lag() {
        let signal = parse(
            r#"{"message_type":"bot","bot_id":"b","email_token":"t","timestamp":"2026-01-01T00:00:05Z","max_lag":"300"}"#,
        )
        .unwrap();
        assert_eq!(signal.timestamp(), Some(Timestamp::from_unix_millis(1_767_225_605_000)));
        assert_eq!(signal.max_lag(), Some(Duration::from_secs(300)));
        let base = |extra: &str| parse(&format!(r#"{{"message_type":"bot","bot_id":"b","email_token":"t",{extra}}}"#));
        assert_eq!(base(r#""max_lag":60"#).unwrap().max_lag(), Some(Duration::from_secs(60)));
        assert!(invalid("max_lag")(base(r#""max_lag":0"#)));
        assert!(invalid("max_lag")(base(r#""max_lag":"5m""#)));
        assert!(invalid("timestamp")(base(r#""timestamp":"yesterday""#)));
        assert!(invalid("timestamp")(base(r#""timestamp":1767225605"#)));
        assert_eq!(base(r#""timestamp":"{{timenow}}""#).unwrap_err(), ParseError::Placeholder { field: "timestamp" });
    }

    #[test]
    fn text_plain_bom_and_whitespace() {
        // TradingView sends text/plain when it judges the message not to be JSON; the bytes are the
        // same, and the parser never sees the header.
        let body = "\u{feff}\r\n  {\"message_type\":\"bot\",\"bot_id\":\"b\",\"email_token\":\"t\"}\n\t ";
        assert!(parse(body).is_ok());
        let two_boms = format!("\u{feff}{body}");
        assert_eq!(parse(&two_boms).unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn unknown_fields_are_ignored_and_duplicates_refused() {
        let signal = parse(
            r#"{"message_type":"bot","bot_id":"b","email_token":"t","comment":"from TV","extra":{"a":[1,2,{"b":null}]},"n":1e999}"#,
        );
        assert!(signal.is_ok());
        let duplicate = parse(r#"{"message_type":"bot","bot_id":"b","email_token":"t","bot_id":"c"}"#);
        assert_eq!(duplicate.unwrap_err(), ParseError::DuplicateField { field: "bot_id" });
        let escaped = parse(r#"{"message_type":"bot","bot_id":"b","email_token":"t","bot\u005fid":"c"}"#);
        assert_eq!(escaped.unwrap_err(), ParseError::DuplicateField { field: "bot_id" });
    }

    #[test]
    fn not_json_or_not_an_object() {
        for body in ["", "   ", "message_type=bot", "{", r#"{"message_type":"bot",}"#, "{'a':1}", "{} {}"] {
            assert!(matches!(parse(body), Err(ParseError::Malformed { .. })), "{body:?}");
        }
        for body in ["[]", "null", "12", r#""bot""#] {
            assert_eq!(parse(body).unwrap_err(), ParseError::NotAnObject, "{body:?}");
        }
        assert_eq!(DcaSignal::parse(b"{\"a\":\"\xff\"}").unwrap_err(), ParseError::NotUtf8);
        let huge = format!(r#"{{"message_type":"bot","bot_id":"b","email_token":"t","pad":"{}"}}"#, "x".repeat(17_000));
        assert_eq!(parse(&huge).unwrap_err().code(), "body_too_large");
    }

    #[test]
    fn deep_nesting_is_refused_before_serde() {
        let nest = |depth: usize| {
            format!(
                r#"{{"message_type":"bot","bot_id":"b","email_token":"t","x":{}1{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        assert!(parse(&nest(31)).is_ok());
        assert_eq!(parse(&nest(32)).unwrap_err(), ParseError::TooDeep { limit: 32 });
        // Deeper than serde_json's own recursion limit (128), and unbalanced: an error, never a panic.
        assert_eq!(parse(&nest(5000)).unwrap_err(), ParseError::TooDeep { limit: 32 });
        assert_eq!(parse(&"{\"a\":".repeat(3000)).unwrap_err(), ParseError::TooDeep { limit: 32 });
    }

    #[test]
    fn debug_redacts_the_token() {
        let signal = parse(r#"{"message_type":"bot","bot_id":"b","email_token":"super-secret-token"}"#).unwrap();
        let debug = format!("{signal:?}");
        assert!(!debug.contains("super-secret-token"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    fn decimal_text() -> impl Strategy<Value = (Decimal, String)> {
        (1i64..=i64::MAX, 0u32..=12, any::<bool>()).prop_map(|(mantissa, scale, quoted)| {
            let value = Decimal::new(mantissa, scale);
            let text = if quoted { format!("\"{value}\"") } else { value.to_string() };
            (value, text)
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = DcaSignal::parse(&body);
        }

        #[test]
        fn json_shaped_noise_never_panics(body in r#"[\{\}\[\]":,0-9a-z_\\ .e+-]{0,300}"#) {
            let _ = parse(&body);
        }

        #[test]
        fn errors_never_quote_the_body(
            marker in "Zq[a-z]{10}",
            slot in 0usize..6,
            junk in r#"[\{\}\[\]":,0-9]{0,4}"#,
        ) {
            // The marker stands where a secret or a mistyped value would; no error may repeat it.
            let fields = ["message_type", "bot_id", "email_token", "delay_seconds", "pair", "action"];
            let body = fields
                .iter()
                .enumerate()
                .map(|(i, field)| if i == slot { format!(r#""{field}":"{marker}{junk}""#) } else { format!(r#""{field}":1"#) })
                .collect::<Vec<_>>()
                .join(",");
            for body in [format!("{{{body}}}"), format!("{{{body}"), format!("[{body}]")] {
                if let Err(error) = parse(&body) {
                    prop_assert!(!error.to_string().contains(&marker), "{}", error);
                    let debug = format!("{error:?}");
                    prop_assert!(!debug.contains(&marker));
                }
            }
        }

        #[test]
        fn built_messages_parse_back(
            bot_id in "[a-f0-9-]{1,64}",
            token in "[A-Za-z0-9_-]{1,256}",
            delay in 0u64..=86_400,
            (volume, volume_text) in decimal_text(),
            (price, price_text) in decimal_text(),
            delay_quoted in any::<bool>(),
        ) {
            let delay_text = if delay_quoted { format!("\"{delay}\"") } else { delay.to_string() };
            let body = format!(
                r#"{{"message_type":"bot","bot_id":"{bot_id}","email_token":"{token}","delay_seconds":{delay_text},"pair":"USDT_ETH","action":"add_funds_in_quote","volume":{volume_text},"price":{price_text}}}"#
            );
            let signal = parse(&body).unwrap();
            prop_assert_eq!(signal.bot_id().as_str(), bot_id.as_str());
            prop_assert_eq!(signal.email_token().unwrap().expose(), token.as_bytes());
            prop_assert_eq!(signal.delay(), Duration::from_secs(delay));
            let DcaAction::AddFundsInQuote { volume: got_volume, price: Some(got_price) } = signal.action().clone() else {
                return Err(TestCaseError::fail("wrong action"));
            };
            prop_assert_eq!(got_volume.get(), volume);
            prop_assert_eq!(got_price.get(), price);
        }
    }
}
