//! What webhook signals ask of deals beyond starting them: adding funds at a limit price, starting
//! the trailing take profit early, and the engine's scoping of a signal to a bot's open deals.

use domain::{
    Bot, BotId, DealId, DealStatus, Decimal, ExchangeAccountId, ExitSettings, OrderKind, OrderRole, Pair, Strategy,
    Timestamp, UserId,
};
use engine::{BotState, DealError, DealEvent, Engine, EngineError, Event, StartCondition, WebhookCommand};

use crate::venue::{Harness, dec, filters, pair, settings, with_exits};

fn ctx_apply(h: &Harness, event: DealEvent) -> Result<(), DealError> {
    let ctx = engine::Ctx {
        settings: &h.settings,
        filters: &h.filters,
        now: Timestamp::from_unix_millis(h.now + 1_000),
        price: Some(h.price),
    };
    h.book.clone().apply(&ctx, event).map(|_| ())
}

#[test]
fn funds_added_at_a_limit_price_rest_until_the_price_comes_down_then_move_the_take_profit() {
    let mut h = Harness::open(settings(Strategy::Long), "100");
    h.settle();
    let tp_before = h.book.orders.iter().rev().find(|o| o.role == OrderRole::TakeProfit).expect("TP").clone();
    h.event(DealEvent::AddFunds { quote: dec("20"), price: Some(dec("99.504")) });
    h.settle();
    let added = h.book.orders.iter().find(|o| o.role == OrderRole::AddFunds).expect("the added order").clone();
    assert_eq!((added.kind, added.price), (OrderKind::Limit, dec("99.50")), "a limit buy, rounded down to the tick");
    assert_eq!(added.quantity, Some(dec("0.201")), "20 USDT at 99.50, to the step");
    assert!(h.open_orders().iter().any(|o| o.client_order_id == added.client_order_id), "resting");
    let tp_now = h.book.orders.iter().rev().find(|o| o.role == OrderRole::TakeProfit).expect("TP");
    assert_eq!(tp_now.client_order_id, tp_before.client_order_id, "nothing filled: the take profit stays");
    h.move_to("99.5");
    let tp_after = h.book.orders.iter().rev().find(|o| o.role == OrderRole::TakeProfit && !o.state.is_final());
    let tp_after = tp_after.expect("a take profit on the book");
    assert!(tp_after.quantity > tp_before.quantity, "{:?} after {:?}", tp_after.quantity, tp_before.quantity);
    assert_eq!(h.duplicates, 0);
}

#[test]
fn start_trailing_needs_a_trailing_bot_and_a_deal_far_enough_in_profit() {
    let mut plain = Harness::open(settings(Strategy::Long), "100");
    plain.settle();
    plain.move_to("100.8");
    assert_eq!(ctx_apply(&plain, DealEvent::StartTrailing), Err(DealError::NoTrailing));

    let exits = ExitSettings { trailing_deviation: Some(dec("0.5")), ..ExitSettings::default() };
    let mut h = Harness::open(with_exits(settings(Strategy::Long), exits), "100");
    h.settle();
    h.move_to("100.3");
    // 0.5 % back from 100.3 is 99.7985, below the average (100): arming would sell at a loss.
    assert_eq!(ctx_apply(&h, DealEvent::StartTrailing), Err(DealError::NotInProfit));
    assert_eq!(h.book.deal.trailing_peak, None);
    h.move_to("100.8");
    assert_eq!(h.book.deal.trailing_peak, None, "below the last target (101.1…): not armed by the price");
    h.event(DealEvent::StartTrailing);
    assert_eq!(h.book.deal.trailing_peak, Some(dec("100.8")), "armed at the current price");
    assert_eq!(ctx_apply(&h, DealEvent::StartTrailing), Err(DealError::AlreadyTrailing));
    h.move_to("100.9");
    assert_eq!(h.book.deal.trailing_peak, Some(dec("100.9")), "the peak follows");
    assert_eq!(h.book.deal.status, DealStatus::Bought);
    h.move_to("100.35");
    assert_eq!(h.book.deal.status, DealStatus::Completed, "0.55 % back from the peak closes");
    let exit = h.book.orders.iter().find(|o| o.role == OrderRole::TakeProfit).expect("the exit");
    assert_eq!(exit.kind, OrderKind::Market);
    assert_eq!(h.duplicates, 0);
}

