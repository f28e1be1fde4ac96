//! The stage's settings resolved from config, and what they become for each sanitizer: the
//! rustc flags of its build and the runtime environment of its test processes.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use camino::Utf8PathBuf;

use super::config::{RuntimeOptions, SanitizersConfig};
use super::sanitizer::Sanitizer;
use crate::cargo_config::OptLevel;
use crate::plan::Context;

#[derive(Debug, Clone)]
pub struct Settings {
    pub sanitizers: Vec<Sanitizer>,
    /// Memory is part of the default set, not named in config: it then runs only when no
    /// dependency builds C code.
    pub memory_by_default: bool,
    pub doctests: bool,
    pub options: RuntimeOptions,
    /// Suppression files by runtime, as absolute paths.
    pub suppressions: BTreeMap<Sanitizer, Utf8PathBuf>,
    /// `llvm-symbolizer` from `PATH`; without it stacks have no `file:line`.
    pub symbolizer: Option<Utf8PathBuf>,
    pub test_timeout: std::time::Duration,
    /// The limit under `ThreadSanitizer` and `MemorySanitizer`, whose std is instrumented too.
    pub slow_test_timeout: std::time::Duration,
    /// Whether the limits are runner's defaults, which stretch for a test known to be slow.
    pub default_test_timeout: bool,
    /// The configured opt-level of every sanitizer's build; `None`: each sanitizer's own
    /// ([`Sanitizer::default_opt_level`]).
    pub opt_level: Option<OptLevel>,
}

impl Settings {
    pub fn resolve(ctx: &Context) -> Result<Settings> {
        let config = &ctx.workspace.config.stage::<SanitizersConfig>()?;
        let (sanitizers, memory_by_default) = match &config.enabled {
            Some(named) => {
                let mut unique = Vec::new();
                for sanitizer in named {
                    if !unique.contains(sanitizer) {
                        unique.push(*sanitizer);
                    }
                }
                if unique.is_empty() {
                    bail!("runner config `sanitizers.enabled` is empty: name at least one sanitizer, or leave the stage out with `skip`");
                }
                (unique, false)
            }
            None => (Sanitizer::DEFAULT.to_vec(), true),
        };
        let mut suppressions = BTreeMap::new();
        for (sanitizer, file) in [
            (Sanitizer::Address, &config.suppressions.address),
            (Sanitizer::Thread, &config.suppressions.thread),
            (Sanitizer::Leak, &config.suppressions.leak),
        ] {
            let Some(file) = file else { continue };
            let path = ctx.workspace.root.join(file);
            if !path.is_file() {
                bail!(
                    "runner config `sanitizers.suppressions.{sanitizer}`: `{file}` is not a file (paths are relative to {})",
                    ctx.workspace.root
                );
            }
            suppressions.insert(sanitizer, path);
        }
        let symbolizer = super::needs()
            .system
            .iter()
            .find_map(crate::provision::SystemTool::find);
        Ok(Settings {
            sanitizers,
            memory_by_default,
            doctests: config.doctests.unwrap_or(true),
            options: config.options.clone(),
            suppressions,
            symbolizer,
            test_timeout: ctx.test_timeout(
                config.test_timeout.as_deref(),
                crate::exec::NATIVE_TEST_TIMEOUT,
            )?,
            slow_test_timeout: ctx.test_timeout(
                config.test_timeout.as_deref(),
                crate::exec::SLOW_TOOL_TEST_TIMEOUT,
            )?,
            default_test_timeout: ctx.test_timeout_is_default(config.test_timeout.as_deref()),
            opt_level: config.opt_level,
        })
    }

    /// One runtime's option string: runner's defaults, the suppression file, then the
    /// user's options, which win because the runtime keeps the last value of a key.
    fn runtime_options(&self, runtime: Sanitizer, with_defaults: bool) -> String {
        let mut options: Vec<String> = Vec::new();
        if with_defaults {
            options.extend(runtime.default_options().iter().map(|o| (*o).to_owned()));
        }
        if let Some(file) = self.suppressions.get(&runtime) {
            options.push(format!("suppressions={file}"));
        }
        options.extend(self.options.of(runtime).iter().cloned());
        options.join(":")
    }

