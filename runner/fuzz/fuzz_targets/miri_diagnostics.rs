//! Miri's JSON diagnostics parser must survive any text, including broken JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = runner::parsers::miri_diagnostics(text);
});
