//! Workload B6 of `../shared/spec/bench.md`: 10,000 paper DCA bots on 100 pairs, one-minute candles
//! replayed through one [`engine::Engine`].
//!
//! Setup (untimed): 100 pairs with BTCUSDT's filters (tick 0.01, step 0.00001, minimum notional 5),
//! each with a seeded synthetic candle path (xorshift64 random walk in integer cents, turned into
//! `Decimal`: the close moves up to ±0.40 % a minute, the wicks reach up to 0.20 % further); 100
//! bots per pair, `nonstop` (`StartCondition::Asap`), enabled, Example A of `spec/dca.md` varied:
//! BO 10 and SO 10 USDT, 3 safety orders (2 active), step 0.5–1.25 %, TP 0.5–1.5 % of the total,
//! half long and half short, half with a 2.5 % stop loss. Minute 0 opens every bot's deal (base
//! order at market, then its two safety orders and its take profit rest on the book).
//!
//! The engine has no venue, so the bench plays one: every command of an `Output` is carried out at
//! once against a fill model and the answer goes back as `Event::Order`, until nothing is left to
//! do. Market orders fill at the pair's last close; a limit order that crosses the last close when
//! it arrives fills at once at its limit price, otherwise it rests in the pair's book (`BTreeMap`s
//! keyed by price, so a candle reaches its crossed orders by a range); a later candle fills it at
//! its limit price when its high (sells, first) or low (buys, then) reaches it. Fees are 0.1 % in
//! the asset received, as in the engine's tests. A cancel removes a resting order and answers
//! `CANCELED`.
//!
//! Timed replay: minutes 1..=60, for each minute each pair's candle: the fills it causes are fed
//! back, then `Event::Candle`, and every command these cause is carried out (also fed back). That
//! whole step is one *candle-to-decision* sample. After each minute the runner's chores: one
//! `Event::Timer` (a one-second timer at 60×) and `drop_settled` (finished deals leave memory),
//! timed apart. Figures per round: candle p50/p99/max (whole step, and the engine's share of it),
//! engine events per second (every `handle` call over the replay's wall time), the replay's wall
//! time against the 60 s that 60× allows, timer and `drop_settled` costs, the opening burst of
//! minute 0 (100 bots of a pair starting their deals in one candle), and the work done (orders,
//! fills, cancels, deals opened and completed).
//!
//! Memory (once, before the rounds, in a fresh heap): RSS from `/proc/self/statm` before the bots
//! exist, after the 10,000 bots are in the engine, and after minute 0 opened their deals (each then
//! holds four orders: base filled, two safety orders and a take profit open). The fill model keeps
//! no book during this phase, so the figure is the engine's alone.
//!
//! Each round also names its three slowest candle steps (minute, pair, engine events, fills); with
//! `--sched` it reads this thread's run-queue wait (`/proc/thread-self/schedstat`) around each step,
//! outside the timed part, to tell a stall of the engine from time spent waiting for a CPU.
//!
//! Run: `cargo bench -p engine --bench b6` (append `-- --minutes N --rounds R` for a longer soak,
//! `-- --sched` for the run-queue waits); without `--bench` it runs once with tiny counts as a smoke
//! test.

#![allow(clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use domain::{
    Bot, BotId, DcaSettings, DcaSettingsInput, DealId, Decimal, ExchangeAccountId, ExitSettings, MarketFilters,
    OrderKind, OrderRole, OrderStatus, Pair, Side, StopLoss, StopLossType, Strategy, TakeProfitType, Timestamp, UserId,
    VolumeType,
};
use engine::{BotSettings, BotState, Command, Engine, Event, OrderUpdate, Output, StartCondition};

/// 2026-01-01T00:00:00Z: minute 0 of the replay.
const T0_MS: i64 = 1_767_225_600_000;
/// `/proc/self/statm` counts pages; 4 KiB on x86_64 and most aarch64 Linux kernels.
const PAGE_BYTES: u64 = 4096;

struct Scale {
    pairs: usize,
    bots_per_pair: usize,
    minutes: usize,
    rounds: usize,
    /// Also read this thread's run-queue wait around each candle step (outside the timed part).
    sched: bool,
}

