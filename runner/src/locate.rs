//! Where a problem is in the user's code: the first stack frame inside the workspace,
//! made relative to the workspace root.

use camino::Utf8Path;

use crate::report::{Frame, Location};
use crate::workspace::Workspace;

/// A frame in the user's code: a relative path that exists in the workspace (cargo passes
/// workspace-relative paths to rustc; system libraries carry relative paths of their own
/// build, like glibc's `./io/../sysdeps/...`) or an absolute one under the workspace root;
/// never the standard library, the compiler's sources or a registry dependency.
pub fn is_user_frame(workspace: &Workspace, frame: &Frame) -> bool {
    let Some(file) = frame.file.as_deref() else {
        return false;
    };
    let path = Utf8Path::new(file);
    if path.is_relative() {
        return !file.starts_with("library/")
            && !file.starts_with("./")
            && !file.contains("/rustc/")
            && workspace.root.join(path).is_file();
    }
    path.starts_with(&workspace.root)
        && !file.contains("/.cargo/registry/")
        && !file.contains("/.cargo/git/")
}

/// How a file outside the workspace is shown: a dependency as `smallvec-1.6.0/src/lib.rs`
/// (not the machine's cargo home), the standard library as `std/src/...` (not the toolchain's
/// folder or the compiler's build path), anything else as it is.
pub fn display_path(file: &str) -> &str {
    for marker in ["/.cargo/registry/src/", "/.cargo/git/checkouts/"] {
        if let Some(index) = file.find(marker) {
            // The next folder names the index (or the repository); the one after is the crate.
            let rest = &file[index + marker.len()..];
            let skip = if marker.contains("git") { 2 } else { 1 };
            let mut cut = rest;
            for _ in 0..skip {
                match cut.split_once('/') {
                    Some((_, after)) => cut = after,
                    None => return file,
                }
            }
            return cut;
        }
    }
    for marker in ["/lib/rustlib/src/rust/library/", "/library/"] {
        if let Some(index) = file.find(marker) {
            if marker != "/library/" || file.starts_with("/rustc/") {
                return &file[index + marker.len()..];
            }
        }
    }
    file
}

/// A frame as a report shows it: workspace files relative to the workspace root, others
/// through [`display_path`].
pub fn readable_frame(workspace: &Workspace, frame: &Frame) -> Frame {
    let file = frame.file.as_deref().map(|file| {
        let path = Utf8Path::new(file);
        match workspace.relative(path) {
            Some(relative) if path.is_absolute() => relative.to_string(),
            _ => display_path(file).to_owned(),
        }
    });
    Frame {
        file,
        ..frame.clone()
    }
}

/// The first user frame (or, when there is none, the innermost frame) as a location and
/// the name of its function.
pub fn user_location(
    workspace: &Workspace,
    frames: &[Frame],
) -> (Option<Location>, Option<String>) {
    let Some(frame) = frames
        .iter()
        .find(|frame| is_user_frame(workspace, frame))
        .or(frames.first())
    else {
        return (None, None);
    };
    let location = frame.file.as_deref().and_then(|file| {
        let relative = workspace
            .relative(Utf8Path::new(file))
            .map_or_else(|| display_path(file).into(), Utf8Path::to_path_buf);
        Some(Location {
            file: relative,
            line: frame.line?,
            column: frame.column,
        })
    });
    let function = Some(frame.function.clone()).filter(|f| !f.is_empty() && f != "<unknown>");
    (location, function)
}

/// Where a doctest is: rustdoc names one `FILE - ITEM (line N)`, FILE as cargo passed it
/// (relative to the workspace root, or to the package's folder), N the line of its opening
/// fence. A doctest is built without debug info and its frames name only `rust_out` code
/// units, so a tool's stack through it shows no user frame; this is the user's code there.
pub fn doctest_location(workspace: &Workspace, test: &str) -> Option<Location> {
    let (file, rest) = test.split_once(" - ")?;
    let line = rest
        .rsplit_once("(line ")?
        .1
        .strip_suffix(')')?
        .parse()
        .ok()?;
    let path = Utf8Path::new(file);
    let found = std::iter::once(workspace.root.as_path())
        .chain(workspace.members.iter().map(crate::workspace::Member::dir))
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.is_file())?;
    Some(Location {
        file: workspace.relative(&found)?.to_owned(),
        line,
        column: None,
    })
}

/// A frame of a doctest's own code: rustdoc wraps it in `rust_out::main::_doctest_main_...`.
pub fn is_doctest_frame(frame: &Frame) -> bool {
    frame.function.contains("::_doctest_main_")
}

/// Whether a location is a line of code in a file of the workspace: not the standard
/// library or a dependency, and not a comment, a blank line or past the file's end. A doctest
/// reports its own panics at the line of rustdoc's generated program (beef's size assertion
/// on `src/lib.rs` line 31 said line 9, a line of the crate's doc comment), which this tells
/// from a line the code can be on.
pub fn is_code_line(workspace: &Workspace, location: &Location) -> bool {
    if !location.file.is_relative() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(workspace.root.join(&location.file)) else {
        return false;
    };
    let Some(line) = (location.line as usize)
        .checked_sub(1)
        .and_then(|index| text.lines().nth(index))
    else {
        return false;
    };
    let line = line.trim();
    !line.is_empty() && !line.starts_with("//")
}

#[cfg(test)]
mod display_tests {
    use super::display_path;

    #[test]
    fn dependencies_and_std_are_shown_without_the_machine_s_folders() {
        assert_eq!(
            display_path("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/smallvec-1.6.0/src/lib.rs"),
            "smallvec-1.6.0/src/lib.rs"
        );
        assert_eq!(
            display_path("/home/u/.cargo/git/checkouts/bytes-3f1a/a1b2c3d/src/buf.rs"),
            "src/buf.rs"
        );
        assert_eq!(
            display_path("/root/.rustup/toolchains/nightly-x/lib/rustlib/src/rust/library/std/src/panicking.rs"),
            "std/src/panicking.rs"
        );
        assert_eq!(
            display_path(
                "/rustc/e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a/library/core/src/ptr/mod.rs"
            ),
            "core/src/ptr/mod.rs"
        );
        assert_eq!(display_path("/usr/include/stdio.h"), "/usr/include/stdio.h");
    }
}
