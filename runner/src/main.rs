//! Entry point: parse the command line, run it, and turn the outcome into an exit code.

use std::process::ExitCode;

use runner::{app, cli, exit};

fn main() -> ExitCode {
    if let Some(code) = runner::process::watchdog::serve_if_asked() {
        return code;
    }
    runner::process::watchdog::enable();
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
