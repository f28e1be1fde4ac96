//! Stack traces as sanitizers and libFuzzer print them (`#3 0x55… in func file:line:col`):
//! parsing, cutting away the fuzzing and panic machinery, and the signature crashes are
//! deduplicated by.

use crate::report::Frame;

/// How many frames of the user's side of the stack make a crash's signature.
const SIGNATURE_FRAMES: usize = 3;

/// Frames of the runtime around the user's code: sanitizer and libFuzzer internals, the
/// panic and allocation machinery. Matched on the start of the function name.
const MACHINERY: &[&str] = &[
    "__sanitizer",
    "__asan",
    "__lsan",
    "__msan",
    "__tsan",
    "__interceptor",
    "___interceptor",
    "fuzzer::",
    "__pthread",
    "__GI_",
    "__libc",
    "__cxa",
    "_Unwind",
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "__rustc::",
    "__rust_",
    "rust_panic",
    "rust_begin_unwind",
    "libfuzzer_sys::",
    "operator new",
    "operator delete",
];

/// C functions of the same machinery, matched whole (a crate may well be called `freelist`).
const MACHINERY_FUNCTIONS: &[&str] = &[
    "raise",
    "abort",
    "gsignal",
    "malloc",
    "calloc",
    "realloc",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "main",
    "_start",
];

/// Where the fuzzing harness calls into the target: nothing below is the user's stack.
const HARNESS: &[&str] = &[
    "rust_fuzzer_test_input",
    "LLVMFuzzerTestOneInput",
    "fuzzer::Fuzzer::ExecuteCallback",
    "fuzzer::Fuzzer::RunOne",
];

/// The first stack trace in `lines` (its `#0` up to the first line that is not a frame).
pub fn first_trace<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<Frame> {
    let mut frames = Vec::new();
    for line in lines {
        match parse_frame(line) {
            // A new `#0` starts the next trace (an ASan report's "freed by" stack).
            Some((0, _)) | None if !frames.is_empty() => break,
            Some((_, frame)) => frames.push(frame),
            None => {}
        }
    }
    frames
}

/// One `#N 0xADDR in FUNCTION LOCATION` line; frames without symbols have an empty name.
fn parse_frame(line: &str) -> Option<(u32, Frame)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let (number, rest) = rest.split_once(' ')?;
    let number: u32 = number.parse().ok()?;
    let rest = rest.trim_start();
    if !rest.starts_with("0x") {
        return None;
    }
    let Some((_, symbol)) = rest.split_once(" in ") else {
        return Some((number, frame(String::new(), None)));
    };
    let symbol = match symbol.find(" (BuildId:") {
        Some(cut) => &symbol[..cut],
        None => symbol,
    }
    .trim();
    match symbol.rsplit_once(' ') {
        Some((function, location)) => match parse_location(location) {
            Some((file, line, column)) => Some((
                number,
                Frame {
                    function: function.trim().to_owned(),
                    file: Some(file),
                    line: Some(line),
                    column,
                },
            )),
            // A module name (`libfoo.so+0x12`) or a function with spaces and no location.
            None if location.starts_with('(') || location.contains('.') => {
                Some((number, frame(function.trim().to_owned(), None)))
            }
            None => Some((number, frame(symbol.to_owned(), None))),
        },
        None => Some((number, frame(symbol.to_owned(), None))),
    }
}

fn frame(function: String, file: Option<String>) -> Frame {
    Frame {
        function,
        file,
        line: None,
        column: None,
    }
}

/// `path:line:column` or `path:line`.
fn parse_location(text: &str) -> Option<(String, u32, Option<u32>)> {
    let (head, last) = text.rsplit_once(':')?;
    let last: u32 = last.parse().ok()?;
    match head.rsplit_once(':') {
        Some((file, line)) if line.parse::<u32>().is_ok() => {
            Some((file.to_owned(), line.parse().ok()?, Some(last)))
        }
        _ => Some((head.to_owned(), last, None)),
    }
}

