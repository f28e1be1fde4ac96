//! The one way a stage builds a finding: location (first user frame), enclosing function,
//! fingerprint, short stack and severity are filled the same way for every stage.

use crate::exec::failure::Described;
use crate::fingerprint;
use crate::locate;
use crate::report::{Category, Evidence, Finding, Frame, Location, Severity};
use crate::stage_name::StageName;
use crate::workspace::Workspace;

/// How many frames a finding keeps at least (more when the user's frame is deeper).
pub const SHORT_STACK: usize = 8;

/// A finding being built; `build` completes it.
#[derive(Debug, Clone)]
pub struct NewFinding {
    stage: StageName,
    category: Category,
    kind: String,
    message: String,
    frames: Vec<Frame>,
    place: Option<(Option<Location>, Option<String>)>,
    test: Option<String>,
    subject: Option<String>,
    target: Option<String>,
    seed: Option<u64>,
    borrow_model: Option<String>,
    severity: Option<Severity>,
    repro: Option<String>,
    tool: Option<String>,
    /// What the tool itself said, when that is not the message.
    evidence_message: Option<String>,
    more_evidence: Vec<Evidence>,
    note: Option<String>,
}

impl NewFinding {
    pub fn new(
        stage: StageName,
        category: Category,
        kind: impl Into<String>,
        message: impl Into<String>,
    ) -> NewFinding {
        NewFinding {
            stage,
            category,
            kind: kind.into(),
            message: message.into(),
            frames: Vec::new(),
            place: None,
            test: None,
            subject: None,
            target: None,
            seed: None,
            borrow_model: None,
            severity: None,
            repro: None,
            tool: None,
            evidence_message: None,
            more_evidence: Vec::new(),
            note: None,
        }
    }

    /// A test failure, death or timeout as the kernel describes it.
    pub fn described(stage: StageName, described: Described) -> NewFinding {
        NewFinding {
            note: described.note,
            ..NewFinding::new(stage, described.category, described.kind, described.message)
                .frames(described.frames)
        }
    }

    /// The stack, innermost first.
    #[must_use]
    pub fn frames(mut self, frames: Vec<Frame>) -> Self {
        self.frames = frames;
        self
    }

    /// A location and function the stage found itself (a tool with its own idea of which
    /// frames are the user's), instead of the first user frame of the stack.
    #[must_use]
    pub fn place(mut self, location: Option<Location>, function: Option<String>) -> Self {
        self.place = Some((location, function));
        self
    }

    /// What identifies where it was seen, for the fingerprint, when there is no test (a
    /// configured program).
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The test (or fuzz target, or program) it was seen in, and the longer name that
    /// identifies it in the fingerprint (`demo lib tests::t`).
    #[must_use]
    pub fn test(mut self, test: impl Into<String>, subject: impl Into<String>) -> Self {
        self.test = Some(test.into());
        self.subject = Some(subject.into());
        self
    }

    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    #[must_use]
    pub fn seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }

    /// Overrides the severity the category gives.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    #[must_use]
    pub fn repro(mut self, repro: impl Into<String>) -> Self {
        self.repro = Some(repro.into());
        self
    }

    /// The tool named in the evidence (default: the stage).
    #[must_use]
    pub fn tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    /// The tool's own words for the evidence, when the message says more (or less).
    #[must_use]
    pub fn evidence_message(mut self, message: impl Into<String>) -> Self {
        self.evidence_message = Some(message.into());
        self
    }

    /// Another tool that saw the same problem (a minimizer that confirmed a crash).
    #[must_use]
    pub fn also_seen_by(mut self, evidence: Evidence) -> Self {
        self.more_evidence.push(evidence);
        self
    }

    /// Under Miri: the aliasing model the test ran under.
    #[must_use]
    pub fn borrow_model(mut self, model: impl Into<String>) -> Self {
        self.borrow_model = Some(model.into());
        self
    }

    #[must_use]
    pub fn note(mut self, note: Option<String>) -> Self {
        if let Some(note) = note {
            self.note = Some(match self.note.take() {
                Some(existing) => format!("{note}\n{existing}"),
                None => note,
            });
        }
        self
    }

    pub fn build(self, workspace: &Workspace) -> Finding {
        let mut place = self
            .place
            .clone()
            .unwrap_or_else(|| locate::user_location(workspace, &self.frames));
        // Inside a doctest, a stack that never reaches the user's files, or a place that is
        // no line of code (rustdoc's own line numbers): the doctest is the user's code that
        // ran, with its own frame's function when the stack shows it.
        let doctest = self
            .test
            .as_deref()
            .and_then(|test| locate::doctest_location(workspace, test));
        if let Some(doctest) = doctest {
            let located = place
                .0
                .as_ref()
                .is_some_and(|location| locate::is_code_line(workspace, location));
            if !located {
                let doctest_frame = self
                    .frames
                    .iter()
                    .find(|frame| locate::is_doctest_frame(frame));
                place = (
                    Some(doctest),
                    doctest_frame
                        .map(|frame| frame.function.clone())
                        .or(place.1),
                );
            }
        }
        let stack = short_stack(workspace, &self.frames);
        self.finish(place, stack)
    }

    /// A finding that names no stack (a threshold, a regression, a soak's growth): its
    /// place, if any, is the one given with `place`.
    pub fn build_unlocated(self) -> Finding {
        let place = self.place.clone().unwrap_or((None, None));
        self.finish(place, Vec::new())
    }

    fn finish(
        self,
        (location, function): (Option<Location>, Option<String>),
        stack: Vec<Frame>,
    ) -> Finding {
        let subject = self.subject.as_deref().unwrap_or("");
        let fingerprint = fingerprint::of_finding(
            self.stage,
            &self.kind,
            location.as_ref(),
            function.as_deref(),
            subject,
        );
        Finding {
            fingerprint,
            stage: self.stage,
            category: self.category,
            severity: self
                .severity
                .unwrap_or_else(|| self.category.default_severity()),
            evidence: std::iter::once(Evidence {
                tool: self.tool.unwrap_or_else(|| self.stage.as_str().to_owned()),
                message: self
                    .evidence_message
                    .unwrap_or_else(|| self.message.clone()),
            })
            .chain(self.more_evidence)
            .collect(),
            kind: self.kind,
            message: self.message,
            location,
            function,
            test: self.test,
            target: self.target,
            seed: self.seed,
            borrow_model: self.borrow_model,
            stack,
            repro: self.repro,
            note: self.note,
            first_found_in: None,
        }
    }
}

