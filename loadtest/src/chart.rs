//! Small charts drawn as inline SVG for the HTML report: lines over time, stacked columns per
//! second, and labelled bars. No script and no external resource: the markup is the picture.
//!
//! Every chart has a title, axes with round tick values, and a legend; the output is
//! well-formed XML (every tag closed, text escaped) so it embeds in the XHTML-compatible page.

use std::fmt::Write as _;

/// Width of a chart, px.
const WIDTH: f64 = 880.0;
/// Height of a chart, px.
const HEIGHT: f64 = 260.0;
/// Plot margins: left (tick labels), right (legend), top (title), bottom (x ticks).
const LEFT: f64 = 64.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;

/// Colours of successive series.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Escapes text for HTML and XML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Longest legend entry, in characters.
const LEGEND_CHARS: usize = 24;

/// A legend entry that fits beside the plot: a long name (a target URL) keeps its end, where
/// the host, port and path differ.
fn legend_text(name: &str) -> String {
    let name = name
        .strip_prefix("http://")
        .or_else(|| name.strip_prefix("https://"))
        .unwrap_or(name);
    let count = name.chars().count();
    if count <= LEGEND_CHARS {
        return name.to_owned();
    }
    let tail: String = name.chars().skip(count - (LEGEND_CHARS - 1)).collect();
    format!("\u{2026}{tail}")
}

/// One named series of (x, y) points; a `None` y is a gap in the line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, Option<f64>)>,
}

/// The smallest 1-2-5 step number at least `value` (1 for nothing to show).
fn nice_ceiling(value: f64) -> f64 {
    if !(value.is_finite() && value > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|&v| v >= value * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// A tick label: integers plainly, small values with the decimals they need.
fn tick(value: f64) -> String {
    if value == 0.0 || value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').to_owned()
    }
}

/// A plot frame: title, y axis from 0 to `y_max` in `y_unit`, x axis from 0 to `x_max` in
/// `x_unit`, gridlines; returns the opening markup (the caller adds marks and closes it).
struct Frame {
    x_max: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, x: f64) -> f64 {
        LEFT + (x / self.x_max) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, y: f64) -> f64 {
        HEIGHT - BOTTOM - (y / self.y_max) * (HEIGHT - TOP - BOTTOM)
    }

    fn open(&self, out: &mut String, title: &str, x_unit: &str, y_unit: &str) {
        let _ = write!(
            out,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" \
             height=\"{HEIGHT}\" role=\"img\" aria-label=\"{t}\">\
             <title>{t}</title>\
             <text x=\"{LEFT}\" y=\"18\" class=\"title\">{t}</text>",
            t = escape(title)
        );
        for i in 0..=4 {
            let v = self.y_max * f64::from(i) / 4.0;
            let y = self.y(v);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick(v)
            );
        }
        for i in 0..=5 {
            let v = self.x_max * f64::from(i) / 5.0;
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
                self.x(v),
                HEIGHT - BOTTOM + 16.0,
                tick(v)
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>\
             <text x=\"12\" y=\"{:.1}\" class=\"tick\" transform=\"rotate(-90 12 {:.1})\" \
             text-anchor=\"middle\">{}</text>\
             <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
            (LEFT + WIDTH - RIGHT) / 2.0,
            HEIGHT - 4.0,
            escape(x_unit),
            (TOP + HEIGHT - BOTTOM) / 2.0,
            (TOP + HEIGHT - BOTTOM) / 2.0,
            escape(y_unit),
            HEIGHT - BOTTOM,
            WIDTH - RIGHT,
            HEIGHT - BOTTOM,
        );
    }

    fn legend(out: &mut String, names: &[&str]) {
        for (i, name) in names.iter().enumerate() {
            let name = legend_text(name);
            let y = TOP + 8.0 + 18.0 * i as f64;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"legend\">{}</text>",
                WIDTH - RIGHT + 14.0,
                y - 10.0,
                PALETTE[i % PALETTE.len()],
                WIDTH - RIGHT + 32.0,
                y,
                escape(&name)
            );
        }
    }
}