/// Source folders of the same machinery, for frames whose C++ names start with a type.
/// Inlined standard-library frames carry short names (`alloc`, `new<[u8; 64]>`), so they are
/// recognised by their source folder.
const MACHINERY_SOURCES: &[&str] = &[
    "/libfuzzer/Fuzzer",
    "/compiler-rt/",
    "/rustlib/src/rust/library/",
    "/rustc/",
    "/libfuzzer-sys-",
];

fn is_machinery(frame: &Frame) -> bool {
    let file = frame.file.as_deref().unwrap_or("");
    frame.function.is_empty()
        || MACHINERY_SOURCES.iter().any(|s| file.contains(s))
        || MACHINERY.iter().any(|p| frame.function.starts_with(p))
        || MACHINERY_FUNCTIONS.contains(&frame.function.as_str())
}

/// The frames between the runtime on top and the harness below: what the user's code did.
pub fn user_side(frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .take_while(|frame| !HARNESS.iter().any(|h| frame.function.starts_with(h)))
        .skip_while(|frame| is_machinery(frame))
        .cloned()
        .collect()
}

/// The top functions of the user's side, without hashes: the same bug reached by different
/// inputs has the same signature; line numbers are left out so edits do not split it.
pub fn signature(kind: &str, user_frames: &[Frame], fallback: Option<&str>) -> String {
    let mut parts = vec![kind.to_owned()];
    if user_frames.is_empty() {
        parts.extend(fallback.map(str::to_owned));
    }
    parts.extend(
        user_frames
            .iter()
            .take(SIGNATURE_FRAMES)
            .map(|frame| strip_hash(&frame.function).to_owned()),
    );
    parts.join(" | ")
}

/// `crate::f::h0123456789abcdef` → `crate::f`.
fn strip_hash(function: &str) -> &str {
    match function.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head
        }
        _ => function,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_symbolized_module_only_and_spaced_frames() {
        let text = "\
    #0 0x5613a0e8bc51 in __sanitizer_print_stack_trace /rustc/llvm/src/llvm-project/compiler-rt/lib/asan/asan_stack.cpp:87:3
    #1 0x7f14b937a04f  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f) (BuildId: 93ac61ec)
    #2 0x5613a0eb4d43 in fuzz_bugs::count_tags::h0123456789abcdef /w/src/lib.rs:13:13
    #3 0x5613a0eca24b in fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long) /r/FuzzerLoop.cpp:619:15
    #4 0x5613a0eb643b in __rust_try libfuzzer_sys.8cede3791a006d48-cgu.0
    #5 0x5613a0df6610 in _start (/t/chunk_tags+0x86610) (BuildId: 82c24bb7)

#0 not a frame
";
        let frames = first_trace(text.lines());
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[0].line, Some(87));
        assert_eq!(frames[1].function, "");
        assert_eq!(frames[2].file.as_deref(), Some("/w/src/lib.rs"));
        assert_eq!(frames[2].column, Some(13));
        assert_eq!(
            frames[3].function,
            "fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long)"
        );
        assert_eq!(frames[4].function, "__rust_try");
        assert!(frames[4].file.is_none());
        assert_eq!(frames[5].function, "_start");
        let user = user_side(&frames);
        assert_eq!(user.len(), 1, "{user:?}");
        assert_eq!(
            signature("panic", &user, None),
            "panic | fuzz_bugs::count_tags"
        );
    }

    #[test]
    fn a_second_trace_is_not_merged_into_the_first() {
        let text =
            "    #0 0x1 in a /x.rs:1:1\n    #1 0x2 in b /x.rs:2:1\n    #0 0x3 in c /x.rs:3:1\n";
        assert_eq!(first_trace(text.lines()).len(), 2);
    }

    #[test]
    fn without_user_frames_the_fallback_names_the_place() {
        assert_eq!(
            signature("timeout", &[], Some("src/lib.rs:4")),
            "timeout | src/lib.rs:4"
        );
    }
}