fn engine_with_bot(pairs: &[&str], start: StartCondition) -> (Engine, BotId) {
    let mut next = 0u8;
    let mut engine = Engine::new(Box::new(move || {
        next += 1;
        DealId::from_random_bytes([next; 16])
    }));
    let pairs: Vec<Pair> = pairs.iter().map(|p| Pair::parse_3commas(p).expect("pair")).collect();
    for pair in &pairs {
        engine.set_market(pair.clone(), filters());
        engine.set_market_price(pair, dec("100"));
    }
    let bot = BotId::from_random_bytes([9; 16]);
    let mut bot_settings = settings(Strategy::Long);
    bot_settings.start_condition = start;
    bot_settings.max_active_deals = 5;
    let at = Timestamp::from_unix_millis(1_700_000_000_000);
    engine.upsert_bot(BotState {
        bot: Bot {
            id: bot,
            user_id: UserId::from_random_bytes([2; 16]),
            exchange_account_id: ExchangeAccountId::from_random_bytes([4; 16]),
            name: "signals".to_owned(),
            pairs,
            enabled: true,
            disabled_reason: None,
            settings: "{}".to_owned(),
            created_at: at,
            updated_at: at,
        },
        settings: bot_settings,
        last_closed_at: None,
    });
    (engine, bot)
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + seconds * 1_000)
}

#[test]
fn a_start_signal_needs_the_trading_view_start_condition() {
    let (mut engine, bot) = engine_with_bot(&["USDT_BTC"], StartCondition::Manual);
    assert_eq!(engine.handle(at(1), Event::Signal { bot, pair: None }), Err(EngineError::NoSignalStart));
    let (mut engine, bot) = engine_with_bot(&["USDT_BTC"], StartCondition::TradingView);
    let out = engine.handle(at(1), Event::Signal { bot, pair: None }).expect("started");
    assert_eq!(out.changed.len(), 1);
}

#[test]
fn webhook_commands_act_on_the_bots_open_deals_on_the_named_pair() {
    let (mut engine, bot) = engine_with_bot(&["USDT_BTC", "USDT_ETH"], StartCondition::TradingView);
    let btc = pair();
    let eth = Pair::parse_3commas("USDT_ETH").expect("pair");
    let close = |pair: Option<Pair>| Event::Webhook { bot, pair, command: WebhookCommand::CloseAtMarket };
    let add = |pair: Option<Pair>| Event::Webhook {
        bot,
        pair,
        command: WebhookCommand::AddFunds { quote: dec("20"), price: None },
    };
    assert_eq!(engine.handle(at(1), close(None)), Err(EngineError::NoOpenDeal), "no deal yet");

    let on_btc = engine.handle(at(2), Event::Signal { bot, pair: Some(btc.clone()) }).expect("BTC deal").changed[0];
    let on_eth = engine.handle(at(3), Event::Signal { bot, pair: Some(eth.clone()) }).expect("ETH deal").changed[0];
    for id in [on_btc, on_eth] {
        // The base orders filled: the deals are bought.
        let book = engine.deal(id).expect("deal").clone();
        let base = &book.orders[0];
        let update = engine::OrderUpdate {
            client_order_id: base.client_order_id.clone(),
            venue_order_id: "v".to_owned(),
            status: domain::OrderStatus::Filled,
            executed_qty: dec("0.1"),
            executed_quote: dec("10"),
            fee_base: Decimal::ZERO,
            fee_quote: Decimal::ZERO,
        };
        engine.handle(at(4), Event::Order(update)).expect("fill");
        assert_eq!(engine.deal(id).expect("deal").deal.status, DealStatus::Bought);
    }

    assert_eq!(engine.handle(at(5), add(None)), Err(EngineError::PairNeeded), "two open deals, no pair");
    let out = engine.handle(at(5), add(Some(eth.clone()))).expect("funds added on ETH");
    assert_eq!(out.changed, [on_eth]);

    let out = engine.handle(at(6), close(Some(btc.clone()))).expect("BTC closed");
    assert_eq!(out.changed, [on_btc], "only the deal on the named pair");
    assert_eq!(engine.deal(on_btc).expect("deal").deal.status, DealStatus::PanicSellPending);
    assert_eq!(engine.deal(on_eth).expect("deal").deal.status, DealStatus::Bought);
    assert_eq!(engine.handle(at(7), close(Some(btc))), Err(EngineError::NoOpenDeal), "already closing");

    let out = engine.handle(at(8), close(None)).expect("the rest closed");
    assert_eq!(out.changed, [on_eth]);
}
