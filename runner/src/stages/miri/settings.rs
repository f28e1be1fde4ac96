//! The Miri stage's settings: the workspace's table with defaults, and for each package it
//! analyses that package's own flags and borrow models (a member's table over the
//! workspace's), which become the MIRIFLAGS of its harnesses.

use anyhow::{bail, Result};
use camino::Utf8PathBuf;

use super::config::{BorrowModel, MiriConfig};
use crate::plan::Context;
use crate::report::Table;
use crate::stage_name::StageName;

/// A test under Miri runs 10 to 100 times slower than natively.
const DEFAULT_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_mins(15);

/// The big-endian target every run includes by default.
pub const BIG_ENDIAN_TARGET: &str = "s390x-unknown-linux-gnu";

/// The stage's settings, from config with defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Vec<String>,
    pub seeds: u32,
    /// The workspace's own MIRIFLAGS from config (the build's, and every package's unless
    /// its own table sets `flags`).
    pub user_flags: Vec<String>,
    pub target_dir: Utf8PathBuf,
    pub test_timeout: std::time::Duration,
    /// Every package the stage analyses, with what applies to it.
    pub packages: Vec<PackageSettings>,
}

/// What applies to one package's harnesses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSettings {
    pub name: String,
    /// cargo's package id.
    pub id: String,
    /// The user's MIRIFLAGS for it, after runner's own.
    pub flags: Vec<String>,
    /// The models its tests run under: one, or each of several (`models`).
    pub models: Vec<BorrowModel>,
    pub doctests: bool,
    /// Whether the package's own table set any of these.
    pub own: bool,
}

impl PackageSettings {
    /// The settings as the report and `runner plan` show them.
    pub fn describe(&self) -> String {
        let models: Vec<&str> = self.models.iter().map(|model| model.title()).collect();
        let flags = if self.flags.is_empty() {
            "none".to_owned()
        } else {
            self.flags.join(" ")
        };
        format!(
            "{}: borrow model {}; flags {flags}; doctests {}{}",
            self.name,
            models.join(" and "),
            if self.doctests { "on" } else { "off" },
            if self.own {
                " (its own [package.metadata.runner.miri])"
            } else {
                ""
            }
        )
    }

    /// The model a harness of this package runs under: the one its unit's variant names, or
    /// the package's only one.
    pub fn model_of(&self, variant: Option<&str>) -> BorrowModel {
        variant
            .and_then(|variant| {
                self.models
                    .iter()
                    .copied()
                    .find(|model| model.title() == variant)
            })
            .unwrap_or(self.models[0])
    }
}

impl Settings {
    pub fn resolve(ctx: &Context) -> Result<Settings> {
        let config = &ctx.workspace.config.stage::<MiriConfig>()?;
        let mut packages = Vec::new();
        for member in ctx.stage_members(StageName::Miri) {
            let own = member
                .config
                .as_ref()
                .map(crate::config::Config::stage::<MiriConfig>)
                .transpose()?;
            packages.push(package_settings(
                &member.name,
                &member.id,
                config,
                own.as_ref(),
            )?);
        }
        Ok(Settings {
            targets: config.targets.as_ref().map_or_else(
                || vec![ctx.host.clone(), BIG_ENDIAN_TARGET.to_owned()],
                |targets| {
                    targets
                        .iter()
                        .map(|t| {
                            if t == "host" {
                                ctx.host.clone()
                            } else {
                                t.clone()
                            }
                        })
                        .collect()
                },
            ),
            seeds: config.seeds.unwrap_or(1).max(1),
            user_flags: config.flags.clone(),
            target_dir: ctx.workspace.stage_target_dir("miri"),
            test_timeout: ctx.test_timeout(config.test_timeout.as_deref(), DEFAULT_TEST_TIMEOUT)?,
            packages,
        })
    }

    /// The settings of the package with this id.
    pub fn package(&self, id: &str) -> Option<&PackageSettings> {
        self.packages.iter().find(|package| package.id == id)
    }

    /// Each package's effective settings, for the report: when the workspace has several
    /// packages or one sets its own.
    pub fn table(&self) -> Option<Table> {
        if self.packages.len() < 2 && !self.packages.iter().any(|package| package.own) {
            return None;
        }
        Some(Table {
            title: "Package settings".to_owned(),
            columns: ["Package", "Borrow model", "Miri flags", "Doctests", "From"]
                .map(str::to_owned)
                .to_vec(),
            rows: self
                .packages
                .iter()
                .map(|package| {
                    let models: Vec<&str> =
                        package.models.iter().map(|model| model.title()).collect();
                    vec![
                        package.name.clone(),
                        models.join(", "),
                        if package.flags.is_empty() {
                            "-".to_owned()
                        } else {
                            package.flags.join(" ")
                        },
                        if package.doctests { "yes" } else { "no" }.to_owned(),
                        if package.own {
                            "its own [package.metadata.runner.miri]"
                        } else {
                            "the workspace"
                        }
                        .to_owned(),
                    ]
                })
                .collect(),
        })
    }
}

