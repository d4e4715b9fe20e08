//! One-minute candles: the unit of the simulated market. A price path produces one per step, a
//! replay reads them from a CSV file in Binance's kline column order, and `GET /api/v3/klines`
//! answers from the candles a symbol has seen, aggregated to the interval asked for.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// One minute in milliseconds: the span of every candle the simulator produces or replays.
pub(crate) const MINUTE_MS: i64 = 60_000;
/// Timestamps from this value on are microseconds (Binance's spot data files switched to them).
const MICROSECOND_TIMES_FROM: i64 = 1_000_000_000_000_000;
/// How many one-minute candles a symbol keeps for `klines` (a week); older ones are dropped.
pub(crate) const HISTORY_CAP: usize = 7 * 24 * 60;

/// A one-minute candle, with the fields of a Binance kline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Kline open time (ms since the Unix epoch).
    pub open_time_ms: i64,
    /// Open price.
    pub open: Decimal,
    /// High price.
    pub high: Decimal,
    /// Low price.
    pub low: Decimal,
    /// Close price.
    pub close: Decimal,
    /// Base volume: for a replay or a random walk also the most that resting orders can fill in
    /// this minute.
    pub volume: Decimal,
    /// Quote volume.
    pub quote_volume: Decimal,
    /// Number of trades.
    pub trades: u64,
    /// Taker buy base volume.
    pub taker_buy_volume: Decimal,
    /// Taker buy quote volume.
    pub taker_buy_quote_volume: Decimal,
}

impl Candle {
    /// A candle from the six columns every kline file has; the quote volume is estimated from the
    /// average of the four prices, half the volume counts as taker buys, and no trades are counted.
    pub fn new(open_time_ms: i64, open: Decimal, high: Decimal, low: Decimal, close: Decimal, volume: Decimal) -> Self {
        let typical = (open + high + low + close) / Decimal::from(4);
        let quote_volume = (volume * typical).round_dp(8);
        Self {
            open_time_ms,
            open,
            high,
            low,
            close,
            volume,
            quote_volume,
            trades: 0,
            taker_buy_volume: (volume / Decimal::TWO).round_dp(8),
            taker_buy_quote_volume: (quote_volume / Decimal::TWO).round_dp(8),
        }
    }

    /// Parses a CSV file of one-minute klines in Binance's column order: open time (ms, or µs as in
    /// Binance's newer data files), open, high, low, close, volume, then optionally close time,
    /// quote volume, number of trades, taker buy base volume, taker buy quote volume and an ignored
    /// column. Header lines before the first candle, blank lines and `#` comments are skipped.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadCandles`] naming the first bad line: too few columns, a value that is not
    /// a number, a non-positive price, a high below or a low above the other prices, a negative
    /// volume, open times that do not increase, or no candle at all.
    pub fn parse_csv(text: &str) -> Result<Vec<Self>, ConfigError> {
        let mut candles: Vec<Self> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let first_is_number = fields[0].bytes().all(|b| b.is_ascii_digit()) && !fields[0].is_empty();
            if candles.is_empty() && !first_is_number {
                continue; // a header line
            }
            let candle = parse_line(&fields).map_err(|reason| ConfigError::BadCandles { line: line_number, reason })?;
            if let Some(last) = candles.last()
                && candle.open_time_ms <= last.open_time_ms
            {
                return Err(ConfigError::BadCandles {
                    line: line_number,
                    reason: "open times must increase".to_owned(),
                });
            }
            candles.push(candle);
        }
        if candles.is_empty() {
            return Err(ConfigError::BadCandles { line: 0, reason: "the file holds no candle".to_owned() });
        }
        Ok(candles)
    }

    /// Checks the candle's own consistency; `Err` says what is wrong.
    pub(crate) fn check(&self) -> Result<(), String> {
        let prices = [self.open, self.high, self.low, self.close];
        if prices.iter().any(|price| *price <= Decimal::ZERO) {
            return Err("prices must be positive".to_owned());
        }
        if self.high < self.open.max(self.close) || self.low > self.open.min(self.close) || self.low > self.high {
            return Err("high must be the highest price and low the lowest".to_owned());
        }
        if self.volume.is_sign_negative() || self.quote_volume.is_sign_negative() {
            return Err("volumes must not be negative".to_owned());
        }
        Ok(())
    }

    /// The prices the market passes through within the candle: open, then the extreme nearer in
    /// direction of the close's opposite (low first for a rising candle, high first for a falling
    /// one), then the other extreme, then close.
    pub(crate) fn waypoints(&self) -> [Decimal; 4] {
        if self.close >= self.open {
            [self.open, self.low, self.high, self.close]
        } else {
            [self.open, self.high, self.low, self.close]
        }
    }

    /// Folds a later candle of the same bucket into this one.
    fn merge(&mut self, later: &Self) {
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.volume += later.volume;
        self.quote_volume += later.quote_volume;
        self.trades += later.trades;
        self.taker_buy_volume += later.taker_buy_volume;
        self.taker_buy_quote_volume += later.taker_buy_quote_volume;
    }
}

