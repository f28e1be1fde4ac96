//! Critical paths: the files (globs) and functions config says must be fully covered. Every
//! uncovered line and untaken branch in them is collected, grouped by the function around it.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use serde::Serialize;

use super::lcov::{Branch, FileTrace};
use crate::coverage_data::llvm_json::FunctionSpan;

/// What config marks critical.
#[derive(Debug, Clone, Default)]
pub struct Rules<'a> {
    pub paths: &'a [String],
    pub functions: &'a [String],
}

impl Rules<'_> {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.functions.is_empty()
    }
}

/// One branch side in a critical path that no test took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UntakenBranch {
    pub line: u32,
    /// Which side, when the tool says (llvm-cov: true or false); `None` when the condition
    /// never ran at all, so neither side was taken.
    pub side: Option<&'static str>,
}

/// The uncovered code of one function (or of a file's code outside any known function).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub file: Utf8PathBuf,
    pub function: Option<String>,
    pub lines: Vec<u32>,
    pub branches: Vec<UntakenBranch>,
    /// The config entry that made this code critical.
    pub rule: String,
}

impl Gap {
    pub fn first_line(&self) -> u32 {
        let branch = self.branches.iter().map(|b| b.line);
        self.lines.iter().copied().chain(branch).min().unwrap_or(1)
    }
}

/// The gaps in critical code, ordered by file and line.
pub fn gaps(traces: &[FileTrace], functions: &[FunctionSpan], rules: &Rules) -> Vec<Gap> {
    let mut grouped: BTreeMap<(Utf8PathBuf, Option<String>), Gap> = BTreeMap::new();
    for trace in traces {
        let in_file: Vec<&FunctionSpan> =
            functions.iter().filter(|f| f.file == trace.path).collect();
        let path_rule = rules
            .paths
            .iter()
            .find(|pattern| path_matches(pattern, trace.path.as_str()));
        let rule_for = |line: u32| -> Option<String> {
            if let Some(pattern) = path_rule {
                return Some(pattern.clone());
            }
            in_file
                .iter()
                .filter(|f| (f.first_line..=f.last_line).contains(&line))
                .find_map(|f| {
                    rules
                        .functions
                        .iter()
                        .find(|pattern| function_matches(pattern, &f.name))
                        .cloned()
                })
        };
        let lines = trace.uncovered_lines().map(|line| (line, None));
        let branches = untaken_sides(trace).into_iter().map(|b| (b.line, Some(b)));
        for (line, branch) in lines.chain(branches) {
            let Some(rule) = rule_for(line) else {
                continue;
            };
            let function = innermost(&in_file, line).map(|f| f.name.clone());
            let gap = grouped
                .entry((trace.path.clone(), function.clone()))
                .or_insert_with(|| Gap {
                    file: trace.path.clone(),
                    function,
                    lines: Vec::new(),
                    branches: Vec::new(),
                    rule,
                });
            match branch {
                Some(branch) => gap.branches.push(branch),
                None => gap.lines.push(line),
            }
        }
    }
    let mut gaps: Vec<Gap> = grouped.into_values().collect();
    gaps.sort_by(|a, b| (&a.file, a.first_line()).cmp(&(&b.file, b.first_line())));
    gaps
}

/// Notes for critical paths and functions that match nothing measured: a typo there would
/// otherwise pass the gate by checking nothing.
pub fn unmatched(traces: &[FileTrace], functions: &[FunctionSpan], rules: &Rules) -> Vec<String> {
    let paths = rules
        .paths
        .iter()
        .filter(|pattern| {
            !traces
                .iter()
                .any(|trace| path_matches(pattern, trace.path.as_str()))
        })
        .map(|pattern| format!("the critical path `{pattern}` matches no measured file"));
    let functions = rules
        .functions
        .iter()
        .filter(|pattern| !functions.iter().any(|f| function_matches(pattern, &f.name)))
        .map(|pattern| format!("the critical function `{pattern}` matches no measured function"));
    paths.chain(functions).collect()
}

/// Each untaken side of a condition once; a condition that never ran is one entry.
fn untaken_sides(trace: &FileTrace) -> Vec<UntakenBranch> {
    let mut sides: Vec<UntakenBranch> = Vec::new();
    let mut never_ran: Vec<(u32, u32, u32)> = Vec::new();
    for branch in trace.untaken_branches() {
        if branch.taken.is_none() {
            let condition = (branch.line, branch.block, branch.index / 2);
            if !never_ran.contains(&condition) {
                never_ran.push(condition);
                sides.push(UntakenBranch {
                    line: branch.line,
                    side: None,
                });
            }
        } else {
            sides.push(UntakenBranch {
                line: branch.line,
                side: Some(side_name(branch)),
            });
        }
    }
    sides
}

fn side_name(branch: &Branch) -> &'static str {
    if branch.index.is_multiple_of(2) {
        "true"
    } else {
        "false"
    }
}

