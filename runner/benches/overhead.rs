//! Parse and render time on a large captured log: runner's own work per stage, in ms.
//! Run with `cargo bench -p runner --bench overhead` (or `bench/overhead.sh`).

use std::fmt::Write as _;
use std::time::Instant;

use runner::parsers as libtest;
use runner::parsers::StageName;
use runner::parsers::{miri_diagnostics, MiriError};
use runner::report::assemble::{self, GateSettings};
use runner::report::{
    junit, markdown, model, sarif, Category, Evidence, Finding, Frame, Location, Severity,
    StageReport, Status,
};

const CAPTURES: &[&str] = &[
    include_str!("../tests/data/miri/aliasing.stderr"),
    include_str!("../tests/data/miri/bad_bool.stderr"),
    include_str!("../tests/data/miri/dangling.stderr"),
    include_str!("../tests/data/miri/ffi_call.stderr"),
    include_str!("../tests/data/miri/leaks.stderr"),
    include_str!("../tests/data/miri/misaligned.stderr"),
    include_str!("../tests/data/miri/out_of_bounds.stderr"),
    include_str!("../tests/data/miri/race.stderr"),
    include_str!("../tests/data/miri/uninit.stderr"),
];

/// How many copies of the captured diagnostics, and how many libtest events, make the
/// "large" log: about a thousand UB reports and ten thousand tests.
const COPIES: usize = 120;
const TESTS: usize = 10_000;

#[allow(clippy::cast_precision_loss, reason = "sizes for people")]
fn main() {
    let stderr: String = CAPTURES
        .iter()
        .copied()
        .cycle()
        .take(CAPTURES.len() * COPIES)
        .collect();
    let mut stdout = String::new();
    for index in 0..TESTS {
        let _ = writeln!(
            stdout,
            "{{ \"type\": \"test\", \"event\": \"started\", \"name\": \"tests::t{index}\" }}"
        );
        let _ = writeln!(stdout, "{{ \"type\": \"test\", \"name\": \"tests::t{index}\", \"event\": \"ok\", \"exec_time\": 0.01 }}");
    }
    let megabytes = (stderr.len() + stdout.len()) as f64 / 1e6;

    let started = Instant::now();
    let errors = miri_diagnostics(&stderr);
    let events = libtest::parse_events(&stdout);
    let parse_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(errors.len(), CAPTURES.len() * COPIES);
    assert_eq!(events.results.len(), TESTS);

    let findings: Vec<Finding> = errors
        .iter()
        .enumerate()
        .map(|(i, e)| finding(i, e))
        .collect();
    let mut report = report(findings);
    let started = Instant::now();
    let gate = GateSettings {
        fail_on: Severity::High,
        new_only: false,
        baseline: None,
    };
    assemble::complete(&mut report, &gate, false);
    let markdown = markdown::render(&report);
    let json = serde_json::to_string_pretty(&report).expect("the report serialises");
    let sarif = serde_json::to_string(&sarif::render(&report)).expect("the SARIF log serialises");
    let junit = junit::render(&report);
    let render_ms = started.elapsed().as_secs_f64() * 1e3;

    println!(
        "log: {megabytes:.1} MB ({} Miri diagnostics, {TESTS} libtest results)",
        errors.len()
    );
    println!("parse:  {parse_ms:8.1} ms");
    println!(
        "render: {render_ms:8.1} ms ({} findings; {} KB Markdown, {} KB JSON, {} KB SARIF, {} KB JUnit)",
        report.stages[0].findings.len(),
        markdown.len() / 1024,
        json.len() / 1024,
        sarif.len() / 1024,
        junit.len() / 1024
    );
    println!("total:  {:8.1} ms", parse_ms + render_ms);
}

fn finding(index: usize, error: &MiriError) -> Finding {
    let frame = error.frames.first().cloned().unwrap_or(Frame {
        function: "f".into(),
        file: None,
        line: None,
        column: None,
    });
    Finding {
        fingerprint: format!("{index:016x}"),
        stage: StageName::Miri,
        category: error.category,
        kind: error.kind.clone(),
        severity: if error.category == Category::Unsupported {
            Severity::Info
        } else {
            Severity::Critical
        },
        message: error.message.clone(),
        location: Some(Location {
            file: "src/lib.rs".into(),
            line: frame.line.unwrap_or(1),
            column: frame.column,
        }),
        function: Some(frame.function.clone()),
        test: Some(format!("tests::t{index}")),
        target: Some("x86_64-unknown-linux-gnu".into()),
        seed: None,
        borrow_model: None,
        stack: error.frames.clone(),
        repro: Some("cargo miri test -- --exact tests::t".into()),
        evidence: vec![Evidence {
            tool: "miri".into(),
            message: error.message.clone(),
        }],
        note: None,
        first_found_in: None,
    }
}

fn report(findings: Vec<Finding>) -> model::Report {
    let stage = StageReport {
        findings,
        ..StageReport::new(StageName::Miri, Status::Fail)
    };
    let mut report = model::Report::new(
        "miri",
        "/ws".into(),
        model::Environment::default(),
        Severity::High,
    );
    report.stages = vec![stage];
    report.partial = false;
    report
}