/// At least `SHORT_STACK` frames, and always down to the first user frame (or the frame
/// of the doctest that ran the code).
fn short_stack(workspace: &Workspace, frames: &[Frame]) -> Vec<Frame> {
    let user = frames
        .iter()
        .position(|frame| {
            locate::is_user_frame(workspace, frame) || locate::is_doctest_frame(frame)
        })
        .map_or(0, |at| at + 1);
    let keep = SHORT_STACK.max(user);
    frames
        .iter()
        .take(keep)
        .map(|frame| locate::readable_frame(workspace, frame))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: function.to_owned(),
            file: Some(file.to_owned()),
            line: Some(line),
            column: None,
        }
    }

    #[test]
    fn a_doctest_without_user_frames_is_placed_at_the_doctest() {
        let dir = tempfile::tempdir().unwrap();
        let root = camino::Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/lib.rs"), "/// ```\n/// ```\npub fn f() {}\n").unwrap();
        let workspace = Workspace {
            root: root.to_owned(),
            manifest_path: root.join("Cargo.toml"),
            target_dir: root.join("target"),
            members: Vec::new(),
            config: crate::config::Config::default(),
        };
        let mut frames: Vec<Frame> = (0..9)
            .map(|at| {
                frame(
                    &format!("alloc::f{at}"),
                    "/rustc/abc/library/alloc/src/alloc.rs",
                    101,
                )
            })
            .collect();
        frames.push(frame(
            "rust_out::main::_doctest_main_src_lib_rs_1_0",
            "rust_out.e5d8ef6969db4636-cgu.0",
            0,
        ));
        let leak = |test: &str| {
            NewFinding::new(StageName::Sanitizers, Category::Leak, "direct-leak", "leak")
                .frames(frames.clone())
                .test(test, format!("p doctests {test}"))
                .build(&workspace)
        };
        let found = leak("src/lib.rs - f (line 1)");
        let location = found.location.unwrap();
        assert_eq!((location.file.as_str(), location.line), ("src/lib.rs", 1));
        assert_eq!(
            found.function.as_deref(),
            Some("rust_out::main::_doctest_main_src_lib_rs_1_0")
        );
        // The short stack reaches the doctest's frame.
        assert_eq!(found.stack.len(), 10);
        // A unit test keeps the tool's innermost frame when none is the user's.
        let found = leak("tests::leaks");
        assert_eq!(found.location.unwrap().file.as_str(), "alloc/src/alloc.rs");
        // A doctest panic reported at a line of rustdoc's program, which in the documented
        // file is a comment, is placed at the doctest; one on a line of code keeps its place.
        let panicked_at = |line| {
            NewFinding::new(
                StageName::Miri,
                Category::TestFailure,
                "test-failure",
                "failed",
            )
            .place(
                Some(Location {
                    file: "src/lib.rs".into(),
                    line,
                    column: Some(1),
                }),
                None,
            )
            .test("src/lib.rs - f (line 1)", "p doctests")
            .build(&workspace)
            .location
            .unwrap()
            .line
        };
        assert_eq!(panicked_at(2), 1);
        assert_eq!(panicked_at(3), 3);
        assert_eq!(panicked_at(40), 1);
        // A doctest of a file that is not there is not placed at it.
        assert_eq!(
            leak("src/gone.rs - f (line 1)")
                .location
                .unwrap()
                .file
                .as_str(),
            "alloc/src/alloc.rs"
        );
    }
}
