//! LCOV tracefiles, as both engines write them: the execution count of every line and branch
//! per source file, which is where uncovered lines in critical paths come from.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use camino::{Utf8Path, Utf8PathBuf};

/// One `BRDA` record: one side of a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub line: u32,
    pub block: u32,
    /// The side within its block; llvm-cov writes the true side first (even), then the false.
    pub index: u32,
    /// `None` (LCOV's `-`) when the condition itself never ran.
    pub taken: Option<u64>,
}

impl Branch {
    pub fn is_taken(&self) -> bool {
        self.taken.is_some_and(|count| count > 0)
    }
}

/// The records of one source file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTrace {
    /// Relative to the workspace root when the file lies inside it.
    pub path: Utf8PathBuf,
    /// Line → execution count, for every line that holds code.
    pub lines: BTreeMap<u32, u64>,
    pub branches: Vec<Branch>,
}

impl FileTrace {
    pub fn uncovered_lines(&self) -> impl Iterator<Item = u32> + '_ {
        self.lines
            .iter()
            .filter(|(_, count)| **count == 0)
            .map(|(line, _)| *line)
    }

    pub fn untaken_branches(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|branch| !branch.is_taken())
    }
}

/// Reads a tracefile; paths inside `root` become relative to it. Records runner has no use
/// for (function names, checksums, summaries) are skipped.
pub fn parse(text: &str, root: &Utf8Path) -> Result<Vec<FileTrace>> {
    let mut files = Vec::new();
    let mut current: Option<FileTrace> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let record = || format!("line {} of the LCOV file: `{line}`", number + 1);
        match tag {
            "SF" => {
                let path = Utf8Path::new(value);
                current = Some(FileTrace {
                    path: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
                    ..FileTrace::default()
                });
            }
            "DA" => {
                let file = current
                    .as_mut()
                    .with_context(|| record() + " outside a file")?;
                let mut fields = value.split(',');
                let (Some(number), Some(count)) = (fields.next(), fields.next()) else {
                    bail!("{} has too few fields", record());
                };
                let number = number.parse().with_context(record)?;
                let count: u64 = count.parse().with_context(record)?;
                // A line can appear twice when two functions share it: it ran if either ran.
                let entry = file.lines.entry(number).or_insert(0);
                *entry = (*entry).max(count);
            }
            "BRDA" => {
                let file = current
                    .as_mut()
                    .with_context(|| record() + " outside a file")?;
                let fields: Vec<&str> = value.split(',').collect();
                let [line, block, index, taken] = fields[..] else {
                    bail!("{} does not have four fields", record());
                };
                file.branches.push(Branch {
                    line: line.parse().with_context(record)?,
                    block: block.parse().with_context(record)?,
                    index: index.parse().with_context(record)?,
                    taken: match taken {
                        "-" => None,
                        count => Some(count.parse().with_context(record)?),
                    },
                });
            }
            "end_of_record" => files.extend(current.take()),
            _ => {}
        }
    }
    files.extend(current.take());
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stages::coverage::captures::{self, ROOT};

    #[test]
    fn reads_llvm_covs_tracefile() {
        let text = captures::read("coverage-known.lcov");
        let files = parse(&text, Utf8Path::new(ROOT)).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/critical.rs", "src/lib.rs"]);
        assert_eq!(files[0].uncovered_lines().collect::<Vec<_>>(), [8]);
        assert_eq!(files[0].lines.len(), 6);
        assert!(files[0].branches.is_empty());
        let lib = &files[1];
        assert_eq!(lib.uncovered_lines().collect::<Vec<_>>(), [15, 21, 22, 23]);
        let untaken: Vec<&Branch> = lib.untaken_branches().collect();
        assert_eq!(untaken.len(), 1, "{:?}", lib.branches);
        assert_eq!((untaken[0].line, untaken[0].index), (14, 0));
        assert_eq!(lib.branches.len(), 2);
    }

    #[test]
    fn never_evaluated_branches_and_shared_lines() {
        let text = "SF:/r/src/a.rs\nDA:3,0\nDA:3,2\nBRDA:3,0,0,-\nBRDA:3,0,1,-\nend_of_record\n";
        let files = parse(text, Utf8Path::new("/r")).unwrap();
        assert_eq!(files[0].path, "src/a.rs");
        assert_eq!(files[0].lines[&3], 2);
        assert_eq!(files[0].untaken_branches().count(), 2);
        assert_eq!(files[0].branches[0].taken, None);
    }

    #[test]
    fn malformed_records_name_the_line() {
        let error = parse("SF:/a.rs\nDA:x,1\n", Utf8Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(parse("DA:1,1\n", Utf8Path::new("/")).is_err());
    }
}
