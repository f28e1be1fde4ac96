//! Suppressions: the shipped file for toolchain noise, and the file of ready-made
//! suppressions for every finding that a user can copy into their own.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use camino::Utf8Path;

/// Valgrind's placeholder in a generated suppression.
const PLACEHOLDER: &str = "<insert_a_suppression_name_here>";

/// Writes the shipped suppressions where valgrind can read them.
pub fn write_std(path: &Utf8Path) -> Result<()> {
    // Replaced by rename: a symlink planted at the name is replaced, never written through.
    crate::atomic::write(path, include_str!("std.supp").as_bytes())
        .with_context(|| format!("cannot write the suppression file {path}"))
}

/// A finding's suppression is named after it, so the report and the file point at each other.
pub fn name(kind: &str, fingerprint: &str) -> String {
    format!("{kind}-{fingerprint}")
}

/// A generated suppression with its placeholder replaced by `name`.
pub fn named(raw: &str, name: &str) -> String {
    raw.replacen(PLACEHOLDER, name, 1)
}

/// Writes one suppression per finding, each after a comment saying what it hides.
pub fn write_generated(path: &Utf8Path, entries: &[(String, String)]) -> Result<()> {
    let mut text = String::from(
        "# Suppressions for the findings of the last valgrind run. Copy the ones you accept into\n\
         # a file listed in [workspace.metadata.runner.valgrind] suppressions.\n",
    );
    for (comment, suppression) in entries {
        let _ = write!(text, "\n# {comment}\n{suppression}\n");
    }
    crate::atomic::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_generated_suppression() {
        let raw = "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n   fun:malloc\n}";
        assert_eq!(
            named(raw, "definite-leak-00ff"),
            "{\n   definite-leak-00ff\n   Memcheck:Leak\n   fun:malloc\n}"
        );
    }
}
