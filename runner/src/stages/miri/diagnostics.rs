//! Miri's JSON diagnostics (`--error-format=json`) turned into typed errors with a stack.

use serde::Deserialize;

use crate::report::{Category, Frame};

/// One error Miri reported, classified.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MiriError {
    /// Miri's headline, such as `Undefined Behavior: memory access failed: ...`.
    pub message: String,
    pub category: Category,
    /// The precise kind, such as `out-of-bounds`.
    pub kind: String,
    /// Innermost first, from Miri's `stack backtrace` note (or the primary span).
    pub frames: Vec<Frame>,
    /// The libtest thread the error happened on, which names the test.
    pub thread: Option<String>,
}

#[derive(Deserialize)]
struct Diagnostic {
    message: String,
    level: String,
    #[serde(default)]
    spans: Vec<Span>,
    #[serde(default)]
    children: Vec<Diagnostic>,
}

#[derive(Deserialize)]
struct Span {
    file_name: String,
    line_start: u32,
    column_start: u32,
    is_primary: bool,
}

const MARKER: &str = "{\"$message_type\":\"diagnostic\"";

/// Finds every error diagnostic in `text`, which may mix them with other output; a
/// diagnostic may start in the middle of a line (after libtest's `test name ... `).
pub fn parse(text: &str) -> Vec<MiriError> {
    let mut errors = Vec::new();
    for line in text.lines() {
        let Some(start) = line.find(MARKER) else {
            continue;
        };
        let mut stream =
            serde_json::Deserializer::from_str(&line[start..]).into_iter::<Diagnostic>();
        let Some(Ok(diagnostic)) = stream.next() else {
            continue;
        };
        if diagnostic.level != "error" || diagnostic.message.starts_with("aborting due to") {
            continue;
        }
        errors.push(to_error(&diagnostic));
    }
    errors
}

fn to_error(diagnostic: &Diagnostic) -> MiriError {
    let help: Vec<&str> = diagnostic
        .children
        .iter()
        .map(|c| c.message.as_str())
        .collect();
    let (category, kind) = classify(&diagnostic.message, &help);
    let mut frames = diagnostic
        .children
        .iter()
        .find_map(|child| child.message.strip_prefix("stack backtrace:"))
        .map(parse_backtrace)
        .unwrap_or_default();
    if frames.is_empty() {
        if let Some(span) = diagnostic.spans.iter().find(|span| span.is_primary) {
            frames.push(Frame {
                function: String::from("<unknown>"),
                file: Some(span.file_name.clone()),
                line: Some(span.line_start),
                column: Some(span.column_start),
            });
        }
    }
    let thread = help.iter().find_map(|message| {
        let rest = message.strip_prefix("this is on thread `")?;
        Some(rest.trim_end_matches('`').to_owned())
    });
    MiriError {
        message: diagnostic.message.clone(),
        category,
        kind: kind.to_owned(),
        frames,
        thread,
    }
}

/// Maps Miri's wording onto finding kinds. Miri's messages are stable in their key phrases;
/// anything unrecognised stays visible as generic undefined behaviour or a Miri error.
pub fn classify(message: &str, help: &[&str]) -> (Category, &'static str) {
    let lower = message.to_lowercase();
    if lower.starts_with("memory leaked") {
        return (Category::Leak, "memory-leak");
    }
    if lower.starts_with("unsupported operation") {
        return (Category::Unsupported, "unsupported-operation");
    }
    if lower.contains("deadlock") {
        return (Category::Deadlock, "deadlock");
    }
    let Some(ub) = lower.strip_prefix("undefined behavior:") else {
        return (Category::Crash, "miri-error");
    };
    let mentions_borrows = help
        .iter()
        .any(|h| h.contains("Stacked Borrows") || h.contains("Tree Borrows"));
    let kind = if ub.contains("data race") {
        return (Category::DataRace, "data-race");
    } else if mentions_borrows || ub.contains("borrow stack") || ub.contains("tag does not exist") {
        "aliasing-violation"
    } else if ub.contains("deallocat") || ub.contains("double free") {
        "invalid-deallocation"
    } else if ub.contains("has been freed") {
        "use-after-free"
    } else if ub.contains("out-of-bounds")
        || ub.contains("beyond the end of the allocation")
        || ub.contains("out of bounds")
        // "memory access failed: attempting to access 4 bytes, but got alloc123+16 which is
        // only 0 bytes from the end of the allocation"
        || ub.contains("from the end of the allocation")
        || ub.contains("before the beginning of the allocation")
    {
        "out-of-bounds"
    } else if ub.contains("dangling") {
        "dangling-pointer"
    } else if ub.contains("alignment") || ub.contains("misaligned") {
        "misaligned"
    } else if ub.contains("uninitialized") {
        "uninitialized-read"
    } else if ub.contains("invalid value") {
        "invalid-value"
    } else {
        "undefined-behavior"
    };
    (Category::UndefinedBehavior, kind)
}

