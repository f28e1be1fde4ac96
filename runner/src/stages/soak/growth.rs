//! Growth of each resource over the soak: the fitted rate per hour against its limit.
//! Descriptor and thread counts are whole numbers that a steady program holds flat; one
//! opened for a moment near the end of a short run would tilt the line, so those also need
//! the typical count at the end to be above the one at the start before they count as growth.

use super::fit::{self, Line};
use super::sample::Sample;
use super::settings::Limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Memory,
    Fds,
    Threads,
}

impl Resource {
    pub const ALL: [Resource; 3] = [Resource::Memory, Resource::Fds, Resource::Threads];

    /// The sample's value in the unit rates are given in (MiB for memory).
    #[allow(
        clippy::cast_precision_loss,
        reason = "resource counts are far below 2^52"
    )]
    pub fn value(self, sample: &Sample) -> f64 {
        match self {
            Resource::Memory => sample.rss_kib as f64 / 1024.0,
            Resource::Fds => sample.fds as f64,
            Resource::Threads => sample.threads as f64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "resident memory",
            Resource::Fds => "open file descriptors",
            Resource::Threads => "threads",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Resource::Memory => "MiB",
            Resource::Fds => "fds",
            Resource::Threads => "threads",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Resource::Memory => "memory-growth",
            Resource::Fds => "fd-growth",
            Resource::Threads => "thread-growth",
        }
    }

    fn limit(self, limits: &Limits) -> f64 {
        match self {
            Resource::Memory => limits.rss_mib,
            Resource::Fds => limits.fds,
            Resource::Threads => limits.threads,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    pub resource: Resource,
    pub line: Line,
    /// Typical values (medians) of the first and the last tenth of the fitted samples.
    pub start: f64,
    pub end: f64,
    pub limit_per_hour: f64,
    pub exceeded: bool,
}

/// Fits every resource over the samples taken after the warm-up; `None` with fewer than
/// three of them.
pub fn analyse(samples: &[Sample], warmup_seconds: f64, limits: &Limits) -> Option<Vec<Growth>> {
    let fitted: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds >= warmup_seconds)
        .collect();
    if fitted.len() < 3 {
        return None;
    }
    Resource::ALL
        .iter()
        .map(|&resource| {
            let points: Vec<(f64, f64)> = fitted
                .iter()
                .map(|s| (s.seconds, resource.value(s)))
                .collect();
            let line = fit::fit(&points)?;
            let tenth = (points.len() / 10).max(1);
            let start = median(points.iter().take(tenth).map(|p| p.1));
            let end = median(points.iter().rev().take(tenth).map(|p| p.1));
            let limit_per_hour = resource.limit(limits);
            let sustained = resource == Resource::Memory || end > start;
            Some(Growth {
                resource,
                line,
                start,
                end,
                limit_per_hour,
                exceeded: line.per_hour() > limit_per_hour && sustained,
            })
        })
        .collect()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::super::settings::DEFAULT_LIMITS;
    use super::*;

    fn samples(rss: impl Fn(f64) -> u64, fds: impl Fn(usize) -> u64) -> Vec<Sample> {
        (0..80)
            .map(|i| {
                let seconds = f64::from(u32::try_from(i).unwrap()) * 0.1;
                Sample {
                    seconds,
                    rss_kib: rss(seconds),
                    fds: fds(i),
                    threads: 2,
                }
            })
            .collect()
    }

    #[test]
    fn a_steady_leak_exceeds_its_limit_and_flat_resources_do_not() {
        // 4 MiB a second is 14,400 MiB an hour.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let leaking = samples(|t| 2048 + (4096.0 * t) as u64, |_| 4);
        let growth = analyse(&leaking, 0.8, &DEFAULT_LIMITS).unwrap();
        let memory = growth[0];
        assert!(
            (memory.line.per_hour() - 14_400.0).abs() < 50.0,
            "{memory:?}"
        );
        assert!(memory.exceeded);
        assert!(!growth[1].exceeded && !growth[2].exceeded);
        assert!(growth[1].line.slope.abs() < f64::EPSILON);
    }

    #[test]
    fn a_descriptor_open_for_a_moment_at_the_end_is_not_growth() {
        let blip = samples(|_| 4096, |i| if i == 78 { 5 } else { 4 });
        let growth = analyse(&blip, 0.8, &DEFAULT_LIMITS).unwrap();
        assert!(
            growth[1].line.per_hour() > DEFAULT_LIMITS.fds,
            "the line tilts"
        );
        assert!(!growth[1].exceeded, "but the count did not stay up");
        let leak = samples(|_| 4096, |i| 4 + i as u64 / 10);
        assert!(analyse(&leak, 0.8, &DEFAULT_LIMITS).unwrap()[1].exceeded);
    }

    #[test]
    fn too_few_samples_after_the_warmup() {
        let few = samples(|_| 1, |_| 1);
        assert!(analyse(&few, 7.8, &DEFAULT_LIMITS).is_none());
    }
}
