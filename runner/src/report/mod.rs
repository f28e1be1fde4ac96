//! The report: one versioned model, written as JSON and Markdown after every stage.

pub mod gate;
pub mod markdown;
pub mod model;
pub mod write;

pub use model::{
    Category, Evidence, Finding, Frame, Location, Report, Severity, StageReport, Status, Table,
    TargetSummary,
};
