//! The exit family beyond one take profit: take-profit steps, trailing take profit, trailing stop
//! loss, stop loss to breakeven, and base-currency volumes, each through a whole deal.

use domain::{
    CloseReason, DealStatus, Decimal, ExitSettings, IntentState, OrderKind, OrderRole, Side, StopLoss, StopLossType,
    Strategy, TakeProfitStep, VolumeType,
};

use crate::venue::{Harness, dec, settings, settings_tp, with_exits};

fn steps(raw: &[(&str, &str)]) -> Vec<TakeProfitStep> {
    raw.iter().map(|(a, p)| TakeProfitStep { amount_percentage: dec(a), profit_percentage: dec(p) }).collect()
}

fn stop_loss(percentage: &str, trailing: bool, breakeven: bool) -> StopLoss {
    StopLoss::new(dec(percentage), 0, trailing, breakeven, StopLossType::StopLoss).expect("stop loss")
}

/// (step, state, quantity, price) of every take-profit order, in the order placed.
fn take_profits(h: &Harness) -> Vec<(u32, IntentState, Option<Decimal>, Decimal)> {
    h.book
        .orders
        .iter()
        .filter(|o| o.role == OrderRole::TakeProfit)
        .map(|o| (o.safety_index, o.state, o.quantity, o.price))
        .collect()
}

fn sold(h: &Harness) -> Decimal {
    h.venue.values().filter(|o| o.side == Side::Sell).map(|o| o.executed_qty).sum()
}

#[test]
fn take_profit_steps_sell_in_parts_and_stop_the_safety_orders_after_the_first() {
    let exits = ExitSettings { take_profit_steps: steps(&[("50", "1"), ("50", "2")]), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings(Strategy::Long), exits), "100");
    h.settle();
    // Bought 0.1 for 10, 0.0999 net of the fee: avg 100.1001…; +1 % → 101.11, +2 % → 102.11.
    assert_eq!(
        take_profits(&h),
        [
            (1, IntentState::Open, Some(dec("0.04995")), dec("101.11")),
            (2, IntentState::Open, Some(dec("0.04995")), dec("102.11")),
        ]
    );
    h.move_to("101.5");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "half is still held");
    assert_eq!(take_profits(&h)[0].1, IntentState::Filled);
    let safety_open = h.open_orders().iter().filter(|o| o.side == Side::Buy).count();
    assert_eq!(safety_open, 0, "the first step filled: the safety orders were canceled");
    h.move_to("99");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "no safety order fills after the first step");
    h.move_to("102.2");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::TakeProfit));
    assert_eq!(sold(&h), dec("0.0999"));
    assert!(h.book.deal.profit_quote.expect("profit") > Decimal::ZERO);
    assert!(h.open_orders().is_empty());
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_safety_fill_before_any_step_resizes_every_step_after_the_cancels() {
    let exits =
        ExitSettings { take_profit_steps: steps(&[("30", "1"), ("30", "2"), ("40", "3")]), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings_tp(Strategy::Long, "30", "1"), exits), "100");
    h.settle();
    assert_eq!(take_profits(&h).len(), 3);
    h.move_to("99");
    let tps = take_profits(&h);
    assert_eq!(tps.len(), 6, "three canceled, three placed again: {tps:?}");
    assert!(tps[..3].iter().all(|t| t.1 == IntentState::Canceled));
    assert!(tps[3..].iter().all(|t| t.1 == IntentState::Open));
    let resting: Decimal = tps[3..].iter().filter_map(|t| t.2).sum();
    assert_eq!(resting, h.filters.round_qty(h.book.position(true)), "the steps share the whole position");
    assert_eq!(tps[3..].iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_trailing_take_profit_follows_the_peak_and_closes_at_market() {
    let exits = ExitSettings { trailing_deviation: Some(dec("0.5")), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings(Strategy::Long), exits), "100");
    h.settle();
    assert!(take_profits(&h).is_empty(), "a trailing take profit never rests on the book");
    h.move_to("101.5");
    assert_eq!(h.book.deal.trailing_peak, Some(dec("101.5")), "past the target (101.1011…): armed");
    h.move_to("103");
    h.move_to("102.6");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "0.39 % off the peak: still trailing");
    assert_eq!(h.book.deal.trailing_peak, Some(dec("103")));
    h.move_to("102.4");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    let tps = take_profits(&h);
    assert_eq!(tps.len(), 1);
    let tp = h.book.orders.iter().find(|o| o.role == OrderRole::TakeProfit).expect("the exit");
    assert_eq!((tp.kind, tp.executed_qty), (OrderKind::Market, dec("0.0999")));
    assert_eq!(tp.executed_quote, (dec("0.0999") * dec("102.4")).round_dp(8), "sold at the market, above the target");
    assert!(h.open_orders().is_empty());
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_short_trailing_take_profit_mirrors_downwards() {
    let exits = ExitSettings { trailing_deviation: Some(dec("0.5")), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings(Strategy::Short), exits), "100");
    h.settle();
    h.move_to("98.5");
    assert!(h.book.deal.trailing_peak.is_some());
    h.move_to("97");
    h.move_to("97.4");
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    h.move_to("97.6");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    assert!(h.book.deal.profit_quote.expect("profit") > Decimal::ZERO);
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_trailing_stop_loss_locks_in_a_rise() {
    let exits = ExitSettings { stop_loss: stop_loss("2", true, false), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings_tp(Strategy::Long, "10", "10"), exits), "100");
    h.settle();
    h.move_to("105");
    assert_eq!(h.book.deal.best_price, Some(dec("105")));
    h.move_to("103");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "the trigger is 105 · 0.98 = 102.9");
    h.move_to("102.8");
    assert_eq!(h.book.deal.status, DealStatus::PanicSold);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::StopLoss));
    assert!(h.book.deal.profit_quote.expect("result") > Decimal::ZERO, "stopped out above the average");
    assert!(h.open_orders().is_empty());
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_fixed_stop_loss_does_not_follow_the_price() {
    let exits = ExitSettings { stop_loss: stop_loss("2", false, false), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings_tp(Strategy::Long, "10", "10"), exits), "100");
    h.settle();
    h.move_to("105");
    h.move_to("102.8");
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    assert_eq!(h.book.deal.best_price, None, "only a trailing stop loss tracks the best price");
}

