//! Plain-text pieces the CI renderings share, so a finding reads the same in a code-scanning
//! alert and in a junit.xml failure.

use std::fmt::Write as _;

use super::model::Finding;

/// The lines after a finding's message that say where it was seen and how to see it again:
/// `Test: t on target (seed N)`, `Note: ...`, `Reproduce: ...`, each on its own line.
pub fn context(finding: &Finding) -> String {
    let mut text = String::new();
    if let Some(test) = &finding.test {
        let _ = write!(text, "\nTest: {test}");
    }
    if let Some(target) = &finding.target {
        let _ = write!(text, "\nTarget: {target}");
    }
    if let Some(seed) = finding.seed {
        let _ = write!(text, " (seed {seed})");
    }
    if let Some(note) = &finding.note {
        let _ = write!(text, "\nNote: {note}");
    }
    if let Some(repro) = &finding.repro {
        let _ = write!(text, "\nReproduce: {repro}");
    }
    text
}
