//! Reads what one libFuzzer process printed: its seed, status lines (`cov`, `ft`, corpus),
//! `-print_final_stats=1` figures, and the crash report with its kind, stack and artifact.

use std::collections::BTreeMap;

use super::stack;
use crate::libtest;
use crate::report::Frame;

/// Everything one session printed that runner reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub seed: Option<u64>,
    /// Whether the corpus replay finished (`INITED`): a crash before it came from an input
    /// already in the corpus.
    pub inited: bool,
    pub last_status: Option<Status>,
    /// `stat::name: value` lines, without the prefix.
    pub stats: BTreeMap<String, u64>,
    pub crash: Option<Crash>,
}

impl Session {
    pub fn stat(&self, name: &str) -> u64 {
        self.stats.get(name).copied().unwrap_or(0)
    }
}

/// One `#N  NEW cov: … ft: … corp: 5/20b … exec/s: … rss: 33Mb` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    pub executions: u64,
    pub cov: u64,
    pub ft: u64,
    pub corpus_inputs: u64,
    pub corpus_bytes: u64,
    pub rss_mb: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// `panic`, `timeout`, `out-of-memory`, `memory-leak`, a sanitizer's own kind such as
    /// `heap-buffer-overflow`, `deadly-signal` or `fuzz-target-exited`.
    pub kind: String,
    /// Which tool reported it: `libfuzzer` or the sanitizer (`AddressSanitizer`, …).
    pub reporter: String,
    /// The panic message or the tool's description.
    pub message: String,
    /// The tool's own report line, without the `==pid==` prefix.
    pub headline: String,
    pub frames: Vec<Frame>,
    /// `file:line` of a panic, for the crashes whose stack has no symbols.
    pub panic_location: Option<String>,
    /// Where libFuzzer wrote the input.
    pub artifact: Option<String>,
}

pub fn parse(output: &str) -> Session {
    let lines: Vec<&str> = output.lines().collect();
    let mut session = Session::default();
    for line in &lines {
        if let Some(seed) = line.strip_prefix("INFO: Seed: ") {
            session.seed = seed.trim().parse().ok();
        } else if let Some(status) = parse_status(line) {
            session.inited |= line.contains("INITED");
            session.last_status = Some(status);
        } else if let Some((name, value)) = line
            .strip_prefix("stat::")
            .and_then(|rest| rest.split_once(':'))
        {
            if let Ok(value) = value.trim().parse() {
                session.stats.insert(name.trim().to_owned(), value);
            }
        }
    }
    session.crash = parse_crash(&lines);
    session
}

/// A status line: `#` and the execution count, an event word, then `key: value` pairs.
fn parse_status(line: &str) -> Option<Status> {
    let rest = line.strip_prefix('#')?;
    let mut words = rest.split_whitespace();
    let executions = words.next()?.parse().ok()?;
    let event = words.next()?;
    if !event.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let mut status = Status {
        executions,
        ..Status::default()
    };
    let mut saw_cov = false;
    while let Some(word) = words.next() {
        let Some(value) = (match word {
            "cov:" | "ft:" | "corp:" | "rss:" => words.next(),
            _ => None,
        }) else {
            continue;
        };
        match word {
            "cov:" => {
                status.cov = value.parse().ok()?;
                saw_cov = true;
            }
            "ft:" => status.ft = value.parse().ok()?,
            "corp:" => {
                let (inputs, bytes) = value.split_once('/')?;
                status.corpus_inputs = inputs.parse().ok()?;
                status.corpus_bytes = parse_size(bytes)?;
            }
            _ => status.rss_mb = value.trim_end_matches("Mb").parse().ok()?,
        }
    }
    saw_cov.then_some(status)
}

/// libFuzzer's `1047b`, `12Kb`, `3Mb`.
fn parse_size(text: &str) -> Option<u64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("Mb") {
        (n, 1 << 20)
    } else if let Some(n) = text.strip_suffix("Kb") {
        (n, 1 << 10)
    } else {
        (text.strip_suffix('b')?, 1)
    };
    // Checked: the text is the tool's, and a garbled number must not panic the run.
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// The report a failing session ends with, if any.
fn parse_crash(lines: &[&str]) -> Option<Crash> {
    let (index, reporter, headline) = lines.iter().enumerate().find_map(|(index, line)| {
        let (_, rest) = line.split_once("ERROR: ").or_else(|| {
            line.split_once("WARNING: ").filter(|(_, rest)| {
                rest.starts_with("MemorySanitizer") || rest.starts_with("ThreadSanitizer")
            })
        })?;
        let (reporter, what) = rest.split_once(": ")?;
        let known = reporter == "libFuzzer" || reporter.ends_with("Sanitizer");
        known.then(|| (index, reporter.to_owned(), format!("{reporter}: {what}")))
    })?;
    let what = headline
        .split_once(": ")
        .map_or("", |(_, what)| what)
        .trim()
        .to_owned();
    let panic = panic_before(&lines[..index]);
    let (kind, message) = classify(&reporter, &what, panic.as_ref(), &lines[index..]);
    // A timeout prints its stack before the report line; everyone else after it.
    let trace_from = if kind == "timeout" {
        lines[..index]
            .iter()
            .rposition(|line| line.starts_with("ALARM:"))
            .unwrap_or(index)
    } else {
        index
    };
    let frames = stack::first_trace(lines[trace_from..].iter().copied());
    let artifact = lines.iter().find_map(|line| {
        line.split_once("Test unit written to ")
            .map(|(_, path)| path.trim().to_owned())
    });
    Some(Crash {
        kind,
        reporter,
        message,
        headline,
        frames,
        panic_location: panic.map(|(location, _)| location),
        artifact,
    })
}

