//! A price chart as SVG, drawn here from one-minute candles: candlesticks, the highest and lowest
//! price, the last price, and optionally markers for a deal's orders. Coordinates are computed in `Decimal` like every other use of a price
//! (no `f64`), then rounded to a tenth of a pixel.

use std::fmt::Write as _;

use domain::{Decimal, Side, Timestamp};
use exchange::Candle;

const WIDTH: i64 = 720;
const HEIGHT: i64 = 240;
const LEFT: i64 = 8;
const RIGHT: i64 = 96;
const TOP: i64 = 24;
const BOTTOM: i64 = 16;

/// One order drawn over the candles: a triangle at its price (pointing up for a buy, down for a
/// sell), filled once the order traded, hollow with a dashed line across the plot while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The limit price of a waiting order, the average fill price of one that traded.
    pub price: Decimal,
    pub side: Side,
    /// Traded (in full or in part); otherwise waiting on the book.
    pub filled: bool,
    /// When it traded: the triangle sits on that minute's candle (the nearest one inside the
    /// chart). A waiting order is drawn at the right edge.
    pub at: Option<Timestamp>,
    /// A few words drawn beside it, such as `SO2` (escaped here).
    pub label: String,
}

/// The chart of `candles` (oldest first) for `title` (a pair such as `USDT_BTC`, already validated
/// as letters, digits and `_`).
pub fn candles_svg(title: &str, candles: &[Candle]) -> String {
    candles_with_markers_svg(title, candles, &[])
}

/// The chart of `candles` with `markers` for orders on it. The price range covers the candles and
/// every marker, so an order far from the market is still seen. The root element carries the last
/// price as `data-last-price` for a page that wants it as a number.
pub fn candles_with_markers_svg(title: &str, candles: &[Candle], markers: &[Marker]) -> String {
    let last = candles.last().map(|c| c.close);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"{title} price, one-minute candles{}\"{} font-family=\"system-ui, sans-serif\" font-size=\"12\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\
         <text x=\"{LEFT}\" y=\"16\" fill=\"#333\">{title} · 1m</text>",
        if markers.is_empty() { "" } else { ", with the deal's orders" },
        last.map(|p| format!(" data-last-price=\"{}\"", p.normalize())).unwrap_or_default(),
    );
    let candle_high = candles.iter().map(|c| c.high).max();
    let candle_low = candles.iter().map(|c| c.low).min();
    let (Some(candle_high), Some(candle_low)) = (candle_high, candle_low) else {
        let _ =
            write!(svg, "<text x=\"{}\" y=\"{}\" fill=\"#777\">No prices yet</text></svg>", WIDTH / 2 - 40, HEIGHT / 2);
        return svg;
    };
    let high = markers.iter().map(|m| m.price).fold(candle_high, Decimal::max);
    let low = markers.iter().map(|m| m.price).fold(candle_low, Decimal::min);
    let span = if high > low { high - low } else { Decimal::ONE };
    // With markers, room above the plot for the legend and a sell triangle at the top.
    let top = if markers.is_empty() { TOP } else { TOP + 14 };
    let plot_h = Decimal::from(HEIGHT - top - BOTTOM);
    let y = |price: Decimal| -> Decimal { (Decimal::from(top) + (high - price) / span * plot_h).round_dp(1) };
    let n = Decimal::from(i64::try_from(candles.len()).unwrap_or(i64::MAX));
    let slot = Decimal::from(WIDTH - LEFT - RIGHT) / n;
    let body_w = (slot * Decimal::new(7, 1)).round_dp(1).max(Decimal::ONE);
    let middle = |i: usize| {
        (Decimal::from(LEFT) + slot * Decimal::from(i64::try_from(i).unwrap_or(0)) + slot / Decimal::TWO).round_dp(1)
    };
    for (i, candle) in candles.iter().enumerate() {
        let mid = middle(i);
        let rising = candle.close >= candle.open;
        let color = if rising { "#1a7f37" } else { "#cf222e" };
        let (top, bottom) = if rising { (candle.close, candle.open) } else { (candle.open, candle.close) };
        let body_h = (y(bottom) - y(top)).max(Decimal::ONE);
        let _ = write!(
            svg,
            "<line x1=\"{mid}\" x2=\"{mid}\" y1=\"{}\" y2=\"{}\" stroke=\"{color}\"/>\
             <rect x=\"{}\" y=\"{}\" width=\"{body_w}\" height=\"{body_h}\" fill=\"{color}\"/>",
            y(candle.high),
            y(candle.low),
            (mid - body_w / Decimal::TWO).round_dp(1),
            y(top),
        );
    }
    let plot_right = Decimal::from(WIDTH - RIGHT);
    for marker in markers {
        // The candle of the minute it traded in: the last one opened at or before that time.
        let x = match marker.at.filter(|_| marker.filled) {
            Some(at) => middle(candles.iter().rposition(|c| c.open_time <= at).unwrap_or(0)),
            None => plot_right - Decimal::from(6),
        };
        draw_marker(&mut svg, marker, x, y(marker.price));
    }
    let label_x = WIDTH - RIGHT + 6;
    let last = last.unwrap_or(Decimal::ZERO);
    let _ = write!(
        svg,
        "<text x=\"{label_x}\" y=\"{}\" fill=\"#555\">{}</text>\
         <text x=\"{label_x}\" y=\"{}\" fill=\"#555\">{}</text>\
         <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#0969da\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{label_x}\" y=\"{}\" fill=\"#0969da\" font-weight=\"bold\">{}</text>",
        y(high) + Decimal::from(4),
        high.normalize(),
        y(low),
        low.normalize(),
        WIDTH - RIGHT,
        y(last),
        y(last),
        y(last) + Decimal::from(4),
        last.normalize(),
    );
    if !markers.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"16\" fill=\"#555\" text-anchor=\"end\">\
             <tspan fill=\"{BUY}\">▲ buy</tspan> <tspan fill=\"{SELL}\">▼ sell</tspan> · filled ▲, waiting △</text>",
            WIDTH - RIGHT,
        );
    }
    svg.push_str("</svg>");
    svg
}

