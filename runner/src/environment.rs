//! Where runner is (plain host, Nix dev shell, container) and which compiler it will use.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;

use crate::pin::Pin;
use crate::process::Cmd;

/// The environment marker set by the flake's dev shell and the image.
pub const HERMETIC_VAR: &str = "RUNNER_HERMETIC";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A plain machine: runner uses rustup's `+toolchain` and installs what is missing.
    Host,
    /// The flake's dev shell: the pinned tools are on PATH.
    Nix,
    /// The image built from the Dockerfile: the pinned tools are on PATH.
    Docker,
}

impl Mode {
    pub fn detect() -> Result<Mode> {
        match std::env::var(HERMETIC_VAR).ok().as_deref() {
            None | Some("" | "host") => Ok(Mode::Host),
            Some("nix") => Ok(Mode::Nix),
            Some("docker") => Ok(Mode::Docker),
            Some(other) => bail!("{HERMETIC_VAR}={other} is not one of nix, docker, host"),
        }
    }

    pub fn is_hermetic(self) -> bool {
        self != Mode::Host
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Host => "host",
            Mode::Nix => "nix",
            Mode::Docker => "docker",
        }
    }
}

/// How to reach the pinned toolchain's cargo and rustc, and the runner cache.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub mode: Mode,
    pub pin: Pin,
    /// Where runner installs pinned cargo tools on a plain host.
    pub cache_dir: Utf8PathBuf,
}

/// The fields of `rustc -vV` that identify a compiler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustcIdentity {
    pub version: String,
    pub commit_hash: String,
    pub host: String,
}

impl RustcIdentity {
    pub fn parse(text: &str) -> Option<RustcIdentity> {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
        };
        Some(RustcIdentity {
            version: text.lines().next()?.trim().to_owned(),
            commit_hash: field("commit-hash:")?,
            host: field("host:")?,
        })
    }
}

impl Toolchain {
    pub fn new(pin: Pin) -> Result<Toolchain> {
        Ok(Toolchain {
            mode: Mode::detect()?,
            pin,
            cache_dir: cache_dir()?,
        })
    }

    pub fn channel(&self) -> &str {
        &self.pin.toolchain.channel
    }

    /// `cargo` of the pinned toolchain: `cargo +<channel>` through rustup on a host, plain
    /// `cargo` where the environment already is the pin.
    pub fn cargo(&self) -> Cmd {
        let mut cmd = Cmd::new("cargo");
        if !self.mode.is_hermetic() {
            cmd = cmd.arg(format!("+{}", self.channel()));
        }
        cmd.env("PATH", self.tool_path()).unset_build_environment()
    }

    /// `rustc` of the pinned toolchain.
    pub fn rustc(&self) -> Cmd {
        let mut cmd = Cmd::new("rustc");
        if !self.mode.is_hermetic() {
            cmd = cmd.arg(format!("+{}", self.channel()));
        }
        cmd.unset_build_environment()
    }

    /// The directory of cargo tools runner installed itself.
    pub fn tools_bin(&self) -> Utf8PathBuf {
        self.cache_dir.join("tools").join("bin")
    }

    /// PATH for children: runner's own tool installs first, so pinned versions win.
    pub fn tool_path(&self) -> String {
        let inherited = std::env::var("PATH").unwrap_or_default();
        format!("{}:{inherited}", self.tools_bin())
    }

    /// Runs `rustc -vV` of the toolchain runner will use.
    pub fn identity(&self) -> Result<RustcIdentity> {
        let output = self
            .rustc()
            .arg("-vV")
            .output_text()
            .context("running rustc -vV")?;
        RustcIdentity::parse(&output)
            .with_context(|| format!("unexpected `rustc -vV` output: {}", output.trim()))
    }

    /// In a hermetic environment the compiler on PATH must be the pinned one.
    pub fn verify_hermetic(&self) -> Result<RustcIdentity> {
        let identity = self.identity()?;
        if identity.commit_hash != self.pin.compiler.commit_hash {
            bail!(
                "toolchain mismatch in the {} environment: the pin asks for {} (commit {}), \
                 PATH has {} (commit {}); rebuild the environment from the pin file",
                self.mode.as_str(),
                self.channel(),
                short(&self.pin.compiler.commit_hash),
                identity.version,
                short(&identity.commit_hash)
            );
        }
        Ok(identity)
    }
}

/// A tool's name and the command that prints its version.
pub type VersionQuery = fn(&Toolchain) -> (&'static str, Cmd);

/// Tool name → version actually used, for the report's provenance: rustc, cargo and the
/// tools of `queries` (the selected stages', from the stage registry).
pub fn versions(
    toolchain: &Toolchain,
    identity: Option<&RustcIdentity>,
    queries_of_stages: &[VersionQuery],
) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    if let Some(identity) = identity {
        versions.insert("rustc".to_owned(), identity.version.clone());
    }
    let mut queries = vec![("cargo", toolchain.cargo().arg("--version"))];
    queries.extend(queries_of_stages.iter().map(|version| version(toolchain)));
    for (tool, query) in queries {
        if let Ok(text) = query.output_text() {
            versions.insert(tool.to_owned(), text.trim().to_owned());
        }
    }
    versions
}

pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn cache_dir() -> Result<Utf8PathBuf> {
    let dir = if let Ok(dir) = std::env::var("RUNNER_CACHE_DIR") {
        Utf8PathBuf::from(dir)
    } else if let Ok(dir) = std::env::var("XDG_CACHE_HOME") {
        Utf8PathBuf::from(dir).join("runner")
    } else if let Ok(home) = std::env::var("HOME") {
        Utf8PathBuf::from(home).join(".cache").join("runner")
    } else {
        bail!("cannot find a cache directory: set RUNNER_CACHE_DIR or HOME");
    };
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_verbose_version() {
        let text = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nbinary: rustc\n\
                    commit-hash: e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a\n\
                    commit-date: 2026-05-19\nhost: x86_64-unknown-linux-gnu\n";
        let identity = RustcIdentity::parse(text).unwrap();
        assert_eq!(
            identity.commit_hash,
            "e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a"
        );
        assert_eq!(identity.host, "x86_64-unknown-linux-gnu");
        assert!(identity.version.starts_with("rustc 1.97.0-nightly"));
    }
}
