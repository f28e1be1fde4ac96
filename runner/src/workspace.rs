//! The analysed Cargo workspace: where it is, its members and targets, and its runner config.

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

use crate::cli::WorkspaceArgs;
use crate::config::Config;

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: Utf8PathBuf,
    pub manifest_path: Utf8PathBuf,
    pub target_dir: Utf8PathBuf,
    pub members: Vec<Member>,
    pub config: Config,
}

/// A workspace member, and what it says of itself for runner.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub name: String,
    pub version: String,
    /// cargo's package id (`path+file:///w/a#alpha@0.1.0`): the one package spec a published
    /// copy of the same crate in the dependency graph can never make ambiguous.
    pub id: String,
    pub manifest_path: Utf8PathBuf,
    /// One of the packages cargo selects when none is named (its default members).
    pub default: bool,
    /// The member's own `[package.metadata.runner]`, applied to it over the workspace's.
    pub config: Option<Config>,
}

impl Member {
    /// The package's folder, where cargo runs its harnesses.
    pub fn dir(&self) -> &Utf8Path {
        self.manifest_path.parent().unwrap_or(&self.manifest_path)
    }
}

impl Workspace {
    /// Finds the workspace from a path or a manifest path and reads it with `cargo metadata`.
    pub fn load(args: &WorkspaceArgs) -> Result<Workspace> {
        let manifest_path = manifest_path(args)?;
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path(&manifest_path)
            .no_deps()
            .exec()
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot read the workspace at {manifest_path}: {}",
                    summarise_cargo_error(&error)
                )
            })?;
        let root_package = metadata.root_package();
        let root_package_metadata = root_package.map(|package| &package.metadata);
        let config = Config::from_metadata(&metadata.workspace_metadata, root_package_metadata)
            .with_context(|| format!("in {}", metadata.workspace_root.join("Cargo.toml")))?;
        // The root package's table is the workspace's config when the workspace has none.
        let root_table_is_workspace_config = metadata.workspace_metadata.get("runner").is_none();
        let defaults: Vec<&cargo_metadata::PackageId> =
            if metadata.workspace_default_members.is_available() {
                metadata.workspace_default_members.iter().collect()
            } else {
                metadata.workspace_members.iter().collect()
            };
        let mut members = Vec::new();
        for package in metadata.workspace_packages() {
            let is_root = root_package.is_some_and(|root| root.id == package.id);
            let config = match package.metadata.get("runner") {
                Some(table) if !(is_root && root_table_is_workspace_config) => {
                    Some(Config::for_member(table).with_context(|| {
                        format!("in {} [package.metadata.runner]", package.manifest_path)
                    })?)
                }
                _ => None,
            };
            members.push(Member {
                name: package.name.to_string(),
                version: package.version.to_string(),
                id: package.id.repr.clone(),
                manifest_path: package.manifest_path.clone(),
                default: defaults.contains(&&package.id),
                config,
            });
        }
        Ok(Workspace {
            root: metadata.workspace_root.clone(),
            manifest_path: metadata.workspace_root.join("Cargo.toml"),
            target_dir: metadata.target_directory.clone(),
            members,
            config,
        })
    }

    /// A path relative to the workspace root when it lies inside it.
    pub fn relative<'a>(&self, path: &'a Utf8Path) -> Option<&'a Utf8Path> {
        if path.is_relative() {
            return Some(path);
        }
        path.strip_prefix(&self.root).ok()
    }

    /// The member a cargo package id (`path+file:///dir#name@1.0` or `path+file:///dir#1.0`)
    /// belongs to, found through the member's directory; `None` for dependencies.
    pub fn member_of(&self, package_id: &str) -> Option<String> {
        let location = package_id.split('#').next()?;
        // A URL: a space or a quote in the path arrives percent-encoded.
        let dir = percent_decoded(location.strip_prefix("path+file://")?)?;
        self.members
            .iter()
            .find(|member| member.manifest_path.parent() == Some(Utf8Path::new(&dir)))
            .map(|member| member.name.clone())
    }

    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|member| member.name == name)
    }

    /// The folder of the member named `name`, where cargo runs its harnesses.
    pub fn package_dir(&self, name: &str) -> Option<&Utf8Path> {
        self.member(name).map(Member::dir)
    }

    /// The build directory reserved for one stage, so stages never invalidate each other.
    pub fn stage_target_dir(&self, stage: &str) -> Utf8PathBuf {
        self.target_dir.join("runner-build").join(stage)
    }
}

