//! `runner doctor`: where runner is, the toolchain against the pin, and what each stage lacks.

use anyhow::Result;

use crate::environment::{short, Toolchain};
use crate::exit::Exit;
use crate::provision;
use crate::stage_name::StageName;
use crate::stages::registry;

pub fn run(toolchain: &Toolchain) -> Result<Exit> {
    let pin = &toolchain.pin;
    println!("runner {}", env!("CARGO_PKG_VERSION"));
    println!("environment: {}", describe_mode(toolchain));
    println!(
        "pin: {} (commit {}), components {}",
        pin.toolchain.channel,
        short(&pin.compiler.commit_hash),
        pin.toolchain.components.join(", ")
    );
    let mut exit = Exit::Passed;
    match toolchain.identity() {
        Ok(identity) if identity.commit_hash == pin.compiler.commit_hash => {
            println!("toolchain: ok, {}", identity.version);
        }
        Ok(identity) => {
            println!(
                "toolchain: MISMATCH, {} is not the pinned commit",
                identity.version
            );
            if toolchain.mode.is_hermetic() {
                exit = Exit::NotEvaluated;
            }
        }
        Err(_) => println!("toolchain: {} is not installed", pin.toolchain.channel),
    }
    let inspection = provision::inspect(toolchain, &registry::needs_of(&StageName::ALL))?;
    if !inspection.missing_components.is_empty() {
        println!(
            "components missing: {}",
            inspection.missing_components.join(", ")
        );
    }
    if !inspection.toolchain_ready() && !toolchain.mode.is_hermetic() {
        println!("  install: {}", provision::toolchain_install(toolchain));
    }
    println!("cargo tools:");
    for tool in &inspection.tools {
        let state = match &tool.found {
            Some((path, version)) if tool.is_pinned_version() => format!("ok {version} ({path})"),
            Some((path, version)) => format!(
                "{version} at {path}, pinned {}: `runner setup` installs it",
                tool.pinned
            ),
            None => format!(
                "missing, pinned {}: `runner setup` installs it",
                tool.pinned
            ),
        };
        println!("  {:<16} {state}", tool.name);
    }
    println!("system tools:");
    for stage in StageName::ALL {
        for system in registry::needs(stage).system {
            let state = match system.find() {
                Some(path) => format!("ok ({path})"),
                None => format!("missing: {}", system.install_hint()),
            };
            println!("  {:<16} {state} [{stage}]", system.binaries[0]);
        }
    }
    println!("stages:");
    for stage in StageName::ALL {
        let lacks = lacks(&inspection, stage);
        let state = if lacks.is_empty() {
            "ready".to_owned()
        } else {
            format!("missing {}", lacks.join(", "))
        };
        println!("  {stage:<12} {state}");
    }
    Ok(exit)
}

fn describe_mode(toolchain: &Toolchain) -> String {
    match toolchain.mode {
        crate::environment::Mode::Host => match which::which("rustup") {
            Ok(path) => format!("plain host (rustup at {})", path.display()),
            Err(_) => "plain host without rustup".to_owned(),
        },
        mode => format!(
            "{} (hermetic: the pinned tools come from the environment)",
            mode.as_str()
        ),
    }
}

fn lacks(inspection: &provision::Inspection, stage: StageName) -> Vec<String> {
    let needs = registry::needs(stage);
    let mut lacks = Vec::new();
    if !inspection.toolchain_installed {
        lacks.push("the pinned toolchain".to_owned());
    }
    lacks.extend(
        needs
            .components
            .iter()
            .filter(|c| inspection.missing_components.iter().any(|m| m == *c))
            .map(|c| (*c).to_owned()),
    );
    lacks.extend(
        needs
            .cargo_tools
            .iter()
            .filter(|t| {
                inspection
                    .tools
                    .iter()
                    .any(|s| s.name == **t && !s.is_pinned_version())
            })
            .map(|t| (*t).to_owned()),
    );
    lacks.extend(
        needs
            .system
            .iter()
            .filter(|s| s.find().is_none())
            .map(|s| s.binaries[0].to_owned()),
    );
    lacks
}
