//! What a test harness under Miri is made of, for the result cache. cargo-miri builds no
//! executable: it stores the rustc invocation Miri re-runs (a JSON stand-in in the
//! executable's place), and Miri compiles the harness's sources again when it runs. So the
//! harness's inputs are that invocation, the sources its dep-info lists, and the compiled
//! crates it links (`--extern`), whose metadata carries the hashes of their own dependencies.
//! The stand-in also records the build's environment, where a few variables differ from one
//! build of the same sources to the next (runner's process tag, cargo's jobserver): the
//! invocation is keyed without them, so a rebuild of unchanged code (a fresh CI machine)
//! still finds its results.

use camino::{Utf8Path, Utf8PathBuf};

/// Variables of the recorded environment that change between builds of the same code.
const VOLATILE: &[&str] = &["RUNNER_TREE", "CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS"];

/// What a harness under Miri is made of.
#[derive(Debug, Default)]
pub struct Made {
    /// The sources it compiles and the crates it links.
    pub files: Vec<Utf8PathBuf>,
    /// The recorded invocation without its volatile variables (or the stand-in's bytes
    /// when it cannot be read as one: the key then changes with every rebuild, which is safe).
    pub invocation: String,
}

pub fn inputs(stand_in: &Utf8Path) -> Made {
    let bytes = std::fs::read(stand_in).unwrap_or_default();
    let Ok(mut invocation) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Made {
            files: vec![stand_in.to_owned()],
            invocation: String::new(),
        };
    };
    if let Some(env) = invocation["RunWith"]["env"].as_array_mut() {
        env.retain(|pair| {
            let name: Vec<u8> = pair[0]["Unix"]
                .as_array()
                .map(|bytes| {
                    bytes
                        .iter()
                        .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                        .collect()
                })
                .unwrap_or_default();
            !VOLATILE
                .iter()
                .any(|volatile| volatile.as_bytes() == name.as_slice())
        });
    }
    let mut files = Vec::new();
    let run = &invocation["RunWith"];
    let dir = run["current_dir"]["Unix"]
        .as_array()
        .map(|bytes| {
            bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Vec<u8>>()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Utf8PathBuf::from);
    let args: Vec<&str> = run["args"]
        .as_array()
        .map(|args| args.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    for pair in args.windows(2) {
        if pair[0] == "--extern" {
            if let Some((_, path)) = pair[1].split_once('=') {
                files.push(path.into());
            }
        }
    }
    let dep_info = Utf8PathBuf::from(format!("{stand_in}.d"));
    if let Ok(text) = std::fs::read_to_string(&dep_info) {
        for source in dep_info_sources(&text) {
            let path = Utf8PathBuf::from(source);
            files.push(match (&dir, path.is_relative()) {
                (Some(dir), true) => dir.join(path),
                _ => path,
            });
        }
    }
    files.sort();
    files.dedup();
    Made {
        files,
        invocation: invocation.to_string(),
    }
}

/// The files a Makefile-style dep-info names as prerequisites.
fn dep_info_sources(text: &str) -> Vec<&str> {
    let mut sources = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some((_, prerequisites)) = line.split_once(": ") {
            sources.extend(prerequisites.split_whitespace());
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_invocation_its_sources_and_linked_crates() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let stand_in = root.join("deps/t-1");
        std::fs::create_dir_all(root.join("deps")).unwrap();
        let cwd: Vec<u8> = root.as_str().bytes().collect();
        let tag = |value: &str| serde_json::json!([{"Unix": "RUNNER_TREE".as_bytes()}, {"Unix": value.as_bytes()}]);
        let invocation = |tree: &str| {
            serde_json::json!({"RunWith": {
                "args": ["--crate-name", "t", "tests/t.rs", "--extern", "demo=/d/libdemo-2.rlib"],
                "env": [tag(tree)], "current_dir": {"Unix": cwd}, "stdin": []
            }})
        };
        std::fs::write(&stand_in, invocation("1.1").to_string()).unwrap();
        std::fs::write(
            root.join("deps/t-1.d"),
            format!("{stand_in}.d: tests/t.rs tests/data.txt\n\n{stand_in}: tests/t.rs\n\ntests/t.rs:\n"),
        )
        .unwrap();
        let made = inputs(&stand_in);
        let files = &made.files;
        assert!(files.contains(&Utf8PathBuf::from("/d/libdemo-2.rlib")));
        assert!(files.contains(&root.join("tests/t.rs")));
        assert!(files.contains(&root.join("tests/data.txt")));
        assert_eq!(files.len(), 3, "{files:?}");
        // Another build of the same code under another process tag: the same invocation.
        std::fs::write(&stand_in, invocation("2.7").to_string()).unwrap();
        assert_eq!(inputs(&stand_in).invocation, made.invocation);
        assert!(made.invocation.contains("tests/t.rs"));
    }
}
