//! Valgrind's XML and its text log (for descriptor leaks) must parse without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = runner::parsers::valgrind_xml(text);
    let _ = runner::parsers::valgrind_fds(text);
});
