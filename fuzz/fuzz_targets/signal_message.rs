//! Any body given to the Signal-bot parser: an error or a signal whose fields keep their promises,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook::Signal;

fuzz_target!(|body: &[u8]| {
    let Ok(signal) = Signal::parse(body) else { return };
    assert!(body.len() <= webhook::MAX_BODY_BYTES);
    assert!(!signal.secret().expect("parse requires the secret").expose().is_empty());
    assert!(!signal.bot_uuid().as_str().is_empty());
    assert!(signal.max_lag().is_none_or(|lag| (1..=webhook::MAX_LAG_SECONDS).contains(&lag.as_secs())));
    assert!(signal.trigger_price().is_none_or(|price| price.get() > domain::Decimal::ZERO));
    assert!(signal.order().is_none_or(|order| order.amount.get() > domain::Decimal::ZERO));
    for name in [signal.tv_exchange(), signal.tv_instrument()].into_iter().flatten() {
        assert!(!name.is_empty() && name.chars().count() <= webhook::signal::MAX_TV_NAME_CHARS);
        assert!(!name.find("{{").is_some_and(|open| name[open..].contains("}}")));
    }
});
