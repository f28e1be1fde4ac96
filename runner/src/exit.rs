//! Exit codes (0 gate passed, 1 gate failed, 2 could not evaluate) and one-line error text.

use std::process::ExitCode;

/// How a run ended, in the order of precedence used to pick the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Every requested stage was evaluated and the gate passed.
    Passed,
    /// The gate failed: findings at or above the configured severity, or a threshold miss.
    GateFailed,
    /// Something could not be evaluated: bad input, a missing tool, a stage error, an interrupt.
    NotEvaluated,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::GateFailed => 1,
            Exit::NotEvaluated => 2,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// Renders an error with its whole context chain on a single line, so that a failure is one
/// readable line on stderr rather than a backtrace.
pub fn one_line(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    text.split('\n')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prints `text` on stdout; a reader that went away (`runner partitions FILE | head`) is a
/// quiet end, not an error: what it wanted was printed.
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(error).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_puts_not_evaluated_over_gate_failure() {
        assert_eq!(Exit::Passed.max(Exit::GateFailed), Exit::GateFailed);
        assert_eq!(Exit::GateFailed.max(Exit::NotEvaluated), Exit::NotEvaluated);
    }

    #[test]
    fn multi_line_errors_become_one_line() {
        let error = anyhow::anyhow!("first\nsecond").context("outer");
        assert_eq!(one_line(&error), "outer: first; second");
    }
}
