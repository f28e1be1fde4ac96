//! Which workspace members a stage analyses: cargo's own selection (`-p`, `--workspace`,
//! `--exclude`, else the default members), narrowed by the stage's `packages` and
//! `exclude-packages` and by a member's own `skip`. Each chosen member is named to cargo by
//! its package id, the one spec that a published copy of the same crate among the
//! dependencies can never make ambiguous.

use anyhow::{bail, Result};

use crate::cli::CargoArgs;
use crate::config::PackageFilter;
use crate::stage_name::StageName;
use crate::workspace::{Member, Workspace};

/// The members the command line selects, in the workspace's order. A spec that matches no
/// member is an error (runner analyses members only); `--exclude` works with or without
/// `--workspace`.
pub fn selected<'w>(workspace: &'w Workspace, cargo: &CargoArgs) -> Result<Vec<&'w Member>> {
    for spec in &cargo.package {
        if !workspace.members.iter().any(|member| matches(spec, member)) {
            bail!(
                "package `{spec}` (-p) is not a member of the workspace at {}; members: {}",
                workspace.root,
                member_names(workspace)
            );
        }
    }
    let chosen = workspace.members.iter().filter(|member| {
        let named = if cargo.package.is_empty() {
            cargo.workspace || !cargo.exclude.is_empty() || member.default
        } else {
            cargo.package.iter().any(|spec| matches(spec, member))
        };
        named && !cargo.exclude.iter().any(|spec| matches(spec, member))
    });
    Ok(chosen.collect())
}

/// The members `stage` analyses: those of `selected` its config filter keeps and that do not
/// skip the stage themselves (the filters were checked by [`check_filters`]).
pub fn for_stage<'w>(
    workspace: &'w Workspace,
    selected: &[&'w Member],
    stage: StageName,
) -> Vec<&'w Member> {
    let filter = workspace
        .config
        .package_filters
        .get(&stage)
        .cloned()
        .unwrap_or_default();
    selected
        .iter()
        .copied()
        .filter(|member| {
            let wanted = filter
                .packages
                .as_ref()
                .is_none_or(|specs| specs.iter().any(|spec| matches(spec, member)));
            let excluded = filter
                .exclude_packages
                .iter()
                .any(|spec| matches(spec, member));
            let skips = member
                .config
                .as_ref()
                .is_some_and(|config| config.skip.contains(&stage));
            wanted && !excluded && !skips
        })
        .collect()
}

/// Every stage's `packages` / `exclude-packages` names members, of a stage that analyses
/// packages (`analyses_packages`): checked once, before any work.
pub fn check_filters(
    workspace: &Workspace,
    analyses_packages: impl Fn(StageName) -> bool,
) -> Result<()> {
    for (stage, filter) in &workspace.config.package_filters {
        if !analyses_packages(*stage) {
            bail!(
                "runner config key `{stage}.packages`/`{stage}.exclude-packages`: the {stage} \
                 stage does not analyse the workspace's packages"
            );
        }
        check_filter(workspace, filter, *stage)?;
    }
    Ok(())
}

fn check_filter(workspace: &Workspace, filter: &PackageFilter, stage: StageName) -> Result<()> {
    let specs = filter
        .packages
        .iter()
        .flatten()
        .map(|spec| ("packages", spec))
        .chain(
            filter
                .exclude_packages
                .iter()
                .map(|spec| ("exclude-packages", spec)),
        );
    for (key, spec) in specs {
        if !workspace.members.iter().any(|member| matches(spec, member)) {
            bail!(
                "runner config key `{stage}.{key}`: `{spec}` is not a member of the workspace; \
                 members: {}",
                member_names(workspace)
            );
        }
    }
    Ok(())
}

fn member_names(workspace: &Workspace) -> String {
    let names: Vec<&str> = workspace
        .members
        .iter()
        .map(|member| member.name.as_str())
        .collect();
    names.join(", ")
}

/// cargo's arguments that select exactly the packages with these ids.
pub fn cargo_args<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    ids.into_iter()
        .flat_map(|id| ["--package".to_owned(), id.to_owned()])
        .collect()
}

/// Whether a package spec as cargo's `-p` takes it names `member`: a package id, `name`,
/// `name@version` (a partial version like `1.0` matches `1.0.19`), and `*`/`?` globs in the
/// name.
pub fn matches(spec: &str, member: &Member) -> bool {
    if spec.contains("://") || spec.contains('#') {
        return spec == member.id;
    }
    let (name, version) = match spec.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (spec, None),
    };
    let version_matches = version.is_none_or(|version| {
        member.version == version
            || member
                .version
                .strip_prefix(version)
                .is_some_and(|rest| rest.starts_with('.'))
    });
    version_matches && glob_matches(name, &member.name)
}

