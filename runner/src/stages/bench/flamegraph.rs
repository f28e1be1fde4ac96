//! A flame graph of one benchmark: `perf` samples it in criterion's profiling mode, and
//! runner folds the stacks and draws the SVG itself, so `perf` is the only tool it needs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};

use super::commands::{self, BenchBinary};
use super::settings::Settings;
use crate::plan::Context;
use crate::report::svg;

/// Stacks, outermost frame first, with how many samples ended in each.
pub type Folded = BTreeMap<Vec<String>, u64>;

/// Profiles `id` and writes `flamegraph-<id>.svg` (and the folded stacks) into `dir`.
/// Returns the SVG's path; every failure is a reason for the report's notes, never a
/// stage failure, since the graph is an aid rather than a check.
pub fn make(
    ctx: &Context,
    settings: &Settings,
    binary: &BenchBinary,
    id: &str,
    dir: &Utf8Path,
    deadline: Instant,
) -> Result<Utf8PathBuf> {
    if which::which("perf").is_err() {
        bail!("`perf` is not installed; install it with `apt-get install linux-perf` (Linux only)");
    }
    let stem = format!("flamegraph-{}", commands::slug(id));
    let data = dir.join(format!("{stem}.perf.data"));
    let record = commands::perf_record_command(binary, settings, id, &data, settings.profile_time);
    ctx.progress
        .note(&format!("profiling {id} for a flame graph"));
    let log = dir.join("logs").join(format!("{stem}-record"));
    let recorded = commands::run_step(ctx, &record, Some(&log), deadline)?;
    let outcome = commands::require_success(&recorded, "`perf record`");
    if recorded.stderr.contains("perf_event_paranoid") {
        outcome.context(
            "perf needs `kernel.perf_event_paranoid` at 1 or below (or root) to sample a program",
        )?;
    } else {
        outcome?;
    }
    let script = commands::run_step(ctx, &commands::perf_script_command(&data), None, deadline)?;
    commands::require_success(&script, "`perf script`")?;
    // The raw recording is large and only `perf` reads it; the folded stacks keep what matters.
    let _ = std::fs::remove_file(&data);
    let folded = fold(&script.stdout);
    if folded.is_empty() {
        bail!("perf recorded no samples of {id}");
    }
    let folded_path = dir.join(format!("{stem}.folded"));
    crate::atomic::write(&folded_path, folded_text(&folded).as_bytes())?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let title = format!(
        "{id} ({} of perf samples)",
        crate::duration::human(settings.profile_time)
    );
    crate::atomic::write(&svg_path, render(&folded, &title).as_bytes())?;
    Ok(svg_path)
}

/// Folds `perf script -F ip,sym` output: blank-line separated samples, innermost frame
/// first, each line `<address> <symbol>`.
pub fn fold(script: &str) -> Folded {
    let mut folded = Folded::new();
    let mut stack: Vec<String> = Vec::new();
    let mut flush = |stack: &mut Vec<String>| {
        if !stack.is_empty() {
            stack.reverse();
            *folded.entry(std::mem::take(stack)).or_insert(0) += 1;
        }
    };
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() {
            flush(&mut stack);
            continue;
        }
        let Some((address, symbol)) = line.split_once(' ') else {
            continue;
        };
        if address.chars().all(|c| c.is_ascii_hexdigit()) {
            stack.push(symbol.trim().to_owned());
        }
    }
    flush(&mut stack);
    folded
}

/// The folded-stack text other flame-graph tools read (`a;b;c 12`); `;` inside a name
/// (array types) becomes `,` so it cannot split a frame.
pub fn folded_text(folded: &Folded) -> String {
    let mut text = String::new();
    for (stack, samples) in folded {
        let frames: Vec<String> = stack.iter().map(|frame| frame.replace(';', ",")).collect();
        let _ = writeln!(text, "{} {samples}", frames.join(";"));
    }
    text
}

#[derive(Default)]
struct Node {
    samples: u64,
    children: BTreeMap<String, Node>,
}

const WIDTH: f64 = 1200.0;
const ROW: f64 = 17.0;
const TOP: f64 = 36.0;
/// Average glyph width of the 11 px monospace font, to fit labels into their boxes.
const GLYPH: f64 = 6.7;

