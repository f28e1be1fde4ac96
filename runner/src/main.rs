//! Entry point: parse the command line, run it, and turn the outcome into an exit code.

use std::process::ExitCode;

use runner::{app, cli, exit, guard};

fn main() -> ExitCode {
    guard::install();
    // A panic anywhere is still exit 2 and one line: whatever report was written stays.
    guard::catch(run).unwrap_or_else(|internal| {
        eprintln!("runner: {internal}");
        exit::Exit::NotEvaluated.into()
    })
}

fn run() -> ExitCode {
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
