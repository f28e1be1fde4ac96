//! Reading why a cargo command failed, from its JSON messages or its stderr.

use anyhow::{bail, Result};

use crate::process::Finished;

/// The compiler's first error (cargo prints it as a JSON message on stdout with
/// `--message-format=json`; Miri and rustc with `--error-format=json` print theirs on stderr),
/// else the first `error` line of stderr: the cause, not cargo's summary after it.
pub fn first_error(finished: &Finished) -> String {
    let from_json = |line: &str| {
        let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        let message = value
            .get("message")
            .filter(|m| m.is_object())
            .unwrap_or(&value);
        if message.get("level")?.as_str()? != "error" {
            return None;
        }
        message.get("message")?.as_str().map(str::to_owned)
    };
    let compiler_error = finished
        .stdout
        .lines()
        .find_map(from_json)
        .or_else(|| finished.stderr.lines().find_map(from_json));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Termination;

    #[test]
    fn the_cause_comes_before_cargo_s_summary() {
        let finished = Finished {
            termination: Termination::Exited(101),
            stdout: String::new(),
            stderr: "{\"$message_type\":\"diagnostic\",\"message\":\"unsupported operation: can't call foreign function `open64`\",\"level\":\"error\"}\n\
                     error: test failed, to rerun pass `--lib`\n"
                .to_owned(),
        };
        assert_eq!(
            first_error(&finished),
            "unsupported operation: can't call foreign function `open64`"
        );
        let plain = Finished {
            stderr: "error[E0425]: cannot find value `x`\nerror: could not compile `p`\n"
                .to_owned(),
            ..finished
        };
        assert_eq!(first_error(&plain), "error[E0425]: cannot find value `x`");
    }
}
