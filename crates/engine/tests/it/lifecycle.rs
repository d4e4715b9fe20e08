use domain::{CloseReason, DealStatus, Decimal, IntentState, OrderRole, Side, Strategy};
use engine::{Command, DealEvent, OrderUpdate};

use crate::venue::{Harness, dec, settings, stop_loss, with_exits};

fn roles(h: &Harness) -> Vec<(OrderRole, u32)> {
    h.book.orders.iter().map(|o| (o.role, o.safety_index)).collect()
}

#[test]
fn a_long_deal_buys_places_its_ladder_and_completes_at_take_profit_after_safety_orders() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    assert_eq!(h.book.deal.status, DealStatus::BaseOrderPlaced);
    h.settle();
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    assert_eq!(h.book.deal.base_price, Some(dec("100")));
    // Two safety orders rest in advance (active_safety_orders_count), at example A's prices, and
    // the take profit sells what was bought net of the fee at avg · 1.01 rounded up to the tick.
    let open: Vec<(Side, Decimal)> = h.open_orders().iter().map(|o| (o.side, o.price)).collect();
    assert!(open.contains(&(Side::Buy, dec("99"))), "{open:?}");
    assert!(open.contains(&(Side::Buy, dec("98"))), "{open:?}");
    let tp = h.book.orders.iter().find(|o| o.role == OrderRole::TakeProfit).expect("a take profit");
    assert_eq!(tp.quantity, Some(dec("0.0999")));
    // spent 10 for 0.0999 net: avg 100.1001…, TP 101.1011… → 101.11 (sells round up).
    assert_eq!(tp.price, dec("101.11"));

    h.move_to("99");
    // SO1 filled: the old take profit was canceled first, then a new one placed for the whole
    // position; the third safety order took SO1's place on the book.
    let tps: Vec<_> = h.book.orders.iter().filter(|o| o.role == OrderRole::TakeProfit).collect();
    assert_eq!(tps.len(), 2);
    assert_eq!(tps[0].state, IntentState::Canceled);
    assert_eq!(tps[1].state, IntentState::Open);
    assert_eq!(tps[1].quantity, Some(dec("0.2008")));
    assert!(roles(&h).contains(&(OrderRole::Safety, 3)));
    assert!(tps[1].price < dec("101.11"), "the average fell, so did the take profit");

    h.move_to("102");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::TakeProfit));
    assert!(h.book.deal.profit_quote.expect("profit") > Decimal::ZERO);
    assert!(h.open_orders().is_empty(), "the remaining safety orders were canceled");
    assert_eq!(h.duplicates, 0);
}

#[test]
fn the_take_profit_is_replaced_only_after_its_cancel_is_confirmed() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    h.settle();
    let so1 = h.book.orders.iter().find(|o| o.safety_index == 1).expect("SO1").client_order_id.clone();
    let tp = h.book.orders.iter().find(|o| o.role == OrderRole::TakeProfit).expect("TP").client_order_id.clone();
    let commands = h.event(DealEvent::Order(OrderUpdate {
        client_order_id: so1,
        venue_order_id: "1".into(),
        status: domain::OrderStatus::Filled,
        executed_qty: dec("0.10101"),
        executed_quote: dec("9.99999"),
        fee_base: dec("0.00010101"),
        fee_quote: Decimal::ZERO,
    }));
    assert!(commands.contains(&Command::Cancel(tp.clone())), "{commands:?}");
    assert!(
        !commands.iter().any(
            |c| matches!(c, Command::Place(id) if h.book.order(id).is_some_and(|o| o.role == OrderRole::TakeProfit))
        ),
        "no new take profit before the old one is gone: {commands:?}"
    );
    // Told again (a repeated report), the deal asks for nothing new.
    let again = h.event(DealEvent::Timer);
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_short_deal_sells_first_and_buys_back_lower() {
    let mut h = Harness::open(settings(Strategy::Short), "100");
    h.settle();
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    let open: Vec<(Side, Decimal)> = h.open_orders().iter().map(|o| (o.side, o.price)).collect();
    assert!(open.contains(&(Side::Sell, dec("101"))), "{open:?}");
    assert!(open.contains(&(Side::Sell, dec("102"))), "{open:?}");
    let tp = h.book.orders.iter().find(|o| o.role == OrderRole::TakeProfit).expect("a take profit");
    assert_eq!(tp.side, Side::Buy);
    assert!(tp.price < dec("100"));
    h.move_to("101");
    h.move_to("98");
    assert_eq!(h.book.deal.status, DealStatus::Completed);
    assert!(h.book.deal.profit_quote.expect("profit") > Decimal::ZERO);
    assert!(h.open_orders().is_empty());
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_stop_loss_closes_at_market_with_a_loss() {
    let s = with_exits(settings(Strategy::Long), stop_loss("3", 0));
    let mut h = Harness::open(s, "100");
    h.settle();
    h.move_to("97.5");
    assert_eq!(h.book.deal.status, DealStatus::Bought, "avg ≈ 98.5: 97.5 is not 3 % below");
    h.move_to("94");
    assert_eq!(h.book.deal.status, DealStatus::PanicSold);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::StopLoss));
    assert!(h.book.deal.profit_quote.expect("result") < Decimal::ZERO);
    assert!(h.open_orders().is_empty());
    let close = h.book.orders.iter().find(|o| o.role == OrderRole::Close).expect("a closing order");
    assert_eq!(close.side, Side::Sell);
    assert_eq!(close.quantity, Some(h.filters.round_qty(h.book.position(false) + close.executed_qty)));
    assert_eq!(h.duplicates, 0);
}

