//! The exchange's answers on the trust boundary (a venue, or whatever sits between it and us): the
//! first byte picks which of Binance's JSON shapes the rest is read as; decoding and translating
//! into the port's types never panic — a malformed answer is an error, never a crash.
#![no_main]

use exchange_binance::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 9 {
        0 => {
            if let Ok(order) = serde_json::from_slice::<wire::Order>(body) {
                let _ = order.into_report();
            }
        }
        1 => {
            if let Ok(trades) = serde_json::from_slice::<Vec<wire::MyTrade>>(body) {
                for trade in trades {
                    let _ = trade.into_trade();
                }
            }
        }
        2 => {
            if let Ok(info) = serde_json::from_slice::<wire::ExchangeInfo>(body) {
                for symbol in info.symbols {
                    let _ = symbol.into_market();
                }
            }
        }
        3 => {
            if let Ok(account) = serde_json::from_slice::<wire::Account>(body) {
                for balance in account.balances {
                    let _ = balance.into_balance();
                }
            }
        }
        4 => {
            if let Ok(text) = std::str::from_utf8(body)
                && let Ok(wire::UserEvent::ExecutionReport(report)) = wire::UserEvent::parse(text)
            {
                let _ = report.into_event();
            }
        }
        5 => {
            if let Ok(rows) = serde_json::from_slice::<Vec<Vec<serde_json::Value>>>(body) {
                for row in rows {
                    let _ = wire::kline(&row);
                }
            }
        }
        6 => {
            let _ = serde_json::from_slice::<wire::Ticker24h>(body);
            let _ = serde_json::from_slice::<wire::ServerTime>(body);
        }
        7 => {
            if let Ok(restrictions) = serde_json::from_slice::<wire::ApiRestrictions>(body) {
                let _ = exchange::KeyPermissions::from(restrictions);
            }
        }
        _ => {
            let _ = serde_json::from_slice::<wire::ErrorBody>(body);
        }
    }
});
