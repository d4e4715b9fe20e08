use domain::{
    DealStatus, Decimal, ExitSettings, OrderRole, OrderStatus, Side, StopLoss, StopLossType, Strategy as Direction,
    TakeProfitStep,
};
use engine::DealEvent;
use proptest::prelude::{Just, ProptestConfig, any, prop_assert, prop_assert_eq, prop_oneof, proptest};
use proptest::strategy::Strategy as _;

use crate::venue::{Harness, settings, with_exits};

#[derive(Debug, Clone)]
enum Step {
    Move(u32),
    Close,
    Cancel,
    Timer,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    prop_oneof![
        8 => (9_000u32..11_000).prop_map(Step::Move),
        1 => Just(Step::Close),
        1 => Just(Step::Cancel),
        1 => Just(Step::Timer),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the price does and whatever the user asks, a deal never sends an order twice,
    /// never has two take profits on the book, never sells more than it holds (long) or buys back
    /// more than it sold (short), and once finished and settled leaves no order of its own open
    /// (a canceled deal leaves its position, never an order).
    #[test]
    fn deals_keep_their_invariants(
        short in any::<bool>(),
        stop_loss in 0u32..6,
        exits in 0u8..6,
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let strategy = if short { Direction::Short } else { Direction::Long };
        let trailing = matches!(exits, 3 | 4);
        let s = with_exits(settings(strategy), exit_settings(exits, stop_loss));
        let mut h = Harness::open(s, "100");
        h.settle();
        for step in steps {
            match step {
                Step::Move(cents) => h.move_to(&Decimal::new(i64::from(cents), 2).to_string()),
                Step::Close => { let _ = h.book.clone(); if !h.book.deal.status.is_finished() { let _ = try_event(&mut h, DealEvent::CloseAtMarket); } h.settle(); }
                Step::Cancel => { if !h.book.deal.status.is_finished() { let _ = try_event(&mut h, DealEvent::Cancel); } h.settle(); }
                Step::Timer => { h.event(DealEvent::Timer); h.settle(); }
            }
            prop_assert_eq!(h.duplicates, 0);
            let live_tps = h.venue.values().filter(|o| o.status == OrderStatus::New)
                .filter(|o| h.book.order(&o.client_order_id).is_some_and(|i| i.role == OrderRole::TakeProfit)).count();
            let mut steps_on_book: Vec<u32> = h.venue.values().filter(|o| o.status == OrderStatus::New)
                .filter_map(|o| h.book.order(&o.client_order_id).filter(|i| i.role == OrderRole::TakeProfit))
                .map(|i| i.safety_index).collect();
            steps_on_book.sort_unstable();
            steps_on_book.dedup();
            prop_assert!(live_tps == steps_on_book.len(), "{} take profits on the book for steps {:?}", live_tps, steps_on_book);
            let (mut bought, mut sold) = (Decimal::ZERO, Decimal::ZERO);
            for o in h.venue.values() {
                match o.side { Side::Buy => bought += o.executed_qty - o.fee_base, Side::Sell => sold += o.executed_qty }
            }
            match strategy {
                Direction::Long => prop_assert!(sold <= bought, "sold {} of {}", sold, bought),
                Direction::Short => prop_assert!(bought <= sold + Decimal::new(1, 5), "bought back {} of {}", bought, sold),
            }
            if h.book.deal.status.is_finished() {
                prop_assert!(h.open_orders().is_empty(), "{:?} leaves {:?}", h.book.deal.status, h.open_orders());
            }
        }
        let ids: std::collections::BTreeSet<_> = h.book.orders.iter().map(|o| o.client_order_id.clone()).collect();
        prop_assert_eq!(ids.len(), h.book.orders.len());
        if h.book.deal.status == DealStatus::Completed && !trailing {
            prop_assert!(h.book.deal.profit_quote.is_some_and(|p| p > Decimal::ZERO));
        }
    }
}

fn dec(raw: &str) -> Decimal {
    raw.parse().expect("decimal")
}

/// The exits a property run draws: plain, two or three take-profit steps, trailing, a trailing stop
/// loss, moving to breakeven.
fn exit_settings(kind: u8, stop_loss: u32) -> ExitSettings {
    let steps = |raw: &[(&str, &str)]| -> Vec<TakeProfitStep> {
        raw.iter().map(|(a, p)| TakeProfitStep { amount_percentage: dec(a), profit_percentage: dec(p) }).collect()
    };
    let sl = |percentage: u32, trailing: bool, breakeven: bool| {
        StopLoss::new(Decimal::from(percentage), 0, trailing, breakeven, StopLossType::StopLoss).expect("stop loss")
    };
    match kind {
        0 => ExitSettings { stop_loss: sl(stop_loss, false, false), ..ExitSettings::default() },
        1 => ExitSettings {
            take_profit_steps: steps(&[("50", "1"), ("50", "2")]),
            stop_loss: sl(stop_loss, false, false),
            ..ExitSettings::default()
        },
        2 => ExitSettings {
            take_profit_steps: steps(&[("30", "0.5"), ("30", "1"), ("40", "1.5")]),
            stop_loss: sl(stop_loss, false, true),
            ..ExitSettings::default()
        },
        3 => ExitSettings {
            trailing_deviation: Some(dec("0.3")),
            stop_loss: sl(stop_loss, false, false),
            ..ExitSettings::default()
        },
        4 => ExitSettings {
            take_profit_steps: steps(&[("50", "1"), ("50", "2")]),
            trailing_deviation: Some(dec("0.5")),
            stop_loss: sl(stop_loss, false, stop_loss > 0),
        },
        _ => ExitSettings { stop_loss: sl(stop_loss.max(1), true, false), ..ExitSettings::default() },
    }
}

fn try_event(h: &mut Harness, event: DealEvent) -> Result<(), engine::DealError> {
    h.now += 1_000;
    let ctx = engine::Ctx {
        settings: &h.settings,
        filters: &h.filters,
        now: domain::Timestamp::from_unix_millis(h.now),
        price: Some(h.price),
    };
    let commands = h.book.apply(&ctx, event)?;
    h.pending.extend(commands);
    Ok(())
}
