//! LCOV tracefiles, as both engines write them: the execution count of every line, branch and
//! function per source file, which is where uncovered lines in critical paths come from; and
//! the tracefiles of several slices added up into one (`runner merge`).

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
    /// `FN` / `FNDA` records: function name → (first line, times entered).
    pub functions: BTreeMap<String, (u32, u64)>,
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
/// for (checksums, summaries) are skipped.
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
            "FN" | "FNDA" => {
                let file = current
                    .as_mut()
                    .with_context(|| record() + " outside a file")?;
                let Some((number, name)) = value.split_once(',') else {
                    bail!("{} has too few fields", record());
                };
                let number: u64 = number.parse().with_context(record)?;
                let entry = file.functions.entry(name.to_owned()).or_insert((0, 0));
                if tag == "FN" {
                    entry.0 = u32::try_from(number).with_context(record)?;
                } else {
                    entry.1 = number;
                }
            }
            "end_of_record" => files.extend(current.take()),
            _ => {}
        }
    }
    files.extend(current.take());
    Ok(files)
}

/// The tracefiles of slices that ran disjoint tests of one build, as one: per file, line,
/// branch side and function, the counts added up, so a line is covered when any slice covered
/// it. A file, line or branch only some slices list (code only their builds hold, such as
/// doctests) is kept with the counts of those.
pub fn add_up(slices: Vec<Vec<FileTrace>>) -> Vec<FileTrace> {
    let mut files: BTreeMap<Utf8PathBuf, FileTrace> = BTreeMap::new();
    for trace in slices.into_iter().flatten() {
        let Some(known) = files.get_mut(&trace.path) else {
            files.insert(trace.path.clone(), trace);
            continue;
        };
        for (line, count) in trace.lines {
            let sum = known.lines.entry(line).or_insert(0);
            *sum = sum.saturating_add(count);
        }
        for branch in trace.branches {
            let same = |b: &&mut Branch| {
                (b.line, b.block, b.index) == (branch.line, branch.block, branch.index)
            };
            match known.branches.iter_mut().find(same) {
                Some(side) => {
                    side.taken = match (side.taken, branch.taken) {
                        (None, None) => None,
                        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
                    }
                }
                None => known.branches.push(branch),
            }
        }
        for (name, (line, count)) in trace.functions {
            let entry = known.functions.entry(name).or_insert((line, 0));
            entry.1 = entry.1.saturating_add(count);
        }
    }
    let mut traces: Vec<FileTrace> = files.into_values().collect();
    for trace in &mut traces {
        trace.branches.sort_by_key(|b| (b.line, b.block, b.index));
    }
    traces
}

/// Per file, the numbers llvm-cov writes into its summary records (`FNF`, `LF`, ...): they
/// count a function once over its instantiations, which the records alone cannot tell.
#[derive(Debug, Clone, Copy)]
pub struct FileTotals {
    pub functions: (u64, u64),
    pub branches: (u64, u64),
    pub lines: (u64, u64),
}

/// A tracefile in llvm-cov's layout; `root` is joined to relative paths, and `totals` gives a
/// file's summary records (without it they are counted from the records).
pub fn write(
    traces: &[FileTrace],
    root: &Utf8Path,
    totals: impl Fn(&Utf8Path) -> Option<FileTotals>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for trace in traces {
        let path = if trace.path.is_relative() {
            root.join(&trace.path)
        } else {
            trace.path.clone()
        };
        let _ = writeln!(out, "SF:{path}");
        for (name, (line, _)) in &trace.functions {
            let _ = writeln!(out, "FN:{line},{name}");
        }
        for (name, (_, count)) in &trace.functions {
            let _ = writeln!(out, "FNDA:{count},{name}");
        }
        let counted = FileTotals {
            functions: (
                trace.functions.len() as u64,
                trace.functions.values().filter(|(_, c)| *c > 0).count() as u64,
            ),
            branches: (
                trace.branches.len() as u64,
                trace.branches.iter().filter(|b| b.is_taken()).count() as u64,
            ),
            lines: (
                trace.lines.len() as u64,
                trace.lines.values().filter(|c| **c > 0).count() as u64,
            ),
        };
        let summary = totals(&trace.path).unwrap_or(counted);
        let _ = writeln!(
            out,
            "FNF:{}\nFNH:{}",
            summary.functions.0, summary.functions.1
        );
        for (line, count) in &trace.lines {
            let _ = writeln!(out, "DA:{line},{count}");
        }
        for branch in &trace.branches {
            let taken = branch
                .taken
                .map_or("-".to_owned(), |count| count.to_string());
            let _ = writeln!(
                out,
                "BRDA:{},{},{},{taken}",
                branch.line, branch.block, branch.index
            );
        }
        let _ = writeln!(
            out,
            "BRF:{}\nBRH:{}",
            summary.branches.0, summary.branches.1
        );
        let _ = writeln!(out, "LF:{}\nLH:{}", summary.lines.0, summary.lines.1);
        out.push_str("end_of_record\n");
    }
    out
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
    fn slices_add_up_per_line_branch_and_function() {
        let first = "SF:/r/src/a.rs\nFN:3,f\nFNDA:0,f\nDA:3,0\nDA:4,0\nBRDA:3,0,0,-\nBRDA:3,0,1,-\nend_of_record\n";
        let second = "SF:/r/src/a.rs\nFN:3,f\nFNDA:2,f\nDA:3,2\nDA:4,0\nBRDA:3,0,0,2\nBRDA:3,0,1,0\nend_of_record\nSF:/r/src/b.rs\nDA:1,1\nend_of_record\n";
        let root = Utf8Path::new("/r");
        let merged = add_up(vec![
            parse(first, root).unwrap(),
            parse(second, root).unwrap(),
        ]);
        assert_eq!(merged.len(), 2, "a file only one slice lists is kept");
        let a = &merged[0];
        assert_eq!(a.uncovered_lines().collect::<Vec<_>>(), [4]);
        assert_eq!(a.functions["f"], (3, 2));
        let taken: Vec<Option<u64>> = a.branches.iter().map(|b| b.taken).collect();
        assert_eq!(taken, [Some(2), Some(0)]);
        let text = write(&merged, root, |_| None);
        assert!(
            text.starts_with("SF:/r/src/a.rs\nFN:3,f\nFNDA:2,f\nFNF:1\nFNH:1\nDA:3,2\nDA:4,0\n"),
            "{text}"
        );
        assert!(
            text.contains("BRDA:3,0,1,0\nBRF:2\nBRH:1\nLF:2\nLH:1\nend_of_record\n"),
            "{text}"
        );
        assert_eq!(
            parse(&text, root).unwrap(),
            merged,
            "what is written reads back the same"
        );
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
