//! What each stage needs (toolchain components, pinned cargo tools, system packages), what is
//! present, and installing what is missing on a plain host.

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;

use crate::environment::Toolchain;
use crate::process::{Cmd, RunOptions};
use crate::progress::Progress;

/// A program from the system's packages: runner never runs a package manager itself.
#[derive(Debug, Clone, Copy)]
pub struct SystemTool {
    /// Binaries that provide it; any one will do.
    pub binaries: &'static [&'static str],
    /// The Debian/Ubuntu package.
    pub debian: &'static str,
}

impl SystemTool {
    pub fn find(&self) -> Option<Utf8PathBuf> {
        self.binaries
            .iter()
            .find_map(|binary| which::which(binary).ok())
            .and_then(|path| Utf8PathBuf::from_path_buf(path).ok())
    }

    pub fn install_hint(&self) -> String {
        format!(
            "apt-get install {} (or use the Nix shell or the image)",
            self.debian
        )
    }
}

/// What one stage needs.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    pub components: Vec<&'static str>,
    pub cargo_tools: Vec<&'static str>,
    pub system: Vec<SystemTool>,
}

/// The system packages stages need, with the binaries that show they are there.
pub mod system {
    use super::SystemTool;

    pub const VALGRIND: SystemTool = SystemTool {
        binaries: &["valgrind"],
        debian: "valgrind",
    };
    pub const QEMU: SystemTool = SystemTool {
        binaries: &["qemu-s390x-static", "qemu-s390x"],
        debian: "qemu-user-static",
    };
    pub const CROSS_GCC: SystemTool = SystemTool {
        binaries: &["s390x-linux-gnu-gcc"],
        debian: "gcc-s390x-linux-gnu libc6-dev-s390x-cross",
    };
    pub const SYMBOLIZER: SystemTool = SystemTool {
        binaries: &["llvm-symbolizer"],
        debian: "llvm",
    };
}

/// One pinned cargo tool as found on this machine.
#[derive(Debug, Clone)]
pub struct ToolState {
    pub name: String,
    pub pinned: String,
    /// Where it was found and the version it reported.
    pub found: Option<(Utf8PathBuf, String)>,
}

impl ToolState {
    pub fn is_pinned_version(&self) -> bool {
        self.found
            .as_ref()
            .is_some_and(|(_, version)| *version == self.pinned)
    }
}

/// What is present for a set of stages.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    pub toolchain_installed: bool,
    pub missing_components: Vec<String>,
    pub tools: Vec<ToolState>,
    pub missing_system: Vec<SystemTool>,
}

impl Inspection {
    pub fn toolchain_ready(&self) -> bool {
        self.toolchain_installed && self.missing_components.is_empty()
    }
}

impl Needs {
    /// What several stages need together, each thing once.
    pub fn union(each: impl IntoIterator<Item = Needs>) -> Needs {
        let mut all = Needs::default();
        for stage_needs in each {
            for component in stage_needs.components {
                if !all.components.contains(&component) {
                    all.components.push(component);
                }
            }
            for tool in stage_needs.cargo_tools {
                if !all.cargo_tools.contains(&tool) {
                    all.cargo_tools.push(tool);
                }
            }
            for system in stage_needs.system {
                if !all.system.iter().any(|s| s.debian == system.debian) {
                    all.system.push(system);
                }
            }
        }
        all
    }
}

