//! libtest's JSON events, `--list` output and panic text must parse without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = runner::libtest::parse_events(text);
    let _ = runner::libtest::parse_list(text);
    let _ = runner::libtest::panic_location(text);
    let _ = runner::libtest::panic_message(text);
    let _ = runner::libtest::panic_backtrace(text);
});
