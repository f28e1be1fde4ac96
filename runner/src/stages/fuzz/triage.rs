//! After fuzzing a target: crashes grouped by stack signature (one bug, one entry with a
//! count), each group's input minimized within a time bound and shown the way the target
//! reads it.

use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use super::commands;
use super::discover::FuzzTarget;
use super::libfuzzer::Crash;
use super::libfuzzer::Occurrence;
use super::settings::Settings;
use super::stack;
use crate::plan::Context;
use crate::process::{RunOptions, Termination};
use crate::report::Frame;

/// `cargo fuzz fmt` only decodes one input; this is generous.
const FMT_TIMEOUT: Duration = Duration::from_mins(2);

/// One distinct bug of one target.
#[derive(Debug, Clone)]
pub struct Group {
    pub crash: Crash,
    pub seed: Option<u64>,
    /// How many times the fuzzer hit it.
    pub count: usize,
    pub signature: String,
    /// The stack between the runtime and the harness, paths made absolute where they exist.
    pub frames: Vec<Frame>,
    pub artifact: Option<Utf8PathBuf>,
    pub input: Option<Vec<u8>>,
    pub minimized: Option<Minimized>,
    /// Why there is no minimized input, or that minimization was cut short.
    pub minimize_note: Option<String>,
    /// The `Debug` form of the input, for targets that take an `Arbitrary` type.
    pub debug: Option<String>,
    /// A registered crash replayed: its input was minimized when it was registered.
    pub registered: bool,
}

#[derive(Debug, Clone)]
pub struct Minimized {
    pub path: Utf8PathBuf,
    pub input: Vec<u8>,
}

/// The user-side frames of a crash, with the paths that exist made absolute.
fn frames_of(target: &FuzzTarget, crash: &Crash) -> Vec<Frame> {
    stack::user_side(&crash.frames)
        .into_iter()
        .map(|frame| resolve(&target.fuzz_dir, frame))
        .collect()
}

/// What tells one bug from another: its kind and user-side stack.
pub fn signature_of(target: &FuzzTarget, crash: &Crash) -> String {
    let frames = frames_of(target, crash);
    stack::signature(&crash.kind, &frames, crash.panic_location.as_deref())
}

/// Groups occurrences by signature, keeping the first of each and counting the rest.
pub fn group(target: &FuzzTarget, occurrences: &[Occurrence]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for occurrence in occurrences {
        let frames = frames_of(target, &occurrence.crash);
        let signature = stack::signature(
            &occurrence.crash.kind,
            &frames,
            occurrence.crash.panic_location.as_deref(),
        );
        if let Some(existing) = groups.iter_mut().find(|g| g.signature == signature) {
            existing.count += 1;
            continue;
        }
        let artifact = occurrence.crash.artifact.as_deref().map(Utf8PathBuf::from);
        let input = artifact.as_ref().and_then(|path| std::fs::read(path).ok());
        groups.push(Group {
            crash: occurrence.crash.clone(),
            seed: occurrence.seed,
            count: 1,
            signature,
            frames,
            artifact,
            input,
            minimized: None,
            minimize_note: None,
            debug: None,
            registered: occurrence.registered,
        });
    }
    groups
}

/// Paths in a stack are absolute for path dependencies and relative to the fuzz project for
/// its own files (cargo's convention); libc's relative paths exist nowhere and are dropped.
fn resolve(fuzz_dir: &Utf8Path, mut frame: Frame) -> Frame {
    if let Some(file) = frame.file.take() {
        let path = Utf8Path::new(&file);
        frame.file = if path.is_absolute() {
            Some(file)
        } else {
            let joined = fuzz_dir.join(path);
            joined.is_file().then(|| joined.to_string())
        };
    }
    frame
}

/// Minimizes and formats each group's input, within the stage's time.
pub fn refine(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    groups: &mut [Group],
    logs: &Utf8Path,
    deadline: Instant,
) {
    for (index, group) in groups.iter_mut().enumerate() {
        let Some(artifact) = group.artifact.clone() else {
            continue;
        };
        if group.registered {
            // Replaying must take seconds: the registry holds the minimized input already.
            group.minimize_note =
                Some("the registered input, minimized when it was registered".to_owned());
            continue;
        }
        let stem = logs.join(format!(
            "{}-triage-{index}",
            super::discover::slug(&target.label)
        ));
        minimize(ctx, settings, target, group, &artifact, &stem, deadline);
        let shown = group
            .minimized
            .as_ref()
            .map_or(artifact.as_path(), |m| m.path.as_path());
        group.debug = debug_form(ctx, settings, target, shown, &stem, deadline);
    }
}

