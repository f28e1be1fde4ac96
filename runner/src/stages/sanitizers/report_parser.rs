//! Sanitizer reports in a process's stderr, as data: one report per `ASan`/`TSan`/`MSan` error and
//! per `LeakSanitizer` leak block, with its kind, its stacks and the runtime's description
//! stripped of addresses. A pure function of the text, so captured output tests it.

use super::frames::parse_frame;
use super::sanitizer::Sanitizer;
use crate::report::Frame;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SanitizerReport {
    /// The runtime that reported it; leaks are always `LeakSanitizer`'s, also inside `ASan`.
    pub runtime: Sanitizer,
    /// `heap-buffer-overflow`, `use-after-free`, `data-race`, `direct-leak`, ...
    pub kind: String,
    /// The runtime's own words, without addresses, so the same bug reads the same each run.
    pub description: String,
    /// The runtime's heading of the bad access, like `READ of size 1 by thread T1`.
    pub access: Option<String>,
    /// The stack of the bad access (the allocation for a leak), innermost first.
    pub stack: Vec<Frame>,
    /// The other stacks: where the memory was allocated or freed, the racing access, ...
    pub related: Vec<RelatedStack>,
    pub leak: Option<LeakSize>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelatedStack {
    /// The runtime's heading, like `freed by thread T1 here` or `Previous write of size 8
    /// by thread T1`.
    pub heading: String,
    pub frames: Vec<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeakSize {
    pub bytes: u64,
    pub allocations: u64,
}

#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub reports: Vec<SanitizerReport>,
    /// The runtime itself failed (`LeakSanitizer` without ptrace, an unusable memory layout):
    /// the line that says so, with the runtime's hints.
    pub fatal: Option<String>,
}

/// Reads every report in `stderr`, in order.
pub fn parse(stderr: &str) -> Parsed {
    let mut parser = Parser::default();
    for line in stderr.lines() {
        parser.line(without_pid(line.trim_end()));
    }
    parser.finish();
    parser.parsed
}

#[derive(Default)]
struct Parser {
    parsed: Parsed,
    open: Option<Open>,
    /// Inside `LeakSanitizer`'s list of leak blocks.
    in_leaks: bool,
}

struct Open {
    runtime: Sanitizer,
    kind: String,
    headline: String,
    leak: Option<LeakSize>,
    stacks: Vec<(Option<String>, Vec<Frame>)>,
    /// A line seen since the last frame: the heading of the next stack, or a remark.
    pending: Option<String>,
    remarks: Vec<String>,
}

impl Open {
    fn new(runtime: Sanitizer, kind: &str, headline: &str) -> Open {
        Open {
            runtime,
            kind: normalise_kind(kind),
            headline: headline.to_owned(),
            leak: None,
            stacks: Vec::new(),
            pending: None,
            remarks: Vec::new(),
        }
    }

    fn frame(&mut self, frame: Frame) {
        match (self.pending.take(), self.stacks.last_mut()) {
            (None, Some((_, frames))) => frames.push(frame),
            (heading, _) => self.stacks.push((heading, vec![frame])),
        }
    }

    fn text(&mut self, line: &str) {
        if let Some(previous) = self.pending.replace(line.trim().to_owned()) {
            self.remarks.push(previous);
        }
    }

    fn close(mut self) -> SanitizerReport {
        self.remarks.extend(self.pending.take());
        let mut stacks = self.stacks.into_iter();
        let (access, stack) = stacks.next().unwrap_or_default();
        let related: Vec<RelatedStack> = stacks
            .map(|(heading, frames)| RelatedStack {
                heading: heading.map(|h| clean(&h)).unwrap_or_default(),
                frames,
            })
            .collect();
        let access = access.map(|a| clean(&a));
        let mut parts = vec![clean(&self.headline)];
        parts.extend(access.clone());
        parts.extend(
            related
                .iter()
                .filter(|r| {
                    r.heading.starts_with("Previous") || r.heading.starts_with("Uninitialized")
                })
                .map(|r| r.heading.clone()),
        );
        parts.extend(
            self.remarks
                .iter()
                .filter(|r| r.contains("is located") || r.starts_with("Location is"))
                .map(|r| clean(r).trim_start_matches("is ").to_owned()),
        );
        parts.retain(|p| !p.is_empty());
        SanitizerReport {
            runtime: self.runtime,
            kind: self.kind,
            description: parts.join("; "),
            access,
            stack,
            related,
            leak: self.leak,
        }
    }
}

impl Parser {
    fn line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("ERROR: AddressSanitizer: ") {
            self.start(Open::new(Sanitizer::Address, address_kind(rest), rest));
        } else if line.starts_with("ERROR: LeakSanitizer: detected memory leaks") {
            self.close();
            self.in_leaks = true;
        } else if let Some((runtime, rest)) = thread_or_memory_header(line) {
            let kind = rest.split(" (").next().unwrap_or(rest);
            self.start(Open::new(runtime, kind, rest));
        } else if let Some((kind, size)) = self.leak_block(line) {
            let mut open = Open::new(Sanitizer::Leak, kind, line.trim_end_matches(':'));
            open.headline = open.headline.replace(" allocated from", "");
            open.leak = Some(size);
            self.start(open);
        } else if let Some(summary) = line.strip_prefix("SUMMARY: ") {
            self.summary(summary);
        } else if line.starts_with("==================") {
            self.close();
        } else if is_fatal(line) {
            self.close();
            self.parsed
                .fatal
                .get_or_insert_with(|| line.trim().to_owned());
        } else if let Some(hint) = line.strip_prefix("HINT: ") {
            if let Some(fatal) = self.parsed.fatal.as_mut() {
                fatal.push_str("; ");
                fatal.push_str(hint.trim());
            }
        } else if let Some(open) = self.open.as_mut() {
            match parse_frame(line) {
                Some(frame) => open.frame(frame),
                None if line.trim().is_empty() => {}
                None => open.text(line),
            }
        }
    }

    fn leak_block(&self, line: &str) -> Option<(&'static str, LeakSize)> {
        if !self.in_leaks {
            return None;
        }
        let line = line.trim_start();
        let kind = if line.starts_with("Direct leak of ") {
            "direct-leak"
        } else if line.starts_with("Indirect leak of ") {
            "indirect-leak"
        } else {
            return None;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let number_before = |unit: &str| {
            words
                .iter()
                .position(|w| w.starts_with(unit))
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| words[i].parse::<u64>().ok())
        };
        let size = LeakSize {
            bytes: number_before("byte")?,
            allocations: number_before("object")?,
        };
        Some((kind, size))
    }

    /// `ASan`'s summary names the bug type exactly (`allocation-size-too-big`), where the
    /// headline may be a sentence; it also ends a report, and the leak list.
    fn summary(&mut self, summary: &str) {
        if let Some(open) = self.open.as_mut() {
            if let Some(rest) = summary.strip_prefix("AddressSanitizer: ") {
                if open.runtime == Sanitizer::Address {
                    if let Some(kind) = rest.split_whitespace().next() {
                        open.kind = normalise_kind(kind);
                    }
                }
            }
        }
        self.close();
        self.in_leaks = false;
    }

    fn start(&mut self, open: Open) {
        self.close();
        self.open = Some(open);
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            self.parsed.reports.push(open.close());
        }
    }

    fn finish(&mut self) {
        self.close();
    }
}

