//! One sample of a running process from `/proc`: resident memory, open file descriptors,
//! threads.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the program started.
    pub seconds: f64,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
}

/// Reads the process now; `None` once it is gone or a zombie (no memory left to measure).
pub fn read(pid: u32, seconds: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss_kib, threads) = parse_status(&status)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        seconds,
        rss_kib,
        fds,
        threads,
    })
}

/// `VmRSS` (kB) and `Threads` from `/proc/<pid>/status`; a zombie has no `VmRSS`.
pub fn parse_status(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            line.strip_prefix(name)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

/// The child of this process that leads its own process group, as runner's process module
/// starts every child: the program under watch, whose pid that module does not hand out.
pub fn own_child() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (parent, group) = parent_and_group(&stat)?;
            // The watchdog is runner's child too, in a group of its own, but not the program.
            (parent == me && group == pid && Some(pid) != crate::process::watchdog::pid())
                .then_some(pid)
        })
}

/// Fields 4 and 5 of `/proc/<pid>/stat`, read after the command name, which may itself
/// hold spaces and parentheses.
fn parent_and_group(stat: &str) -> Option<(u32, u32)> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(1);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_and_threads_from_status() {
        let status = "Name:\tsoak-leak\nState:\tS (sleeping)\nVmRSS:\t   40960 kB\nThreads:\t3\n";
        assert_eq!(parse_status(status), Some((40_960, 3)));
        let zombie = "Name:\tsoak-leak\nState:\tZ (zombie)\nThreads:\t1\n";
        assert_eq!(parse_status(zombie), None);
    }

    #[test]
    fn reads_parent_and_group_past_odd_names() {
        let stat = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 100";
        assert_eq!(parent_and_group(stat), Some((17, 4242)));
    }

    #[test]
    fn samples_this_very_process() {
        let sample = read(std::process::id(), 1.5).unwrap();
        assert!(sample.rss_kib > 0 && sample.fds >= 3 && sample.threads >= 1);
        assert!((sample.seconds - 1.5).abs() < f64::EPSILON);
    }
}
