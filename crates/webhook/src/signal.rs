//! The 3Commas Signal-bot message (`spec/webhooks.md` 3), received at `POST /signal_bots/webhooks`.
//!
//! ```json
//! {"secret": "<bot secret>", "bot_uuid": "<bot uuid>", "action": "buy",
//!  "timestamp": "2026-01-01T00:00:00Z", "max_lag": "300", "trigger_price": "27123.5",
//!  "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT",
//!  "strategy_info": {"market_position": "long", "market_position_size": "0.5",
//!                    "prev_market_position": "flat", "prev_market_position_size": "0"},
//!  "order": {"amount": "0.5", "currency_type": "base"}}
//! ```
//!
//! Required: `secret`, `bot_uuid`, `action` (`buy`, `sell` from a strategy alert; `enter_long`,
//! `exit_long`, `enter_short`, `exit_short` from a custom signal). The rest is optional. Numbers may
//! be JSON numbers or strings holding one; a `{{placeholder}}` TradingView left unfilled is refused
//! with the field's name. Every other field is ignored, as 3Commas does.

use std::time::Duration;

use domain::{Decimal, Price, Qty, Timestamp};

use crate::bot_ref::BotRef;
use crate::json::{Field, Object, parse_body};
use crate::secret::PresentedSecret;
use crate::{MAX_LAG_SECONDS, ParseError};

/// The longest `tv_exchange` and `tv_instrument` read.
pub const MAX_TV_NAME_CHARS: usize = 64;

/// A Signal-bot signal, every field checked. The secret is not yet compared with anything.
#[derive(Debug)]
pub struct Signal {
    secret: Option<PresentedSecret>,
    bot_uuid: BotRef,
    action: SignalAction,
    timestamp: Option<Timestamp>,
    max_lag: Option<Duration>,
    trigger_price: Option<Price>,
    tv_exchange: Option<String>,
    tv_instrument: Option<String>,
    strategy_info: Option<StrategyInfo>,
    order: Option<SignalOrder>,
}

/// `action`: the first two come from a strategy alert's `{{strategy.order.action}}`, the others
/// from a custom-signal bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    Buy,
    Sell,
    EnterLong,
    ExitLong,
    EnterShort,
    ExitShort,
}

/// `strategy_info`: the strategy's position after and before the order, from `{{strategy.*}}`.
/// Each field is optional on its own; sizes are never negative (TradingView writes the size without
/// its sign and the side in `market_position`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyInfo {
    pub market_position: Option<MarketPosition>,
    pub market_position_size: Option<Decimal>,
    pub prev_market_position: Option<MarketPosition>,
    pub prev_market_position_size: Option<Decimal>,
}

/// TradingView's `{{strategy.market_position}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketPosition {
    Long,
    Short,
    Flat,
}

/// `order`: how much to trade, in which asset of the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalOrder {
    pub amount: Qty,
    pub currency_type: CurrencyType,
}

/// `order.currency_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrencyType {
    Base,
    Quote,
}

impl SignalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalAction::Buy => "buy",
            SignalAction::Sell => "sell",
            SignalAction::EnterLong => "enter_long",
            SignalAction::ExitLong => "exit_long",
            SignalAction::EnterShort => "enter_short",
            SignalAction::ExitShort => "exit_short",
        }
    }
}

impl Signal {
    /// Parses a body, whatever its Content-Type.
    ///
    /// # Errors
    /// `ParseError`, naming the field at fault; see `ParseError::code` for the API code.
    pub fn parse(body: &[u8]) -> Result<Signal, ParseError> {
        Signal::read(body, true)
    }

    /// Parses the body of a signed request (`Bulwark-Signature`): the same, but `secret` may be
    /// left out, as the signature proves the sender holds it without carrying it.
    ///
    /// # Errors
    /// As [`Signal::parse`].
    pub fn parse_signed(body: &[u8]) -> Result<Signal, ParseError> {
        Signal::read(body, false)
    }