/// A URL path with its `%XX` escapes turned back into bytes; `None` when that is not UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| text.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            decoded.push(byte);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn manifest_path(args: &WorkspaceArgs) -> Result<Utf8PathBuf> {
    if let Some(manifest) = &args.manifest_path {
        if !inspect(manifest, "manifest")?.is_file() {
            bail!("manifest `{manifest}` is not a file");
        }
        return Ok(manifest.clone());
    }
    let dir = args.path.clone().unwrap_or_else(|| Utf8PathBuf::from("."));
    if !inspect(&dir, "workspace path")?.is_dir() {
        bail!("workspace path `{dir}` is not a directory (use --manifest-path for a Cargo.toml)");
    }
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("no Cargo.toml in `{dir}`: point runner at a Cargo workspace");
    }
    Ok(manifest)
}

/// What a path the user gave is; "does not exist" only when that is the truth, so a symlink
/// loop or a forbidden directory says so instead.
fn inspect(path: &Utf8Path, what: &str) -> Result<std::fs::Metadata> {
    std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("{what} `{path}` does not exist"),
        _ => anyhow::anyhow!("{what} `{path}` cannot be read: {error}"),
    })
}

/// Cargo explains a broken manifest over several lines; keep the error and its cause.
fn summarise_cargo_error(error: &cargo_metadata::Error) -> String {
    let cargo_metadata::Error::CargoMetadata { stderr } = error else {
        return error.to_string();
    };
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let first = lines
        .iter()
        .find(|line| line.starts_with("error:"))
        .or(lines.first())
        .map_or("cargo metadata failed", |line| {
            line.trim_start_matches("error: ")
        });
    let cause = lines
        .iter()
        .skip_while(|line| !line.starts_with("Caused by:"))
        .nth(1)
        .filter(|cause| !first.contains(**cause));
    // Cargo shows the offending manifest line under the error (`7 | key = value`): keep it,
    // so that a value cargo itself refuses still names its key.
    let source = lines.iter().find_map(|line| {
        let (number, text) = line.split_once(" | ")?;
        (number.trim().chars().all(|c| c.is_ascii_digit()) && !text.trim().is_empty())
            .then(|| format!(" (line {}: `{}`)", number.trim(), text.trim()))
    });
    let source = source.unwrap_or_default();
    match cause {
        Some(cause) => format!("{first}: {cause}{source}"),
        None => format!("{first}{source}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_map_to_members_by_directory() {
        let workspace = Workspace {
            root: "/w".into(),
            manifest_path: "/w/Cargo.toml".into(),
            target_dir: "/w/target".into(),
            members: vec![Member {
                name: "alpha".into(),
                manifest_path: "/w/a/Cargo.toml".into(),
                ..Member::default()
            }],
            config: Config::default(),
        };
        assert_eq!(
            workspace
                .member_of("path+file:///w/a#alpha@0.1.0")
                .as_deref(),
            Some("alpha")
        );
        assert_eq!(
            workspace.member_of("path+file:///w/a#0.1.0").as_deref(),
            Some("alpha")
        );
        assert_eq!(workspace.member_of("registry+https://x#serde@1.0.0"), None);
    }

    #[test]
    fn a_member_in_a_folder_with_spaces_and_quotes_is_found() {
        let workspace = Workspace {
            root: "/t/it's a $(touch x) dir".into(),
            manifest_path: "/t/it's a $(touch x) dir/Cargo.toml".into(),
            target_dir: "/t/it's a $(touch x) dir/target".into(),
            members: vec![Member {
                name: "p".into(),
                manifest_path: "/t/it's a $(touch x) dir/p/Cargo.toml".into(),
                ..Member::default()
            }],
            config: Config::default(),
        };
        assert_eq!(
            workspace
                .member_of("path+file:///t/it's%20a%20$(touch%20x)%20dir/p#0.1.0")
                .as_deref(),
            Some("p")
        );
        assert_eq!(percent_decoded("caf%C3%A9%2").as_deref(), Some("café%2"));
    }

    #[test]
    fn a_symlink_loop_is_not_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::os::unix::fs::symlink(root.join("b"), root.join("a")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("b")).unwrap();
        let args = WorkspaceArgs {
            path: Some(root.join("a")),
            manifest_path: None,
        };
        let error = manifest_path(&args).unwrap_err().to_string();
        assert!(!error.contains("does not exist"), "{error}");
        assert!(error.contains("symbolic links"), "{error}");
    }

    #[test]
    fn a_value_cargo_refuses_keeps_its_line() {
        let error = cargo_metadata::Error::CargoMetadata {
            stderr: "error: invalid type: integer `99999999999999999999` as i128\n \
                     --> Cargo.toml:7:16\n  |\n7 | rss-limit-mb = 99999999999999999999\n  \
                     |                ^^^^\n"
                .to_owned(),
        };
        let text = summarise_cargo_error(&error);
        assert!(text.contains("rss-limit-mb"), "{text}");
        assert!(text.contains("line 7"), "{text}");
    }
}