/// Draws the classic flame graph: the whole run at the bottom, callees stacked above their
/// callers, widths proportional to samples, siblings in name order.
pub fn render(folded: &Folded, title: &str) -> String {
    let mut root = Node::default();
    for (stack, samples) in folded {
        root.samples += samples;
        let mut node = &mut root;
        for frame in stack {
            node = node.children.entry(frame.clone()).or_default();
            node.samples += samples;
        }
    }
    let depth = folded.keys().map(Vec::len).max().unwrap_or(0) + 1;
    #[allow(clippy::cast_precision_loss, reason = "stack depths are small")]
    let height = TOP + ROW * depth as f64 + 8.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#fdfdf6"/><text x="{}" y="22" font-size="15" text-anchor="middle">Flame graph: {}</text>"##,
        WIDTH / 2.0,
        svg::escape(title)
    );
    let total = root.samples.max(1);
    draw(&mut out, "all", &root, 0.0, 0, height, total);
    out.push_str("</svg>\n");
    out
}

fn draw(out: &mut String, name: &str, node: &Node, x: f64, level: usize, height: f64, total: u64) {
    #[allow(clippy::cast_precision_loss, reason = "pixel geometry")]
    let width = WIDTH * node.samples as f64 / total as f64;
    if width < 0.3 {
        return;
    }
    #[allow(clippy::cast_precision_loss, reason = "pixel geometry")]
    let y = height - 8.0 - ROW * (level as f64 + 1.0);
    #[allow(clippy::cast_precision_loss, reason = "a percentage for people")]
    let share = 100.0 * node.samples as f64 / total as f64;
    let _ = writeln!(
        out,
        r#"<g><title>{} ({} samples, {share:.2} %)</title><rect x="{x:.2}" y="{y:.2}" width="{width:.2}" height="{:.1}" fill="{}" rx="2"/>{}</g>"#,
        svg::escape(name),
        node.samples,
        ROW - 1.0,
        svg::warm_colour(name),
        label(name, x, y, width)
    );
    let mut child_x = x;
    for (child_name, child) in &node.children {
        draw(out, child_name, child, child_x, level + 1, height, total);
        #[allow(clippy::cast_precision_loss, reason = "pixel geometry")]
        let child_width = WIDTH * child.samples as f64 / total as f64;
        child_x += child_width;
    }
}

/// The frame's name, cut to fit its box, or nothing when not even a few letters fit.
fn label(name: &str, x: f64, y: f64, width: f64) -> String {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small positive character count"
    )]
    let fits = ((width - 6.0) / GLYPH).floor().max(0.0) as usize;
    if fits < 3 {
        return String::new();
    }
    let text: String = if name.chars().count() > fits {
        name.chars().take(fits - 2).chain("..".chars()).collect()
    } else {
        name.to_owned()
    };
    format!(
        r#"<text x="{:.2}" y="{:.2}">{}</text>"#,
        x + 3.0,
        y + ROW - 5.0,
        svg::escape(&text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two samples of `perf script -F ip,sym` from perf 6.1 on a criterion benchmark.
    const SCRIPT: &str = "\n\t           93b70 <criterion::bencher::Bencher>::iter::<u64, speed::bench::{closure#0}::{closure#0}>\n\t            8cc3a speed::main\n\t           78ad0 _start\n\n\n\t           93b76 <criterion::bencher::Bencher>::iter::<u64, speed::bench::{closure#0}::{closure#0}>\n\t            8cc3a speed::main\n\t           78ad0 _start\n\n\t           1234 [unknown]\n\t           78ad0 _start\n";

    #[test]
    fn folds_samples_outermost_first() {
        let folded = fold(SCRIPT);
        assert_eq!(folded.len(), 2);
        let iter = vec![
            "_start".to_owned(),
            "speed::main".to_owned(),
            "<criterion::bencher::Bencher>::iter::<u64, speed::bench::{closure#0}::{closure#0}>"
                .to_owned(),
        ];
        assert_eq!(folded[&iter], 2);
        assert!(folded_text(&folded).contains("_start;speed::main;<criterion"));
    }

    #[test]
    fn renders_one_box_per_frame_with_escaped_names() {
        let svg = render(&fold(SCRIPT), "g/f <1s>");
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Flame graph: g/f &lt;1s&gt;"));
        assert!(svg.contains("<title>all (3 samples, 100.00 %)</title>"));
        assert!(svg.contains("<title>speed::main (2 samples, 66.67 %)</title>"));
        assert!(svg.contains("&lt;criterion::bencher::Bencher&gt;::iter"));
        assert_eq!(svg.matches("<rect x=").count(), 5);
    }
}
