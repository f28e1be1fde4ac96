//! The per-file table the Markdown report shows, least covered files first. The report model
//! has no tables, so it travels as a note whose first line introduces it.

use std::fmt::Write;

use crate::coverage_data::summary::{format_percent, Metric, Summary};

/// A Markdown table of the first `shown` files, naming where the rest are.
pub fn files(summary: &Summary, shown: usize, everything: &str) -> String {
    let total = summary.files.len();
    let listed = total.min(shown);
    let mut out = if listed < total {
        format!("per file, least covered first ({listed} of {total} files; all in {everything}):")
    } else {
        let files = super::findings::plural(total, "file", "files");
        format!("per file, least covered first ({files}; also in {everything}):")
    };
    // The blank line ends the note's quote, so the table renders as a table.
    out.push_str("\n\n| File |");
    for name in summary.totals.keys() {
        let _ = write!(out, " {} |", name.title());
    }
    out.push_str("\n| --- |");
    for _ in summary.totals.keys() {
        out.push_str(" ---: |");
    }
    for file in summary.files.iter().take(listed) {
        let _ = write!(out, "\n| `{}` |", file.path);
        for name in summary.totals.keys() {
            let cell = file.metrics.get(name).map_or("-".to_owned(), |m| cell(*m));
            let _ = write!(out, " {cell} |");
        }
    }
    out
}

fn cell(metric: Metric) -> String {
    match metric.percent() {
        Some(percent) => format!(
            "{} ({}/{})",
            format_percent(percent),
            metric.covered,
            metric.count
        ),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage_data::summary::{FileSummary, MetricName, Metrics};

    fn metrics(lines: (u64, u64), branches: (u64, u64)) -> Metrics {
        [
            (
                MetricName::Lines,
                Metric {
                    count: lines.0,
                    covered: lines.1,
                },
            ),
            (
                MetricName::Branches,
                Metric {
                    count: branches.0,
                    covered: branches.1,
                },
            ),
        ]
        .into()
    }

    #[test]
    fn renders_a_capped_markdown_table() {
        let summary = Summary {
            totals: metrics((30, 20), (2, 1)),
            files: vec![
                FileSummary {
                    path: "src/lib.rs".into(),
                    metrics: metrics((18, 14), (2, 1)),
                },
                FileSummary {
                    path: "src/critical.rs".into(),
                    metrics: metrics((6, 5), (0, 0)),
                },
                FileSummary {
                    path: "src/full.rs".into(),
                    metrics: metrics((6, 6), (0, 0)),
                },
            ],
        };
        assert_eq!(
            files(&summary, 2, "coverage/summary.json"),
            "per file, least covered first (2 of 3 files; all in coverage/summary.json):\n\n\
             | File | Lines | Branches |\n\
             | --- | ---: | ---: |\n\
             | `src/lib.rs` | 77.78 % (14/18) | 50.00 % (1/2) |\n\
             | `src/critical.rs` | 83.33 % (5/6) | - |"
        );
    }
}
