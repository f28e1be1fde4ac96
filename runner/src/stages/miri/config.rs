//! The Miri stage's table in runner config, `[workspace.metadata.runner.miri]`.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MiriConfig {
    /// Targets to interpret for; `host` means the host triple (default: the host and
    /// s390x-unknown-linux-gnu).
    pub targets: Option<Vec<String>>,
    /// Each test runs under this many seeds (default: 1; at most 10000).
    pub seeds: Option<u32>,
    /// Extra MIRIFLAGS, such as `-Zmiri-strict-provenance`.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Run doctests too (default: true).
    pub doctests: Option<bool>,
    /// Per-test time limit under Miri (default: 15m, or the top-level `test-timeout`).
    pub test_timeout: Option<String>,
}
