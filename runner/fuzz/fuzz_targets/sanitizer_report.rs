//! Sanitizer reports on stderr must parse without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = runner::parsers::sanitizer_report(text);
});
