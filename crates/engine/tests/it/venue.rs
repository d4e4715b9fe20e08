use std::collections::BTreeMap;

use domain::{
    BotId, DcaSettings, DcaSettingsInput, DealId, Decimal, ExchangeAccountId, ExitSettings, MarketFilters, OrderKind,
    OrderStatus, Pair, Side, StopLoss, StopLossType, Strategy, TakeProfitType, Timestamp, UserId, VolumeType,
};
use engine::{BotSettings, Command, Ctx, DealBook, DealEvent, NewDeal, OrderUpdate, StartCondition};

pub fn dec(raw: &str) -> Decimal {
    raw.parse().expect("a decimal literal")
}

pub fn filters() -> MarketFilters {
    MarketFilters {
        tick_size: Some(dec("0.01")),
        min_price: Some(dec("0.01")),
        max_price: Some(dec("1000000")),
        step_size: Some(dec("0.00001")),
        min_qty: Some(dec("0.00001")),
        max_qty: Some(dec("9000")),
        min_notional: Some(dec("5")),
        max_notional: None,
        max_num_orders: Some(200),
    }
}

/// Example A of spec/dca.md: BO 10, SO 10, 3 safety orders 1 % apart, TP 1 % of the total.
pub fn settings(strategy: Strategy) -> BotSettings {
    settings_tp(strategy, "10", "1")
}

/// Example A with a base order of `base_order_volume` and a take profit of `take_profit` %.
pub fn settings_tp(strategy: Strategy, base_order_volume: &str, take_profit: &str) -> BotSettings {
    BotSettings {
        dca: DcaSettings::new(DcaSettingsInput {
            base_order_volume: dec(base_order_volume),
            base_order_volume_type: VolumeType::QuoteCurrency,
            safety_order_volume: dec("10"),
            safety_order_volume_type: VolumeType::QuoteCurrency,
            max_safety_orders: 3,
            active_safety_orders_count: 2,
            safety_order_step_percentage: dec("1"),
            martingale_step_coefficient: dec("1"),
            martingale_volume_coefficient: dec("1"),
            take_profit: dec(take_profit),
            take_profit_type: TakeProfitType::Total,
            strategy,
        })
        .expect("example A settings"),
        start_order_type: OrderKind::Market,
        cooldown_seconds: 0,
        max_active_deals: 1,
        allowed_deals_on_same_pair: 1,
        start_condition: StartCondition::Manual,
        take_profit_enabled: true,
    }
}

/// `settings` with these exits.
pub fn with_exits(mut settings: BotSettings, exits: ExitSettings) -> BotSettings {
    settings.dca = settings.dca.with_exits(exits).expect("exit settings");
    settings
}

/// A plain stop loss of `percentage` % that waits `timeout_seconds`.
pub fn stop_loss(percentage: &str, timeout_seconds: u32) -> ExitSettings {
    ExitSettings {
        stop_loss: StopLoss::new(dec(percentage), timeout_seconds, false, false, StopLossType::StopLoss)
            .expect("stop loss"),
        ..ExitSettings::default()
    }
}

pub fn pair() -> Pair {
    Pair::parse_3commas("USDT_BTC").expect("pair")
}

#[derive(Debug, Clone)]
pub struct VenueOrder {
    pub client_order_id: String,
    pub side: Side,
    pub kind: OrderKind,
    pub price: Decimal,
    pub quantity: Option<Decimal>,
    pub quote: Option<Decimal>,
    pub status: OrderStatus,
    pub executed_qty: Decimal,
    pub executed_quote: Decimal,
    pub fee_base: Decimal,
    pub fee_quote: Decimal,
}

/// A deal wired to a one-pair venue that fills what the price crosses.
#[derive(Debug)]
pub struct Harness {
    pub settings: BotSettings,
    pub filters: MarketFilters,
    pub book: DealBook,
    pub price: Decimal,
    pub now: i64,
    /// Every order the venue ever received, by client order id. A second placement of an id that
    /// is already here is a duplicate order.
    pub venue: BTreeMap<String, VenueOrder>,
    pub duplicates: usize,
    /// Commands waiting to reach the venue.
    pub pending: Vec<Command>,
}

pub fn fee(amount: Decimal) -> Decimal {
    (amount / Decimal::ONE_THOUSAND).round_dp(8)
}

