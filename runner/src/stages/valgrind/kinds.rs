//! Valgrind's error kinds as runner reports them: kind name, category and severity, and
//! descriptions without the addresses that change every run.

use super::xml::MemcheckError;
use crate::report::{Category, Severity};

/// Valgrind's kind → category, runner's kind name and severity (DECISIONS: memory errors
/// critical, definite leaks and uninitialised use high, possible leaks medium).
pub fn classify(error: &MemcheckError) -> (Category, String, Severity) {
    let (category, kind) = match error.kind.as_str() {
        "InvalidRead" => (Category::MemoryError, "invalid-read"),
        "InvalidWrite" => (Category::MemoryError, "invalid-write"),
        "InvalidFree" => (Category::MemoryError, "invalid-free"),
        "MismatchedFree" => (Category::MemoryError, "mismatched-free"),
        "InvalidJump" => (Category::MemoryError, "invalid-jump"),
        "Overlap" => (Category::MemoryError, "overlapping-copy"),
        "SyscallParam" if error.what.contains("unaddressable") => {
            (Category::MemoryError, "invalid-syscall-param")
        }
        "UninitCondition" => (Category::UndefinedBehavior, "uninit-condition"),
        "UninitValue" => (Category::UndefinedBehavior, "uninit-value"),
        "SyscallParam" => (Category::UndefinedBehavior, "uninit-syscall-param"),
        "Leak_DefinitelyLost" => (Category::Leak, "definite-leak"),
        "Leak_IndirectlyLost" => (Category::Leak, "indirect-leak"),
        "Leak_PossiblyLost" => (Category::Leak, "possible-leak"),
        other => {
            return (
                Category::MemoryError,
                other.to_ascii_lowercase().replace('_', "-"),
                Severity::High,
            )
        }
    };
    let severity = match kind {
        "possible-leak" => Severity::Medium,
        _ if category == Category::UndefinedBehavior => Severity::High,
        _ => category.default_severity(),
    };
    (category, kind.to_owned(), severity)
}

/// `Address 0x4a7a8fc is 0 bytes after ...` → `the address is 0 bytes after ...`: the
/// relation is the information, the address changes every run.
pub fn without_address(text: &str) -> String {
    match text
        .strip_prefix("Address 0x")
        .and_then(|rest| rest.split_once(" is "))
    {
        Some((_, relation)) => format!("the address is {relation}"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: &str, what: &str) -> MemcheckError {
        MemcheckError {
            kind: kind.into(),
            what: what.into(),
            leaked: None,
            stack: Vec::new(),
            aux: Vec::new(),
            suppression: None,
        }
    }

    #[test]
    fn severities_follow_the_product_rules() {
        let cases = [
            ("InvalidWrite", "", "invalid-write", Severity::Critical),
            ("MismatchedFree", "", "mismatched-free", Severity::Critical),
            ("UninitValue", "", "uninit-value", Severity::High),
            ("Leak_DefinitelyLost", "", "definite-leak", Severity::High),
            ("Leak_IndirectlyLost", "", "indirect-leak", Severity::High),
            ("Leak_PossiblyLost", "", "possible-leak", Severity::Medium),
            (
                "SyscallParam",
                "Syscall param write(buf) points to unaddressable byte(s)",
                "invalid-syscall-param",
                Severity::Critical,
            ),
            ("FishyValue", "", "fishyvalue", Severity::High),
        ];
        for (kind, what, name, severity) in cases {
            let (_, classified, got) = classify(&error(kind, what));
            assert_eq!((classified.as_str(), got), (name, severity), "{kind}");
        }
    }

    #[test]
    fn addresses_are_replaced_by_their_relation() {
        assert_eq!(
            without_address("Address 0x4a7a8fc is 0 bytes after a block of size 12 alloc'd"),
            "the address is 0 bytes after a block of size 12 alloc'd"
        );
        assert_eq!(
            without_address("Block was alloc'd at"),
            "Block was alloc'd at"
        );
    }
}