/// `0: function\n    at src/lib.rs:46:5: 46:12` pairs, innermost first.
fn parse_backtrace(text: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(place) = trimmed.strip_prefix("at ") {
            if let Some(frame) = frames.last_mut() {
                let (file, line, column) = parse_place(place);
                frame.file = Some(file);
                frame.line = line;
                frame.column = column;
            }
        } else if let Some((index, function)) = trimmed.split_once(": ") {
            if index.chars().all(|c| c.is_ascii_digit()) && !index.is_empty() {
                frames.push(Frame {
                    function: function.to_owned(),
                    file: None,
                    line: None,
                    column: None,
                });
            }
        }
    }
    frames
}

/// `src/lib.rs:46:5: 46:12` (start and end) or `src/lib.rs:46:5`.
fn parse_place(place: &str) -> (String, Option<u32>, Option<u32>) {
    let start = place.split(": ").next().unwrap_or(place);
    let mut parts = start.rsplitn(3, ':');
    let column = parts.next().and_then(|c| c.parse().ok());
    let line = parts.next().and_then(|l| l.parse().ok());
    match (parts.next(), line, column) {
        (Some(file), Some(line), Some(column)) => (file.to_owned(), Some(line), Some(column)),
        _ => (start.to_owned(), None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_past_the_end_is_out_of_bounds() {
        let message = "Undefined Behavior: memory access failed: attempting to access 8 bytes, \
                       but got alloc1048+0x40 which is only 0 bytes from the end of the allocation";
        assert_eq!(classify(message, &[]).1, "out-of-bounds");
        let before = "Undefined Behavior: memory access failed: attempting to access 1 byte, but \
                      got alloc7-0x1 which points to before the beginning of the allocation";
        assert_eq!(classify(before, &[]).1, "out-of-bounds");
    }

    #[test]
    fn parses_places_with_and_without_end() {
        assert_eq!(
            parse_place("src/lib.rs:46:5: 46:12"),
            ("src/lib.rs".to_owned(), Some(46), Some(5))
        );
        assert_eq!(
            parse_place("src/a.rs:3:1"),
            ("src/a.rs".to_owned(), Some(3), Some(1))
        );
        assert_eq!(parse_place("weird"), ("weird".to_owned(), None, None));
    }

    #[test]
    fn backtrace_frames_are_innermost_first() {
        let frames = parse_backtrace(
            "\n0: aliasing_violation\n    at src/lib.rs:46:5: 46:12\n1: tests::aliasing\n    at src/lib.rs:119:17: 119:37",
        );
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].function, "aliasing_violation");
        assert_eq!(frames[1].line, Some(119));
    }

    #[test]
    fn garbage_never_panics() {
        assert!(parse("{\"$message_type\":\"diagnostic\",\"message\":").is_empty());
        assert!(parse("").is_empty());
        assert!(parse("{\"$message_type\":\"diagnostic\"}").is_empty());
    }

    macro_rules! capture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/data/miri/", $name))
        };
    }

    fn only_error(text: &str) -> MiriError {
        let errors = parse(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn classifies_every_captured_kind() {
        let cases = [
            (capture!("out_of_bounds.stderr"), "out-of-bounds", 11),
            (capture!("dangling.stderr"), "use-after-free", 19),
            (capture!("bad_bool.stderr"), "invalid-value", 24),
            (capture!("misaligned.stderr"), "misaligned", 30),
            (capture!("uninit.stderr"), "uninitialized-read", 36),
            (capture!("aliasing.stderr"), "aliasing-violation", 46),
            (capture!("race.stderr"), "data-race", 58),
        ];
        for (text, kind, line) in cases {
            let error = only_error(text);
            assert!(matches!(
                error.category,
                Category::UndefinedBehavior | Category::DataRace
            ));
            assert_eq!(error.kind, kind, "{}", error.message);
            let first = &error.frames[0];
            assert_eq!(first.file.as_deref(), Some("src/lib.rs"), "{kind}");
            assert_eq!(first.line, Some(line), "{kind}");
        }
    }

    #[test]
    fn leak_and_unsupported_are_not_undefined_behaviour() {
        let leak = only_error(capture!("leaks.stderr"));
        assert_eq!(
            (leak.category, leak.kind.as_str()),
            (Category::Leak, "memory-leak")
        );
        assert!(leak.frames.iter().any(|f| f.function == "tests::leaks"));
        let ffi = only_error(capture!("ffi_call.stderr"));
        assert_eq!(
            (ffi.category, ffi.kind.as_str()),
            (Category::Unsupported, "unsupported-operation")
        );
        assert!(ffi.message.contains("getloadavg"));
        assert_eq!(ffi.thread.as_deref(), Some("tests::ffi_call"));
    }

    #[test]
    fn data_race_names_the_thread() {
        let race = only_error(capture!("race.stderr"));
        assert_eq!(race.category, Category::DataRace);
        assert!(race.thread.is_some());
    }

    #[test]
    fn diagnostics_inside_a_doctest_failure_are_found() {
        let events = crate::libtest::parse_events(capture!("doctest.stdout"));
        let crate::libtest::Outcome::Failed { output } = &events.results[0].outcome else {
            panic!("the doctest should have failed")
        };
        let error = only_error(output);
        assert_eq!(error.kind, "out-of-bounds");
    }
}
