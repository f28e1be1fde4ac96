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
            .map_or_else(|| file.into(), Utf8Path::to_path_buf);
        Some(Location {
            file: relative,
            line: frame.line?,
            column: frame.column,
        })
    });
    let function = Some(frame.function.clone()).filter(|f| !f.is_empty() && f != "<unknown>");
    (location, function)
}
