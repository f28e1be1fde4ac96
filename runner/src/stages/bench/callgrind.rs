//! Reads a callgrind profile (`callgrind.out`): the instructions spent inside criterion's
//! `Bencher::iter*` calls, which is the benchmark's routine without criterion's own start-up.

use std::collections::HashMap;

use anyhow::{bail, Result};

/// What one profiled run cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Every instruction of the process.
    pub total: u64,
    /// Instructions inside the benchmark routine; `None` when no `Bencher::iter*` ran (the
    /// optimiser inlined it away, or the benchmark does not use criterion's `Bencher`).
    pub routine: Option<u64>,
}

/// Whether a demangled function is one of criterion's timing loops (`iter`,
/// `iter_batched`, `iter_custom`, ... of `Bencher` or `AsyncBencher`), in the v0 form
/// (`<criterion::bencher::Bencher>::iter::<...>`) or the legacy one.
pub fn is_routine(name: &str) -> bool {
    let name = name.strip_prefix('<').unwrap_or(name);
    name.starts_with("criterion::bencher::") && name.contains("::iter")
}

/// Costs per function, as the parser accumulates them.
#[derive(Default)]
struct Costs {
    /// Own cost plus the inclusive cost of every call it makes.
    inclusive: u64,
    /// The part of `inclusive` spent in calls to other routine functions.
    nested: u64,
}

/// Parses callgrind's output format (compressed or not). The routine's cost is the
/// inclusive cost of every routine function less what they spent calling each other
/// (`iter_with_setup` calls `iter_batched`), so nothing is counted twice.
pub fn parse(text: &str) -> Result<Profile> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut costs: HashMap<String, Costs> = HashMap::new();
    let mut positions = 1usize;
    let mut total = None;
    let mut current: Option<String> = None;
    let mut callee: Option<String> = None;
    let mut in_call = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("positions:") {
            positions = rest.split_whitespace().count().max(1);
        } else if let Some(rest) = line
            .strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))
        {
            total = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(rest) = line.strip_prefix("fn=") {
            current = Some(resolve(&mut names, rest));
            in_call = false;
        } else if let Some(rest) = line.strip_prefix("cfn=") {
            callee = Some(resolve(&mut names, rest));
        } else if line.starts_with("calls=") {
            in_call = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || "+-*".contains(c)) {
            let cost: u64 = line
                .split_whitespace()
                .nth(positions)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let Some(function) = &current else { continue };
            let entry = costs.entry(function.clone()).or_default();
            entry.inclusive += cost;
            if in_call && callee.as_deref().is_some_and(is_routine) {
                entry.nested += cost;
            }
            in_call = false;
        }
    }
    let Some(total) = total else {
        bail!("the callgrind profile has no totals (was the run cut short?)");
    };
    let routine = costs
        .iter()
        .filter(|(name, _)| is_routine(name))
        .map(|(_, cost)| cost.inclusive.saturating_sub(cost.nested))
        .reduce(|sum, cost| sum + cost);
    Ok(Profile { total, routine })
}

/// `(12) name` defines a compressed name, `(12)` refers to one, a bare name is itself.
fn resolve(names: &mut HashMap<String, String>, text: &str) -> String {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('(') else {
        return text.to_owned();
    };
    let Some((id, name)) = rest.split_once(')') else {
        return text.to_owned();
    };
    let name = name.trim();
    if name.is_empty() {
        names.get(id).cloned().unwrap_or_else(|| format!("({id})"))
    } else {
        names.insert(id.to_owned(), name.to_owned());
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_routine_out_of_a_real_profile() {
        let text = include_str!("../../../tests/data/bench/callgrind-fnv-slow.out");
        let profile = parse(text).unwrap();
        assert_eq!(profile.total, 863_364);
        assert_eq!(profile.routine, Some(31_041));
    }

    /// `iter_with_setup` calling `iter_batched`: the inner call is inside the outer one's
    /// inclusive cost and must not be counted again.
    #[test]
    fn nested_routines_count_once() {
        let text = "positions: line\nevents: Ir\nsummary: 1000\n\n\
                    fn=(1) main\n0 10\ncfn=(2) <criterion::bencher::Bencher>::iter_with_setup::<u8>\ncalls=1 0\n0 300\n\n\
                    fn=(2)\n0 20\ncfn=(3) <criterion::bencher::Bencher>::iter_batched::<u8>\ncalls=1 0\n0 250\n\
                    cfn=(4) work\ncalls=1 0\n0 30\n\n\
                    fn=(3)\n0 50\ncfn=(4)\ncalls=2 0\n0 200\n\n\
                    fn=(4)\n0 230\n";
        let profile = parse(text).unwrap();
        assert_eq!(profile.total, 1000);
        assert_eq!(profile.routine, Some(300));
    }

    #[test]
    fn names_routines_in_both_manglings() {
        assert!(is_routine(
            "<criterion::bencher::Bencher>::iter::<u64, checksum::checksums::{closure#0}>"
        ));
        assert!(is_routine(
            "<criterion::bencher::AsyncBencher<A, M>>::iter_custom::<R, F>"
        ));
        assert!(is_routine("criterion::bencher::Bencher<M>::iter_batched"));
        assert!(!is_routine(
            "<criterion::routine::Function<M, F, T>>::bench"
        ));
        assert!(!is_routine(
            "core::ptr::drop_glue::<criterion::bencher::Bencher>"
        ));
    }

    #[test]
    fn a_cut_profile_is_an_error() {
        assert!(parse("positions: line\nevents: Ir\nfn=(1) main\n0 10\n").is_err());
        let no_routine = parse("events: Ir\nsummary: 10\nfn=(1) main\n0 10\n").unwrap();
        assert_eq!(no_routine.routine, None);
    }
}