/// What is installed of `wanted` (the selected stages' needs, from the stage registry).
pub fn inspect(toolchain: &Toolchain, wanted: &Needs) -> Result<Inspection> {
    let mut inspection = Inspection::default();
    if toolchain.mode.is_hermetic() {
        // The environment is the pin: its rustc must answer, its tools must be on PATH.
        inspection.toolchain_installed = toolchain.identity().is_ok();
    } else {
        let rustup = Cmd::new("rustup").unset_build_environment();
        let installed = rustup
            .clone()
            .args(["toolchain", "list"])
            .output_text()
            .context("rustup is needed on a plain host to install the pinned toolchain")?;
        let channel = toolchain.channel();
        inspection.toolchain_installed = installed.lines().any(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            name == channel || name.starts_with(&format!("{channel}-"))
        });
        if inspection.toolchain_installed {
            let components = rustup
                .args(["component", "list", "--installed", "--toolchain", channel])
                .output_text()?;
            inspection.missing_components = wanted
                .components
                .iter()
                .filter(|wanted| {
                    !components.lines().any(|line| {
                        let line = line.trim();
                        line == **wanted || line.starts_with(&format!("{wanted}-"))
                    })
                })
                .map(|c| (*c).to_owned())
                .collect();
        } else {
            inspection.missing_components =
                wanted.components.iter().map(|c| (*c).to_owned()).collect();
        }
    }
    for &tool in &wanted.cargo_tools {
        let pinned = toolchain.pin.tool_version(tool).unwrap_or("").to_owned();
        inspection.tools.push(ToolState {
            name: tool.to_owned(),
            pinned,
            found: find_tool(toolchain, tool),
        });
    }
    inspection.missing_system = wanted
        .system
        .iter()
        .filter(|s| s.find().is_none())
        .copied()
        .collect();
    Ok(inspection)
}

/// Runner's own install of a tool first, then PATH; with the version it reports.
fn find_tool(toolchain: &Toolchain, tool: &str) -> Option<(Utf8PathBuf, String)> {
    let own = toolchain.tools_bin().join(tool);
    let path = if own.is_file() {
        own
    } else {
        Utf8PathBuf::from_path_buf(which::which(tool).ok()?).ok()?
    };
    // Cargo subcommands expect their own name first, as cargo passes it.
    let subcommand = tool.strip_prefix("cargo-").unwrap_or(tool);
    let text = Cmd::new(path.as_str())
        .args([subcommand, "--version"])
        .output_text()
        .ok()?;
    Some((path, version_in(&text)?))
}

/// The first `x.y.z` in a tool's version output.
pub fn version_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == 'v' || c == '(' || c == ')')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The command that installs the pinned toolchain with every pinned component.
pub fn toolchain_install(toolchain: &Toolchain) -> Cmd {
    let pin = &toolchain.pin.toolchain;
    let mut cmd = Cmd::new("rustup")
        .args([
            "toolchain",
            "install",
            pin.channel.as_str(),
            "--profile",
            pin.profile.as_str(),
        ])
        .unset_build_environment();
    for component in &pin.components {
        cmd = cmd.args(["--component", component.as_str()]);
    }
    for target in &pin.targets {
        cmd = cmd.args(["--target", target.as_str()]);
    }
    cmd
}

pub fn tool_install(toolchain: &Toolchain, tool: &str, version: &str) -> Cmd {
    Cmd::new("cargo")
        .args(["install", "--locked", "--version", version, "--root"])
        .arg(toolchain.cache_dir.join("tools").as_str())
        .arg(tool)
        .unset_build_environment()
}

/// Makes sure everything `wanted` holds is present. With `install` false, anything missing is
/// an error naming the command that installs it. Returns one line per action taken or check.
pub fn ensure(
    toolchain: &Toolchain,
    wanted: &Needs,
    install: bool,
    progress: &Progress,
) -> Result<Vec<String>> {
    let inspection = inspect(toolchain, wanted)?;
    let mut done = Vec::new();
    if toolchain.mode.is_hermetic() {
        toolchain.verify_hermetic()?;
        let missing: Vec<&ToolState> = inspection
            .tools
            .iter()
            .filter(|t| t.found.is_none())
            .collect();
        if let Some(tool) = missing.first() {
            bail!(
                "missing: {} in the {} environment; rebuild it from the pin file",
                tool.name,
                toolchain.mode.as_str()
            );
        }
        done.push(format!(
            "present: toolchain {} ({} environment)",
            toolchain.channel(),
            toolchain.mode.as_str()
        ));
        return Ok(done);
    }
    if inspection.toolchain_ready() {
        done.push(format!(
            "present: toolchain {} with {}",
            toolchain.channel(),
            toolchain.pin.toolchain.components.join(", ")
        ));
    } else {
        let command = toolchain_install(toolchain);
        if !install {
            let what = if inspection.toolchain_installed {
                format!(
                    "components {} of {}",
                    inspection.missing_components.join(", "),
                    toolchain.channel()
                )
            } else {
                format!("toolchain {}", toolchain.channel())
            };
            bail!("missing: {what}; install with `{command}` or run `runner setup`");
        }
        progress.note(&format!(
            "installing {} (about 20 s to a few minutes)",
            toolchain.channel()
        ));
        run_install(&command, progress)?;
        done.push(format!(
            "installed: toolchain {} with {}",
            toolchain.channel(),
            toolchain.pin.toolchain.components.join(", ")
        ));
    }
    for tool in &inspection.tools {
        done.push(ensure_pinned(toolchain, tool, install, progress)?);
    }
    Ok(done)
}

