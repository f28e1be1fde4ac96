//! runner as a library: the modules behind the `runner` binary, public so that benchmarks and
//! fuzz targets can drive the parsers and renderers directly. Not a stable API.

pub(crate) mod app;
pub(crate) mod atomic;
pub(crate) mod cache;
pub(crate) mod cargo_config;
pub(crate) mod cargo_output;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod coverage_data;
pub(crate) mod doctor;
pub(crate) mod duration;
pub(crate) mod environment;
pub(crate) mod exec;
pub(crate) mod exit;
pub(crate) mod finding;
pub(crate) mod fingerprint;
pub(crate) mod foreign;
pub(crate) mod guard;
pub(crate) mod hash;
pub(crate) mod hermetic;
pub(crate) mod inventory;
pub(crate) mod libtest;
pub(crate) mod limits;
pub(crate) mod locate;
pub(crate) mod lock;
pub(crate) mod merge;
pub(crate) mod packages;
pub(crate) mod pin;
pub(crate) mod plan;
pub(crate) mod process;
pub(crate) mod progress;
pub(crate) mod provision;
pub mod report;
pub(crate) mod repository;
pub(crate) mod stage_flags;
pub(crate) mod stage_name;
pub(crate) mod stages;
pub(crate) mod workspace;

/// The parsers of tool output, for the parser fuzz targets and the overhead benchmark. Not
/// an API.
#[doc(hidden)]
pub mod parsers {
    pub use crate::coverage_data::llvm_json::parse as llvm_json;
    pub use crate::libtest::{
        panic_backtrace, panic_location, panic_message, parse_events, parse_list,
    };
    pub use crate::stage_name::StageName;
    pub use crate::stages::bench::callgrind::parse as callgrind;
    pub use crate::stages::coverage::lcov::parse as lcov;
    pub use crate::stages::fuzz::libfuzzer::parse as libfuzzer;
    pub use crate::stages::miri::diagnostics::{parse as miri_diagnostics, MiriError};
    pub use crate::stages::sanitizers::report_parser::parse as sanitizer_report;
    pub use crate::stages::valgrind::fds::parse as valgrind_fds;
    pub use crate::stages::valgrind::xml::parse as valgrind_xml;
}

/// Runs the `runner` binary: parses the command line, runs it, and maps the outcome to an
/// exit code (0 gate passed, 1 gate failed, 2 not evaluated).
pub fn main() -> std::process::ExitCode {
    if let Some(code) = process::watchdog::serve_if_asked() {
        return code;
    }
    // cargo-fuzz building through runner for selective coverage instrumentation.
    if let Some(code) = stages::fuzz::instrument::wrap_if_asked() {
        return code;
    }
    process::watchdog::enable();
    guard::install();
    // A panic anywhere is still exit 2 and one line: whatever report was written stays.
    guard::catch(run).unwrap_or_else(|internal| {
        eprintln!("runner: {internal}");
        exit::Exit::NotEvaluated.into()
    })
}

fn run() -> std::process::ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(exit) => return exit.into(),
    };
    match app::run(&cli) {
        Ok(exit) => exit.into(),
        Err(error) => {
            eprintln!("runner: error: {}", exit::one_line(&error));
            exit::Exit::NotEvaluated.into()
        }
    }
}