impl Harness {
    pub fn open(settings: BotSettings, price: &str) -> Harness {
        let filters = filters();
        let price = dec(price);
        let now = 1_700_000_000_000;
        let new = NewDeal {
            id: DealId::from_random_bytes([3; 16]),
            bot_id: BotId::from_random_bytes([1; 16]),
            user_id: UserId::from_random_bytes([2; 16]),
            exchange_account_id: ExchangeAccountId::from_random_bytes([4; 16]),
            pair: pair(),
            settings_json: "{}".to_owned(),
        };
        let ctx =
            Ctx { settings: &settings, filters: &filters, now: Timestamp::from_unix_millis(now), price: Some(price) };
        let (book, pending) = DealBook::open(new, &ctx);
        Harness { settings, filters, book, price, now, venue: BTreeMap::new(), duplicates: 0, pending }
    }

    pub fn event(&mut self, event: DealEvent) -> Vec<Command> {
        self.now += 1_000;
        let ctx = Ctx {
            settings: &self.settings,
            filters: &self.filters,
            now: Timestamp::from_unix_millis(self.now),
            price: Some(self.price),
        };
        let commands = self.book.apply(&ctx, event).expect("the event is taken");
        self.pending.extend(commands.iter().cloned());
        commands
    }

    fn fill(order: &mut VenueOrder, price: Decimal) {
        let qty = match (order.quantity, order.quote) {
            (Some(qty), _) => qty,
            (None, Some(quote)) => (quote / price).round_dp(5),
            (None, None) => Decimal::ZERO,
        };
        order.executed_qty = qty;
        order.executed_quote = (qty * price).round_dp(8);
        match order.side {
            Side::Buy => order.fee_base = fee(qty),
            Side::Sell => order.fee_quote = fee(order.executed_quote),
        }
        order.status = OrderStatus::Filled;
    }

    fn update(order: &VenueOrder) -> DealEvent {
        DealEvent::Order(OrderUpdate {
            client_order_id: order.client_order_id.clone(),
            venue_order_id: format!("v-{}", order.client_order_id),
            status: order.status,
            executed_qty: order.executed_qty,
            executed_quote: order.executed_quote,
            fee_base: order.fee_base,
            fee_quote: order.fee_quote,
        })
    }

    /// Sends every pending command to the venue and feeds back its answers, until quiet.
    pub fn settle(&mut self) {
        for _ in 0..100 {
            let pending = std::mem::take(&mut self.pending);
            if pending.is_empty() {
                return;
            }
            for command in pending {
                match command {
                    Command::Place(id) => {
                        if self.venue.contains_key(&id) {
                            self.duplicates += 1;
                            continue;
                        }
                        let intent = self.book.order(&id).expect("a placed order is recorded first").clone();
                        let mut order = VenueOrder {
                            client_order_id: id.clone(),
                            side: intent.side,
                            kind: intent.kind,
                            price: intent.price,
                            quantity: intent.quantity,
                            quote: intent.quote_amount,
                            status: OrderStatus::New,
                            executed_qty: Decimal::ZERO,
                            executed_quote: Decimal::ZERO,
                            fee_base: Decimal::ZERO,
                            fee_quote: Decimal::ZERO,
                        };
                        let crosses = match order.side {
                            Side::Buy => self.price <= order.price,
                            Side::Sell => self.price >= order.price,
                        };
                        if order.kind == OrderKind::Market {
                            Self::fill(&mut order, self.price);
                        } else if crosses {
                            let at = order.price;
                            Self::fill(&mut order, at);
                        }
                        let event = Self::update(&order);
                        self.venue.insert(id, order);
                        self.event(event);
                    }
                    Command::Cancel(id) => {
                        let order = self.venue.get_mut(&id).expect("cancel of a known order");
                        if order.status == OrderStatus::New {
                            order.status = OrderStatus::Canceled;
                        }
                        let event = Self::update(order);
                        self.event(event);
                    }
                }
            }
        }
        panic!("the deal keeps asking for orders");
    }

    /// Moves the price; resting orders it crosses fill at their limit.
    pub fn move_to(&mut self, price: &str) {
        self.price = dec(price);
        let mut events = Vec::new();
        for order in self.venue.values_mut() {
            if order.status != OrderStatus::New {
                continue;
            }
            let crosses = match order.side {
                Side::Buy => self.price <= order.price,
                Side::Sell => self.price >= order.price,
            };
            if crosses {
                let at = order.price;
                Self::fill(order, at);
                events.push(Self::update(order));
            }
        }
        for event in events {
            self.event(event);
        }
        self.event(DealEvent::Price(self.price));
        self.settle();
    }

    pub fn open_orders(&self) -> Vec<&VenueOrder> {
        self.venue.values().filter(|o| o.status == OrderStatus::New).collect()
    }
}