impl Scale {
    fn bots(&self) -> usize {
        self.pairs * self.bots_per_pair
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let mut scale = if bench {
        Scale { pairs: 100, bots_per_pair: 100, minutes: 60, rounds: 5, sched: false }
    } else {
        Scale { pairs: 3, bots_per_pair: 8, minutes: 30, rounds: 1, sched: false }
    };
    let number = |flag: &str| {
        let value = args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
        value.map(|v| v.parse::<usize>().unwrap_or_else(|_| panic!("{flag} takes a number")))
    };
    scale.minutes = number("--minutes").unwrap_or(scale.minutes);
    scale.rounds = number("--rounds").unwrap_or(scale.rounds).max(1);
    scale.sched = args.iter().any(|a| a == "--sched");
    let pairs: Vec<Pair> =
        (0..scale.pairs).map(|p| Pair::parse_3commas(&format!("USDT_C{p:03}")).expect("a pair")).collect();
    let tape = tape(scale.pairs, scale.minutes + 1);
    println!(
        "B6: {} bots ({} per pair) on {} pairs, {} minutes of one-minute candles replayed after the opening \
         minute, {} round(s)",
        scale.bots(),
        scale.bots_per_pair,
        scale.pairs,
        scale.minutes,
        scale.rounds
    );
    println!(
        "sizes: OrderIntent {} B, Deal {} B, DealBook {} B, BotState {} B (inline; strings and vectors on the \
         heap come on top)\n",
        size_of::<domain::OrderIntent>(),
        size_of::<domain::Deal>(),
        size_of::<engine::DealBook>(),
        size_of::<BotState>()
    );

    let memory = memory(&scale, &pairs, &tape);
    println!(
        "memory: RSS {:.1} MiB before the bots; +{:.2} KiB per bot once the bots are in; +{:.2} KiB per bot once \
         their {} deals are open ({} orders held, {} resting)\n",
        memory.before as f64 / 1_048_576.0,
        memory.bots_only as f64 / 1024.0 / scale.bots() as f64,
        memory.with_deals as f64 / 1024.0 / scale.bots() as f64,
        memory.deals,
        memory.orders,
        memory.resting,
    );

    let mut figures: Vec<Vec<(&str, f64)>> = Vec::new();
    let mut last_counts = None;
    for round in 1..=scale.rounds {
        let r = replay(&scale, &pairs, &tape);
        let (c50, c99, cmax) = spread_of(&r.candle_ns);
        let (e50, e99, emax) = spread_of(&r.candle_engine_ns);
        let (h50, h99, hmax) = spread_of(&r.candle_calls_ns);
        let (t50, _, tmax) = spread_of(&r.timer_ns);
        let (d50, _, dmax) = spread_of(&r.drop_ns);
        let (o50, _, omax) = spread_of(&r.opening_ns);
        let wall = r.wall.as_secs_f64();
        let timers = r.timer_ns.iter().sum::<u64>() as f64 / 1e9;
        let c = &r.counts;
        let f = vec![
            ("candle to decision, p50 (us)", c50 / 1e3),
            ("candle to decision, p99 (us)", c99 / 1e3),
            ("candle to decision, max (us)", cmax / 1e3),
            ("  of which inside engine.handle, p50 (us)", e50 / 1e3),
            ("  of which inside engine.handle, p99 (us)", e99 / 1e3),
            ("  of which inside engine.handle, max (us)", emax / 1e3),
            ("  the Event::Candle call alone, p50 (us)", h50 / 1e3),
            ("  the Event::Candle call alone, p99 (us)", h99 / 1e3),
            ("  the Event::Candle call alone, max (us)", hmax / 1e3),
            ("one Event::Order report, mean (us)", r.order_reports.as_secs_f64() * 1e6 / c.order_reports as f64),
            ("engine events per second, replay wall time", c.events as f64 / wall),
            ("  the same without the timer events and their time", (c.events - c.timers) as f64 / (wall - timers)),
            ("engine events per second, time inside handle", c.events as f64 / r.engine.as_secs_f64()),
            ("replay wall time (s; 60x allows 1 s per minute)", wall),
            ("  of which the per-minute Event::Timer (s)", timers),
            ("share of the replay inside engine.handle (%)", r.engine.as_secs_f64() / wall * 100.0),
            ("Event::Timer over every deal, median (ms)", t50 / 1e6),
            ("Event::Timer over every deal, max (ms)", tmax / 1e6),
            ("drop_settled, median (ms)", d50 / 1e6),
            ("drop_settled, max (ms)", dmax / 1e6),
            ("opening burst: one pair's first candle, median (ms)", o50 / 1e6),
            ("opening burst: one pair's first candle, max (ms)", omax / 1e6),
        ];
        println!(
            "round {round}: candle p50 {:.1} us, p99 {:.1} us, max {:.1} us | Event::Candle alone p50 {:.1} us, p99 {:.1} us | Event::Order {:.1} us | \
             {:.0} events/s | replay {:.3} s for {} minutes, of which timers {:.3} s | timer {:.2} ms (max {:.2}) \
             | drop_settled {:.3} ms | opening a pair's {} deals {:.2} ms (max {:.2})",
            c50 / 1e3,
            c99 / 1e3,
            cmax / 1e3,
            h50 / 1e3,
            h99 / 1e3,
            r.order_reports.as_secs_f64() * 1e6 / c.order_reports as f64,
            c.events as f64 / wall,
            wall,
            scale.minutes,
            timers,
            t50 / 1e6,
            tmax / 1e6,
            d50 / 1e6,
            scale.bots_per_pair,
            o50 / 1e6,
            omax / 1e6,
        );
        println!(
            "         work: {} handle calls ({} candles, {} order reports, {} timers), {} deal saves asked; \
             orders placed {} market + {} limit, fills {} ({} of them resting orders reached by a candle), \
             cancels {}, cancels of unknown orders {}; deals opened {} (minute 0: {}), completed at take profit {}, \
             closed by stop loss {}, dropped from memory {}; at the end {} deals in memory holding {} orders, \
             {} orders resting",
            c.events,
            c.candles,
            c.order_reports,
            c.timers,
            c.saves,
            c.placed_market,
            c.placed_limit,
            c.fills,
            c.resting_fills,
            c.cancels,
            c.unknown_cancels,
            c.deals_opened,
            r.opened_at_start,
            c.take_profits,
            c.stop_losses,
            c.dropped,
            r.deals_at_end,
            r.orders_at_end,
            r.resting_at_end,
        );
        let slowest: Vec<String> = r
            .slowest
            .iter()
            .map(|s| {
                let waited = if scale.sched {
                    format!(", {:.1} ms of it waiting for a CPU", s.waited_ns as f64 / 1e6)
                } else {
                    String::new()
                };
                format!(
                    "{:.1} ms (minute {}, pair {}: {} engine events, {} resting orders filled{waited})",
                    s.ns as f64 / 1e6,
                    s.minute,
                    s.pair,
                    s.events,
                    s.fills
                )
            })
            .collect();
        println!("         slowest candle steps: {}", slowest.join("; "));
        if !bench {
            assert!(c.fills > c.deals_opened && c.take_profits > 0, "the smoke run did no real work: {c:?}");
        }
        if let Some(previous) = &last_counts
            && previous != c
        {
            println!("         (the work differs from the previous round: the replay is not deterministic)");
        }
        last_counts = Some(r.counts);
        figures.push(f);
    }

    println!("\nmedian of {} rounds (min..max):", scale.rounds);
    for (i, (name, _)) in figures[0].iter().enumerate() {
        let (median, min, max) = median_min_max(figures.iter().map(|f| f[i].1).collect());
        println!("  {name:<54} {median:>12.3}  ({min:.3}..{max:.3})");
    }
    let allowed = scale.minutes as f64;
    let (wall, _, _) = median_min_max(
        figures.iter().flatten().filter(|(n, _)| n.starts_with("replay wall")).map(|(_, v)| *v).collect(),
    );
    println!(
        "\n60x replay: {} minutes of market may take {allowed:.0} s; the engine and the fill model took {wall:.3} s \
         ({:.0}x faster than 60x needs)",
        scale.minutes,
        allowed / wall
    );
    println!(
        "targets (B6): candle-to-decision p99 < 10 ms; <= 64 KiB per idle bot (measured: {:.2} KiB)",
        memory.with_deals as f64 / 1024.0 / scale.bots() as f64
    );
}

fn median_min_max(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// p50, p99 and max of nanosecond samples (nearest rank).
fn spread_of(samples: &[u64]) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = |q: f64| {
        let r = (q * sorted.len() as f64).ceil() as usize;
        sorted[r.clamp(1, sorted.len()) - 1] as f64
    };
    (rank(0.50), rank(0.99), sorted[sorted.len() - 1] as f64)
}

/// The wall clock, for measuring only: the engine under test never reads it (its time comes in
/// with each event), which is what the crate's `clippy.toml` guards.
#[allow(clippy::disallowed_methods)]
fn stopwatch() -> Instant {
    Instant::now()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let resident: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("resident pages");
    resident * PAGE_BYTES
}

// ---------------------------------------------------------------------------------------------
// Market data

#[derive(Debug, Clone, Copy)]
struct Candle {
    high: Decimal,
    low: Decimal,
    close: Decimal,
}

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn seeded(stream: usize) -> Rng {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (stream as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        for _ in 0..8 {
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi` (the modulo bias is below 2^-50).
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// The market: for each minute, each pair's candle.
fn tape(pairs: usize, minutes: usize) -> Vec<Vec<Candle>> {
    let paths: Vec<Vec<Candle>> = (0..pairs).map(|p| candle_path(p, minutes)).collect();
    (0..minutes).map(|m| paths.iter().map(|path| path[m]).collect()).collect()
}

/// A pair's one-minute candles: open = previous close, prices in cents on the 0.01 tick.
fn candle_path(pair: usize, minutes: usize) -> Vec<Candle> {
    let mut rng = Rng::seeded(pair);
    // 100.00 to 50,000.00
    let mut close: i64 = 10_000 * rng.between(1, 500);
    (0..minutes)
        .map(|_| {
            let open = close;
            close = ((open * (10_000 + rng.between(-40, 40)) + 5_000) / 10_000).max(100);
            let high = open.max(close) * (10_000 + rng.between(0, 20)) / 10_000;
            let low = (open.min(close) * (10_000 - rng.between(0, 20)) / 10_000).max(1);
            Candle { high: Decimal::new(high, 2), low: Decimal::new(low, 2), close: Decimal::new(close, 2) }
        })
        .collect()
}

fn btcusdt_filters() -> MarketFilters {
    MarketFilters {
        tick_size: Some(Decimal::new(1, 2)),
        min_price: Some(Decimal::new(1, 2)),
        max_price: Some(Decimal::new(1_000_000, 0)),
        step_size: Some(Decimal::new(1, 5)),
        min_qty: Some(Decimal::new(1, 5)),
        max_qty: Some(Decimal::new(9_000, 0)),
        min_notional: Some(Decimal::new(5, 0)),
        max_notional: None,
        max_num_orders: Some(200),
    }
}

fn at_minute(minute: usize) -> Timestamp {
    Timestamp::from_unix_millis(T0_MS + 60_000 * minute as i64)
}

// ---------------------------------------------------------------------------------------------
// Engine and bots

/// Ids from a counter in the first four bytes (the part a client order id shows), `tag` apart.
fn id_bytes(n: u32, tag: u8) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[15] = tag;
    bytes
}

fn new_engine(pairs: &[Pair]) -> Engine {
    let mut next: u32 = 0;
    let mut engine = Engine::new(Box::new(move || {
        next += 1;
        DealId::from_random_bytes(id_bytes(next, 0xD))
    }));
    for pair in pairs {
        engine.set_market(pair.clone(), btcusdt_filters());
    }
    engine
}

/// Bot `j` of a pair: Example A of `spec/dca.md` with its direction, stop loss, step and take
/// profit varied by `j`.
fn bot_settings(j: usize) -> BotSettings {
    let strategy = if j.is_multiple_of(2) { Strategy::Long } else { Strategy::Short };
    let stop_loss = if (j / 2).is_multiple_of(2) { Decimal::ZERO } else { Decimal::new(25, 1) };
    let step = Decimal::new(50 + 25 * ((j / 4) % 4) as i64, 2);
    let take_profit = Decimal::new(5 + 5 * ((j / 16) % 3) as i64, 1);
    BotSettings {
        dca: DcaSettings::new(DcaSettingsInput {
            base_order_volume: Decimal::TEN,
            base_order_volume_type: VolumeType::QuoteCurrency,
            safety_order_volume: Decimal::TEN,
            safety_order_volume_type: VolumeType::QuoteCurrency,
            max_safety_orders: 3,
            active_safety_orders_count: 2,
            safety_order_step_percentage: step,
            martingale_step_coefficient: Decimal::ONE,
            martingale_volume_coefficient: Decimal::ONE,
            take_profit,
            take_profit_type: TakeProfitType::Total,
            strategy,
        })
        .and_then(|dca| {
            let stop_loss = StopLoss::new(stop_loss, 0, false, false, StopLossType::StopLoss)?;
            dca.with_exits(ExitSettings { stop_loss, ..ExitSettings::default() })
        })
        .expect("Example A-like settings"),
        start_order_type: OrderKind::Market,
        cooldown_seconds: 0,
        max_active_deals: 1,
        allowed_deals_on_same_pair: 1,
        start_condition: StartCondition::Asap,
        take_profit_enabled: true,
    }
}

/// The bot's settings as stored (3Commas names); each deal keeps a copy.
fn settings_json(pair: &Pair, s: &BotSettings) -> String {
    let d = &s.dca;
    format!(
        r#"{{"pairs":["{}"],"base_order_volume":"{}","base_order_volume_type":"quote_currency","safety_order_volume":"{}","safety_order_volume_type":"quote_currency","max_safety_orders":{},"active_safety_orders_count":{},"safety_order_step_percentage":"{}","martingale_step_coefficient":"{}","martingale_volume_coefficient":"{}","take_profit":"{}","take_profit_type":"total","strategy":"{}","start_order_type":"market","stop_loss_percentage":"{}","stop_loss_timeout_enabled":false,"stop_loss_timeout_in_seconds":0,"cooldown":0,"max_active_deals":1,"allowed_deals_on_same_pair":1,"strategy_list":[{{"strategy":"nonstop"}}]}}"#,
        pair.to_3commas(),
        d.base_order_volume(),
        d.safety_order_volume(),
        d.max_safety_orders(),
        d.active_safety_orders_count(),
        d.safety_order_step_percentage(),
        d.martingale_step_coefficient(),
        d.martingale_volume_coefficient(),
        d.take_profit(),
        if d.strategy() == Strategy::Long { "long" } else { "short" },
        s.dca.stop_loss().percentage(),
    )
}

fn add_bots(engine: &mut Engine, scale: &Scale, pairs: &[Pair]) {
    let created = at_minute(0);
    for (p, pair) in pairs.iter().enumerate() {
        for j in 0..scale.bots_per_pair {
            let n = u32::try_from(p * scale.bots_per_pair + j).expect("bot count");
            let settings = bot_settings(j);
            engine.upsert_bot(BotState {
                bot: Bot {
                    id: BotId::from_random_bytes(id_bytes(n, 0xB)),
                    user_id: UserId::from_random_bytes(id_bytes(n / 10, 0x5)),
                    exchange_account_id: ExchangeAccountId::from_random_bytes(id_bytes(n / 10, 0xA)),
                    name: format!("B6 {} #{j}", pair.to_3commas()),
                    pairs: vec![pair.clone()],
                    enabled: true,
                    disabled_reason: None,
                    settings: settings_json(pair, &settings),
                    created_at: created,
                    updated_at: created,
                },
                settings,
                last_closed_at: None,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The venue the bench plays

type Key = (Decimal, u64);

struct Resting {
    client_order_id: String,
    qty: Decimal,
    role: OrderRole,
}

#[derive(Default)]
struct Book {
    buys: BTreeMap<Key, Resting>,
    sells: BTreeMap<Key, Resting>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    events: u64,
    candles: u64,
    order_reports: u64,
    timers: u64,
    saves: u64,
    placed_market: u64,
    placed_limit: u64,
    fills: u64,
    resting_fills: u64,
    cancels: u64,
    unknown_cancels: u64,
    deals_opened: u64,
    take_profits: u64,
    stop_losses: u64,
    dropped: u64,
}

struct Venue {
    /// False: limit orders are acknowledged but not kept (the memory phase, which only opens deals).
    keep_book: bool,
    filters: MarketFilters,
    pair_index: HashMap<Pair, usize>,
    books: Vec<Book>,
    /// Each pair's last close.
    price: Vec<Decimal>,
    /// Where each resting order sits, for cancels. A `BTreeMap`: a `HashMap` with this much churn
    /// stalls for milliseconds whenever it rehashes, which would show in the bench's own latency.
    resting: BTreeMap<String, (usize, Side, Key)>,
    seq: u64,
    queue: VecDeque<(DealId, Command)>,
    crossed: Vec<(Side, Key)>,
    /// Time spent inside `Engine::handle`: in all, for `Event::Order`, and each `Event::Candle` call.
    in_engine: Duration,
    in_order_reports: Duration,
    candle_calls_ns: Vec<u64>,
    counts: Counts,
}

fn fee(amount: Decimal) -> Decimal {
    (amount / Decimal::ONE_THOUSAND).round_dp(8)
}

impl Venue {
    fn new(pairs: &[Pair], keep_book: bool) -> Venue {
        Venue {
            keep_book,
            filters: btcusdt_filters(),
            pair_index: pairs.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect(),
            books: pairs.iter().map(|_| Book::default()).collect(),
            price: vec![Decimal::ZERO; pairs.len()],
            resting: BTreeMap::new(),
            seq: 0,
            queue: VecDeque::new(),
            crossed: Vec::new(),
            in_engine: Duration::ZERO,
            in_order_reports: Duration::ZERO,
            candle_calls_ns: Vec::new(),
            counts: Counts::default(),
        }
    }

    fn handle(&mut self, engine: &mut Engine, now: Timestamp, event: Event) -> Output {
        let (candle, report) = (matches!(event, Event::Candle { .. }), matches!(event, Event::Order(_)));
        let start = stopwatch();
        let out = engine.handle(now, event).expect("the engine takes market events and order reports");
        let took = start.elapsed();
        self.in_engine += took;
        if candle {
            self.candle_calls_ns.push(nanos(took));
        } else if report {
            self.in_order_reports += took;
        }
        self.counts.events += 1;
        self.counts.saves += out.changed.len() as u64;
        out
    }

    fn venue_order_id(&mut self) -> String {
        self.seq += 1;
        (10_000_000_000 + self.seq).to_string()
    }

    fn report(
        &mut self,
        client_order_id: String,
        status: OrderStatus,
        fill: Option<(Side, Decimal, Decimal)>,
    ) -> OrderUpdate {
        let (executed_qty, executed_quote, fee_base, fee_quote) = match fill {
            None => (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO),
            Some((side, qty, price)) => {
                let quote = (qty * price).round_dp(8);
                match side {
                    Side::Buy => (qty, quote, fee(qty), Decimal::ZERO),
                    Side::Sell => (qty, quote, Decimal::ZERO, fee(quote)),
                }
            }
        };
        OrderUpdate {
            client_order_id,
            venue_order_id: self.venue_order_id(),
            status,
            executed_qty,
            executed_quote,
            fee_base,
            fee_quote,
        }
    }

    fn count_fill(&mut self, role: OrderRole) {
        self.counts.fills += 1;
        match role {
            OrderRole::TakeProfit => self.counts.take_profits += 1,
            OrderRole::Close => self.counts.stop_losses += 1,
            _ => {}
        }
    }

    fn place(&mut self, engine: &Engine, deal: DealId, client_order_id: String) -> OrderUpdate {
        let intent =
            engine.deal(deal).and_then(|b| b.order(&client_order_id)).expect("a placed order is recorded first");
        let (side, kind, limit, role) = (intent.side, intent.kind, intent.price, intent.role);
        let (quantity, quote) = (intent.quantity, intent.quote_amount);
        let p = self.pair_index[&intent.pair];
        let price = self.price[p];
        if role == OrderRole::Base {
            self.counts.deals_opened += 1;
        }
        match kind {
            OrderKind::Market => {
                self.counts.placed_market += 1;
                let qty = quantity.unwrap_or_else(|| {
                    self.filters.round_qty(quote.unwrap_or_default().checked_div(price).unwrap_or_default())
                });
                self.count_fill(role);
                self.report(client_order_id, OrderStatus::Filled, Some((side, qty, price)))
            }
            OrderKind::Limit => {
                self.counts.placed_limit += 1;
                let qty = quantity.expect("a limit order has a quantity");
                let crosses = match side {
                    Side::Buy => price <= limit,
                    Side::Sell => price >= limit,
                };
                if crosses {
                    self.count_fill(role);
                    return self.report(client_order_id, OrderStatus::Filled, Some((side, qty, limit)));
                }
                if self.keep_book {
                    self.seq += 1;
                    let key = (limit, self.seq);
                    self.resting.insert(client_order_id.clone(), (p, side, key));
                    let book = &mut self.books[p];
                    let resting = Resting { client_order_id: client_order_id.clone(), qty, role };
                    match side {
                        Side::Buy => book.buys.insert(key, resting),
                        Side::Sell => book.sells.insert(key, resting),
                    };
                }
                self.report(client_order_id, OrderStatus::New, None)
            }
        }
    }

    fn cancel(&mut self, client_order_id: String) -> Option<OrderUpdate> {
        if self.keep_book {
            let Some((p, side, key)) = self.resting.remove(&client_order_id) else {
                self.counts.unknown_cancels += 1;
                return None;
            };
            let book = &mut self.books[p];
            match side {
                Side::Buy => book.buys.remove(&key),
                Side::Sell => book.sells.remove(&key),
            };
        }
        self.counts.cancels += 1;
        Some(self.report(client_order_id, OrderStatus::Canceled, None))
    }

    /// Carries out `out`'s commands and everything their answers cause.
    fn carry_out(&mut self, engine: &mut Engine, now: Timestamp, out: Output) {
        self.queue.extend(out.commands);
        while let Some((deal, command)) = self.queue.pop_front() {
            let update = match command {
                Command::Place(id) => Some(self.place(engine, deal, id)),
                Command::Cancel(id) => self.cancel(id),
            };
            if let Some(update) = update {
                self.counts.order_reports += 1;
                let out = self.handle(engine, now, Event::Order(update));
                self.queue.extend(out.commands);
            }
        }
    }

    /// One pair's candle: the resting orders it reaches fill at their limit (sells first: open →
    /// high → low → close), each answer fed back and its consequences carried out; then the candle.
    fn candle(&mut self, engine: &mut Engine, now: Timestamp, p: usize, pair: Pair, candle: Candle) {
        self.price[p] = candle.close;
        let mut crossed = std::mem::take(&mut self.crossed);
        crossed.clear();
        let book = &self.books[p];
        crossed.extend(book.sells.range(..=(candle.high, u64::MAX)).map(|(k, _)| (Side::Sell, *k)));
        crossed.extend(book.buys.range((candle.low, 0)..).rev().map(|(k, _)| (Side::Buy, *k)));
        for &(side, key) in &crossed {
            let book = &mut self.books[p];
            // Gone when the deal canceled it after an earlier fill of this candle.
            let Some(order) = (match side {
                Side::Buy => book.buys.remove(&key),
                Side::Sell => book.sells.remove(&key),
            }) else {
                continue;
            };
            self.resting.remove(&order.client_order_id);
            self.counts.resting_fills += 1;
            self.count_fill(order.role);
            let update = self.report(order.client_order_id, OrderStatus::Filled, Some((side, order.qty, key.0)));
            self.counts.order_reports += 1;
            let out = self.handle(engine, now, Event::Order(update));
            self.carry_out(engine, now, out);
        }
        self.crossed = crossed;
        self.counts.candles += 1;
        let out =
            self.handle(engine, now, Event::Candle { pair, high: candle.high, low: candle.low, close: candle.close });
        self.carry_out(engine, now, out);
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

struct Memory {
    before: u64,
    bots_only: u64,
    with_deals: u64,
    deals: usize,
    orders: usize,
    resting: usize,
}

fn memory(scale: &Scale, pairs: &[Pair], tape: &[Vec<Candle>]) -> Memory {
    let mut engine = new_engine(pairs);
    let mut venue = Venue::new(pairs, false);
    let before = rss_bytes();
    add_bots(&mut engine, scale, pairs);
    let with_bots = rss_bytes();
    for (p, (pair, candle)) in pairs.iter().zip(&tape[0]).enumerate() {
        venue.candle(&mut engine, at_minute(0), p, pair.clone(), *candle);
    }
    engine.drop_settled();
    let with_deals = rss_bytes();
    let deals = engine.deals().count();
    let orders = engine.deals().map(|d| d.orders.len()).sum();
    let resting = engine.deals().flat_map(|d| &d.orders).filter(|o| o.state == domain::IntentState::Open).count();
    Memory {
        before,
        bots_only: with_bots.saturating_sub(before),
        with_deals: with_deals.saturating_sub(before),
        deals,
        orders,
        resting,
    }
}

// ---------------------------------------------------------------------------------------------
// The timed replay

struct Round {
    candle_ns: Vec<u64>,
    candle_engine_ns: Vec<u64>,
    timer_ns: Vec<u64>,
    drop_ns: Vec<u64>,
    opening_ns: Vec<u64>,
    wall: Duration,
    engine: Duration,
    order_reports: Duration,
    /// Each `Event::Candle` call alone, without the reports of the fills around it.
    candle_calls_ns: Vec<u64>,
    /// The slowest candle steps, slowest first.
    slowest: Vec<Slow>,
    counts: Counts,
    opened_at_start: u64,
    deals_at_end: usize,
    orders_at_end: usize,
    resting_at_end: usize,
}

/// How many of the slowest candle steps a round reports.
const SLOWEST: usize = 3;

/// One slow candle step: how long it took and what it did.
struct Slow {
    ns: u64,
    minute: usize,
    pair: usize,
    events: u64,
    fills: u64,
    /// Time this thread waited for a CPU meanwhile (with `--sched`).
    waited_ns: u64,
}

/// This thread's time spent runnable but waiting for a CPU so far (`/proc/thread-self/schedstat`).
fn run_queue_wait_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn replay(scale: &Scale, pairs: &[Pair], tape: &[Vec<Candle>]) -> Round {
    let mut engine = new_engine(pairs);
    let mut venue = Venue::new(pairs, true);
    add_bots(&mut engine, scale, pairs);

    // Minute 0: every bot opens its deal.
    let mut opening_ns = Vec::with_capacity(pairs.len());
    for (p, (pair, candle)) in pairs.iter().zip(&tape[0]).enumerate() {
        let start = stopwatch();
        venue.candle(&mut engine, at_minute(0), p, pair.clone(), *candle);
        opening_ns.push(nanos(start.elapsed()));
    }
    engine.drop_settled();
    let opened_at_start = venue.counts.deals_opened;
    venue.counts = Counts::default();
    venue.in_engine = Duration::ZERO;
    venue.in_order_reports = Duration::ZERO;
    venue.candle_calls_ns.clear();

    let samples = scale.minutes * pairs.len();
    let mut candle_ns = Vec::with_capacity(samples);
    let mut candle_engine_ns = Vec::with_capacity(samples);
    let mut timer_ns = Vec::with_capacity(scale.minutes);
    let mut drop_ns = Vec::with_capacity(scale.minutes);
    let mut slowest: Vec<Slow> = Vec::new();
    let replay_start = stopwatch();
    for (minute, candles) in tape.iter().enumerate().skip(1) {
        let now = at_minute(minute);
        for (p, (pair, candle)) in pairs.iter().zip(candles).enumerate() {
            let pair = pair.clone();
            let (in_engine, events, fills) = (venue.in_engine, venue.counts.events, venue.counts.resting_fills);
            let waited = if scale.sched { run_queue_wait_ns() } else { 0 };
            let start = stopwatch();
            venue.candle(&mut engine, now, p, pair, *candle);
            let took = nanos(start.elapsed());
            let waited = if scale.sched { run_queue_wait_ns().saturating_sub(waited) } else { 0 };
            candle_ns.push(took);
            candle_engine_ns.push(nanos(venue.in_engine - in_engine));
            if slowest.len() < SLOWEST || took > slowest[SLOWEST - 1].ns {
                let events = venue.counts.events - events;
                let fills = venue.counts.resting_fills - fills;
                slowest.push(Slow { ns: took, minute, pair: p, events, fills, waited_ns: waited });
                slowest.sort_by_key(|s| std::cmp::Reverse(s.ns));
                slowest.truncate(SLOWEST);
            }
        }
        let start = stopwatch();
        venue.counts.timers += 1;
        let out = venue.handle(&mut engine, now, Event::Timer);
        venue.carry_out(&mut engine, now, out);
        timer_ns.push(nanos(start.elapsed()));
        let start = stopwatch();
        venue.counts.dropped += engine.drop_settled().len() as u64;
        drop_ns.push(nanos(start.elapsed()));
    }
    let wall = replay_start.elapsed();

    Round {
        candle_ns,
        candle_engine_ns,
        timer_ns,
        drop_ns,
        opening_ns,
        wall,
        engine: venue.in_engine,
        order_reports: venue.in_order_reports,
        candle_calls_ns: std::mem::take(&mut venue.candle_calls_ns),
        slowest,
        opened_at_start,
        deals_at_end: engine.deals().count(),
        orders_at_end: engine.deals().map(|d| d.orders.len()).sum(),
        resting_at_end: venue.resting.len(),
        counts: venue.counts,
    }
}
