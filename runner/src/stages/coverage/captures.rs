//! Real tool output captured on `fixtures/coverage-known`, for the parser tests (see
//! `tests/data/coverage/README.md` for the versions and how the files were made).

/// The workspace root as the captures spell it (the machine's path was replaced).
pub const ROOT: &str = "/workspace/coverage-known";

/// The text of one capture.
pub fn read(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/coverage")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
