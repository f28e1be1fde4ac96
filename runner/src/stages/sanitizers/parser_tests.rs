//! The report parser on real captured output (`runner/tests/data/sanitizers/`): every kind
//! the stage classifies, and no panic on truncated or mangled text.

use super::report_parser::{parse, LeakSize, SanitizerReport};
use super::sanitizer::Sanitizer;

macro_rules! capture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/data/sanitizers/", $name))
    };
}

const CAPTURES: &[&str] = &[
    capture!("address-heap-buffer-overflow.stderr"),
    capture!("address-use-after-free.stderr"),
    capture!("address-leak.stderr"),
    capture!("address-nested-leaks.stderr"),
    capture!("address-stack-buffer-overflow.stderr"),
    capture!("address-double-free.stderr"),
    capture!("address-use-after-return.stderr"),
    capture!("address-use-after-scope.stderr"),
    capture!("leak-nested-leaks.stderr"),
    capture!("thread-data-race.stderr"),
    capture!("thread-data-race-reversed.stderr"),
    capture!("thread-use-after-free.stderr"),
    capture!("memory-uninit.stderr"),
    capture!("memory-use-after-free.stderr"),
    capture!("address-doctest.stdout"),
];

fn only(text: &str) -> SanitizerReport {
    let parsed = parse(text);
    assert_eq!(parsed.fatal, None);
    assert_eq!(parsed.reports.len(), 1, "{:#?}", parsed.reports);
    parsed.reports.into_iter().next().unwrap()
}

/// (function, file suffix, line) of a report's first frame outside the runtime.
fn top(report: &SanitizerReport) -> (String, String, u32) {
    let frame = report
        .stack
        .iter()
        .find(|f| !super::frames::is_runtime_frame(f))
        .unwrap();
    let file = frame.file.clone().unwrap();
    let short = file.rsplit("/sanitizer-bugs/").next().unwrap().to_owned();
    (frame.function.clone(), short, frame.line.unwrap())
}

#[test]
fn heap_buffer_overflow() {
    let report = only(capture!("address-heap-buffer-overflow.stderr"));
    assert_eq!(report.runtime, Sanitizer::Address);
    assert_eq!(report.kind, "heap-buffer-overflow");
    assert_eq!(
        report.access.as_deref(),
        Some("READ of size 1 by thread T1")
    );
    assert_eq!(
        report.description,
        "heap-buffer-overflow; READ of size 1 by thread T1; located 0 bytes after 3-byte region"
    );
    assert_eq!(
        top(&report),
        (
            "sanitizer_bugs::heap_overflow".into(),
            "src/lib.rs".into(),
            10
        )
    );
    assert_eq!(report.stack[0].column, Some(14));
    let headings: Vec<&str> = report.related.iter().map(|r| r.heading.as_str()).collect();
    assert_eq!(
        headings,
        [
            "allocated by thread T1 here",
            "Thread T1 created by T0 here"
        ]
    );
}

#[test]
fn use_after_free_has_free_and_allocation_stacks() {
    let report = only(capture!("address-use-after-free.stderr"));
    assert_eq!(report.kind, "use-after-free");
    assert_eq!(report.related[0].heading, "freed by thread T1 here");
    assert_eq!(
        report.related[1].heading,
        "previously allocated by thread T1 here"
    );
    assert!(report.related[0]
        .frames
        .iter()
        .any(|f| f.function == "sanitizer_bugs::use_after_free" && f.line == Some(17)));
}

#[test]
fn stack_errors_and_double_free() {
    for (text, kind) in [
        (
            capture!("address-stack-buffer-overflow.stderr"),
            "stack-buffer-overflow",
        ),
        (
            capture!("address-use-after-return.stderr"),
            "use-after-return",
        ),
        (
            capture!("address-use-after-scope.stderr"),
            "use-after-scope",
        ),
        (capture!("address-double-free.stderr"), "double-free"),
    ] {
        let report = only(text);
        assert_eq!(report.kind, kind);
        assert!(!report.stack.is_empty(), "{kind}");
        assert!(!report.description.contains("0x"), "{}", report.description);
    }
    let double = only(capture!("address-double-free.stderr"));
    assert_eq!(
        double.description,
        "attempting double-free in thread T1; located 0 bytes inside of 8-byte region"
    );
}

