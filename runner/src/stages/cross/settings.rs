//! The cross stage's settings: the `[…metadata.runner.cross]` table and what the machine has
//! (the cross linker, qemu-user, the target's libc root), resolved once.

use anyhow::{bail, Result};
use camino::Utf8PathBuf;
use serde::Deserialize;

use crate::exec;
use crate::plan::Context;
use crate::provision;
use crate::stage_name::StageName;

/// The default big-endian target.
pub const DEFAULT_TARGET: &str = "s390x-unknown-linux-gnu";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrossConfig {
    /// The big-endian target (default: s390x-unknown-linux-gnu).
    pub target: Option<String>,
    /// Per-test time limit (default: 5m, or the top-level `test-timeout`).
    pub test_timeout: Option<String>,
}

impl crate::config::StageTable for CrossConfig {
    const STAGE: StageName = StageName::Cross;
}

/// How to build for and run on the target, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: String,
    pub target_dir: Utf8PathBuf,
    /// The cross linker: cargo's own setting when the environment gives one (the Nix shell),
    /// else the Debian cross compiler on PATH.
    pub linker: String,
    /// qemu-user for the target, and the target's libc root for it.
    pub emulator: String,
    pub sysroot: Option<Utf8PathBuf>,
    pub test_timeout: std::time::Duration,
    /// Whether the limit is runner's default, which stretches for a test known to be slow.
    pub default_test_timeout: bool,
}

/// `CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER` for `s390x-unknown-linux-gnu`.
pub fn target_env(target: &str, key: &str) -> String {
    format!(
        "CARGO_TARGET_{}_{key}",
        target.to_uppercase().replace(['-', '.'], "_")
    )
}

/// The most qemu-user slows a test down against the quickest run of it elsewhere (natively
/// on the host): it translates every instruction, byte-swapping included, with room on top.
pub const EMULATED_SLOWDOWN: f64 = 50.0;

impl Settings {
    pub fn resolve(ctx: &Context) -> Result<Settings> {
        let config = ctx.workspace.config.stage::<CrossConfig>()?;
        let target = config
            .target
            .clone()
            .unwrap_or_else(|| DEFAULT_TARGET.to_owned());
        let arch = target.split('-').next().unwrap_or(&target).to_owned();
        let tools = super::needs().system;
        let missing: Vec<String> = tools
            .iter()
            .filter(|tool| tool.find().is_none())
            .map(provision::SystemTool::install_hint)
            .collect();
        let linker = std::env::var(target_env(&target, "LINKER")).ok();
        let emulator = which::which(format!("qemu-{arch}-static"))
            .or_else(|_| which::which(format!("qemu-{arch}")));
        let (Some(linker), Ok(emulator)) = (
            linker.or_else(|| {
                which::which(format!("{arch}-linux-gnu-gcc"))
                    .ok()
                    .map(|p| p.display().to_string())
            }),
            emulator,
        ) else {
            bail!(
                "missing: qemu-user and a cross linker for {target}; install with: {}",
                missing.join("; ")
            );
        };
        let sysroot = Utf8PathBuf::from(format!("/usr/{arch}-linux-gnu"));
        Ok(Settings {
            target,
            target_dir: ctx.workspace.stage_target_dir("cross"),
            linker,
            emulator: emulator.display().to_string(),
            sysroot: sysroot.is_dir().then_some(sysroot),
            test_timeout: ctx
                .test_timeout(config.test_timeout.as_deref(), exec::NATIVE_TEST_TIMEOUT)?,
            default_test_timeout: ctx.test_timeout_is_default(config.test_timeout.as_deref()),
        })
    }
}