fn parse_line(fields: &[&str]) -> Result<Candle, String> {
    if fields.len() < 6 {
        return Err(format!("expected at least 6 columns, found {}", fields.len()));
    }
    let time: i64 = fields[0].parse().map_err(|_| format!("open time {:?} is not an integer", fields[0]))?;
    let open_time_ms = if time >= MICROSECOND_TIMES_FROM { time / 1_000 } else { time };
    let number = |column: usize, name: &str| -> Result<Decimal, String> {
        let raw = fields[column];
        Decimal::from_str(raw)
            .or_else(|_| Decimal::from_scientific(raw))
            .map_err(|_| format!("{name} {raw:?} is not a number"))
    };
    let mut candle = Candle::new(
        open_time_ms,
        number(1, "open")?,
        number(2, "high")?,
        number(3, "low")?,
        number(4, "close")?,
        number(5, "volume")?,
    );
    if fields.len() >= 11 {
        candle.quote_volume = number(7, "quote volume")?;
        candle.trades = fields[8].parse().map_err(|_| format!("trade count {:?} is not an integer", fields[8]))?;
        candle.taker_buy_volume = number(9, "taker buy volume")?;
        candle.taker_buy_quote_volume = number(10, "taker buy quote volume")?;
    }
    candle.check()?;
    Ok(candle)
}

/// A kline interval of `GET /api/v3/klines` that the simulator can build from one-minute candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interval {
    length_ms: i64,
    /// Where buckets start relative to the epoch (weeks start on Monday; the epoch was a Thursday).
    offset_ms: i64,
}

impl Interval {
    /// Binance's interval names from one minute to one week. `1s` (finer than the simulator's
    /// candles) and `1M` (calendar months) are not offered; `None` for them and anything else.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        const HOUR: i64 = 60 * MINUTE_MS;
        const DAY: i64 = 24 * HOUR;
        let length_ms = match raw {
            "1m" => MINUTE_MS,
            "3m" => 3 * MINUTE_MS,
            "5m" => 5 * MINUTE_MS,
            "15m" => 15 * MINUTE_MS,
            "30m" => 30 * MINUTE_MS,
            "1h" => HOUR,
            "2h" => 2 * HOUR,
            "4h" => 4 * HOUR,
            "6h" => 6 * HOUR,
            "8h" => 8 * HOUR,
            "12h" => 12 * HOUR,
            "1d" => DAY,
            "3d" => 3 * DAY,
            "1w" => 7 * DAY,
            _ => return None,
        };
        let offset_ms = if raw == "1w" { 4 * DAY } else { 0 };
        Some(Self { length_ms, offset_ms })
    }

    pub(crate) fn length_ms(self) -> i64 {
        self.length_ms
    }

    /// The open time of the bucket holding `time_ms`.
    fn bucket(self, time_ms: i64) -> i64 {
        (time_ms - self.offset_ms).div_euclid(self.length_ms) * self.length_ms + self.offset_ms
    }
}

/// The one-minute candles of a symbol, sorted by open time, at most [`HISTORY_CAP`] of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CandleHistory {
    candles: Vec<Candle>,
}

impl CandleHistory {
    /// Adds a candle; one with the open time of a candle already kept is folded into it.
    pub(crate) fn record(&mut self, candle: &Candle) {
        match self.candles.binary_search_by_key(&candle.open_time_ms, |kept| kept.open_time_ms) {
            Ok(index) => self.candles[index].merge(candle),
            Err(index) => self.candles.insert(index, candle.clone()),
        }
        if self.candles.len() > HISTORY_CAP {
            let excess = self.candles.len() - HISTORY_CAP;
            self.candles.drain(..excess);
        }
    }

    /// Moves the price to `price` within the minute starting at `minute_ms` (a price set by hand).
    pub(crate) fn record_price(&mut self, minute_ms: i64, price: Decimal) {
        self.record(&Candle::new(minute_ms, price, price, price, price, Decimal::ZERO));
    }

    pub(crate) fn all(&self) -> &[Candle] {
        &self.candles
    }

