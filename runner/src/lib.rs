//! runner as a library: the modules behind the `runner` binary, public so that benchmarks and
//! fuzz targets can drive the parsers and renderers directly. Not a stable API.

pub mod app;
pub mod atomic;
pub mod cargo_config;
pub mod cargo_output;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod duration;
pub mod environment;
pub mod exit;
pub mod fingerprint;
pub mod guard;
pub mod hermetic;
pub mod inventory;
pub mod libtest;
pub mod limits;
pub mod locate;
pub mod lock;
pub mod pin;
pub mod plan;
pub mod process;
pub mod progress;
pub mod provision;
pub mod report;
pub mod stages;
pub mod workspace;
