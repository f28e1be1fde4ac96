//! One test's identity, the same everywhere the kernel names a test: the target it runs on,
//! its harness (the unit's label) and its name. Durations, the split across jobs, the kernel's
//! bookkeeping of runs and the result cache all key by it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::tool::Binary;
use crate::report::model::TestRun;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TestId {
    /// The target or tool variant the test runs on (`x86_64-unknown-linux-gnu`, `address`).
    pub target: String,
    /// The harness's label (`itoa --test test`, `p lib`).
    pub harness: String,
    pub name: String,
}

impl TestId {
    /// The name that stands for every test of a harness that runs whole (doctests): one
    /// piece of work, one cached result.
    pub const WHOLE_HARNESS: &'static str = "(whole harness)";

    pub fn new(target: &str, harness: &str, name: &str) -> TestId {
        TestId {
            target: target.to_owned(),
            harness: harness.to_owned(),
            name: name.to_owned(),
        }
    }

    /// The test `name` of `binary`.
    pub fn of(binary: &Binary, name: &str) -> TestId {
        TestId {
            target: binary.target.clone(),
            harness: binary.unit.label(),
            name: name.to_owned(),
        }
    }

    /// All of `binary`, run whole.
    pub fn whole(binary: &Binary) -> TestId {
        TestId::of(binary, TestId::WHOLE_HARNESS)
    }

    pub fn is_whole(&self) -> bool {
        self.name == TestId::WHOLE_HARNESS
    }

    /// The test on whatever target or tool: `harness name`. Runs of one test under other
    /// tools are found by it.
    pub fn anywhere(&self) -> String {
        format!("{} {}", self.harness, self.name)
    }

    /// Whether a run of the report is this test's.
    pub fn is_run(&self, run: &TestRun) -> bool {
        run.target.as_deref() == Some(self.target.as_str())
            && run.unit.as_deref() == Some(self.harness.as_str())
            && run.name == self.name
    }
}

/// `target harness name`: the key of the durations file and of a partition item.
impl fmt::Display for TestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.target, self.harness, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_is_named_the_same_way_in_every_key() {
        let binary = Binary::fake("address", &["a::b"]);
        let id = TestId::of(&binary, "a::b");
        assert_eq!(id, TestId::new("address", "p lib", "a::b"));
        assert_eq!(id.to_string(), "address p lib a::b");
        assert_eq!(id.anywhere(), "p lib a::b");
        let run = TestRun {
            target: Some("address".into()),
            unit: Some("p lib".into()),
            name: "a::b".into(),
            outcome: crate::report::model::TestOutcome::Passed,
            seed: None,
            duration_ms: None,
        };
        assert!(id.is_run(&run));
        assert!(!TestId::new("memory", "p lib", "a::b").is_run(&run));
    }
}
