//! Entry point: parse the command line, run it, and turn the outcome into an exit code.

mod app;
mod cargo_config;
mod cargo_output;
mod cli;
mod config;
mod doctor;
mod duration;
mod environment;
mod exit;
mod fingerprint;
mod inventory;
mod libtest;
mod locate;
mod pin;
mod plan;
mod process;
mod progress;
mod provision;
mod report;
mod stages;
mod workspace;

use std::process::ExitCode;

fn main() -> ExitCode {
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