#[test]
fn the_stop_loss_moves_to_breakeven_once_the_first_step_filled() {
    let exits = ExitSettings {
        take_profit_steps: steps(&[("50", "1"), ("50", "3")]),
        stop_loss: stop_loss("5", false, true),
        ..ExitSettings::default()
    };
    let mut h = Harness::open(with_exits(settings_tp(Strategy::Long, "20", "1"), exits), "100");
    h.settle();
    h.move_to("99.9");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "before the first step only the 5 % stop loss counts");
    h.move_to("101.2");
    assert_eq!(take_profits(&h)[0].1, IntentState::Filled);
    h.move_to("100.2");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "still above the average (100.1001…)");
    h.move_to("100.05");
    assert_eq!(h.book.deal.status, DealStatus::PanicSold);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::StopLoss));
    assert_eq!(sold(&h), dec("0.1998"), "the close sold what the first step left");
    assert!(h.book.deal.profit_quote.expect("result") > Decimal::ZERO, "the first step's profit is kept");
    assert!(h.open_orders().is_empty());
    assert_eq!(h.duplicates, 0);
}

/// Steps too small for the market's minimum order join the next step, so the last one never
/// leaves part of the position without a target.
#[test]
fn a_step_below_the_market_minimum_joins_the_next() {
    let exits =
        ExitSettings { take_profit_steps: steps(&[("30", "1"), ("30", "2"), ("40", "3")]), ..ExitSettings::default() };
    // 0.0999 held: 30 % is worth about 3 USDT, under the 5 USDT minimum, so step 1 joins step 2
    // (60 %, about 6 USDT); the last 40 % (about 4 USDT) is too small too and joins step 2 as well.
    let mut h = Harness::open(with_exits(settings(Strategy::Long), exits), "100");
    h.settle();
    let tps = take_profits(&h);
    assert_eq!(tps.iter().map(|t| (t.0, t.2)).collect::<Vec<_>>(), [(2, Some(dec("0.0999")))], "{tps:?}");
    // With twice the position every step stands on its own.
    let exits =
        ExitSettings { take_profit_steps: steps(&[("30", "1"), ("30", "2"), ("40", "3")]), ..ExitSettings::default() };
    let mut big = Harness::open(with_exits(settings_tp(Strategy::Long, "20", "1"), exits), "100");
    big.settle();
    let tps = take_profits(&big);
    assert_eq!(
        tps.iter().map(|t| (t.0, t.2)).collect::<Vec<_>>(),
        [(1, Some(dec("0.05994"))), (2, Some(dec("0.05994"))), (3, Some(dec("0.07992")))]
    );
    h.move_to("104");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    assert_eq!(sold(&h), dec("0.0999"));
}

#[test]
fn base_currency_volumes_buy_fixed_quantities() {
    let mut s = settings(Strategy::Long);
    let input = domain::DcaSettingsInput {
        base_order_volume: dec("0.2"),
        base_order_volume_type: VolumeType::BaseCurrency,
        safety_order_volume: dec("0.1"),
        safety_order_volume_type: VolumeType::BaseCurrency,
        max_safety_orders: 2,
        active_safety_orders_count: 2,
        safety_order_step_percentage: dec("1"),
        martingale_step_coefficient: dec("1"),
        martingale_volume_coefficient: dec("2"),
        take_profit: dec("1"),
        take_profit_type: domain::TakeProfitType::Total,
        strategy: Strategy::Long,
    };
    s.dca = domain::DcaSettings::new(input).expect("settings");
    let mut h = Harness::open(s, "100");
    h.settle();
    let entries: Vec<(OrderRole, Option<Decimal>, Option<Decimal>)> =
        h.book.orders.iter().filter(|o| o.side == Side::Buy).map(|o| (o.role, o.quantity, o.quote_amount)).collect();
    assert_eq!(
        entries,
        [
            (OrderRole::Base, Some(dec("0.2")), None),
            (OrderRole::Safety, Some(dec("0.1")), None),
            (OrderRole::Safety, Some(dec("0.2")), None),
        ]
    );
    h.move_to("102");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    assert_eq!(h.duplicates, 0);
}