    fn read(body: &[u8], secret_required: bool) -> Result<Signal, ParseError> {
        let object = parse_body(body)?;
        let secret = match object.get("secret", "secret")? {
            Some(field) => Some(PresentedSecret::read(field)?),
            None if secret_required => return Err(ParseError::Missing { field: "secret" }),
            None => None,
        };
        let bot_uuid = BotRef::read(object.require("bot_uuid", "bot_uuid")?, false, "a bot id string")?;
        let action = read_action(object.require("action", "action")?)?;
        let timestamp = optional(&object, "timestamp", "timestamp", |f| f.timestamp(crate::TIMESTAMP_EXPECTED))?;
        let max_lag = optional(&object, "max_lag", "max_lag", |f| {
            f.whole(1..=MAX_LAG_SECONDS, crate::MAX_LAG_EXPECTED).map(Duration::from_secs)
        })?;
        let trigger_price = optional(&object, "trigger_price", "trigger_price", |f| positive_price(f))?;
        const TV_NAME: &str = "a string of 1 to 64 characters";
        let tv_exchange = optional(&object, "tv_exchange", "tv_exchange", |f| f.text(MAX_TV_NAME_CHARS, TV_NAME))?;
        let tv_instrument =
            optional(&object, "tv_instrument", "tv_instrument", |f| f.text(MAX_TV_NAME_CHARS, TV_NAME))?;
        let strategy_info = optional(&object, "strategy_info", "strategy_info", read_strategy_info)?;
        let order = optional(&object, "order", "order", read_order)?;
        Ok(Signal {
            secret,
            bot_uuid,
            action,
            timestamp,
            max_lag,
            trigger_price,
            tv_exchange,
            tv_instrument,
            strategy_info,
            order,
        })
    }

    /// The bot's webhook secret as presented; compare it with `secret::matches`. Always there from
    /// [`Signal::parse`]; may be absent from [`Signal::parse_signed`].
    pub fn secret(&self) -> Option<&PresentedSecret> {
        self.secret.as_ref()
    }

    pub fn bot_uuid(&self) -> &BotRef {
        &self.bot_uuid
    }

    pub fn action(&self) -> SignalAction {
        self.action
    }

    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    pub fn max_lag(&self) -> Option<Duration> {
        self.max_lag
    }

    pub fn trigger_price(&self) -> Option<Price> {
        self.trigger_price
    }

    pub fn tv_exchange(&self) -> Option<&str> {
        self.tv_exchange.as_deref()
    }

    pub fn tv_instrument(&self) -> Option<&str> {
        self.tv_instrument.as_deref()
    }

    pub fn strategy_info(&self) -> Option<&StrategyInfo> {
        self.strategy_info.as_ref()
    }

    pub fn order(&self) -> Option<&SignalOrder> {
        self.order.as_ref()
    }
}

fn optional<'a, T>(
    object: &Object<'a>,
    key: &str,
    name: &'static str,
    read: impl FnOnce(Field<'a>) -> Result<T, ParseError>,
) -> Result<Option<T>, ParseError> {
    object.get(key, name)?.map(read).transpose()
}

fn read_action(field: Field<'_>) -> Result<SignalAction, ParseError> {
    const EXPECTED: &str = "one of buy, sell, enter_long, exit_long, enter_short, exit_short";
    Ok(match field.text(16, EXPECTED)?.as_str() {
        "buy" => SignalAction::Buy,
        "sell" => SignalAction::Sell,
        "enter_long" => SignalAction::EnterLong,
        "exit_long" => SignalAction::ExitLong,
        "enter_short" => SignalAction::EnterShort,
        "exit_short" => SignalAction::ExitShort,
        _ => return Err(field.invalid(EXPECTED)),
    })
}

fn positive_price(field: Field<'_>) -> Result<Price, ParseError> {
    const EXPECTED: &str = "a positive number";
    Price::new(field.decimal(EXPECTED)?).map_err(|_| field.invalid(EXPECTED))
}

fn read_strategy_info(field: Field<'_>) -> Result<StrategyInfo, ParseError> {
    let object = field.object("an object")?;
    Ok(StrategyInfo {
        market_position: optional(&object, "market_position", "strategy_info.market_position", read_position)?,
        market_position_size: optional(&object, "market_position_size", "strategy_info.market_position_size", size)?,
        prev_market_position: optional(
            &object,
            "prev_market_position",
            "strategy_info.prev_market_position",
            read_position,
        )?,
        prev_market_position_size: optional(
            &object,
            "prev_market_position_size",
            "strategy_info.prev_market_position_size",
            size,
        )?,
    })
}

fn read_position(field: Field<'_>) -> Result<MarketPosition, ParseError> {
    const EXPECTED: &str = "one of long, short, flat";
    Ok(match field.text(8, EXPECTED)?.as_str() {
        "long" => MarketPosition::Long,
        "short" => MarketPosition::Short,
        "flat" => MarketPosition::Flat,
        _ => return Err(field.invalid(EXPECTED)),
    })
}

fn size(field: Field<'_>) -> Result<Decimal, ParseError> {
    const EXPECTED: &str = "a number, zero or more";
    let size = field.decimal(EXPECTED)?;
    if size.is_sign_negative() && !size.is_zero() {
        return Err(field.invalid(EXPECTED));
    }
    Ok(size)
}