const BUY: &str = "#0a6b3d";
const SELL: &str = "#b3261e";

/// A triangle with its tip at (`x`, `y`): pointing up from below for a buy, down from above for a
/// sell. A waiting order also gets a dashed line across the plot at its price.
fn draw_marker(svg: &mut String, marker: &Marker, x: Decimal, y: Decimal) {
    let (color, side, dir) = match marker.side {
        Side::Buy => (BUY, "buy", Decimal::ONE),
        Side::Sell => (SELL, "sell", -Decimal::ONE),
    };
    let half = Decimal::from(5);
    let depth = Decimal::from(9) * dir;
    let state = if marker.filled { "filled" } else { "open" };
    let fill = if marker.filled { color } else { "#ffffff" };
    if !marker.filled {
        let _ = write!(
            svg,
            "<line class=\"marker-line {side}\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{color}\" \
             stroke-dasharray=\"2 3\" stroke-opacity=\"0.8\"/>",
            WIDTH - RIGHT,
        );
    }
    let label = escape(&marker.label);
    let _ = write!(
        svg,
        "<polygon class=\"marker {side} {state}\" points=\"{x},{y} {},{} {},{}\" fill=\"{fill}\" stroke=\"{color}\" \
         stroke-width=\"1.5\"><title>{label} {side} {state} at {}</title></polygon>",
        x - half,
        y + depth,
        x + half,
        y + depth,
        marker.price.normalize(),
    );
    if !label.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\" font-size=\"10\" text-anchor=\"end\">{label}</text>",
            x - half - Decimal::from(2),
            y + depth / Decimal::TWO + Decimal::from(3),
        );
    }
}