/// `*` any run of characters, `?` one character; everything else literally.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn member(name: &str, version: &str, default: bool) -> Member {
        Member {
            name: name.into(),
            version: version.into(),
            id: format!("path+file:///w/{name}#{version}"),
            manifest_path: format!("/w/{name}/Cargo.toml").into(),
            default,
            config: None,
        }
    }

    fn workspace(members: Vec<Member>) -> Workspace {
        Workspace {
            root: "/w".into(),
            manifest_path: "/w/Cargo.toml".into(),
            target_dir: "/w/target".into(),
            members,
            config: Config::default(),
        }
    }

    fn names(members: &[&Member]) -> Vec<String> {
        members.iter().map(|member| member.name.clone()).collect()
    }

    #[test]
    fn specs_match_like_cargo() {
        let itoa = member("itoa", "1.0.19", true);
        for spec in [
            "itoa",
            "itoa@1.0.19",
            "itoa@1.0",
            "itoa@1",
            "i*",
            "it?a",
            "path+file:///w/itoa#1.0.19",
        ] {
            assert!(matches(spec, &itoa), "{spec}");
        }
        for spec in ["itoa@1.0.1", "itoa@2", "itoa-x", "path+file:///x#1.0.19"] {
            assert!(!matches(spec, &itoa), "{spec}");
        }
    }

    #[test]
    fn the_command_line_selects_like_cargo_and_exclude_needs_no_workspace_flag() {
        let ws = workspace(vec![
            member("crossbeam-utils", "0.8.21", true),
            member("crossbeam-epoch", "0.9.18", true),
            member("tools", "0.1.0", false),
        ]);
        let default = selected(&ws, &CargoArgs::default()).unwrap();
        assert_eq!(names(&default), ["crossbeam-utils", "crossbeam-epoch"]);
        let excluded = CargoArgs {
            exclude: vec!["crossbeam-epoch".into()],
            ..CargoArgs::default()
        };
        assert_eq!(
            names(&selected(&ws, &excluded).unwrap()),
            ["crossbeam-utils", "tools"]
        );
        let globbed = CargoArgs {
            package: vec!["crossbeam-*".into()],
            ..CargoArgs::default()
        };
        assert_eq!(
            names(&selected(&ws, &globbed).unwrap()),
            ["crossbeam-utils", "crossbeam-epoch"]
        );
        let unknown = CargoArgs {
            package: vec!["serde".into()],
            ..CargoArgs::default()
        };
        let error = selected(&ws, &unknown).unwrap_err().to_string();
        assert!(error.contains("`serde`"), "{error}");
        assert_eq!(
            cargo_args(default.iter().take(1).map(|member| member.id.as_str())),
            ["--package", "path+file:///w/crossbeam-utils#0.8.21"]
        );
    }

    #[test]
    fn a_stage_narrows_by_its_filter_and_members_that_skip_it() {
        let mut skipping = member("c", "0.1.0", true);
        skipping.config =
            Some(Config::for_member(&serde_json::json!({"skip": ["valgrind"]})).unwrap());
        let mut ws = workspace(vec![
            member("a", "0.1.0", true),
            member("b", "0.1.0", true),
            skipping,
        ]);
        ws.config.package_filters.insert(
            StageName::Miri,
            PackageFilter {
                packages: None,
                exclude_packages: vec!["b".into()],
            },
        );
        let chosen = selected(&ws, &CargoArgs::default()).unwrap();
        assert_eq!(names(&for_stage(&ws, &chosen, StageName::Miri)), ["a", "c"]);
        assert_eq!(
            names(&for_stage(&ws, &chosen, StageName::Valgrind)),
            ["a", "b"]
        );
        let mut unknown = ws.clone();
        unknown.config.package_filters.insert(
            StageName::Miri,
            PackageFilter {
                packages: Some(vec!["nope".into()]),
                exclude_packages: Vec::new(),
            },
        );
        let error = check_filters(&unknown, |_| true).unwrap_err().to_string();
        assert!(error.contains("`miri.packages`"), "{error}");
        let error = check_filters(&unknown, |stage| stage != StageName::Miri)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not analyse"), "{error}");
    }
}