#[test]
fn leaks_inside_address_with_bytes_and_allocations() {
    let report = only(capture!("address-leak.stderr"));
    assert_eq!(report.runtime, Sanitizer::Leak);
    assert_eq!(report.kind, "direct-leak");
    assert_eq!(
        report.leak,
        Some(LeakSize {
            bytes: 64,
            allocations: 1
        })
    );
    assert!(report
        .stack
        .iter()
        .any(|f| f.function == "sanitizer_bugs::leak" && f.line == Some(23)));
}

#[test]
fn direct_and_indirect_leak_blocks_are_separate_reports() {
    for text in [
        capture!("address-nested-leaks.stderr"),
        capture!("leak-nested-leaks.stderr"),
    ] {
        let parsed = parse(text);
        let blocks: Vec<(&str, u64, u64)> = parsed
            .reports
            .iter()
            .map(|r| {
                let size = r.leak.unwrap();
                (r.kind.as_str(), size.bytes, size.allocations)
            })
            .collect();
        assert_eq!(
            blocks,
            [
                ("direct-leak", 24, 1),
                ("indirect-leak", 84, 3),
                ("indirect-leak", 72, 1)
            ]
        );
        assert_eq!(
            parsed.reports[0].description,
            "Direct leak of 24 byte(s) in 1 object(s)"
        );
    }
}

#[test]
fn data_race_has_both_accesses() {
    let report = only(capture!("thread-data-race.stderr"));
    assert_eq!(report.runtime, Sanitizer::Thread);
    assert_eq!(report.kind, "data-race");
    assert_eq!(
        report.access.as_deref(),
        Some("Read of size 8 by thread T2")
    );
    assert_eq!(
        top(&report),
        (
            "sanitizer_bugs::data_race::{closure#0}".into(),
            "src/lib.rs".into(),
            38
        )
    );
    let other = &report.related[0];
    assert_eq!(other.heading, "Previous write of size 8 by thread T1");
    assert_eq!(other.frames[0].function, "sanitizer_bugs::data_race");
    assert_eq!(other.frames[0].line, Some(40));
    assert!(report
        .description
        .contains("Location is stack of thread T1"));
}

#[test]
fn thread_use_after_free() {
    let report = only(capture!("thread-use-after-free.stderr"));
    assert_eq!(report.kind, "use-after-free");
    assert_eq!(
        top(&report).0,
        "core::ptr::read::<u32>",
        "the access is inside std, the user frame comes later"
    );
}

#[test]
fn uninitialised_value_with_its_origin() {
    let report = only(capture!("memory-uninit.stderr"));
    assert_eq!(report.runtime, Sanitizer::Memory);
    assert_eq!(report.kind, "use-of-uninitialized-value");
    assert_eq!(
        top(&report),
        (
            "sanitizer_bugs::uninit_branch".into(),
            "src/lib.rs".into(),
            50
        )
    );
    let origin = &report.related[0];
    assert_eq!(
        origin.heading,
        "Uninitialized value was created by a heap allocation"
    );
    assert!(origin
        .frames
        .iter()
        .any(|f| f.function == "sanitizer_bugs::uninit_branch" && f.line == Some(47)));
    let freed = only(capture!("memory-use-after-free.stderr"));
    assert!(freed.description.contains("created by a heap deallocation"));
}

#[test]
fn doctest_reports_are_read_from_the_failure_output() {
    let events = crate::libtest::parse_events(capture!("address-doctest.stdout"));
    let failed: Vec<&str> = events
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            crate::libtest::Outcome::Failed { output } => Some(output.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    let report = only(failed[0]);
    assert_eq!(report.kind, "stack-buffer-overflow");
    assert_eq!(
        report.stack[0].file.as_deref(),
        Some("/tmp/san-extra/src/lib.rs")
    );
    assert_eq!(report.stack[0].line, Some(13));
    // The doctest's own frame has an object name instead of a file and line.
    assert_eq!(
        report.stack[1].function,
        "rust_out::main::_doctest_main_src_lib_rs_3_0"
    );
    assert_eq!(report.stack[1].line, None);
}

#[test]
fn no_panic_on_truncated_or_mangled_output() {
    // A small deterministic generator stands in for a fuzzer: the parser reads whatever a
    // crashing process managed to write.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for text in CAPTURES {
        let lines: Vec<&str> = text.lines().collect();
        for cut in 0..lines.len() {
            let _ = parse(&lines[..cut].join("\n"));
        }
        for _ in 0..50 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..20 {
                let index = usize::try_from(next() % bytes.len() as u64).unwrap();
                bytes[index] = b"#0x:= ()/\n9aZ"[usize::try_from(next() % 13).unwrap()];
            }
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
