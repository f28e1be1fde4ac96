//! Checks the checksum of any payload: AddressSanitizer stops at once on its read one byte
//! past the end, the same bug Miri, valgrind and the sanitizers report from the unit test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    std::hint::black_box(demo::checksum(payload));
});