/// Text for inside an SVG element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(minute: i64, open: i64, high: i64, low: i64, close: i64) -> Candle {
        Candle {
            open_time: Timestamp::from_unix_millis(minute * 60_000),
            open: Decimal::from(open),
            high: Decimal::from(high),
            low: Decimal::from(low),
            close: Decimal::from(close),
            volume: Decimal::ONE,
        }
    }

    #[test]
    fn candles_are_drawn_inside_the_plot_with_rising_and_falling_colours() {
        let svg = candles_svg("USDT_BTC", &[candle(0, 100, 110, 95, 105), candle(1, 105, 106, 90, 92)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect x=").count(), 2, "{svg}");
        assert!(svg.contains("#1a7f37") && svg.contains("#cf222e"), "one rising, one falling");
        // The highest high sits at the top of the plot, the lowest low at its bottom.
        assert!(svg.contains(&format!("y1=\"{TOP}\"")) || svg.contains(&format!("y1=\"{TOP}.0\"")), "{svg}");
        assert!(svg.contains(">110<") && svg.contains(">90<") && svg.contains(">92<"), "labels: {svg}");
        assert!(!svg.contains("script"));
    }

    #[test]
    fn no_candles_say_so() {
        assert!(candles_svg("USDT_ETH", &[]).contains("No prices yet"));
    }

    #[test]
    fn the_root_names_the_last_price() {
        let svg = candles_svg("USDT_BTC", &[candle(0, 100, 110, 95, 105), candle(1, 105, 106, 90, 92)]);
        assert!(svg.contains(" data-last-price=\"92\""), "{svg}");
        assert!(!candles_svg("USDT_BTC", &[]).contains("data-last-price"));
    }

    #[test]
    fn markers_are_drawn_by_side_and_state_within_the_range() {
        let marker = |price: i64, side: Side, filled: bool, minute: Option<i64>, label: &str| Marker {
            price: Decimal::from(price),
            side,
            filled,
            at: minute.map(|m| Timestamp::from_unix_millis(m * 60_000 + 30_000)),
            label: label.to_owned(),
        };
        let markers = [
            marker(100, Side::Buy, true, Some(1), "BO"),
            marker(80, Side::Buy, false, None, "SO1"),
            marker(120, Side::Sell, false, None, "TP <1>"),
            marker(99, Side::Sell, true, Some(99), "close"),
        ];
        let svg = candles_with_markers_svg(
            "USDT_BTC",
            &[candle(0, 100, 110, 95, 105), candle(1, 105, 106, 90, 92), candle(2, 92, 95, 91, 93)],
            &markers,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<polygon class=\"marker buy filled\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("<polygon class=\"marker buy open\"").count(), 1);
        assert_eq!(svg.matches("<polygon class=\"marker sell open\"").count(), 1);
        assert_eq!(svg.matches("<polygon class=\"marker sell filled\"").count(), 1);
        assert_eq!(svg.matches("class=\"marker-line").count(), 2, "a dashed line per waiting order");
        assert_eq!(svg.matches("<rect x=").count(), 3, "the candles are still drawn");
        // The range reaches the orders beyond the candles: 120 at the top, 80 at the bottom.
        assert!(svg.contains(">120<") && svg.contains(">80<"), "{svg}");
        assert!(svg.contains("TP &lt;1&gt;") && !svg.contains("TP <1>"), "labels are escaped");
        // The base order sits on the second candle (its middle is 8 + 1.5 × 616 / 3 = 316).
        assert!(svg.contains("points=\"316"), "{svg}");
        assert!(!svg.contains("script"));
    }

    #[test]
    fn markers_without_candles_say_there_are_no_prices() {
        let marker = Marker { price: Decimal::ONE, side: Side::Buy, filled: false, at: None, label: String::new() };
        let svg = candles_with_markers_svg("USDT_BTC", &[], &[marker]);
        assert!(svg.contains("No prices yet") && !svg.contains("polygon"), "{svg}");
    }
}