fn read_order(field: Field<'_>) -> Result<SignalOrder, ParseError> {
    const AMOUNT: &str = "a positive number";
    const CURRENCY: &str = "one of base, quote";
    let object = field.object("an object")?;
    let amount = object.require("amount", "order.amount")?;
    let amount = Qty::new(amount.decimal(AMOUNT)?).map_err(|_| amount.invalid(AMOUNT))?;
    let currency = object.require("currency_type", "order.currency_type")?;
    let currency_type = match currency.text(8, CURRENCY)?.as_str() {
        "base" => CurrencyType::Base,
        "quote" => CurrencyType::Quote,
        _ => return Err(currency.invalid(CURRENCY)),
    };
    Ok(SignalOrder { amount, currency_type })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The strategy-type example of `spec/webhooks.md` 3, with a given value for each placeholder.
    fn strategy_message(values: &[(&str, &str)]) -> String {
        let mut message = r#"{"secret": "eyJhbGciOiJIUzI1NiJ9.c2lnbmFsc19zb3VyY2VfaWQ.c2ln", "max_lag": "300", "timestamp": "{{timenow}}", "trigger_price": "{{close}}",
 "tv_exchange": "{{exchange}}", "tv_instrument": "{{ticker}}", "action": "{{strategy.order.action}}",
 "bot_uuid": "9d3c8e21-5f0b-4a6d-b7e4-2c1f0a9b8d77",
 "strategy_info": {"market_position": "{{strategy.market_position}}", "market_position_size": "{{strategy.market_position_size}}",
                   "prev_market_position": "{{strategy.prev_market_position}}", "prev_market_position_size": "{{strategy.prev_market_position_size}}"},
 "order": {"amount": "{{strategy.order.contracts}}", "currency_type": "base"}}"#
            .to_owned();
        for (placeholder, value) in values {
            message = message.replace(placeholder, value);
        }
        message
    }

    const RESOLVED: [(&str, &str); 10] = [
        ("{{timenow}}", "2026-01-01T00:00:00Z"),
        ("{{close}}", "27123.5"),
        ("{{exchange}}", "BINANCE"),
        ("{{ticker}}", "BTCUSDT"),
        ("{{strategy.order.action}}", "buy"),
        ("{{strategy.market_position}}", "long"),
        ("{{strategy.market_position_size}}", "0.015"),
        ("{{strategy.prev_market_position}}", "flat"),
        ("{{strategy.prev_market_position_size}}", "0"),
        ("{{strategy.order.contracts}}", "0.015"),
    ];

    fn parse(body: &str) -> Result<Signal, ParseError> {
        Signal::parse(body.as_bytes())
    }

    #[test]
    fn a_signed_body_may_leave_the_secret_out_but_not_carry_a_bad_one() {
        let bare = r#"{"bot_uuid":"b","action":"buy"}"#;
        assert!(matches!(parse(bare), Err(ParseError::Missing { field: "secret" })));
        let signed = Signal::parse_signed(bare.as_bytes()).unwrap();
        assert!(signed.secret().is_none());
        assert_eq!(signed.action(), SignalAction::Buy);
        let bad = r#"{"secret":"","bot_uuid":"b","action":"buy"}"#;
        assert!(matches!(Signal::parse_signed(bad.as_bytes()), Err(ParseError::Invalid { field: "secret", .. })));
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn spec_strategy_example_resolved() {
        let signal = parse(&strategy_message(&RESOLVED)).unwrap();
        assert_eq!(signal.secret().unwrap().expose(), b"eyJhbGciOiJIUzI1NiJ9.c2lnbmFsc19zb3VyY2VfaWQ.c2ln");
        assert_eq!(signal.bot_uuid().as_str(), "9d3c8e21-5f0b-4a6d-b7e4-2c1f0a9b8d77");
        assert_eq!(signal.action(), SignalAction::Buy);
        assert_eq!(signal.timestamp(), Some(Timestamp::from_unix_millis(1_767_225_600_000)));
        assert_eq!(signal.max_lag(), Some(Duration::from_secs(300)));
        assert_eq!(signal.trigger_price(), Some(Price::new(dec("27123.5")).unwrap()));
        assert_eq!(signal.tv_exchange(), Some("BINANCE"));
        assert_eq!(signal.tv_instrument(), Some("BTCUSDT"));
        assert_eq!(
            signal.strategy_info(),
            Some(&StrategyInfo {
                market_position: Some(MarketPosition::Long),
                market_position_size: Some(dec("0.015")),
                prev_market_position: Some(MarketPosition::Flat),
                prev_market_position_size: Some(Decimal::ZERO),
            })
        );
        assert_eq!(
            signal.order(),
            Some(&SignalOrder { amount: Qty::new(dec("0.015")).unwrap(), currency_type: CurrencyType::Base })
        );
    }

    #[test]
    fn spec_strategy_example_unresolved_names_the_field() {
        // As pasted from the documentation: the first placeholder read is the action's.
        assert_eq!(parse(&strategy_message(&[])).unwrap_err(), ParseError::Placeholder { field: "action" });
        // Each placeholder left alone, the others filled in, is refused with its own field's name.
        let fields = [
            "timestamp",
            "trigger_price",
            "tv_exchange",
            "tv_instrument",
            "action",
            "strategy_info.market_position",
            "strategy_info.market_position_size",
            "strategy_info.prev_market_position",
            "strategy_info.prev_market_position_size",
            "order.amount",
        ];
        for (skip, field) in fields.iter().enumerate() {
            let values: Vec<_> =
                RESOLVED.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, pair)| *pair).collect();
            let error = parse(&strategy_message(&values)).unwrap_err();
            assert_eq!(error, ParseError::Placeholder { field }, "{field}");
            assert_eq!(error.code(), "invalid_signal");
            assert!(error.to_string().starts_with(&format!("`{field}` holds an unresolved TradingView placeholder")));
        }
    }

    #[test]
    fn every_action() {
        let cases = [
            ("buy", SignalAction::Buy),
            ("sell", SignalAction::Sell),
            ("enter_long", SignalAction::EnterLong),
            ("exit_long", SignalAction::ExitLong),
            ("enter_short", SignalAction::EnterShort),
            ("exit_short", SignalAction::ExitShort),
        ];
        for (text, action) in cases {
            let signal = parse(&format!(r#"{{"secret":"s","bot_uuid":"b","action":"{text}"}}"#)).unwrap();
            assert_eq!(signal.action(), action);
            assert_eq!(action.as_str(), text);
            assert_eq!(signal.timestamp(), None);
            assert_eq!(signal.order(), None);
        }
        for bad in [r#""BUY""#, r#""hold""#, r#""""#, "1", "null"] {
            let result = parse(&format!(r#"{{"secret":"s","bot_uuid":"b","action":{bad}}}"#));
            assert!(
                matches!(
                    result,
                    Err(ParseError::Invalid { field: "action", .. } | ParseError::Missing { field: "action" })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn required_fields() {
        let full = r#"{"secret":"s","bot_uuid":"b","action":"sell"}"#;
        assert!(parse(full).is_ok());
        for field in ["secret", "bot_uuid", "action"] {
            let without = full.replace(&format!(r#""{field}""#), r#""other""#);
            assert_eq!(parse(&without).unwrap_err(), ParseError::Missing { field });
        }
        // Unlike the DCA format's bot_id, bot_uuid is always a string.
        let numeric = parse(r#"{"secret":"s","bot_uuid":12,"action":"sell"}"#);
        assert!(matches!(numeric, Err(ParseError::Invalid { field: "bot_uuid", .. })));
        let numeric_secret = parse(r#"{"secret":12,"bot_uuid":"b","action":"sell"}"#);
        assert!(matches!(numeric_secret, Err(ParseError::Invalid { field: "secret", .. })));
    }

    #[test]
    fn optional_fields_checked() {
        let with = |extra: &str| parse(&format!(r#"{{"secret":"s","bot_uuid":"b","action":"buy",{extra}}}"#));
        let field_of = |result: Result<Signal, ParseError>| result.unwrap_err().field();
        assert_eq!(field_of(with(r#""trigger_price":0"#)), Some("trigger_price"));
        assert_eq!(field_of(with(r#""trigger_price":"NaN""#)), Some("trigger_price"));
        assert_eq!(
            with(r#""trigger_price":27123.123456789"#).unwrap().trigger_price().unwrap().get(),
            dec("27123.123456789")
        );
        assert_eq!(field_of(with(r#""max_lag":-5"#)), Some("max_lag"));
        assert_eq!(with(r#""max_lag":120"#).unwrap().max_lag(), Some(Duration::from_secs(120)));
        assert_eq!(field_of(with(r#""timestamp":"2026-13-01T00:00:00Z""#)), Some("timestamp"));
        assert_eq!(
            with(r#""timestamp":"2026-01-01T01:00:00.250+01:00""#).unwrap().timestamp(),
            Some(Timestamp::from_unix_millis(1_767_225_600_250))
        );
        assert_eq!(field_of(with(r#""tv_exchange":"""#)), Some("tv_exchange"));
        assert_eq!(field_of(with(r#""tv_exchange":"BIN\nANCE""#)), Some("tv_exchange"));
        assert_eq!(field_of(with(&format!(r#""tv_instrument":"{}""#, "X".repeat(65)))), Some("tv_instrument"));
        assert!(with(&format!(r#""tv_instrument":"{}""#, "X".repeat(64))).is_ok());
        assert_eq!(field_of(with(r#""strategy_info":"long""#)), Some("strategy_info"));
        assert_eq!(
            field_of(with(r#""strategy_info":{"market_position":"up"}"#)),
            Some("strategy_info.market_position")
        );
        assert_eq!(
            field_of(with(r#""strategy_info":{"market_position_size":"-1"}"#)),
            Some("strategy_info.market_position_size")
        );
        assert_eq!(with(r#""strategy_info":{}"#).unwrap().strategy_info().unwrap().market_position, None);
        assert_eq!(field_of(with(r#""order":[]"#)), Some("order"));
        assert_eq!(field_of(with(r#""order":{"currency_type":"base"}"#)), Some("order.amount"));
        assert_eq!(field_of(with(r#""order":{"amount":"0","currency_type":"base"}"#)), Some("order.amount"));
        assert_eq!(field_of(with(r#""order":{"amount":1}"#)), Some("order.currency_type"));
        assert_eq!(field_of(with(r#""order":{"amount":1,"currency_type":"usd"}"#)), Some("order.currency_type"));
        let quote = with(r#""order":{"amount":"100.5","currency_type":"quote","order_type":"market"}"#).unwrap();
        assert_eq!(
            quote.order(),
            Some(&SignalOrder { amount: Qty::new(dec("100.5")).unwrap(), currency_type: CurrencyType::Quote })
        );
        assert_eq!(
            with(r#""order":{"amount":1,"amount":2,"currency_type":"base"}"#).unwrap_err(),
            ParseError::DuplicateField { field: "order.amount" }
        );
    }

    #[test]
    fn text_plain_bom_unknown_fields_and_redaction() {
        let message = strategy_message(&RESOLVED);
        let without_end = message.strip_suffix('}').unwrap();
        let body = format!("\u{feff} {without_end}, \"note\": {{\"x\": [1, {{\"y\": \"z\"}}]}}}}\n");
        let signal = parse(&body).unwrap();
        assert_eq!(signal.action(), SignalAction::Buy);
        let debug = format!("{signal:?}");
        assert!(!debug.contains("eyJhbGciOiJIUzI1NiJ9"), "{debug}");
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn oversized_and_deep_bodies_are_refused() {
        let deep = format!(
            r#"{{"secret":"s","bot_uuid":"b","action":"buy","x":{}}}"#,
            "{\"a\":".repeat(200) + "1" + &"}".repeat(200)
        );
        assert_eq!(parse(&deep).unwrap_err(), ParseError::TooDeep { limit: 32 });
        let long_secret = "s".repeat(257);
        let result = parse(&format!(r#"{{"secret":"{long_secret}","bot_uuid":"b","action":"buy"}}"#));
        assert!(matches!(result, Err(ParseError::Invalid { field: "secret", .. })));
        let big = format!(r#"{{"secret":"s","bot_uuid":"b","action":"buy","pad":"{}"}}"#, " ".repeat(16 * 1024));
        assert_eq!(parse(&big).unwrap_err(), ParseError::TooLarge { limit: 16 * 1024 });
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Signal::parse(&body);
        }

        #[test]
        fn mutated_spec_example_never_panics(at in 0usize..1000, byte in any::<u8>(), cut in any::<bool>()) {
            let mut body = strategy_message(&RESOLVED).into_bytes();
            let at = at % body.len();
            if cut { body.truncate(at) } else { body[at] = byte }
            let _ = Signal::parse(&body);
        }

        #[test]
        fn amounts_parse_back_exactly(mantissa in 1i64..=i64::MAX, scale in 0u32..=18, quoted in any::<bool>()) {
            let amount = Decimal::new(mantissa, scale);
            let text = if quoted { format!("\"{amount}\"") } else { amount.to_string() };
            let body = format!(
                r#"{{"secret":"s","bot_uuid":"b","action":"buy","trigger_price":{text},"order":{{"amount":{text},"currency_type":"base"}}}}"#
            );
            let signal = parse(&body).unwrap();
            prop_assert_eq!(signal.order().unwrap().amount.get(), amount);
            prop_assert_eq!(signal.trigger_price().unwrap().get(), amount);
        }
    }
}
