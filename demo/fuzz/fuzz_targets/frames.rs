//! Decodes any input as a frame and checks its payload: AddressSanitizer stops on the
//! checksum's read past the end at once.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(frame) = demo::decode(data) {
        let _ = demo::checksum(frame.payload);
    }
});
