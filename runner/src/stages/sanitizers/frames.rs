//! One stack frame line of a sanitizer report, in the two layouts the runtimes print:
//! `#0 0x55d1 in func /src/lib.rs:10:14` (address, leak, memory) and
//! `#0 func /src/lib.rs:10:14 (bin+0x1f) (BuildId: ..)` (thread).

use crate::report::Frame;

/// Parses a frame line; anything else (headings, shadow-byte dumps) is `None`.
pub fn parse_frame(line: &str) -> Option<Frame> {
    let rest = line.trim_start().strip_prefix('#')?;
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || !rest[digits..].starts_with(' ') {
        return None;
    }
    let mut rest = rest[digits..].trim_start();
    if rest.starts_with("0x") {
        rest = rest
            .split_once(' ')
            .map_or("", |(_, after)| after)
            .trim_start();
        rest = rest.strip_prefix("in ").unwrap_or(rest);
    }
    let rest = strip_module_suffixes(rest);
    let (function, file, line, column) = match rest.rsplit_once(' ') {
        Some((function, last)) if looks_like_location(last) => {
            let (file, line, column) = split_location(last);
            (function.trim_end(), file, line, column)
        }
        _ => (rest, None, None, None),
    };
    Some(Frame {
        function: without_hash(function).to_owned(),
        file,
        line,
        column,
    })
}

/// Drops the trailing `(binary+0x1234)` and `(BuildId: ...)` groups; parentheses inside a
/// function name, like `asan_thread_start(void*)`, stay.
fn strip_module_suffixes(text: &str) -> &str {
    let mut rest = text.trim_end();
    while rest.ends_with(')') {
        let Some(open) = rest.rfind('(') else { break };
        let group = &rest[open..];
        let at_word_start = open == 0 || rest[..open].ends_with(' ');
        if !(at_word_start && (group.starts_with("(BuildId:") || group.contains("+0x"))) {
            break;
        }
        rest = rest[..open].trim_end();
    }
    rest
}

/// A file location ends a frame line: a path (`/x/lib.rs:3:9`, `nptl/pthread_create.c:442`)
/// or an object name (`rust_out.4f2-cgu.0`); a word of a function name never has `/` and
/// never looks like a file without generics or parentheses.
fn looks_like_location(word: &str) -> bool {
    if word == "<null>" {
        return true;
    }
    if word.contains('/') {
        return true;
    }
    word.contains('.') && !word.contains(['<', '>', '(', ')', ',', '{'])
}

fn split_location(word: &str) -> (Option<String>, Option<u32>, Option<u32>) {
    if word == "<null>" {
        return (None, None, None);
    }
    let mut parts = word.rsplitn(3, ':');
    let last = parts.next().and_then(|p| p.parse::<u32>().ok());
    let middle = parts.next();
    match (
        last,
        middle.and_then(|p| p.parse::<u32>().ok()),
        parts.next(),
    ) {
        (Some(column), Some(line), Some(file)) => (Some(file.to_owned()), Some(line), Some(column)),
        (Some(line), _, _) => {
            let file = word.rsplit_once(':').map_or(word, |(file, _)| file);
            (Some(file.to_owned()), Some(line), None)
        }
        _ => (Some(word.to_owned()), None, None),
    }
}

/// Legacy-mangled Rust symbols end in `::h<16 hex>`; the hash changes with every flag, so
/// it is left out of names that feed fingerprints.
fn without_hash(function: &str) -> &str {
    match function.rsplit_once("::h") {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            name
        }
        _ => function,
    }
}

/// The sanitizer runtime's own frames (`malloc`, `free`, interceptors): never the place a
/// bug is, so short stacks start after them.
pub fn is_runtime_frame(frame: &Frame) -> bool {
    frame
        .file
        .as_deref()
        .is_some_and(|file| file.contains("/compiler-rt/lib/"))
}

/// Where the test harness starts: frames from here on are libtest and thread plumbing.
pub fn is_harness_boundary(frame: &Frame) -> bool {
    frame.function.contains("__rust_begin_short_backtrace")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(line: &str) -> Frame {
        parse_frame(line).unwrap_or_else(|| panic!("not a frame: {line}"))
    }

    #[test]
    fn address_layout_with_location() {
        let f = frame("    #0 0x5609c95de71c in sanitizer_bugs::heap_overflow /w/src/lib.rs:10:14");
        assert_eq!(f.function, "sanitizer_bugs::heap_overflow");
        assert_eq!(f.file.as_deref(), Some("/w/src/lib.rs"));
        assert_eq!((f.line, f.column), (Some(10), Some(14)));
    }

    #[test]
    fn thread_layout_with_module_suffixes() {
        let f = frame(
            "    #3 <fn() as core::ops::function::FnOnce<()>>::call_once /r/library/core/src/ops/function.rs:250:5 (bin-9f+0x59248f) (BuildId: fdf2)",
        );
        assert_eq!(
            f.function,
            "<fn() as core::ops::function::FnOnce<()>>::call_once"
        );
        assert_eq!(f.line, Some(250));
    }

    #[test]
    fn unsymbolized_and_object_only_frames() {
        let f = frame("    #1 0x56 in <alloc::raw_vec::RawVecInner>::try_allocate_in (/t/bin+0x1b1b0c) (BuildId: 95)");
        assert_eq!(f.function, "<alloc::raw_vec::RawVecInner>::try_allocate_in");
        assert_eq!(f.file, None);
        let f = frame("    #4 0x4c6d4e  (/t/bin+0x4c6d4e)");
        assert_eq!(f.function, "");
        let f =
            frame("    #12 __rust_try test.81060410f518874-cgu.02 (bin+0x2797f8) (BuildId: fd)");
        assert_eq!(f.function, "__rust_try");
        assert_eq!(f.file.as_deref(), Some("test.81060410f518874-cgu.02"));
        assert_eq!(f.line, None);
        let f = frame("    #24 0x55 in asan_thread_start(void*) /rustc/llvm/src/llvm-project/compiler-rt/lib/asan/asan_interceptors.cpp:246:28");
        assert_eq!(f.function, "asan_thread_start(void*)");
        assert!(is_runtime_frame(&f));
        let f = frame("    #33 0x7f in clone3 misc/../sysdeps/unix/sysv/linux/x86_64/clone3.S:81");
        assert_eq!((f.line, f.column), (Some(81), None));
        let f = frame("    #2 f <null> (bin+0x1)");
        assert_eq!((f.function.as_str(), f.file), ("f", None));
    }

    #[test]
    fn legacy_hashes_are_dropped_and_non_frames_rejected() {
        let f = frame("    #0 0x1 in demo::f::h0123456789abcdef /w/src/lib.rs:1:1");
        assert_eq!(f.function, "demo::f");
        assert!(parse_frame("READ of size 1 at 0x7be9 thread T1").is_none());
        assert!(parse_frame("#include").is_none());
        assert!(parse_frame("  #").is_none());
    }
}
