//! The execution kernel every per-test stage runs on: one work queue of units (some tests of
//! one harness, on one target, with one seed) on `--jobs` workers, follow-up units after a
//! crash or for attribution, a per-test time limit, the measured duration of every test, and
//! one way to tell how a test ended. See ARCHITECTURE.md for its keep-going rules.

mod attribute;
pub mod cached;
pub mod clock;
pub mod durations;
pub mod failure;
pub mod harness;
pub mod outcome;
pub mod partition;
pub mod pool;
pub mod shards;
pub mod test_id;
pub mod tool;

pub use durations::Durations;
pub use outcome::{conclude, Answered, Limits, Outcome, Tally};
pub use test_id::TestId;
pub use tool::{
    Attributed, Binary, Cause, KeyInputs, Reading, Tool, When, NATIVE_TEST_TIMEOUT,
    SLOW_TOOL_TEST_TIMEOUT,
};