/// The smallest function span around `line`: a closure rather than the function holding it.
fn innermost<'a>(functions: &[&'a FunctionSpan], line: u32) -> Option<&'a FunctionSpan> {
    functions
        .iter()
        .filter(|f| (f.first_line..=f.last_line).contains(&line))
        .min_by_key(|f| f.last_line - f.first_line)
        .copied()
}

/// A path glob relative to the workspace root: `*` and `?` stay within one directory, `**`
/// spans any number of them.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_start_matches("./").split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments_match(&pattern, &path)
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(segment, tail)| wildcard(first, segment) && segments_match(rest, tail)),
    }
}

/// A function pattern: `*` matches anything, `::` included. A function also matches through
/// its closures and generic instantiations (`parse::{closure#0}`, `parse::<u8>`).
pub fn function_matches(pattern: &str, name: &str) -> bool {
    if wildcard(pattern, name) {
        return true;
    }
    name.match_indices("::")
        .filter(|(at, _)| matches!(name.as_bytes().get(at + 2), Some(b'{' | b'<')))
        .any(|(at, _)| wildcard(pattern, &name[..at]))
}

/// `*` for any run of characters, `?` for one.
fn wildcard(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // The classic two-pointer match with backtracking to the last star.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::coverage::lcov;

    #[test]
    fn path_globs() {
        assert!(path_matches("src/critical.rs", "src/critical.rs"));
        assert!(path_matches("./src/critical*.rs", "src/critical.rs"));
        assert!(path_matches("src/*.rs", "src/lib.rs"));
        assert!(!path_matches("src/*.rs", "src/parse/mod.rs"));
        assert!(path_matches("src/**/*.rs", "src/lib.rs"));
        assert!(path_matches("src/**/*.rs", "src/parse/deep/mod.rs"));
        assert!(path_matches("**/parse.rs", "crates/a/src/parse.rs"));
        assert!(!path_matches("src/lib.rs", "src/lib.rs.bak"));
        assert!(path_matches("src/lib.r?", "src/lib.rs"));
    }

    #[test]
    fn function_patterns() {
        assert!(function_matches("demo::decode", "demo::decode"));
        assert!(function_matches(
            "demo::decode",
            "demo::decode::{closure#0}"
        ));
        assert!(function_matches("demo::decode", "demo::decode::<u8>"));
        assert!(!function_matches("demo::decode", "demo::decode_all"));
        assert!(function_matches("demo::parse::*", "demo::parse::header"));
        assert!(function_matches("*::header", "demo::parse::header"));
    }

    fn span(name: &str, first_line: u32, last_line: u32) -> FunctionSpan {
        FunctionSpan {
            name: name.into(),
            file: "src/lib.rs".into(),
            first_line,
            last_line,
            count: 1,
        }
    }

    const TRACE: &str = "SF:/r/src/lib.rs\nDA:2,1\nDA:3,0\nDA:4,1\nDA:8,0\nDA:9,0\n\
                         BRDA:2,0,0,0\nBRDA:2,0,1,1\nBRDA:8,0,0,-\nBRDA:8,0,1,-\nend_of_record\n";

    #[test]
    fn critical_functions_select_their_own_lines_grouped_by_function() {
        let traces = lcov::parse(TRACE, "/r".into()).unwrap();
        let functions = [span("c::a", 1, 5), span("c::b", 7, 10)];
        let only_b = ["c::b".to_owned()];
        let rules = Rules {
            paths: &[],
            functions: &only_b,
        };
        let found = gaps(&traces, &functions, &rules);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].function.as_deref(), Some("c::b"));
        assert_eq!(found[0].lines, [8, 9]);
        assert_eq!(
            found[0].branches,
            [UntakenBranch {
                line: 8,
                side: None
            }]
        );
        assert_eq!(found[0].rule, "c::b");
    }

    #[test]
    fn critical_files_select_every_gap_with_the_side_not_taken() {
        let traces = lcov::parse(TRACE, "/r".into()).unwrap();
        let paths = ["src/*.rs".to_owned()];
        let rules = Rules {
            paths: &paths,
            functions: &[],
        };
        let found = gaps(&traces, &[span("c::a", 1, 5)], &rules);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].function.as_deref(), Some("c::a"));
        assert_eq!(found[0].lines, [3]);
        assert_eq!(found[0].branches[0].side, Some("true"));
        assert_eq!(found[1].function, None);
        assert_eq!(found[1].first_line(), 8);
        let none = Rules::default();
        assert!(gaps(&traces, &[], &none).is_empty());
        let typos = ["src/*.r".to_owned()];
        let functions = ["c::z".to_owned()];
        let rules = Rules {
            paths: &typos,
            functions: &functions,
        };
        assert_eq!(
            unmatched(&traces, &[span("c::a", 1, 5)], &rules),
            [
                "the critical path `src/*.r` matches no measured file",
                "the critical function `c::z` matches no measured function"
            ]
        );
    }
}
