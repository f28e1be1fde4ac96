//! The memory-over-time plot, drawn as SVG by runner itself: the samples, the warm-up left
//! out of the fit, and the fitted line with its rate.

use std::fmt::Write as _;

use super::fit::Line;
use super::growth::Resource;
use super::sample::Sample;
use crate::report::svg;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 55.0;

/// A round step near a fifth of `span`: 1, 2 or 5 times a power of ten.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 5.0).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

/// The most points the line is drawn with: a day sampled every second would otherwise make
/// a plot of several megabytes that no screen can show.
const MAX_POINTS: usize = 2000;

pub fn memory_svg(
    samples: &[Sample],
    warmup_seconds: f64,
    line: Option<&Line>,
    title: &str,
) -> String {
    let values: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.seconds, Resource::Memory.value(s)))
        .collect();
    let max_x = values.iter().map(|p| p.0).fold(1e-9, f64::max);
    let (low, high) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let y_step = tick_step((high - low).max(1.0));
    let min_y = (low / y_step).floor() * y_step;
    let max_y = ((high / y_step).ceil() * y_step).max(min_y + y_step);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + plot_w * x / max_x;
    let py = |y: f64| TOP + plot_h * (1.0 - (y - min_y) / (max_y - min_y));

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="26" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        svg::escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.2}" height="{plot_h}" fill="#f0f0f0"><title>warm-up, left out of the fit</title></rect>"##,
        px(warmup_seconds.min(max_x)) - LEFT
    );
    let mut y = min_y;
    while y <= max_y + y_step / 2.0 {
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.2}" y2="{py:.2}" stroke="#ddd"/><text x="{}" y="{:.2}" text-anchor="end">{y}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py(y) + 4.0,
            py = py(y)
        );
        y += y_step;
    }
    let x_step = tick_step(max_x);
    let mut x = 0.0;
    while x <= max_x + x_step / 100.0 {
        let _ = writeln!(
            out,
            r#"<text x="{:.2}" y="{}" text-anchor="middle">{x}</text>"#,
            px(x),
            HEIGHT - BOTTOM + 18.0
        );
        x += x_step;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds</text><text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">resident memory (MiB)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    let every = values.len().div_ceil(MAX_POINTS).max(1);
    let points: Vec<String> = values
        .iter()
        .step_by(every)
        .map(|(x, y)| format!("{:.2},{:.2}", px(*x), py(*y)))
        .collect();
    let _ = writeln!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>"##,
        points.join(" ")
    );
    if let Some(line) = line {
        let _ = writeln!(
            out,
            r##"<line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="#d62728" stroke-dasharray="6 4" stroke-width="1.5"><title>fit: {:.1} MiB/hour</title></line>"##,
            px(warmup_seconds.min(max_x)),
            py(line.at(warmup_seconds.min(max_x))),
            px(max_x),
            py(line.at(max_x)),
            line.per_hour()
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert!((tick_step(8.0) - 2.0).abs() < 1e-12);
        assert!((tick_step(100.0) - 20.0).abs() < 1e-12);
        assert!((tick_step(0.7) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn draws_samples_warmup_and_fit() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                seconds: f64::from(i),
                rss_kib: 1024 * (10 + 4 * u64::try_from(i).unwrap()),
                fds: 3,
                threads: 1,
            })
            .collect();
        let line = Line {
            slope: 4.0,
            intercept: 10.0,
        };
        let svg = memory_svg(&samples, 1.0, Some(&line), "soak <leak>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("soak &lt;leak&gt;"));
        assert!(svg.contains("fit: 14400.0 MiB/hour"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("warm-up, left out of the fit"));
    }
}