    /// The per-test limit under `sanitizer`.
    /// What the kernel runs `sanitizer`'s tests under.
    pub fn limits_for<'a>(
        &self,
        sanitizer: Sanitizer,
        deadline: std::time::Instant,
        logs: &'a camino::Utf8Path,
    ) -> crate::exec::Limits<'a> {
        crate::exec::Limits {
            stage: crate::stage_name::StageName::Sanitizers.as_str(),
            test_timeout: self.test_timeout_for(sanitizer),
            slowdown: Some(sanitizer.slowdown()),
            stretch: self.default_test_timeout,
            deadline,
            logs,
            seeds: &[None],
        }
    }

    /// The opt-level `sanitizer`'s build sets, if any (else the profile's own).
    pub fn opt_level_for(&self, sanitizer: Sanitizer) -> Option<OptLevel> {
        self.opt_level.or(sanitizer.default_opt_level())
    }

    pub fn test_timeout_for(&self, sanitizer: Sanitizer) -> std::time::Duration {
        if sanitizer.needs_build_std() {
            self.slow_test_timeout
        } else {
            self.test_timeout
        }
    }

    /// Variables for a test process under `sanitizer`: `None` removes one the shell set.
    pub fn runtime_environment(&self, sanitizer: Sanitizer) -> Vec<(&'static str, Option<String>)> {
        let mut env = vec![(
            sanitizer.options_variable(),
            Some(self.runtime_options(sanitizer, true)),
        )];
        if sanitizer == Sanitizer::Address {
            // ASan's leak check reads LeakSanitizer's own variable for `leak:` suppressions.
            let leak = self.runtime_options(Sanitizer::Leak, false);
            env.push(("LSAN_OPTIONS", (!leak.is_empty()).then_some(leak)));
        }
        if let Some(symbolizer) = &self.symbolizer {
            env.push((
                sanitizer.symbolizer_variable(),
                Some(symbolizer.to_string()),
            ));
        }
        env
    }
}

/// The build's rustc flags: the workspace's cargo config flags (which setting RUSTFLAGS
/// would otherwise hide), runner config's, then the sanitizer's.
pub fn rustflags(ctx: &Context, sanitizer: Sanitizer) -> String {
    crate::cargo_config::stage_rustflags(&ctx.workspace, &ctx.host, &sanitizer.rustc_flags())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            sanitizers: Sanitizer::DEFAULT.to_vec(),
            memory_by_default: true,
            doctests: true,
            options: RuntimeOptions {
                address: vec!["detect_leaks=0".into()],
                leak: vec!["max_leaks=3".into()],
                ..RuntimeOptions::default()
            },
            suppressions: BTreeMap::from([(Sanitizer::Leak, Utf8PathBuf::from("/w/lsan.supp"))]),
            symbolizer: Some("/usr/bin/llvm-symbolizer".into()),
            test_timeout: std::time::Duration::from_mins(5),
            slow_test_timeout: std::time::Duration::from_mins(15),
            default_test_timeout: true,
            opt_level: None,
        }
    }

    #[test]
    fn address_and_thread_build_optimised_memory_as_the_profile_unless_configured() {
        let level = |settings: &Settings, sanitizer| {
            settings
                .opt_level_for(sanitizer)
                .map(|level| level.to_string())
        };
        let defaults = settings();
        assert_eq!(level(&defaults, Sanitizer::Address).as_deref(), Some("1"));
        assert_eq!(level(&defaults, Sanitizer::Thread).as_deref(), Some("1"));
        assert_eq!(level(&defaults, Sanitizer::Memory), None);
        let configured = Settings {
            opt_level: Some(OptLevel::INSTRUMENTED),
            ..settings()
        };
        assert_eq!(level(&configured, Sanitizer::Memory).as_deref(), Some("1"));
    }

    #[test]
    fn user_options_come_after_the_defaults() {
        let env = settings().runtime_environment(Sanitizer::Address);
        assert_eq!(
            env[0],
            (
                "ASAN_OPTIONS",
                Some("detect_leaks=1:fast_unwind_on_malloc=0:detect_stack_use_after_return=1:symbolize=1:detect_leaks=0".to_owned())
            )
        );
        assert_eq!(
            env[1],
            (
                "LSAN_OPTIONS",
                Some("suppressions=/w/lsan.supp:max_leaks=3".to_owned())
            )
        );
        assert_eq!(
            env[2],
            (
                "ASAN_SYMBOLIZER_PATH",
                Some("/usr/bin/llvm-symbolizer".to_owned())
            )
        );
    }

    #[test]
    fn each_runtime_reads_its_own_variables() {
        let mut settings = settings();
        settings.symbolizer = None;
        settings.suppressions.clear();
        let env = settings.runtime_environment(Sanitizer::Thread);
        assert_eq!(
            env,
            [(
                "TSAN_OPTIONS",
                Some("symbolize=1:second_deadlock_stack=1".to_owned())
            )]
        );
        let env = settings.runtime_environment(Sanitizer::Leak);
        assert_eq!(
            env,
            [(
                "LSAN_OPTIONS",
                Some("fast_unwind_on_malloc=0:symbolize=1:max_leaks=3".to_owned())
            )]
        );
    }
}
