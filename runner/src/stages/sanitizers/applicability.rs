//! Whether a sanitizer can run here: what the host target supports (rustc's own target
//! spec), and, for memory in the default set, whether a dependency builds C code that would
//! stay uninstrumented and make `MemorySanitizer` report false positives.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::{Context as _, Result};
use cargo_metadata::DependencyKind;

use super::sanitizer::Sanitizer;
use super::settings::Settings;
use crate::plan::Context;

/// Crates whose presence among a build script's dependencies means it compiles C or C++.
const C_BUILD_HELPERS: &[&str] = &["cc", "cmake"];

/// Each requested sanitizer, with the reason when it cannot run here.
pub fn select(
    ctx: &Context,
    settings: &Settings,
    notes: &mut Vec<String>,
) -> Result<Vec<(Sanitizer, Result<(), String>)>> {
    let supported = supported_sanitizers(ctx)?;
    let mut selection = Vec::new();
    for &sanitizer in &settings.sanitizers {
        let applies = if !supported.iter().any(|s| s == sanitizer.as_str()) {
            Err(format!("the host target {} does not support it", ctx.host))
        } else if sanitizer == Sanitizer::Memory {
            memory_applies(ctx, settings, notes)
        } else {
            Ok(())
        };
        selection.push((sanitizer, applies));
    }
    Ok(selection)
}

/// `MemorySanitizer` must see every write: C code built by a build script is not instrumented,
/// so its writes look like uninitialised memory. In the default set that skips memory; named
/// in config it runs with a warning.
fn memory_applies(
    ctx: &Context,
    settings: &Settings,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let builders = match packages_building_c(ctx) {
        Ok(builders) => builders,
        Err(error) if settings.memory_by_default => {
            return Err(format!(
                "could not tell whether a dependency builds C code: {}",
                crate::exit::one_line(&error)
            ));
        }
        Err(_) => return Ok(()),
    };
    if builders.is_empty() {
        return Ok(());
    }
    let list = builders.join(", ");
    let verb = if builders.len() == 1 {
        "builds"
    } else {
        "build"
    };
    if settings.memory_by_default {
        return Err(format!(
            "{list} {verb} C code that MemorySanitizer cannot instrument, which would report \
             false positives; name `memory` in `sanitizers.enabled` to run it anyway"
        ));
    }
    notes.push(format!(
        "memory: {list} {verb} C code that is not instrumented; uninitialised-value reports \
         from inside it may be false positives"
    ));
    Ok(())
}