/// Lines over x (seconds of the run): one path per series, broken at gaps.
pub fn lines(title: &str, x_unit: &str, y_unit: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(0.0, f64::max);
    let y_max = all.filter_map(|p| p.1).fold(0.0, f64::max);
    let frame = Frame {
        x_max: nice_ceiling(x_max),
        y_max: nice_ceiling(y_max),
    };
    let mut out = String::new();
    frame.open(&mut out, title, x_unit, y_unit);
    for (i, s) in series.iter().enumerate() {
        let mut d = String::new();
        let mut pen_down = false;
        for &(x, y) in &s.points {
            match y {
                Some(y) => {
                    let _ = write!(
                        d,
                        "{}{:.1} {:.1} ",
                        if pen_down { "L" } else { "M" },
                        frame.x(x),
                        frame.y(y)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"/>",
                d.trim_end(),
                PALETTE[i % PALETTE.len()]
            );
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    Frame::legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// Columns per x step (a second), each stacked from the series in order.
pub fn stacked(title: &str, x_unit: &str, y_unit: &str, series: &[(String, Vec<u64>)]) -> String {
    let steps = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let totals: Vec<u64> = (0..steps)
        .map(|i| {
            series
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let frame = Frame {
        x_max: nice_ceiling(steps as f64),
        y_max: nice_ceiling(totals.iter().copied().max().unwrap_or(0) as f64),
    };
    let mut out = String::new();
    frame.open(&mut out, title, x_unit, y_unit);
    let width = (frame.x(1.0) - frame.x(0.0)).max(1.0);
    for step in 0..steps {
        let mut base = 0u64;
        for (i, (_, values)) in series.iter().enumerate() {
            let n = values.get(step).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let (top, bottom) = (frame.y((base + n) as f64), frame.y(base as f64));
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>",
                frame.x(step as f64),
                (width * 0.9).max(0.6),
                (bottom - top).max(0.5),
                PALETTE[i % PALETTE.len()]
            );
            base += n;
        }
    }
    let names: Vec<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
    Frame::legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one per labelled value (a histogram's bins, call outcomes).
pub fn bars(title: &str, unit: &str, items: &[(String, u64)]) -> String {
    const ROW: f64 = 18.0;
    const LABEL: f64 = 150.0;
    let height = TOP + 10.0 + ROW * items.len() as f64;
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let span = WIDTH - LABEL - 120.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" \
         height=\"{height}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>\
         <text x=\"{LEFT}\" y=\"18\" class=\"title\">{t}</text>",
        t = escape(title)
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let w = (*n as f64 / max) * span;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{n} {}</text>",
            LABEL - 8.0,
            y + 13.0,
            escape(label),
            y + 2.0,
            ROW - 4.0,
            PALETTE[0],
            LABEL + w + 6.0,
            y + 13.0,
            escape(unit)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round_and_ticks_short() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(0.22), 0.25);
        assert_eq!(nice_ceiling(5.0), 5.0);
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(250.0), "250");
    }

    #[test]
    fn lines_break_at_gaps_and_text_is_escaped() {
        let svg = lines(
            "p99 <all>",
            "s",
            "ms",
            &[Series {
                name: "a & b".to_owned(),
                points: vec![
                    (0.0, Some(1.0)),
                    (1.0, None),
                    (2.0, Some(2.0)),
                    (3.0, Some(1.0)),
                ],
            }],
        );
        assert!(svg.contains("p99 &lt;all&gt;"), "{svg}");
        assert!(svg.contains("a &amp; b"));
        let path = svg.split("<path d=\"").nth(1).unwrap();
        let path = &path[..path.find('"').unwrap()];
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert_eq!(path.matches('L').count(), 1, "{path}");
        assert_eq!(escape("\u{1}x"), "\u{fffd}x");
        assert_eq!(legend_text("p99.9"), "p99.9");
        assert_eq!(
            legend_text("http://127.0.0.1:18916/webhooks"),
            "127.0.0.1:18916/webhooks"
        );
        assert_eq!(
            legend_text("https://replica-1.example:8080/webhooks"),
            "\u{2026}1.example:8080/webhooks"
        );
    }

    #[test]
    fn stacked_columns_draw_only_what_happened() {
        let svg = stacked(
            "errors",
            "s",
            "errors/s",
            &[
                ("http".to_owned(), vec![0, 2, 0]),
                ("timeout".to_owned(), vec![1, 1, 0]),
            ],
        );
        // Three non-zero cells, plus two legend squares.
        assert_eq!(svg.matches("<rect").count(), 5, "{svg}");
    }
}