fn thread_or_memory_header(line: &str) -> Option<(Sanitizer, &str)> {
    for (runtime, name) in [
        (Sanitizer::Thread, "ThreadSanitizer: "),
        (Sanitizer::Memory, "MemorySanitizer: "),
    ] {
        for level in ["WARNING: ", "ERROR: "] {
            if let Some(rest) = line
                .strip_prefix(level)
                .and_then(|rest| rest.strip_prefix(name))
            {
                return Some((runtime, rest));
            }
        }
    }
    None
}

/// The bug type in an `ASan` headline: `heap-buffer-overflow on address ...`,
/// `attempting double-free on ...`, `SEGV on unknown address ...`.
fn address_kind(headline: &str) -> &str {
    let mut words = headline.split_whitespace();
    match words.next() {
        Some("attempting") => words.next().unwrap_or("unknown"),
        Some(word) => word,
        None => "unknown",
    }
}

/// A kind without what varies between runs: `SEGV on unknown address 0x7f..` is `segv`, so
/// the fingerprint stays stable.
fn normalise_kind(kind: &str) -> String {
    let kind = kind
        .split(" (")
        .next()
        .and_then(|kind| kind.split(" on ").next())
        .unwrap_or(kind)
        .trim()
        .to_lowercase();
    let kind = kind.trim_end_matches(':').replace(' ', "-");
    match kind.as_str() {
        "heap-use-after-free" => "use-after-free".to_owned(),
        "stack-use-after-return" => "use-after-return".to_owned(),
        "stack-use-after-scope" => "use-after-scope".to_owned(),
        _ => kind,
    }
}

