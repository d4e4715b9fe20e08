//! A price chart as SVG, drawn here from one-minute candles: candlesticks, the highest and lowest
//! price, and the last price. Coordinates are computed in `Decimal` like every other use of a price
//! (no `f64`), then rounded to a tenth of a pixel.

use std::fmt::Write as _;

use domain::Decimal;
use exchange::Candle;

const WIDTH: i64 = 720;
const HEIGHT: i64 = 240;
const LEFT: i64 = 8;
const RIGHT: i64 = 96;
const TOP: i64 = 24;
const BOTTOM: i64 = 16;

/// The chart of `candles` (oldest first) for `title` (a pair such as `USDT_BTC`, already validated
/// as letters, digits and `_`).
pub fn candles_svg(title: &str, candles: &[Candle]) -> String {
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"{title} price, one-minute candles\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\
         <text x=\"{LEFT}\" y=\"16\" fill=\"#333\">{title} · 1m</text>"
    );
    let (Some(high), Some(low)) = (candles.iter().map(|c| c.high).max(), candles.iter().map(|c| c.low).min()) else {
        let _ =
            write!(svg, "<text x=\"{}\" y=\"{}\" fill=\"#777\">No prices yet</text></svg>", WIDTH / 2 - 40, HEIGHT / 2);
        return svg;
    };
    let span = if high > low { high - low } else { Decimal::ONE };
    let plot_h = Decimal::from(HEIGHT - TOP - BOTTOM);
    let y = |price: Decimal| -> Decimal { (Decimal::from(TOP) + (high - price) / span * plot_h).round_dp(1) };
    let n = Decimal::from(i64::try_from(candles.len()).unwrap_or(i64::MAX));
    let slot = Decimal::from(WIDTH - LEFT - RIGHT) / n;
    let body_w = (slot * Decimal::new(7, 1)).round_dp(1).max(Decimal::ONE);
    for (i, candle) in candles.iter().enumerate() {
        let x0 = Decimal::from(LEFT) + slot * Decimal::from(i64::try_from(i).unwrap_or(0));
        let mid = (x0 + slot / Decimal::TWO).round_dp(1);
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
    let label_x = WIDTH - RIGHT + 6;
    let last = candles.last().map_or(Decimal::ZERO, |c| c.close);
    let _ = write!(
        svg,
        "<text x=\"{label_x}\" y=\"{}\" fill=\"#555\">{}</text>\
         <text x=\"{label_x}\" y=\"{}\" fill=\"#555\">{}</text>\
         <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#0969da\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{label_x}\" y=\"{}\" fill=\"#0969da\" font-weight=\"bold\">{}</text></svg>",
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
    svg
}

#[cfg(test)]
mod tests {
    use domain::Timestamp;

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
}
