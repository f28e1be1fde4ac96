//! Engine-neutral coverage numbers: totals and per-file summaries, with the percentages the
//! tools themselves print.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use serde::Serialize;

/// What a coverage number counts. llvm-cov measures all four, tarpaulin lines only.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MetricName {
    Lines,
    Branches,
    Functions,
    Regions,
}

impl MetricName {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricName::Lines => "lines",
            MetricName::Branches => "branches",
            MetricName::Functions => "functions",
            MetricName::Regions => "regions",
        }
    }

    /// The column heading.
    pub fn title(self) -> &'static str {
        match self {
            MetricName::Lines => "Lines",
            MetricName::Branches => "Branches",
            MetricName::Functions => "Functions",
            MetricName::Regions => "Regions",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            MetricName::Lines => "line",
            MetricName::Branches => "branch",
            MetricName::Functions => "function",
            MetricName::Regions => "region",
        }
    }
}

/// How many of something exist and how many of them ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metric {
    pub count: u64,
    pub covered: u64,
}

/// With the percentage, so readers of `summary.json` need not compute it.
impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("Metric", 3)?;
        state.serialize_field("count", &self.count)?;
        state.serialize_field("covered", &self.covered)?;
        state.serialize_field("percent", &self.percent())?;
        state.end()
    }
}

impl Metric {
    /// The percentage covered, computed as llvm-cov and tarpaulin do; `None` when there is
    /// nothing to measure (llvm-cov prints `-` then).
    pub fn percent(self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        Some(self.covered as f64 / self.count as f64 * 100.0)
    }

    /// `79.17 % (19 of 24)`: two decimals, as the tools' own tables show it.
    pub fn describe(self) -> String {
        match self.percent() {
            Some(percent) => format!(
                "{} ({} of {})",
                format_percent(percent),
                self.covered,
                self.count
            ),
            None => "none measured".to_owned(),
        }
    }
}

pub fn format_percent(percent: f64) -> String {
    format!("{percent:.2} %")
}

pub type Metrics = BTreeMap<MetricName, Metric>;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileSummary {
    /// Relative to the workspace root when the file lies inside it.
    pub path: Utf8PathBuf,
    pub metrics: Metrics,
}

impl FileSummary {
    fn lines(&self) -> Metric {
        self.metrics
            .get(&MetricName::Lines)
            .copied()
            .unwrap_or_default()
    }
}

/// One engine's numbers for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub totals: Metrics,
    pub files: Vec<FileSummary>,
}

impl Summary {
    /// Least covered first: lowest line percentage, then most lines missed, then by path.
    pub fn sort_least_covered_first(&mut self) {
        self.files.sort_by(|a, b| {
            let (a_lines, b_lines) = (a.lines(), b.lines());
            let percent = |m: Metric| m.percent().unwrap_or(100.0);
            percent(a_lines)
                .total_cmp(&percent(b_lines))
                .then((b_lines.count - b_lines.covered).cmp(&(a_lines.count - a_lines.covered)))
                .then(a.path.cmp(&b.path))
        });
    }

    /// The report's stage counts: `lines`, `lines_covered`, ... for every measured metric.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (name, metric) in &self.totals {
            counts.insert(name.as_str().to_owned(), metric.count);
            counts.insert(format!("{}_covered", name.as_str()), metric.covered);
        }
        counts
    }

    /// One line with every total, for the report's notes.
    pub fn totals_line(&self) -> String {
        self.totals
            .iter()
            .map(|(name, metric)| format!("{} {}", name.as_str(), metric.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, count: u64, covered: u64) -> FileSummary {
        FileSummary {
            path: path.into(),
            metrics: [(MetricName::Lines, Metric { count, covered })].into(),
        }
    }

    #[test]
    fn percentages_round_as_the_tools_print_them() {
        let lines = Metric {
            count: 24,
            covered: 19,
        };
        assert_eq!(lines.describe(), "79.17 % (19 of 24)");
        assert_eq!(Metric::default().percent(), None);
        assert_eq!(Metric::default().describe(), "none measured");
        assert_eq!(
            serde_json::to_string(&lines).unwrap(),
            r#"{"count":24,"covered":19,"percent":79.16666666666666}"#
        );
    }

    #[test]
    fn least_covered_files_come_first() {
        let mut summary = Summary {
            totals: Metrics::new(),
            files: vec![
                file("full.rs", 4, 4),
                file("half_of_ten.rs", 10, 5),
                file("half_of_two.rs", 2, 1),
                file("empty.rs", 0, 0),
            ],
        };
        summary.sort_least_covered_first();
        let order: Vec<&str> = summary.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            order,
            ["half_of_ten.rs", "half_of_two.rs", "empty.rs", "full.rs"]
        );
    }
}
