//! The parsers on real libFuzzer output captured from `fixtures/fuzz-bugs` (versions in
//! `tests/data/fuzz/README.md`): kind, message, user frames and stats of each kind of end.

use super::libfuzzer::{self, Session};
use super::{stack, triage};

fn capture(name: &str) -> String {
    let path = format!("{}/tests/data/fuzz/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn session(name: &str) -> Session {
    libfuzzer::parse(&capture(name))
}

/// The user's side of the stack as `function` names.
fn user_functions(session: &Session) -> Vec<String> {
    let crash = session.crash.as_ref().expect("a crash");
    stack::user_side(&crash.frames)
        .into_iter()
        .map(|f| f.function)
        .collect()
}

#[test]
fn a_panic_keeps_its_message_place_artifact_and_stats() {
    let session = session("panic.stderr");
    let crash = session.crash.clone().unwrap();
    assert_eq!(crash.kind, "panic");
    assert_eq!(crash.message, "unsupported chunk tag at offset 0");
    assert_eq!(
        crash.panic_location.as_deref(),
        Some("/repo/fixtures/fuzz-bugs/src/lib.rs:13")
    );
    assert!(crash
        .artifact
        .unwrap()
        .ends_with("chunk_tags/crash-935ec672637dd87c2aab16496baedcf2533ef73b"));
    assert_eq!(user_functions(&session), ["fuzz_bugs::count_tags"]);
    assert_eq!(session.seed, Some(1));
    assert!(session.inited);
    assert_eq!(session.stat("number_of_executed_units"), 82);
    assert_eq!(session.stat("peak_rss_mb"), 132);
}

#[test]
fn a_timeout_takes_its_stack_from_before_the_report_line() {
    let session = session("timeout.stderr");
    let crash = session.crash.clone().unwrap();
    assert_eq!(crash.kind, "timeout");
    assert_eq!(crash.headline, "libFuzzer: timeout after 3 seconds");
    assert!(crash.artifact.unwrap().contains("/links/timeout-"));
    let functions = user_functions(&session);
    assert_eq!(functions[0], "fuzz_bugs::follow_links", "{functions:?}");
    assert_eq!(
        stack::signature("timeout", &stack::user_side(&crash.frames), None),
        "timeout | fuzz_bugs::follow_links | links::_::__libfuzzer_sys_run"
    );
}

#[test]
fn a_clean_run_reports_coverage_corpus_and_throughput() {
    let session = session("clean.stderr");
    assert!(session.crash.is_none());
    let status = session.last_status.unwrap();
    assert_eq!((status.cov, status.ft), (31, 61));
    assert_eq!((status.corpus_inputs, status.corpus_bytes), (15, 1043));
    assert!(session.stat("number_of_executed_units") > 1_000_000);
    assert!(session.stat("average_exec_per_sec") > 0);
    assert_eq!(session.stat("new_units_added"), 23);
}

#[test]
fn an_address_sanitizer_report_names_the_access() {
    let session = session("heap-buffer-overflow.stderr");
    let crash = session.crash.clone().unwrap();
    assert_eq!(crash.kind, "heap-buffer-overflow");
    assert_eq!(crash.reporter, "AddressSanitizer");
    assert_eq!(crash.message, "heap-buffer-overflow: READ of size 1");
    assert_eq!(
        user_functions(&session),
        ["overflow::_::__libfuzzer_sys_run"]
    );
}

#[test]
fn a_leak_is_attributed_to_the_allocating_user_frame() {
    let session = session("leak.stderr");
    let crash = session.crash.clone().unwrap();
    assert_eq!(crash.kind, "memory-leak");
    assert_eq!(
        crash.message,
        "Direct leak of 64 byte(s) in 1 object(s) allocated from:"
    );
    assert!(crash.artifact.unwrap().contains("/leak-"));
    assert_eq!(user_functions(&session), ["leak::_::__libfuzzer_sys_run"]);
}

#[test]
fn out_of_memory_is_its_own_kind() {
    let session = session("oom.stderr");
    let crash = session.crash.clone().unwrap();
    assert_eq!(crash.kind, "out-of-memory");
    assert_eq!(crash.message, "out-of-memory (malloc(3221225472))");
    assert!(crash.artifact.unwrap().contains("/oom-"));
    assert_eq!(user_functions(&session)[0], "oom::_::__libfuzzer_sys_run");
}

#[test]
fn the_debug_form_of_an_arbitrary_input_is_read_from_cargo_fuzz_fmt() {
    let debug = triage::parse_fmt(&capture("fmt-arbitrary.stderr")).unwrap();
    assert!(debug.starts_with("LinkTable {"), "{debug}");
    assert!(debug.contains("magic: 1263421772"), "{debug}");
}

#[test]
fn tmin_output_is_not_mistaken_for_a_crash_report() {
    let session = session("tmin.stderr");
    assert!(session.crash.is_none());
}