fn minimize(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    group: &mut Group,
    artifact: &Utf8Path,
    stem: &Utf8Path,
    deadline: Instant,
) {
    let original = group.input.as_ref().map_or(0, Vec::len);
    let why_not = match group.crash.kind.as_str() {
        // Every attempt on these costs the whole per-input limit.
        "timeout" | "out-of-memory" => {
            Some("not minimized: every attempt would take the per-input limit")
        }
        _ if original <= 1 => Some("not minimized: the input is already one byte"),
        _ if settings.minimize_time.is_zero() => Some("not minimized: `fuzz.minimize-time` is 0"),
        _ => None,
    };
    if let Some(why_not) = why_not {
        group.minimize_note = Some(why_not.to_owned());
        return;
    }
    let output = Utf8PathBuf::from(format!("{artifact}.minimized"));
    let limit = settings
        .minimize_time
        .min(deadline.saturating_duration_since(Instant::now()));
    let cmd = commands::tmin(ctx, settings, target, artifact, &output);
    ctx.progress.verbose(&cmd.to_string());
    let finished = cmd.run(&RunOptions {
        timeout: Some(limit),
        log_stem: Some(Utf8PathBuf::from(format!("{stem}-tmin"))),
        ..RunOptions::default()
    });
    let termination = match finished {
        Ok(finished) => finished.termination,
        Err(error) => {
            group.minimize_note = Some(format!("not minimized: {}", crate::exit::one_line(&error)));
            return;
        }
    };
    match std::fs::read(&output) {
        Ok(input) if !input.is_empty() && input.len() <= original => {
            if let Termination::TimedOut(limit) = termination {
                group.minimize_note = Some(format!(
                    "minimization stopped after {}; the smallest input so far is kept",
                    crate::duration::human(limit)
                ));
            }
            group.minimized = Some(Minimized {
                path: output,
                input,
            });
        }
        _ => {
            group.minimize_note = Some(format!(
                "not minimized: cargo fuzz tmin ended ({termination})"
            ));
        }
    }
}

/// `cargo fuzz fmt` prints the input through the target's own type; for a byte-slice
/// target that is just the byte list again, which says nothing new.
fn debug_form(
    ctx: &Context,
    settings: &Settings,
    target: &FuzzTarget,
    input: &Utf8Path,
    stem: &Utf8Path,
    deadline: Instant,
) -> Option<String> {
    let bytes = std::fs::read(input).ok()?;
    let cmd = commands::fmt(ctx, settings, target, input);
    let finished = cmd
        .run(&RunOptions {
            timeout: Some(FMT_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()))),
            log_stem: Some(Utf8PathBuf::from(format!("{stem}-fmt"))),
            ..RunOptions::default()
        })
        .ok()?;
    if !finished.termination.success() {
        return None;
    }
    let debug = parse_fmt(&finished.stderr)?;
    (debug != format!("{bytes:?}")).then_some(debug)
}

/// The lines after cargo-fuzz's "Output of `std::fmt::Debug`:" header.
pub fn parse_fmt(stderr: &str) -> Option<String> {
    let (_, after) = stderr.split_once("Output of `std::fmt::Debug`:")?;
    let text = after.trim_matches('\n').trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_debug_form_cargo_fuzz_prints() {
        let stderr = "    Finished `release` profile\n\nOutput of `std::fmt::Debug`:\n\nTable {\n    magic: 1,\n}\n";
        assert_eq!(
            parse_fmt(stderr).as_deref(),
            Some("Table {\n    magic: 1,\n}")
        );
        assert_eq!(parse_fmt("error: no such target"), None);
    }

    #[test]
    fn relative_frames_resolve_against_the_fuzz_project_or_lose_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let fuzz = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::create_dir(fuzz.join("fuzz_targets")).unwrap();
        std::fs::write(fuzz.join("fuzz_targets/t.rs"), "").unwrap();
        let frame = |file: &str| Frame {
            function: "f".into(),
            file: Some(file.into()),
            line: Some(1),
            column: None,
        };
        assert_eq!(
            resolve(fuzz, frame("fuzz_targets/t.rs")).file,
            Some(fuzz.join("fuzz_targets/t.rs").to_string())
        );
        assert_eq!(resolve(fuzz, frame("csu/../libc-start.c")).file, None);
        assert_eq!(
            resolve(fuzz, frame("/abs/x.rs")).file.as_deref(),
            Some("/abs/x.rs")
        );
    }
}