fn is_fatal(line: &str) -> bool {
    line.contains("Sanitizer has encountered a fatal error")
        || line.starts_with("FATAL: ")
        || (line.contains("Sanitizer") && line.contains("CHECK failed"))
}

/// `==1234==ERROR: ...` → `ERROR: ...`.
fn without_pid(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("==") else {
        return line;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    match rest[digits..].strip_prefix("==") {
        Some(after) if digits > 0 => after,
        _ => line,
    }
}

/// A runtime's line without addresses and register dumps:
/// `READ of size 1 at 0x7be9 thread T1` → `READ of size 1 by thread T1`.
fn clean(line: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    for word in line.split_whitespace() {
        let address =
            word.starts_with("0x") || word.starts_with("[0x") || word.starts_with("(pid=");
        if address {
            while matches!(
                words.last(),
                Some(&("at" | "on" | "address" | "pc" | "bp" | "sp"))
            ) {
                words.pop();
            }
            continue;
        }
        words.push(word);
    }
    let text = words.join(" ");
    let text = text.trim_end_matches(':');
    // ASan's access line says `READ of size 1 at <address> thread T1`: without the address
    // it needs its preposition back.
    if (text.starts_with("READ ") || text.starts_with("WRITE ")) && !text.contains(" by thread") {
        text.replacen(" thread T", " by thread T", 1)
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_addresses_from_runtime_lines() {
        assert_eq!(
            clean("heap-buffer-overflow on address 0x7be9 at pc 0x56 bp 0x7b sp 0x7b"),
            "heap-buffer-overflow"
        );
        assert_eq!(
            clean("READ of size 1 at 0x7be9 thread T1"),
            "READ of size 1 by thread T1"
        );
        assert_eq!(
            clean("0x7be9 is located 0 bytes after 3-byte region [0x7be9,0x7be9)"),
            "is located 0 bytes after 3-byte region"
        );
        assert_eq!(
            clean("Previous write of size 8 at 0x7f2a by thread T1:"),
            "Previous write of size 8 by thread T1"
        );
        assert_eq!(
            clean("attempting double-free on 0x7bc3 in thread T1:"),
            "attempting double-free in thread T1"
        );
    }

    #[test]
    fn kinds_are_normalised() {
        assert_eq!(normalise_kind("heap-use-after-free"), "use-after-free");
        assert_eq!(normalise_kind("data race"), "data-race");
        assert_eq!(
            normalise_kind("lock-order-inversion (potential deadlock)"),
            "lock-order-inversion"
        );
        assert_eq!(normalise_kind("SEGV"), "segv");
        assert_eq!(
            normalise_kind("SEGV on unknown address 0x7ff12cffe000"),
            "segv"
        );
        assert_eq!(
            address_kind("attempting double-free on 0x1 in thread T1:"),
            "double-free"
        );
    }

    #[test]
    fn pid_prefixes_are_removed_but_delimiters_kept() {
        assert_eq!(without_pid("==29117==ERROR: x"), "ERROR: x");
        assert_eq!(without_pid("=================="), "==================");
        assert_eq!(without_pid("==abc==x"), "==abc==x");
    }

    #[test]
    fn fatal_runtime_errors_carry_their_hints() {
        let parsed = parse(
            "==12==LeakSanitizer has encountered a fatal error.\n==12==HINT: For debugging, try setting LSAN_OPTIONS=verbosity=1\n==12==HINT: LeakSanitizer does not work under ptrace (strace, gdb, etc)\n",
        );
        assert!(parsed.reports.is_empty());
        let fatal = parsed.fatal.unwrap();
        assert!(
            fatal.starts_with("LeakSanitizer has encountered a fatal error."),
            "{fatal}"
        );
        assert!(fatal.contains("does not work under ptrace"), "{fatal}");
    }
}
