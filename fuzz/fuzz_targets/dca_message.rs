//! Any body given to the DCA-bot parser: an error or a signal whose fields keep their promises,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook::{DcaAction, DcaSignal};

fuzz_target!(|body: &[u8]| {
    let Ok(signal) = DcaSignal::parse(body) else { return };
    assert!(body.len() <= webhook::MAX_BODY_BYTES);
    assert!(signal.delay().as_secs() <= webhook::MAX_DELAY_SECONDS);
    assert!(signal.max_lag().is_none_or(|lag| (1..=webhook::MAX_LAG_SECONDS).contains(&lag.as_secs())));
    let bot_id = signal.bot_id().as_str();
    assert!(!bot_id.is_empty() && bot_id.len() <= webhook::MAX_BOT_REF_CHARS);
    assert!(!signal.email_token().expect("parse requires the secret").expose().is_empty());
    if let DcaAction::AddFundsInQuote { volume, price } = signal.action() {
        assert!(volume.get() > domain::Decimal::ZERO);
        assert!(price.is_none_or(|price| price.get() > domain::Decimal::ZERO));
    }
    assert_eq!(format!("{:?}", signal.email_token().expect("parse requires the secret")), "[redacted]");
});
