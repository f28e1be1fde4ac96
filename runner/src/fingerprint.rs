//! Stable finding fingerprints: the same bug keeps its fingerprint when lines move.

use crate::report::Location;
use crate::stage_name::StageName;

/// A finding's fingerprint from what identifies the problem: the stage, the kind, the
/// workspace-relative file and enclosing function, and the test (or fuzz target, or
/// program) it was seen in. Line numbers stay out, so the fingerprint survives edits
/// elsewhere in the file.
pub fn of_finding(
    stage: StageName,
    kind: &str,
    location: Option<&Location>,
    function: Option<&str>,
    subject: &str,
) -> String {
    let file = location.map(|l| l.file.to_string()).unwrap_or_default();
    crate::hash::digest(&[stage.as_str(), kind, &file, function.unwrap_or(""), subject])
}
