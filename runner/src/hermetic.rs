//! `--in docker` and `--in nix`: the same command re-run inside the image or the flake's dev
//! shell, where runner then checks the toolchain against the pin and records provenance.

use anyhow::{bail, Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use clap::CommandFactory;

use crate::cli::{Cli, Place, RunArgs};
use crate::environment::Mode;
use crate::exit::Exit;
use crate::plan::Context;
use crate::process::Cmd;

/// Where a command should run, given `--in` and where runner already is.
pub fn needs_reexec(place: Place, mode: Mode) -> Option<Place> {
    match (place, mode) {
        (Place::Docker, Mode::Docker)
        | (Place::Nix, Mode::Nix)
        | (Place::Auto | Place::Host, _) => None,
        (other, _) => Some(other),
    }
}

/// Re-runs this very command (from the process arguments) inside the chosen environment and
/// passes its exit code on.
pub fn reexec(place: Place, args: &RunArgs, ctx: &Context) -> Result<Exit> {
    let raw: Vec<String> = std::env::args().collect();
    let inner = absolute_argv(&raw[1..])?;
    let cmd = match place {
        Place::Docker => {
            let image = args
                .image
                .clone()
                .or_else(|| std::env::var("RUNNER_IMAGE").ok())
                .unwrap_or_else(|| "runner".to_owned());
            let id = Cmd::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", image.as_str()])
                .output_text()
                .with_context(|| format!("image `{image}` not found: build it with `docker build -t {image} .` in runner's repository"))?;
            let workspace = &ctx.workspace.root;
            let mut read_only = outside_deps(ctx);
            if let Some(baseline) = &args.baseline {
                read_only.push(absolute(baseline)?);
            }
            let offline = args.cargo.offline;
            docker_command(&DockerRun {
                image: &image,
                image_id: id.trim(),
                workspace,
                out: &absolute(&ctx.out_dir)?,
                user: &user_ids(),
                read_only: &read_only,
                cargo_home: offline.then(host_cargo_home).flatten().as_deref(),
                offline,
                memory: ctx.workspace.config.docker.memory.as_deref(),
                pids_limit: ctx.workspace.config.docker.pids_limit,
                inner: &inner,
            })
        }
        Place::Nix => {
            let flake = args
                .flake
                .clone()
                .or_else(|| std::env::var("RUNNER_FLAKE").ok())
                .context("--in nix needs runner's flake: pass --flake or set RUNNER_FLAKE")?;
            Cmd::new("nix")
                .args(["develop", flake.as_str(), "--command", "runner"])
                .args(inner)
        }
        Place::Auto | Place::Host => bail!("nothing to re-run for --in host"),
    };
    let status = cmd.status_inherited()?;
    Ok(match status {
        Some(0) => Exit::Passed,
        Some(1) => Exit::GateFailed,
        Some(2) => Exit::NotEvaluated,
        other => bail!(
            "`{}` could not run runner inside ({})",
            cmd.program(),
            other.map_or_else(
                || "killed by a signal".to_owned(),
                |code| format!("exit status {code}")
            )
        ),
    })
}

/// Where the image keeps cargo's home (`CARGO_HOME` in the Dockerfile).
pub const IMAGE_CARGO_HOME: &str = "/opt/rust/cargo";

/// What `docker run` needs to know.
#[derive(Debug, Clone)]
pub struct DockerRun<'a> {
    pub image: &'a str,
    pub image_id: &'a str,
    /// The workspace root, absolute.
    pub workspace: &'a Utf8Path,
    /// The report folder, absolute.
    pub out: &'a Utf8Path,
    /// `uid:gid`.
    pub user: &'a str,
    /// Files and folders outside the workspace that the run reads (a baseline, path
    /// dependencies), mounted read-only at their own paths.
    pub read_only: &'a [Utf8PathBuf],
    /// The host's cargo home, whose registry and git checkouts are mounted read-only over the
    /// image's, so that what `cargo fetch` got on the host builds offline inside.
    pub cargo_home: Option<&'a Utf8Path>,
    /// `--offline`: the container gets no network at all.
    pub offline: bool,
    /// docker `--memory` and `--pids-limit`, from config.
    pub memory: Option<&'a str>,
    pub pids_limit: Option<u32>,
    /// runner's own arguments.
    pub inner: &'a [String],
}

