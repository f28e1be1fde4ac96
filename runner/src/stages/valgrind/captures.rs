//! The parsers on real memcheck output captured from `fixtures/valgrind-bugs` (see
//! `tests/data/valgrind/README.md` for the versions): one file per kind of finding.

use super::fds;
use super::xml::{self, MemcheckError, MemcheckLog};
use crate::report::Frame;

macro_rules! capture {
    ($name:literal) => {
        include_str!(concat!("../../../tests/data/valgrind/", $name))
    };
}

fn parsed(text: &str) -> MemcheckLog {
    xml::parse(text).unwrap()
}

fn only_error(log: &MemcheckLog) -> &MemcheckError {
    assert_eq!(log.errors.len(), 1, "{:#?}", log.errors);
    &log.errors[0]
}

/// The frame of `function`, as (file name, line).
fn frame_of<'a>(stack: &'a [Frame], function: &str) -> (&'a str, u32) {
    let frame = stack
        .iter()
        .find(|frame| frame.function == function)
        .unwrap_or_else(|| panic!("no frame {function} in {stack:#?}"));
    let file = frame.file.as_deref().unwrap();
    assert!(
        file.starts_with('/'),
        "valgrind gives absolute paths: {file}"
    );
    (file.rsplit('/').next().unwrap(), frame.line.unwrap())
}

#[test]
fn invalid_read_has_size_address_relation_and_both_stacks() {
    let log = parsed(capture!("invalid_read.xml"));
    assert!(log.complete);
    let error = only_error(&log);
    assert_eq!(error.kind, "InvalidRead");
    assert_eq!(error.what, "Invalid read of size 4");
    assert_eq!(
        frame_of(&error.stack, "valgrind_bugs::read_past_end"),
        ("lib.rs", 18)
    );
    assert_eq!(error.aux.len(), 1);
    assert!(
        error.aux[0]
            .text
            .ends_with("is 0 bytes after a block of size 12 alloc'd"),
        "{}",
        error.aux[0].text
    );
    assert_eq!(
        frame_of(&error.aux[0].stack, "valgrind_bugs::tests::invalid_read"),
        ("lib.rs", 54)
    );
    let suppression = error.suppression.as_deref().unwrap();
    assert!(suppression.starts_with("{\n   <insert_a_suppression_name_here>\n   Memcheck:Addr4\n"));
    assert!(suppression.ends_with('}'));
}

#[test]
fn uninitialised_condition_carries_its_origin() {
    let log = parsed(capture!("uninit_branch.xml"));
    let error = only_error(&log);
    assert_eq!(error.kind, "UninitCondition");
    assert_eq!(
        error.what,
        "Conditional jump or move depends on uninitialised value(s)"
    );
    assert_eq!(
        frame_of(&error.stack, "valgrind_bugs::branch_on_uninit"),
        ("lib.rs", 24)
    );
    assert_eq!(
        error.aux[0].text,
        "Uninitialised value was created by a heap allocation"
    );
    assert_eq!(
        frame_of(&error.aux[0].stack, "valgrind_bugs::branch_on_uninit"),
        ("lib.rs", 23)
    );
}

#[test]
fn leaks_have_bytes_blocks_and_the_allocation_stack() {
    let log = parsed(capture!("leak.xml"));
    let error = only_error(&log);
    assert_eq!(error.kind, "Leak_DefinitelyLost");
    assert_eq!(error.leaked, Some((64, 1)));
    assert!(error
        .what
        .starts_with("64 bytes in 1 blocks are definitely lost"));
    assert_eq!(
        frame_of(&error.stack, "valgrind_bugs::leak_buffer"),
        ("lib.rs", 9)
    );
    let program = parsed(capture!("program_leak.xml"));
    let error = only_error(&program);
    assert_eq!(error.leaked, Some((24, 1)));
    assert_eq!(
        frame_of(&error.stack, "leaky_cli::main"),
        ("leaky-cli.rs", 5)
    );
}

#[test]
fn clean_test_reports_nothing_but_the_suppressed_std_block() {
    let log = parsed(capture!("passes.xml"));
    assert!(log.errors.is_empty());
    assert!(log.fd_stacks.is_empty());
    assert_eq!(log.suppressed, 1);
    assert!(log.complete);
}

#[test]
fn fd_leak_pairs_the_text_log_with_the_xml_stack() {
    let log = parsed(capture!("fd_leak.xml"));
    assert!(log.errors.is_empty());
    let open = fds::parse(capture!("fd_leak.log"));
    assert_eq!(open.len(), 5, "{open:#?}");
    assert_eq!(open.iter().filter(|fd| fd.inherited).count(), 4);
    let leaked = fds::leaked(open, log.fd_stacks);
    assert_eq!(leaked.len(), 1);
    let (fd, stack) = &leaked[0];
    assert_eq!(fd.fd, 5);
    assert!(fd.description.ends_with("/valgrind-bugs/Cargo.toml"));
    assert_eq!(
        frame_of(stack, "valgrind_bugs::open_and_forget"),
        ("lib.rs", 32)
    );
}

#[test]
fn a_cut_off_file_still_yields_the_error_and_the_signal() {
    let log = parsed(capture!("segfault_cut.xml"));
    assert!(!log.complete);
    let error = only_error(&log);
    assert_eq!(error.kind, "InvalidRead");
    assert_eq!(
        error.aux[0].text,
        "Address 0x10 is not stack'd, malloc'd or (recently) free'd"
    );
    let fatal = log.fatal_signal.unwrap();
    assert_eq!(fatal.name, "SIGSEGV");
    assert_eq!(
        frame_of(&fatal.stack, "valgrind_bugs::read_unmapped"),
        ("lib.rs", 40)
    );
}

#[test]
fn any_prefix_of_a_report_parses_or_fails_without_panicking() {
    let text = capture!("invalid_read.xml");
    let cuts = (0..text.len())
        .step_by(53)
        .filter(|at| text.is_char_boundary(*at));
    for at in cuts {
        if let Ok(log) = xml::parse(&text[..at]) {
            assert!(log.errors.len() <= 1);
        }
    }
    assert!(xml::parse("not xml at all").is_err());
    assert!(xml::parse("").is_err());
}