/// MIRIFLAGS: runner's JSON diagnostics, the user's flags, the model's, then the seed.
pub fn miriflags(
    user_flags: &[String],
    model: Option<BorrowModel>,
    seed: Option<u32>,
    json: bool,
) -> String {
    let mut flags = Vec::new();
    if json {
        flags.push("--error-format=json".to_owned());
    }
    flags.extend(user_flags.iter().cloned());
    if let Some(model) = model {
        if BorrowModel::named_by(user_flags) != Some(model) {
            flags.extend(model.flags().iter().map(|flag| (*flag).to_owned()));
        }
    }
    if let Some(seed) = seed {
        flags.push(format!("-Zmiri-seed={seed}"));
    }
    flags.join(" ")
}

/// One package's settings: its own table's keys over the workspace's.
fn package_settings(
    name: &str,
    id: &str,
    workspace: &MiriConfig,
    own: Option<&MiriConfig>,
) -> Result<PackageSettings> {
    let own_flags = own.filter(|own| !own.flags.is_empty());
    let flags = own_flags.map_or(&workspace.flags, |own| &own.flags).clone();
    let from_table = |config: &MiriConfig| -> Option<Vec<BorrowModel>> {
        config
            .models
            .clone()
            .or_else(|| config.borrow_model.map(|model| vec![model]))
    };
    let configured = own.and_then(from_table).or_else(|| from_table(workspace));
    let named = BorrowModel::named_by(&flags);
    let mut models = match configured {
        Some(models) => models,
        None => vec![named.unwrap_or(BorrowModel::Stacked)],
    };
    let mut unique = Vec::new();
    for model in models.drain(..) {
        if !unique.contains(&model) {
            unique.push(model);
        }
    }
    if unique.is_empty() {
        bail!("runner config `miri.models` for {name} is empty: name at least one model");
    }
    if let Some(named) = named {
        if unique.iter().any(|model| *model != named) {
            bail!(
                "the Miri flags of {name} select {} but its borrow model is {}: keep one of the two",
                named.title(),
                unique
                    .iter()
                    .map(|model| model.title())
                    .collect::<Vec<_>>()
                    .join(" and ")
            );
        }
    }
    let doctests = own
        .and_then(|own| own.doctests)
        .or(workspace.doctests)
        .unwrap_or(true);
    let owns = own.is_some_and(|own| {
        !own.flags.is_empty()
            || own.models.is_some()
            || own.borrow_model.is_some()
            || own.doctests.is_some()
    });
    Ok(PackageSettings {
        name: name.to_owned(),
        id: id.to_owned(),
        flags,
        models: unique,
        doctests,
        own: owns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str], models: Option<&[BorrowModel]>) -> MiriConfig {
        MiriConfig {
            flags: flags.iter().map(|flag| (*flag).to_owned()).collect(),
            models: models.map(<[BorrowModel]>::to_vec),
            ..MiriConfig::default()
        }
    }

    #[test]
    fn a_package_table_wins_over_the_workspace() {
        let workspace = config(&["-Zmiri-strict-provenance"], None);
        let utils = package_settings("utils", "u", &workspace, None).unwrap();
        assert_eq!(utils.flags, ["-Zmiri-strict-provenance"]);
        assert_eq!(utils.models, [BorrowModel::Stacked]);
        assert!(!utils.own);
        let epoch_table = config(
            &["-Zmiri-disable-stacked-borrows", "-Zmiri-ignore-leaks"],
            None,
        );
        let epoch = package_settings("epoch", "e", &workspace, Some(&epoch_table)).unwrap();
        assert_eq!(epoch.models, [BorrowModel::None]);
        assert!(epoch.own);
        assert_eq!(
            miriflags(&epoch.flags, Some(epoch.models[0]), None, true),
            "--error-format=json -Zmiri-disable-stacked-borrows -Zmiri-ignore-leaks"
        );
        let both = config(&[], Some(&[BorrowModel::Stacked, BorrowModel::Tree]));
        let queue = package_settings("queue", "q", &workspace, Some(&both)).unwrap();
        assert_eq!(queue.models, [BorrowModel::Stacked, BorrowModel::Tree]);
        assert_eq!(
            miriflags(&queue.flags, Some(BorrowModel::Tree), Some(3), false),
            "-Zmiri-strict-provenance -Zmiri-tree-borrows -Zmiri-seed=3"
        );
        assert_eq!(queue.model_of(Some("Tree Borrows")), BorrowModel::Tree);
        assert_eq!(queue.model_of(None), BorrowModel::Stacked);
    }

    #[test]
    fn flags_and_models_that_disagree_are_an_error() {
        let table = MiriConfig {
            flags: vec!["-Zmiri-tree-borrows".into()],
            borrow_model: Some(BorrowModel::Stacked),
            ..MiriConfig::default()
        };
        let error = package_settings("p", "p", &MiriConfig::default(), Some(&table))
            .unwrap_err()
            .to_string();
        assert!(error.contains("Tree Borrows"), "{error}");
    }
}