/// `docker run` with the workspace (and a report folder outside it) mounted at the same paths
/// as on the host, so every path in the arguments and the report stays valid; as the calling
/// user, so no file in the workspace ends up owned by root; with `--init`, so that zombies are
/// reaped (runner would otherwise be PID 1, which reaps nothing).
pub fn docker_command(run: &DockerRun<'_>) -> Cmd {
    let workspace = run.workspace;
    let mut cmd = Cmd::new("docker")
        .args([
            "run",
            "--rm",
            "--init",
            "--cap-add",
            "SYS_PTRACE",
            "--user",
            run.user,
        ])
        .args(mount(workspace, workspace, false))
        .args(["--workdir", workspace.as_str()]);
    if !run.out.starts_with(workspace) {
        cmd = cmd.args(mount(run.out, run.out, false));
    }
    for path in run.read_only {
        if !path.starts_with(workspace) {
            cmd = cmd.args(mount(path, path, true));
        }
    }
    if let Some(home) = run.cargo_home {
        for part in ["registry", "git"] {
            if home.join(part).is_dir() {
                cmd = cmd.args(mount(
                    &home.join(part),
                    &Utf8Path::new(IMAGE_CARGO_HOME).join(part),
                    true,
                ));
            }
        }
    }
    if run.offline {
        cmd = cmd.args(["--network", "none"]);
    }
    if let Some(memory) = run.memory {
        cmd = cmd.args(["--memory", memory]);
    }
    if let Some(pids) = run.pids_limit {
        cmd = cmd.args(["--pids-limit".to_owned(), pids.to_string()]);
    }
    if std::env::var_os("CI").is_some() {
        cmd = cmd.args(["--env", "CI=true"]);
    }
    // GitHub's job summary file lies outside the workspace: mounted at its own path so the
    // runner inside appends the summary to it as it would on the host.
    if let Some(summary) = std::env::var("GITHUB_STEP_SUMMARY")
        .ok()
        .filter(|path| !path.is_empty())
    {
        let summary = Utf8Path::new(&summary);
        cmd = cmd
            .args(mount(summary, summary, false))
            .args(["--env", &format!("GITHUB_STEP_SUMMARY={summary}")]);
    }
    cmd.args([
        "--env",
        &format!(
            "RUNNER_PROVENANCE=docker image {} ({})",
            run.image, run.image_id
        ),
    ])
    .arg(run.image)
    .args(run.inner.iter().cloned())
}

/// `--mount type=bind,...`: unlike `--volume src:dst`, a `:` in a path is no separator, and a
/// `,` or `"` is quoted the way docker's CSV reader expects.
fn mount(source: &Utf8Path, target: &Utf8Path, read_only: bool) -> [String; 2] {
    let field = |key: &str, value: &Utf8Path| {
        let field = format!("{key}={value}");
        if field.contains([',', '"']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field
        }
    };
    let mut spec = format!(
        "type=bind,{},{}",
        field("source", source),
        field("target", target)
    );
    if read_only {
        spec.push_str(",readonly");
    }
    ["--mount".to_owned(), spec]
}

/// A path made absolute against the current directory (docker needs absolute mounts).
fn absolute(path: &Utf8Path) -> Result<Utf8PathBuf> {
    let absolute = std::path::absolute(path).with_context(|| format!("invalid path {path}"))?;
    Utf8PathBuf::from_path_buf(absolute).map_err(|_| anyhow::anyhow!("{path} is not UTF-8"))
}

/// The host's cargo home: `CARGO_HOME`, else `~/.cargo`.
fn host_cargo_home() -> Option<Utf8PathBuf> {
    std::env::var("CARGO_HOME")
        .ok()
        .filter(|home| !home.is_empty())
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|home| format!("{home}/.cargo"))
        })
        .map(Utf8PathBuf::from)
}

