//! `--in docker` and `--in nix`: the same command re-run inside the image or the flake's dev
//! shell, where runner then checks the toolchain against the pin and records provenance.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use clap::CommandFactory;

use crate::cli::{Cli, Place, RunArgs};
use crate::environment::Mode;
use crate::exit::Exit;
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
pub fn reexec(
    place: Place,
    args: &RunArgs,
    workspace_root: &Utf8Path,
    out_dir: &Utf8Path,
) -> Result<Exit> {
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
            docker_command(
                &image,
                id.trim(),
                workspace_root,
                out_dir,
                &user_ids(),
                &inner,
            )
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

/// `docker run` with the workspace (and a report folder outside it) mounted at the same paths
/// as on the host, so every path in the arguments and the report stays valid; as the calling
/// user, so no file in the workspace ends up owned by root.
pub fn docker_command(
    image: &str,
    image_id: &str,
    workspace: &Utf8Path,
    out: &Utf8Path,
    user: &str,
    inner: &[String],
) -> Cmd {
    let mut cmd = Cmd::new("docker")
        .args(["run", "--rm", "--cap-add", "SYS_PTRACE", "--user", user])
        .args(["--volume", &format!("{workspace}:{workspace}")])
        .args(["--workdir", workspace.as_str()]);
    if !out.starts_with(workspace) {
        cmd = cmd.args(["--volume", &format!("{out}:{out}")]);
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
        cmd = cmd
            .args(["--volume", &format!("{summary}:{summary}")])
            .args(["--env", &format!("GITHUB_STEP_SUMMARY={summary}")]);
    }
    cmd.args([
        "--env",
        &format!("RUNNER_PROVENANCE=docker image {image} ({image_id})"),
    ])
    .arg(image)
    .args(inner.iter().cloned())
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
    matches!(flag, "--manifest-path" | "--out" | "--baseline")
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

    #[test]
    fn docker_mounts_at_the_same_paths_as_the_calling_user() {
        let cmd = docker_command(
            "runner",
            "sha256:1",
            "/w".into(),
            "/r".into(),
            "1000:1000",
            &strings(&["miri", "/w"]),
        );
        let line = cmd.to_string();
        assert!(line.contains("--user 1000:1000"), "{line}");
        assert!(line.contains("--volume /w:/w --workdir /w"), "{line}");
        assert!(line.contains("--volume /r:/r"), "{line}");
        assert!(line.ends_with("runner miri /w"), "{line}");
    }

    #[test]
    fn reexec_only_when_not_already_there() {
        assert_eq!(needs_reexec(Place::Docker, Mode::Host), Some(Place::Docker));
        assert_eq!(needs_reexec(Place::Docker, Mode::Docker), None);
        assert_eq!(needs_reexec(Place::Nix, Mode::Docker), Some(Place::Nix));
        assert_eq!(needs_reexec(Place::Auto, Mode::Nix), None);
    }
}
