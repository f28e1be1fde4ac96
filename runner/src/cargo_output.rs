//! Reading why a cargo command failed, from its JSON messages or its stderr.

use anyhow::{bail, Result};

use crate::process::Finished;

/// The compiler's first error (cargo prints it as a JSON message on stdout with
/// `--message-format=json`), else the first `error` line of stderr.
pub fn first_error(finished: &Finished) -> String {
    let compiler_error = finished.stdout.lines().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let message = value.get("message")?;
        if message.get("level")?.as_str()? != "error" {
            return None;
        }
        message.get("message")?.as_str().map(str::to_owned)
    });
    compiler_error
        .or_else(|| {
            finished
                .stderr
                .lines()
                .find(|line| line.trim_start().starts_with("error"))
                .map(|line| line.trim().to_owned())
        })
        .unwrap_or_else(|| "see the stage logs".to_owned())
}

/// Fails with `what` and the first error when the command did not succeed.
pub fn require_success(finished: &Finished, what: &str) -> Result<()> {
    if finished.termination.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}): {}",
        finished.termination,
        first_error(finished)
    )
}
