//! `[workspace.metadata.runner.sanitizers]`: which sanitizers run, extra runtime options and
//! suppression files, checked strictly like the rest of the config.

use serde::Deserialize;

use super::sanitizer::Sanitizer;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SanitizersConfig {
    /// The sanitizers to run (default: address and thread, plus memory when no dependency
    /// builds C code). Naming memory here runs it even then.
    pub enabled: Option<Vec<Sanitizer>>,
    /// Runtime options per sanitizer, like `["halt_on_error=0"]`, appended after runner's
    /// defaults so that they win.
    #[serde(default)]
    pub options: RuntimeOptions,
    /// Suppression files per runtime, relative to the workspace root.
    #[serde(default)]
    pub suppressions: Suppressions,
    /// Run doctests too (default: true).
    pub doctests: Option<bool>,
    /// Per-test time limit (default: 5m, or the top-level `test-timeout`).
    pub test_timeout: Option<String>,
    /// The opt-level of every sanitizer's build (default: 1 for address, thread and leak, as
    /// the sanitizers advise; memory keeps the profile's).
    pub opt_level: Option<crate::cargo_config::OptLevel>,
}

impl crate::config::StageTable for SanitizersConfig {
    const STAGE: crate::stage_name::StageName = crate::stage_name::StageName::Sanitizers;
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeOptions {
    #[serde(default)]
    pub address: Vec<String>,
    #[serde(default)]
    pub thread: Vec<String>,
    #[serde(default)]
    pub memory: Vec<String>,
    /// `LeakSanitizer`'s options; they apply to the leak check inside address as well.
    #[serde(default)]
    pub leak: Vec<String>,
}

/// `MemorySanitizer` has no runtime suppressions (only compile-time ignore lists), so it has
/// no key here and naming it is an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Suppressions {
    pub address: Option<String>,
    pub thread: Option<String>,
    /// `leak:` patterns; used by address's leak check and by the leak sanitizer.
    pub leak: Option<String>,
}

impl RuntimeOptions {
    pub fn of(&self, sanitizer: Sanitizer) -> &[String] {
        match sanitizer {
            Sanitizer::Address => &self.address,
            Sanitizer::Thread => &self.thread,
            Sanitizer::Memory => &self.memory,
            Sanitizer::Leak => &self.leak,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_sanitizers_options_and_suppressions() {
        let metadata = json!({"runner": {"sanitizers": {
            "enabled": ["address", "leak"],
            "options": {"address": ["halt_on_error=0"]},
            "suppressions": {"leak": "lsan.supp"},
            "doctests": false
        }}});
        let config = Config::from_metadata(&metadata, None)
            .unwrap()
            .stage::<SanitizersConfig>()
            .unwrap();
        assert_eq!(
            config.enabled,
            Some(vec![Sanitizer::Address, Sanitizer::Leak])
        );
        assert_eq!(config.options.of(Sanitizer::Address), ["halt_on_error=0"]);
        assert_eq!(config.suppressions.leak.as_deref(), Some("lsan.supp"));
        assert_eq!(config.doctests, Some(false));
    }

    #[test]
    fn unknown_sanitizers_and_memory_suppressions_are_rejected_by_key() {
        let unknown = json!({"runner": {"sanitizers": {"enabled": ["adress"]}}});
        let error = Config::from_metadata(&unknown, None)
            .and_then(|config| config.stage::<SanitizersConfig>())
            .unwrap_err()
            .to_string();
        assert!(error.contains("sanitizers.enabled"), "{error}");
        let memory = json!({"runner": {"sanitizers": {"suppressions": {"memory": "m.supp"}}}});
        let error = Config::from_metadata(&memory, None)
            .and_then(|config| config.stage::<SanitizersConfig>())
            .unwrap_err()
            .to_string();
        assert!(error.contains("sanitizers.suppressions.memory"), "{error}");
    }
}