/// The sanitizers rustc supports on the host target, from `--print target-spec-json`.
pub fn supported_sanitizers(ctx: &Context) -> Result<Vec<String>> {
    let text = ctx
        .toolchain
        .rustc()
        .args(["-Z", "unstable-options", "--print", "target-spec-json"])
        .args(["--target", ctx.host.as_str()])
        .output_text()
        .context("asking rustc which sanitizers the host target supports")?;
    let spec: serde_json::Value =
        serde_json::from_str(&text).context("rustc printed an unreadable target spec")?;
    Ok(spec
        .get("supported-sanitizers")
        .and_then(serde_json::Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// The packages in the build graph of the workspace's tests whose build scripts compile C.
pub fn packages_building_c(ctx: &Context) -> Result<Vec<String>> {
    let text = ctx
        .toolchain
        .cargo()
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(ctx.workspace.manifest_path.as_str())
        .args(["--filter-platform", ctx.host.as_str()])
        .args(ctx.cargo.build_args())
        .cwd(ctx.workspace.root.clone())
        .output_text()?;
    let metadata: cargo_metadata::Metadata =
        serde_json::from_str(&text).context("cargo metadata printed unreadable JSON")?;
    let names: BTreeMap<String, String> = metadata
        .packages
        .iter()
        .map(|p| (p.id.repr.clone(), p.name.to_string()))
        .collect();
    let mut graph = Graph::new();
    for node in metadata.resolve.iter().flat_map(|r| &r.nodes) {
        let edges = node
            .deps
            .iter()
            .flat_map(|dep| {
                dep.dep_kinds.iter().filter_map(|info| {
                    let edge = match info.kind {
                        DependencyKind::Normal => Edge::Normal,
                        DependencyKind::Development => Edge::Dev,
                        DependencyKind::Build => Edge::Build,
                        _ => return None,
                    };
                    Some((dep.pkg.repr.clone(), edge))
                })
            })
            .collect();
        let name = names.get(&node.id.repr).cloned().unwrap_or_default();
        graph.insert(node.id.repr.clone(), (name, edges));
    }
    let members: Vec<String> = metadata
        .workspace_members
        .iter()
        .map(|id| id.repr.clone())
        .collect();
    Ok(c_builders(&graph, &members))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Normal,
    Dev,
    Build,
}

/// Package id → (name, dependency edges).
pub type Graph = BTreeMap<String, (String, Vec<(String, Edge)>)>;

/// Packages built into the members' tests (their normal and dev dependencies, and those
/// dependencies' normal ones) whose build script reaches a C build helper.
pub fn c_builders(graph: &Graph, members: &[String]) -> Vec<String> {
    let built = reachable(graph, members, |from, edge| {
        edge == Edge::Normal || (edge == Edge::Dev && members.contains(from))
    });
    let mut found = BTreeSet::new();
    for id in &built {
        let Some((name, edges)) = graph.get(id) else {
            continue;
        };
        let build_roots: Vec<String> = edges
            .iter()
            .filter(|(_, edge)| *edge == Edge::Build)
            .map(|(dep, _)| dep.clone())
            .collect();
        let build_graph = reachable(graph, &build_roots, |_, edge| edge == Edge::Normal);
        let compiles_c = build_graph.iter().any(|dep| {
            graph
                .get(dep)
                .is_some_and(|(dep_name, _)| C_BUILD_HELPERS.contains(&dep_name.as_str()))
        });
        if compiles_c {
            found.insert(name.clone());
        }
    }
    found.into_iter().collect()
}

fn reachable(
    graph: &Graph,
    roots: &[String],
    follow: impl Fn(&String, Edge) -> bool,
) -> BTreeSet<String> {
    let mut seen: BTreeSet<String> = roots.iter().cloned().collect();
    let mut queue: VecDeque<String> = roots.iter().cloned().collect();
    while let Some(id) = queue.pop_front() {
        let Some((_, edges)) = graph.get(&id) else {
            continue;
        };
        for (dep, edge) in edges {
            if follow(&id, *edge) && seen.insert(dep.clone()) {
                queue.push_back(dep.clone());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(nodes: &[(&str, &[(&str, Edge)])]) -> Graph {
        nodes
            .iter()
            .map(|(name, edges)| {
                let edges = edges.iter().map(|(d, e)| ((*d).to_owned(), *e)).collect();
                ((*name).to_owned(), ((*name).to_owned(), edges))
            })
            .collect()
    }

    #[test]
    fn finds_build_scripts_that_reach_cc_directly_or_through_a_helper() {
        let g = graph(&[
            (
                "app",
                &[("zlib-sys", Edge::Normal), ("openssl-sys", Edge::Dev)],
            ),
            ("zlib-sys", &[("cc", Edge::Build)]),
            ("openssl-sys", &[("openssl-src", Edge::Build)]),
            ("openssl-src", &[("cc", Edge::Normal)]),
            ("cc", &[]),
        ]);
        assert_eq!(
            c_builders(&g, &["app".to_owned()]),
            ["openssl-sys", "zlib-sys"]
        );
    }

    #[test]
    fn ignores_what_the_tests_never_link() {
        let g = graph(&[
            ("app", &[("serde", Edge::Normal), ("builder", Edge::Build)]),
            // A dependency's dev-dependency is never built for the workspace's tests.
            ("serde", &[("bench-helper", Edge::Dev)]),
            ("bench-helper", &[("cc", Edge::Build)]),
            // The member's own build script runs on the host; `cc` reached only by a
            // build-dependency's build script is a host tool.
            ("builder", &[("cmake", Edge::Build)]),
            ("cc", &[]),
            ("cmake", &[]),
        ]);
        assert!(c_builders(&g, &["app".to_owned()]).is_empty());
    }
}
