//! Stable finding fingerprints: the same bug keeps its fingerprint when lines move.

use crate::report::Location;
use crate::stage_name::StageName;

/// Hashes the parts that identify a problem (kind, repo-relative file, enclosing function,
/// test) with 64-bit FNV-1a: tiny, dependency-free and stable across platforms and releases.
pub fn fingerprint(parts: &[&str]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

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
    fingerprint(&[stage.as_str(), kind, &file, function.unwrap_or(""), subject])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_sensitive_to_every_part() {
        let base = fingerprint(&["out-of-bounds", "src/lib.rs", "read", "tests::a"]);
        assert_eq!(
            base,
            fingerprint(&["out-of-bounds", "src/lib.rs", "read", "tests::a"])
        );
        assert_ne!(
            base,
            fingerprint(&["out-of-bounds", "src/lib.rs", "read", "tests::b"])
        );
        // Part boundaries matter: ("ab", "c") is not ("a", "bc").
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(base.len(), 16);
    }
}