    /// The klines of `interval` as `GET /api/v3/klines` selects them: with `start_ms` the first
    /// `limit` opening at or after it (and at or before `end_ms`), otherwise the last `limit`
    /// opening at or before `end_ms` (or the most recent ones); oldest first.
    pub(crate) fn klines(
        &self,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: usize,
    ) -> Vec<Candle> {
        let mut buckets: Vec<Candle> = Vec::new();
        for candle in &self.candles {
            let open_time_ms = interval.bucket(candle.open_time_ms);
            match buckets.last_mut() {
                Some(last) if last.open_time_ms == open_time_ms => last.merge(candle),
                _ => buckets.push(Candle { open_time_ms, ..candle.clone() }),
            }
        }
        let in_range = |candle: &Candle| {
            start_ms.is_none_or(|start| candle.open_time_ms >= start)
                && end_ms.is_none_or(|end| candle.open_time_ms <= end)
        };
        let selected: Vec<Candle> = buckets.into_iter().filter(in_range).collect();
        if start_ms.is_some() {
            selected.into_iter().take(limit).collect()
        } else {
            let skip = selected.len().saturating_sub(limit);
            selected.into_iter().skip(skip).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().expect("a decimal")
    }

    #[test]
    fn a_binance_kline_file_parses_with_or_without_the_optional_columns() {
        let text = "open_time,open,high,low,close,volume\n\
                    1624559520000,34970.90000000,35047.03000000,34800.01000000,35047.03000000,0.41947200,1624559579999,14686.87819470,37,0.41391700,14492.85555020,0\n\
                    \n\
                    1624559580000000,35047.03,35100,35000,35010.5,2\n";
        let candles = Candle::parse_csv(text).expect("parses");
        assert_eq!(candles.len(), 2);
        assert_eq!(candles[0].open_time_ms, 1_624_559_520_000);
        assert_eq!((candles[0].trades, candles[0].quote_volume), (37, d("14686.87819470")));
        assert_eq!(candles[1].open_time_ms, 1_624_559_580_000, "microseconds become milliseconds");
        assert_eq!((candles[1].low, candles[1].close, candles[1].volume), (d("35000"), d("35010.5"), d("2")));
    }

    #[test]
    fn bad_candle_files_name_the_line() {
        let bad = |text: &str| match Candle::parse_csv(text) {
            Err(ConfigError::BadCandles { line, .. }) => line,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(bad("1000,1,2,0.5,1.5,10\n2000,1,2,0.5\n"), 2, "too few columns");
        assert_eq!(bad("1000,1,2,0.5,1.5,10\n2000,1,0.9,0.5,1.5,10\n"), 2, "high below close");
        assert_eq!(bad("1000,1,2,0.5,1.5,10\n1000,1,2,0.5,1.5,10\n"), 2, "repeated open time");
        assert_eq!(bad("1000,1,2,x,1.5,10\n"), 1, "not a number");
        assert_eq!(bad("1000,0,2,0,1.5,10\n"), 1, "zero price");
        assert_eq!(bad("1000,1,2,0.5,1.5,-1\n"), 1, "negative volume");
        assert_eq!(bad("open,high\n"), 0, "no candle");
    }

    #[test]
    fn klines_aggregate_select_and_limit() {
        let mut history = CandleHistory::default();
        // Six minutes from 00:00 on 1970-01-05 (a Monday).
        let monday = 4 * 86_400_000;
        for minute in 0..6 {
            let base = Decimal::from(100 + minute);
            let candle = Candle::new(
                monday + minute * MINUTE_MS,
                base,
                base + Decimal::TWO,
                base - Decimal::ONE,
                base + Decimal::ONE,
                Decimal::ONE,
            );
            history.record(&candle);
        }
        let five = Interval::parse("5m").expect("5m");
        let klines = history.klines(five, None, None, 500);
        assert_eq!(klines.len(), 2);
        assert_eq!(
            (klines[0].open, klines[0].high, klines[0].low, klines[0].close),
            (d("100"), d("106"), d("99"), d("105"))
        );
        assert_eq!(klines[0].volume, d("5"));
        assert_eq!(klines[1].open_time_ms, monday + 5 * MINUTE_MS);
        let week = history.klines(Interval::parse("1w").expect("1w"), None, None, 10);
        assert_eq!(week[0].open_time_ms, monday, "weeks open on Monday");

        let minute = Interval::parse("1m").expect("1m");
        let latest = history.klines(minute, None, None, 2);
        assert_eq!(latest.iter().map(|c| c.open).collect::<Vec<_>>(), [d("104"), d("105")]);
        let from = history.klines(minute, Some(monday + MINUTE_MS), None, 2);
        assert_eq!(from.iter().map(|c| c.open).collect::<Vec<_>>(), [d("101"), d("102")]);
        let until = history.klines(minute, None, Some(monday + 2 * MINUTE_MS), 2);
        assert_eq!(until.iter().map(|c| c.open).collect::<Vec<_>>(), [d("101"), d("102")]);
        assert!(Interval::parse("1s").is_none() && Interval::parse("1M").is_none() && Interval::parse("2m").is_none());
    }

    #[test]
    fn a_price_set_by_hand_folds_into_its_minute() {
        let mut history = CandleHistory::default();
        history.record_price(0, d("10"));
        history.record_price(0, d("12"));
        history.record_price(0, d("9"));
        history.record_price(MINUTE_MS, d("11"));
        let all = history.all();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].open, all[0].high, all[0].low, all[0].close), (d("10"), d("12"), d("9"), d("9")));
    }

    #[test]
    fn the_history_keeps_a_week() {
        let mut history = CandleHistory::default();
        for minute in 0..(HISTORY_CAP as i64 + 5) {
            history.record_price(minute * MINUTE_MS, Decimal::ONE);
        }
        assert_eq!(history.all().len(), HISTORY_CAP);
        assert_eq!(history.all()[0].open_time_ms, 5 * MINUTE_MS);
    }
}