/// The folders of path dependencies (and `[patch]` paths) outside the workspace, which the
/// build inside must see. Resolving them needs `cargo metadata` with dependencies; when that
/// fails (offline without a fetched registry), the build inside reports the real error.
fn outside_deps(ctx: &Context) -> Vec<Utf8PathBuf> {
    let mut command = cargo_metadata::MetadataCommand::new();
    command.manifest_path(&ctx.workspace.manifest_path);
    if ctx.cargo.offline {
        command.other_options(vec!["--offline".to_owned()]);
    }
    let Ok(metadata) = command.exec() else {
        return Vec::new();
    };
    let mut dirs: Vec<Utf8PathBuf> = metadata
        .packages
        .iter()
        .filter(|package| package.source.is_none())
        .filter_map(|package| package.manifest_path.parent().map(Utf8Path::to_path_buf))
        .filter(|dir| !dir.starts_with(&ctx.workspace.root))
        .collect();
    dirs.sort();
    dirs.dedup();
    // A folder inside another mounted one is already there.
    let all = dirs.clone();
    dirs.retain(|dir| {
        !all.iter()
            .any(|other| other != dir && dir.starts_with(other))
    });
    dirs
}

fn user_ids() -> String {
    format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid())
}

/// The arguments without `--in`, with the workspace path, `--manifest-path` and `--out` made
/// absolute (the child may start elsewhere). Which options take a value is read from the CLI
/// definition, so this stays right when options are added.
pub fn absolute_argv(args: &[String]) -> Result<Vec<String>> {
    let cwd = Utf8PathBuf::try_from(std::env::current_dir()?)
        .context("the current directory is not UTF-8")?;
    let absolute = |value: &str| -> String {
        let path = Utf8Path::new(value);
        if path.is_absolute() {
            value.to_owned()
        } else {
            cwd.join(path).to_string()
        }
    };
    let command = Cli::command();
    let Some(name) = args.iter().find(|arg| !arg.starts_with('-')) else {
        bail!("no command to re-run");
    };
    let Some(subcommand) = command.find_subcommand(name) else {
        bail!("unknown command `{name}`");
    };
    let takes_value = |flag: &str| {
        subcommand
            .get_arguments()
            .chain(command.get_arguments())
            .any(|arg| {
                let matches = arg
                    .get_long()
                    .is_some_and(|long| flag == format!("--{long}"))
                    || arg
                        .get_short()
                        .is_some_and(|short| flag == format!("-{short}"));
                matches && arg.get_action().takes_values()
            })
    };
    let mut out = Vec::new();
    let mut seen_command = false;
    let mut seen_path = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg.clone());
            out.extend(iter.by_ref().cloned());
            break;
        }
        if arg == "--in" {
            iter.next();
            continue;
        }
        if arg.starts_with("--in=") {
            continue;
        }
        if let Some((flag, value)) = arg
            .split_once('=')
            .filter(|(flag, _)| flag.starts_with("--"))
        {
            let value = if is_path_option(flag) {
                absolute(value)
            } else {
                value.to_owned()
            };
            out.push(format!("{flag}={value}"));
            continue;
        }
        if arg.starts_with('-') {
            out.push(arg.clone());
            if takes_value(arg) {
                if let Some(value) = iter.next() {
                    out.push(if is_path_option(arg) {
                        absolute(value)
                    } else {
                        value.clone()
                    });
                }
            }
            continue;
        }
        if !seen_command {
            seen_command = true;
            out.push(arg.clone());
        } else if !seen_path {
            seen_path = true;
            out.push(absolute(arg));
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

fn is_path_option(flag: &str) -> bool {
    matches!(
        flag,
        "--manifest-path" | "--out" | "--baseline" | "--durations"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn drops_in_and_makes_paths_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let cwd = cwd.to_str().unwrap();
        let argv = absolute_argv(&strings(&[
            "-q",
            "miri",
            "ws",
            "--in",
            "docker",
            "--jobs",
            "2",
            "--out=rep",
            "-p",
            "x",
            "--",
            "t",
        ]))
        .unwrap();
        assert_eq!(
            argv,
            strings(&[
                "-q",
                "miri",
                &format!("{cwd}/ws"),
                "--jobs",
                "2",
                &format!("--out={cwd}/rep"),
                "-p",
                "x",
                "--",
                "t"
            ])
        );
    }

    fn docker_run<'a>(out: &'a Utf8Path, inner: &'a [String]) -> DockerRun<'a> {
        DockerRun {
            image: "runner",
            image_id: "sha256:1",
            workspace: "/w".into(),
            out,
            user: "1000:1000",
            read_only: &[],
            cargo_home: None,
            offline: false,
            memory: None,
            pids_limit: None,
            inner,
        }
    }

    fn argv(cmd: &Cmd) -> Vec<String> {
        cmd.get_args().to_vec()
    }

    #[test]
    fn docker_mounts_at_the_same_paths_as_the_calling_user() {
        let inner = strings(&["miri", "/w"]);
        let cmd = docker_command(&docker_run("/r".into(), &inner));
        let line = cmd.to_string();
        assert!(line.contains("--init"), "{line}");
        assert!(line.contains("--user 1000:1000"), "{line}");
        assert!(
            line.contains("--mount type=bind,source=/w,target=/w --workdir /w"),
            "{line}"
        );
        assert!(
            line.contains("--mount type=bind,source=/r,target=/r"),
            "{line}"
        );
        assert!(!line.contains("--network"), "{line}");
        assert!(line.ends_with("runner miri /w"), "{line}");
    }

    #[test]
    fn colons_and_commas_in_paths_survive_the_mount_syntax() {
        let inner = strings(&["miri"]);
        let out = Utf8Path::new("/r:1,\"x\"");
        let args = argv(&docker_command(&docker_run(out, &inner)));
        assert!(
            args.contains(&r#"type=bind,"source=/r:1,""x""","target=/r:1,""x""""#.to_owned()),
            "{args:?}"
        );
    }

    #[test]
    fn offline_means_no_network_and_the_hosts_registry_read_only() {
        let home = tempfile::tempdir().unwrap();
        let home = Utf8Path::from_path(home.path()).unwrap();
        std::fs::create_dir(home.join("registry")).unwrap();
        let inner = strings(&["miri"]);
        let outside = [Utf8PathBuf::from("/deps/a"), Utf8PathBuf::from("/w/inside")];
        let run = DockerRun {
            offline: true,
            cargo_home: Some(home),
            read_only: &outside,
            memory: Some("8g"),
            pids_limit: Some(4096),
            ..docker_run("/w/target/runner".into(), &inner)
        };
        let args = argv(&docker_command(&run));
        let line = args.join(" ");
        assert!(line.contains("--network none"), "{line}");
        assert!(
            line.contains(&format!(
                "type=bind,source={home}/registry,target=/opt/rust/cargo/registry,readonly"
            )),
            "{line}"
        );
        assert!(!line.contains("/git"), "{line}");
        assert!(
            line.contains("type=bind,source=/deps/a,target=/deps/a,readonly"),
            "{line}"
        );
        assert!(!line.contains("/w/inside"), "{line}");
        // The report folder inside the workspace needs no mount of its own.
        assert!(!line.contains("/w/target/runner"), "{line}");
        assert!(line.contains("--memory 8g --pids-limit 4096"), "{line}");
    }

    #[test]
    fn reexec_only_when_not_already_there() {
        assert_eq!(needs_reexec(Place::Docker, Mode::Host), Some(Place::Docker));
        assert_eq!(needs_reexec(Place::Docker, Mode::Docker), None);
        assert_eq!(needs_reexec(Place::Nix, Mode::Docker), Some(Place::Nix));
        assert_eq!(needs_reexec(Place::Auto, Mode::Nix), None);
    }
}
