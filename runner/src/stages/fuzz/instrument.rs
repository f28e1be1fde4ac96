//! Selective coverage instrumentation: with config `instrument = ["crate", ...]`, cargo-fuzz
//! builds through runner itself as `RUSTC_WRAPPER`, and runner drops the `SanitizerCoverage`
//! flags from every rustc call except the named crates', so the fuzzer's signal is the code
//! under test rather than std and unrelated dependencies. The sanitizer stays everywhere.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// Set on cargo-fuzz's commands: the crates that keep their counters, comma-separated. Its
/// presence is what makes the runner binary act as the compiler wrapper.
pub const CRATES_VAR: &str = "RUNNER_SANCOV_CRATES";

/// When runner was started by cargo as `RUSTC_WRAPPER` (`runner <rustc> <args>...` with
/// `CRATES_VAR` set), runs rustc with the filtered arguments in its place.
pub fn wrap_if_asked() -> Option<std::process::ExitCode> {
    let crates = std::env::var(CRATES_VAR).ok()?;
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    let is_rustc = std::path::Path::new(&rustc)
        .file_stem()
        .is_some_and(|stem| stem == "rustc");
    if !is_rustc {
        return None;
    }
    let crates: Vec<&str> = crates.split(',').filter(|c| !c.is_empty()).collect();
    let filtered = filter(args.collect(), &crates);
    // `exec` replaces this process: cargo sees rustc's own output and exit status.
    let error = std::process::Command::new(&rustc).args(filtered).exec();
    eprintln!(
        "runner: error: cannot run {} as the compiler: {error}",
        rustc.to_string_lossy()
    );
    Some(std::process::ExitCode::from(2))
}

/// The rustc arguments with the coverage flags removed unless `--crate-name` is one of
/// `crates` (`-` and `_` alike, as cargo treats them).
fn filter(args: Vec<OsString>, crates: &[&str]) -> Vec<OsString> {
    let normal = |name: &str| name.replace('-', "_");
    let crate_name = args
        .iter()
        .position(|a| a == "--crate-name")
        .and_then(|i| args.get(i + 1))
        .map(|name| normal(&name.to_string_lossy()));
    let named = crate_name.is_some_and(|name| crates.iter().any(|c| normal(c) == name));
    if named {
        return args;
    }
    let mut kept = Vec::with_capacity(args.len());
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy();
        if let Some(value) = text.strip_prefix("-C") {
            if value.is_empty() {
                // `-C value` in two arguments.
                if iter
                    .peek()
                    .is_some_and(|next| is_coverage(&next.to_string_lossy()))
                {
                    iter.next();
                    continue;
                }
            } else if is_coverage(value) {
                continue;
            }
        }
        kept.push(arg);
    }
    kept
}

/// A codegen option that adds `SanitizerCoverage`: the pass, and its LLVM options.
fn is_coverage(codegen: &str) -> bool {
    codegen == "passes=sancov-module" || codegen.starts_with("llvm-args=-sanitizer-coverage")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn only_the_named_crates_keep_the_coverage_flags() {
        let call = "--crate-name serde_json --edition=2021 -Cpasses=sancov-module \
                    -Cllvm-args=-sanitizer-coverage-level=4 -C llvm-args=-sanitizer-coverage-pc-table \
                    -Cllvm-args=-other -Zsanitizer=address --cfg fuzzing";
        assert_eq!(
            filter(args(call), &["fuzz-bugs"]),
            args("--crate-name serde_json --edition=2021 -Cllvm-args=-other -Zsanitizer=address --cfg fuzzing")
        );
        let mine = call.replace("serde_json", "fuzz_bugs");
        assert_eq!(filter(args(&mine), &["fuzz-bugs"]), args(&mine));
        assert_eq!(filter(args("-vV"), &["x"]), args("-vV"));
    }
}
