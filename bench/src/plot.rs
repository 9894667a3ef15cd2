//! `plot`: relay latency (p50 and p99) against offered load for each
//! server, from the fixed-rate relay runs in a results file, as an SVG
//! written by hand (a few lines and labels need no plotting library).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde_json::Value;

/// One fixed-rate relay run: offered msgs/s, latency p50 and p99 in us.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub offered: f64,
    pub p50: f64,
    pub p99: f64,
}

/// The runs of each server in a results file (one JSON object a line):
/// every `relay` run that has an `offered_msgs_per_sec`, by load.
pub fn series(results: &str) -> anyhow::Result<BTreeMap<String, Vec<Point>>> {
    let mut series: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for (n, line) in results
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let run: Value =
            serde_json::from_str(line).with_context(|| format!("line {}: not JSON", n + 1))?;
        let (Some(offered), Some(p50), Some(p99)) = (
            run["offered_msgs_per_sec"].as_f64(),
            run["latency_us"]["p50"].as_f64(),
            run["latency_us"]["p99"].as_f64(),
        ) else {
            continue;
        };
        let server = run["server"].as_str().unwrap_or("server").to_owned();
        series
            .entry(server)
            .or_default()
            .push(Point { offered, p50, p99 });
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    }
    Ok(series)
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The SVG: offered load on a linear x axis, latency on a log y axis.
pub fn svg(series: &BTreeMap<String, Vec<Point>>, title: &str) -> anyhow::Result<String> {
    let points: Vec<&Point> = series.values().flatten().collect();
    if points.is_empty() {
        bail!("no fixed-rate relay runs (with `offered_msgs_per_sec`) to plot");
    }
    let x_max = nice_ceiling(points.iter().map(|p| p.offered).fold(0.0, f64::max));
    let lows = points.iter().map(|p| p.p50.max(1.0));
    let y_min = 10f64.powf(lows.fold(f64::MAX, f64::min).log10().floor());
    let highs = points.iter().map(|p| p.p99.max(1.0));
    let y_max = 10f64.powf(
        highs
            .fold(1.0, f64::max)
            .log10()
            .ceil()
            .max(y_min.log10() + 1.0),
    );
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / x_max * plot_w;
    let y = |v: f64| {
        let t = (v.max(1.0).log10() - y_min.log10()) / (y_max.log10() - y_min.log10());
        TOP + plot_h * (1.0 - t)
    };

    let mut out = String::new();
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    )?;
    writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    writeln!(
        out,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    )?;
    // Grid and ticks: five steps on x, each power of ten on y.
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        let px = x(v);
        writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            v.round()
        )?;
    }
    let mut decade = y_min;
    while decade <= y_max * 1.0001 {
        let py = y(decade);
        writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            micros(decade)
        )?;
        decade *= 10.0;
    }
    writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    )?;
    writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">offered load (messages/s)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    )?;
    writeln!(
        out,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">relay latency (log scale)</text>"#,
        TOP + plot_h / 2.0
    )?;
    // One colour per server; p50 solid, p99 dashed.
    let mut legend_y = TOP + 10.0;
    for ((server, points), colour) in series.iter().zip(COLOURS.iter().cycle()) {
        for (name, dash, value) in [
            ("p50", "", (|p: &Point| p.p50) as fn(&Point) -> f64),
            ("p99", r#" stroke-dasharray="6 4""#, |p: &Point| p.p99),
        ] {
            let path: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.offered), y(value(p))))
                .collect();
            writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            )?;
            for p in points {
                writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x(p.offered),
                    y(value(p))
                )?;
            }
            let lx = LEFT + plot_w + 14.0;
            writeln!(
                out,
                r#"<line x1="{lx}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{} {name}</text>"#,
                lx + 28.0,
                lx + 34.0,
                legend_y + 4.0,
                escape(server)
            )?;
            legend_y += 20.0;
        }
    }
    writeln!(out, "</svg>")?;
    Ok(out)
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let v = v.max(1.0);
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * decade)
}

fn micros(us: f64) -> String {
    match us {
        us if us >= 1e6 => format!("{} s", us / 1e6),
        us if us >= 1e3 => format!("{} ms", us / 1e3),
        us => format!("{us} µs"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESULTS: &str = r#"
{"bench":"relay","server":"baseline","offered_msgs_per_sec":2000,"latency_us":{"p50":100,"p99":300}}
{"bench":"relay","server":"baseline","offered_msgs_per_sec":1000,"latency_us":{"p50":90,"p99":250}}
{"bench":"relay","server":"switchboard","offered_msgs_per_sec":1000,"latency_us":{"p50":150,"p99":4000}}
{"bench":"idle","server":"switchboard","bytes_per_connection":6000}
"#;

    #[test]
    fn series_keep_the_fixed_rate_runs_by_server_and_load() {
        let series = series(RESULTS).unwrap();
        assert_eq!(series.len(), 2);
        let offered: Vec<f64> = series["baseline"].iter().map(|p| p.offered).collect();
        assert_eq!(offered, [1000.0, 2000.0]);
        assert_eq!(series["switchboard"][0].p99, 4000.0);
    }

    #[test]
    fn svg_has_a_line_per_server_and_percentile() {
        let svg = svg(&series(RESULTS).unwrap(), "relay <latency>").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("switchboard p99"));
        assert!(svg.contains("relay &lt;latency&gt;"));
        assert!(svg.contains("10 ms"), "the log axis reaches p99");
    }

    #[test]
    fn nothing_to_plot_is_an_error() {
        assert!(svg(&series("").unwrap(), "t").is_err());
    }

    #[test]
    fn axis_ends_are_round() {
        assert_eq!(nice_ceiling(1234.0), 2000.0);
        assert_eq!(nice_ceiling(5000.0), 5000.0);
        assert_eq!(nice_ceiling(5001.0), 10000.0);
    }
}
