//! The pinned analysis toolchain and tool versions, embedded from `pin/toolchain.toml`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The pin file's text, compiled into the binary so that runner and the environments built
/// from the same file can never disagree.
pub const PIN_TOML: &str = include_str!("../../pin/toolchain.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub toolchain: ToolchainPin,
    pub compiler: CompilerPin,
    /// Cargo subcommand name → exact version to install.
    pub tools: BTreeMap<String, String>,
}

/// Exactly rustup's `[toolchain]` keys, so that rust-overlay can read the same table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolchainPin {
    pub channel: String,
    pub profile: String,
    pub components: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompilerPin {
    pub commit_hash: String,
}

impl Pin {
    /// The pin runner was built with.
    pub fn embedded() -> Result<Pin> {
        Self::parse(PIN_TOML).context("the embedded pin file is invalid")
    }

    pub fn parse(text: &str) -> Result<Pin> {
        Ok(toml::from_str(text)?)
    }

    /// The exact version pinned for a cargo tool, if it is pinned.
    pub fn tool_version(&self, tool: &str) -> Option<&str> {
        self.tools.get(tool).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_pin_parses_and_names_the_analysis_components() {
        let pin = Pin::embedded().unwrap();
        assert!(pin.toolchain.channel.starts_with("nightly-"));
        for component in ["miri", "rust-src", "llvm-tools"] {
            assert!(pin.toolchain.components.iter().any(|c| c == component));
        }
        assert_eq!(pin.compiler.commit_hash.len(), 40);
        assert!(pin.tool_version("cargo-fuzz").is_some());
    }
}
