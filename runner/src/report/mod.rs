//! The report: one versioned model, written after every stage as report.json, report.md,
//! report.sarif and junit.xml, with cross-stage issues and an optional baseline comparison.

pub mod assemble;
pub mod baseline;
pub mod dedup;
pub mod folder;
pub mod gate;
pub mod junit;
pub mod markdown;
pub mod model;
mod rules;
pub mod sarif;
pub mod svg;
#[cfg(test)]
pub(crate) mod testing;
mod text;
pub mod write;

pub use crate::hash::digest;
pub use crate::stage_name::StageName;
pub use model::{
    Category, Evidence, Finding, Frame, Known, Location, Report, Severity, StageReport, Status,
    Table, TargetSummary,
};
