//! What runs under memcheck outside the kernel's units: a test alone or a configured program,
//! with its executable, folder, arguments and names.

use camino::Utf8PathBuf;

use super::settings::ProgramConfig;
use crate::inventory::TestUnit;

/// What runs under memcheck.
#[derive(Debug, Clone)]
pub enum Subject {
    Test { unit: TestUnit, name: String },
    Program(ProgramConfig),
}

#[derive(Debug, Clone)]
pub struct Job {
    pub subject: Subject,
    pub executable: Utf8PathBuf,
    pub cwd: Utf8PathBuf,
}

impl Job {
    /// The program's own arguments: one test alone, or the configured ones.
    pub fn arguments(&self) -> Vec<String> {
        match &self.subject {
            Subject::Test { name, .. } => {
                vec!["--exact".into(), name.clone(), "--test-threads=1".into()]
            }
            Subject::Program(program) => program.args.clone(),
        }
    }

    /// `valgrind-bugs lib tests::leaks`, or `program leaky-cli --leak`.
    pub fn label(&self) -> String {
        match &self.subject {
            Subject::Test { unit, name } => format!("{} {name}", unit.label()),
            Subject::Program(program) => format!("program {}", program.label()),
        }
    }

    pub fn log_name(&self, sequence: usize) -> String {
        let slug: String = self
            .label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .take(100)
            .collect();
        format!("{sequence:04}-{slug}")
    }
}