#[test]
fn a_stop_loss_with_a_timeout_waits_for_the_price_to_stay_below() {
    let s = with_exits(settings(Strategy::Long), stop_loss("1", 60));
    let mut h = Harness::open(s, "100");
    h.settle();
    h.move_to("98.5");
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    assert!(h.book.deal.stop_loss_since.is_some());
    h.move_to("99.9");
    assert_eq!(h.book.deal.stop_loss_since, None, "back above: the clock starts over");
    h.move_to("97.1");
    h.now += 30_000;
    h.event(DealEvent::Timer);
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    h.now += 31_000;
    h.event(DealEvent::Timer);
    h.settle();
    assert_eq!(h.book.deal.status, DealStatus::PanicSold);
}

#[test]
fn close_at_market_cancels_the_orders_then_sells_the_position() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    h.settle();
    h.event(DealEvent::CloseAtMarket);
    assert_eq!(h.book.deal.status, DealStatus::PanicSellPending);
    h.settle();
    assert_eq!(h.book.deal.status, DealStatus::PanicSold);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::ClosedAtMarket));
    assert!(h.open_orders().is_empty());
    assert!(h.book.position(false) < dec("0.00001"), "only dust below the step is left");
    // A closed deal takes no second close.
    let ctx_err = h.book.clone().apply(
        &engine::Ctx {
            settings: &h.settings,
            filters: &h.filters,
            now: domain::Timestamp::from_unix_millis(h.now),
            price: Some(h.price),
        },
        DealEvent::CloseAtMarket,
    );
    assert_eq!(ctx_err, Err(engine::DealError::NotOpen));
}

#[test]
fn cancel_cancels_every_order_and_leaves_the_position() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    h.settle();
    h.event(DealEvent::Cancel);
    h.settle();
    assert_eq!(h.book.deal.status, DealStatus::Canceled);
    assert!(h.open_orders().is_empty());
    assert!(!h.book.orders.iter().any(|o| o.role == OrderRole::Close), "nothing is sold");
    assert_eq!(h.book.deal.profit_quote, None);
}

#[test]
fn a_base_order_that_never_reached_the_venue_is_placed_again_under_a_new_id() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    let first = h.book.orders[0].client_order_id.clone();
    h.pending.clear();
    let commands = h.event(DealEvent::NotPlaced { client_order_id: first.clone() });
    assert_eq!(commands.len(), 1);
    let Command::Place(second) = &commands[0] else { panic!("{commands:?}") };
    assert_ne!(*second, first);
    assert_eq!(h.book.order(&first).map(|o| o.state), Some(IntentState::NotPlaced));
    h.settle();
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    assert!(!h.venue.contains_key(&first));
}

#[test]
fn a_refused_base_order_fails_the_deal() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    let first = h.book.orders[0].client_order_id.clone();
    h.pending.clear();
    let commands = h.event(DealEvent::Refused { client_order_id: first, reason: "illiquid_pair".into() });
    assert!(commands.is_empty());
    assert_eq!(h.book.deal.status, DealStatus::Failed);
    assert_eq!(h.book.deal.close_reason, Some(CloseReason::Failed));
}

#[test]
fn adding_funds_buys_at_market_and_moves_the_take_profit() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    h.settle();
    h.event(DealEvent::AddFunds { quote: dec("20"), price: None });
    h.settle();
    let tp = h.book.orders.iter().rev().find(|o| o.role == OrderRole::TakeProfit).expect("TP");
    assert_eq!(tp.state, IntentState::Open);
    assert_eq!(tp.quantity, Some(dec("0.2997")));
    let small = h.book.clone().apply(
        &engine::Ctx {
            settings: &h.settings,
            filters: &h.filters,
            now: domain::Timestamp::from_unix_millis(h.now),
            price: Some(h.price),
        },
        DealEvent::AddFunds { quote: dec("1"), price: None },
    );
    assert!(matches!(small, Err(engine::DealError::BelowFilters(_))), "{small:?}");
}
