//! cargo-llvm-cov's JSON export, LCOV and callgrind profiles must parse without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let root = camino::Utf8Path::new("/workspace");
    let _ = runner::parsers::llvm_json(text, root);
    let _ = runner::parsers::lcov(text, root);
    let _ = runner::parsers::callgrind(text);
});
