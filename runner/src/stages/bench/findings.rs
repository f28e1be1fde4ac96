//! The report's side of a measurement: the Performance table and one threshold finding per
//! regressed benchmark.

use super::compare::{self, Verdict};
use super::measure::Measurement;
use super::settings::{Metric, Settings};
use crate::finding::NewFinding;
use crate::report::{Category, Finding, Table};
use crate::stage_name::StageName;

pub fn table(settings: &Settings, measurement: &Measurement) -> Table {
    Table {
        title: format!(
            "Benchmarks: {} against baseline `{}`",
            settings.metric.as_str(),
            settings.baseline
        ),
        columns: compare::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        rows: measurement
            .rows
            .iter()
            .map(|(_, row)| row.cells())
            .collect(),
    }
}

pub fn findings(settings: &Settings, measurement: &Measurement) -> Vec<Finding> {
    let (kind, tool, verb) = match settings.metric {
        Metric::Wall => ("wall-time-regression", "criterion", "is slower"),
        Metric::Instructions => (
            "instruction-count-regression",
            "callgrind",
            "runs more instructions",
        ),
    };
    measurement
        .rows
        .iter()
        .zip(&measurement.repros)
        .filter(|((_, row), _)| row.verdict == Verdict::Regressed)
        .map(|((binary, row), repro)| {
            let change = row.change.unwrap_or(0.0) * 100.0;
            let measured = format!(
                "{} → {}, {}",
                row.baseline.as_deref().unwrap_or("?"),
                row.current,
                row.confidence
            );
            let message = format!(
                "`{}` {verb} than baseline `{}` by {change:.2} % ({measured}); the limit is \
                 +{:.0} %",
                row.id,
                settings.baseline,
                settings.threshold * 100.0
            );
            NewFinding::new(StageName::Bench, Category::Threshold, kind, message)
                .test(
                    row.id.clone(),
                    format!("{} {} {}", binary.package, binary.name, row.id),
                )
                .repro(repro.clone())
                .tool(tool)
                .evidence_message(measured)
                .note(Some(format!("in {}", binary.label())))
                .build_unlocated()
        })
        .collect()
}
