//! libFuzzer's own output (status lines, final stats, crash reports) must parse without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = runner::parsers::libfuzzer(text);
});
