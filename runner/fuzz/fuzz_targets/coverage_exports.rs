//! cargo-llvm-cov's JSON export, LCOV and callgrind profiles must parse without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let root = camino::Utf8Path::new("/workspace");
    let _ = runner::stages::coverage::llvm_json::parse(text, root);
    let _ = runner::stages::coverage::lcov::parse(text, root);
    let _ = runner::stages::bench::callgrind::parse(text);
});