/// One crash as a fuzzing session met it.
#[derive(Debug, Clone)]
pub struct Occurrence {
    pub crash: Crash,
    /// The libFuzzer seed of the session that found it.
    pub seed: Option<u64>,
    /// The replay of a registered crash found it (its input is minimized already).
    pub registered: bool,
}

/// The last `thread '…' panicked at FILE:LINE:COL:` before the report, read as libtest's
/// captured panics are: (`FILE:LINE`, the message).
fn panic_before(lines: &[&str]) -> Option<(String, String)> {
    let start = lines
        .iter()
        .rposition(|line| line.starts_with("thread '") && line.contains(" panicked at "))?;
    // The sanitizer's or libFuzzer's own lines (`==12==...`) end the panic's text.
    let text = lines[start..]
        .iter()
        .take_while(|line| !line.starts_with("=="))
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let (file, line, _) = libtest::panic_location(&text)?;
    let message = libtest::panic_message(&text).unwrap_or_default();
    Some((format!("{file}:{line}"), message))
}

fn classify(
    reporter: &str,
    what: &str,
    panic: Option<&(String, String)>,
    after: &[&str],
) -> (String, String) {
    if reporter == "libFuzzer" {
        return if what.starts_with("deadly signal") {
            match panic {
                Some((_, message)) => ("panic".to_owned(), message.clone()),
                None => (
                    "deadly-signal".to_owned(),
                    "the target died of a signal".to_owned(),
                ),
            }
        } else if what.starts_with("timeout") {
            ("timeout".to_owned(), what.to_owned())
        } else if what.starts_with("out-of-memory") {
            ("out-of-memory".to_owned(), what.to_owned())
        } else if what.starts_with("fuzz target exited") {
            ("fuzz-target-exited".to_owned(), what.to_owned())
        } else {
            (slug(what), what.to_owned())
        };
    }
    if reporter == "LeakSanitizer" {
        let record = after
            .iter()
            .find(|line| line.contains(" leak of "))
            .map_or(what, |line| line.trim());
        return ("memory-leak".to_owned(), record.to_owned());
    }
    // `heap-buffer-overflow on address 0x… at pc …`, `SEGV on unknown address …`.
    let kind = what.split(" on ").next().unwrap_or(what).trim();
    let access = after
        .iter()
        .map(|line| line.trim())
        .find(|line| line.starts_with("READ of size") || line.starts_with("WRITE of size"))
        .map(|line| line.split(" at ").next().unwrap_or(line));
    let message = match access {
        Some(access) => format!("{kind}: {access}"),
        None => what.to_owned(),
    };
    (slug(kind), message)
}

/// `SEGV` → `segv`, `use-of-uninitialized-value` unchanged, spaces to dashes.
fn slug(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ':')
        .take_while(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        "crash".to_owned()
    } else {
        words.join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_past_u64_is_no_size_not_a_panic() {
        assert_eq!(parse_size("12Kb"), Some(12 << 10));
        assert_eq!(parse_size("99999999999999999Mb"), None);
    }

    #[test]
    fn status_lines_give_coverage_corpus_and_memory() {
        let status =
            parse_status("#1713\tREDUCE cov: 31 ft: 40 corp: 8/52b lim: 17 exec/s: 0 rss: 39Mb L: 17/17 MS: 4 A-B-")
                .unwrap();
        assert_eq!(
            status,
            Status {
                executions: 1713,
                cov: 31,
                ft: 40,
                corpus_inputs: 8,
                corpus_bytes: 52,
                rss_mb: 39
            }
        );
        assert_eq!(
            parse_status("#2\tINITED cov: 2 ft: 2 corp: 1/3Kb exec/s: 0 rss: 30Mb")
                .unwrap()
                .corpus_bytes,
            3072
        );
        assert!(parse_status("#0 0x5613 in main /x.cpp:1:1").is_none());
    }

    #[test]
    fn sanitizer_reports_name_their_kind_and_access() {
        let text = "==7==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x60 at pc 0x55 bp 0x7f sp 0x7f\n\
                    READ of size 1 at 0x60 thread T0\n    #0 0x55 in crate::f /w/src/lib.rs:3:5\n";
        let crash = parse(text).crash.unwrap();
        assert_eq!(crash.kind, "heap-buffer-overflow");
        assert_eq!(crash.message, "heap-buffer-overflow: READ of size 1");
        assert_eq!(crash.reporter, "AddressSanitizer");
        assert_eq!(crash.frames.len(), 1);
        let segv = parse("==7==ERROR: AddressSanitizer: SEGV on unknown address 0x000 (pc 0x1)\n")
            .crash
            .unwrap();
        assert_eq!(segv.kind, "segv");
    }

    #[test]
    fn panics_keep_their_message_and_location() {
        let text = "thread '<unnamed>' (9) panicked at /w/src/lib.rs:13:13:\nbad tag\nnote: run with RUST_BACKTRACE\n==9== ERROR: libFuzzer: deadly signal\n";
        let crash = parse(text).crash.unwrap();
        assert_eq!(crash.kind, "panic");
        assert_eq!(crash.message, "bad tag");
        assert_eq!(crash.panic_location.as_deref(), Some("/w/src/lib.rs:13"));
        assert_eq!(crash.headline, "libFuzzer: deadly signal");
    }

    #[test]
    fn a_clean_run_has_no_crash() {
        let session = parse("INFO: Seed: 3\n#2\tINITED cov: 2 ft: 2 corp: 1/1b exec/s: 0 rss: 30Mb\nDone 5 runs in 1 second(s)\nstat::number_of_executed_units: 5\n");
        assert_eq!(session.seed, Some(3));
        assert!(session.inited);
        assert!(session.crash.is_none());
        assert_eq!(session.stat("number_of_executed_units"), 5);
    }
}
