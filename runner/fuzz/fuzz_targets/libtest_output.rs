//! libtest's JSON events, `--list` output and panic text must parse without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = runner::parsers::parse_events(text);
    let _ = runner::parsers::parse_list(text);
    let _ = runner::parsers::panic_location(text);
    let _ = runner::parsers::panic_message(text);
    let _ = runner::parsers::panic_backtrace(text);
});
