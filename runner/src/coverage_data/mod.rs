//! Coverage as llvm-cov exports it (totals, files, functions), read the same way by every stage
//! that measures coverage: the coverage stage and the fuzz stage's corpus coverage.

pub mod llvm_json;
pub mod recount;
pub mod summary;