/// Makes sure one pinned cargo tool is present, for a tool that only some configs need (a
/// stage's alternative engine), so `ensure` cannot know of it in advance.
pub fn ensure_tool(
    toolchain: &Toolchain,
    tool: &str,
    install: bool,
    progress: &Progress,
) -> Result<String> {
    let state = ToolState {
        name: tool.to_owned(),
        pinned: toolchain.pin.tool_version(tool).unwrap_or("").to_owned(),
        found: find_tool(toolchain, tool),
    };
    if toolchain.mode.is_hermetic() {
        if state.found.is_none() {
            bail!(
                "missing: {tool} in the {} environment; rebuild it from the pin file",
                toolchain.mode.as_str()
            );
        }
        return Ok(format!("present: {tool}"));
    }
    ensure_pinned(toolchain, &state, install, progress)
}

/// Installs the pinned version of a tool unless it is already what `tool` found.
fn ensure_pinned(
    toolchain: &Toolchain,
    tool: &ToolState,
    install: bool,
    progress: &Progress,
) -> Result<String> {
    if tool.is_pinned_version() {
        let path = tool
            .found
            .as_ref()
            .map(|(p, _)| p.to_string())
            .unwrap_or_default();
        return Ok(format!("present: {} {} ({path})", tool.name, tool.pinned));
    }
    let command = tool_install(toolchain, &tool.name, &tool.pinned);
    let found = match &tool.found {
        Some((path, version)) => format!(
            "{} {version} at {path} is not the pinned {}",
            tool.name, tool.pinned
        ),
        None => format!("{} is not installed", tool.name),
    };
    if !install {
        bail!("missing: {found}; install with `{command}` or run `runner setup`");
    }
    progress.note(&format!(
        "{found}: installing {} {} (a minute or more)",
        tool.name, tool.pinned
    ));
    run_install(&command, progress)?;
    Ok(format!(
        "installed: {} {} into {}",
        tool.name,
        tool.pinned,
        toolchain.tools_bin()
    ))
}

fn run_install(command: &Cmd, progress: &Progress) -> Result<()> {
    progress.verbose(&command.to_string());
    let show = |line: &str| {
        let line = line.trim();
        if !line.is_empty() {
            progress.status(line);
            progress.verbose(line);
        }
    };
    let finished = command.run(&RunOptions {
        on_stderr: Some(&show),
        ..RunOptions::default()
    })?;
    if finished.termination == crate::process::Termination::Interrupted {
        bail!("interrupted while running `{command}`");
    }
    if !finished.termination.success() {
        let reason = finished
            .stderr
            .lines()
            .rev()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .trim()
            .to_owned();
        bail!("`{command}` failed ({}): {reason}", finished.termination);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions_in_tool_output() {
        assert_eq!(version_in("cargo-fuzz 0.13.2").as_deref(), Some("0.13.2"));
        assert_eq!(
            version_in("cargo-nextest 0.9.143 (60fa45f63 2026-08-04)").as_deref(),
            Some("0.9.143")
        );
        assert_eq!(
            version_in("cargo-tarpaulin version: 0.37.5").as_deref(),
            Some("0.37.5")
        );
        assert_eq!(version_in("valgrind-3.19.0"), None);
    }
}
