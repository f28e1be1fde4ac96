//! Process trees that always die. Every child runner starts carries a tag in its environment,
//! which its descendants inherit; the ones that left the child's process group or session (a
//! `setsid` daemon holding a pipe) are still found in `/proc` by that tag and killed when their
//! unit ends, or by the watchdog when runner itself dies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// The environment variable holding the tags of every runner process tree a process is in.
pub const TAG_VARIABLE: &str = "RUNNER_TREE";

static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// A fresh tag for one child: `<runner pid>.<sequence>`, unique on this machine while runner
/// lives, and findable by the runner-pid prefix after it died.
pub fn new_tag() -> String {
    format!(
        "{}.{}",
        std::process::id(),
        NEXT_TAG.fetch_add(1, Ordering::Relaxed)
    )
}

/// The value a child gets: the tags of the trees runner itself is in, then its own, so an
/// outer runner (or its watchdog) still finds a tree that an inner runner started.
pub fn tag_value(tag: &str) -> String {
    match std::env::var(TAG_VARIABLE) {
        Ok(outer) if !outer.trim().is_empty() => format!("{} {tag}", outer.trim()),
        _ => tag.to_owned(),
    }
}

/// The prefix every tag of runner process `pid` starts with.
pub fn runner_prefix(pid: u32) -> String {
    format!("{pid}.")
}

/// Living processes whose tags satisfy `wanted` (runner itself never does).
fn find(wanted: &dyn Fn(&str) -> bool) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Unreadable (gone, or another user's): not ours to kill either way.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let tagged = environ
            .split(|byte| *byte == 0)
            .filter_map(|pair| pair.strip_prefix(TAG_VARIABLE.as_bytes()))
            .filter_map(|rest| rest.strip_prefix(b"="))
            .any(|value| {
                String::from_utf8_lossy(value)
                    .split_whitespace()
                    .any(wanted)
            });
        if tagged {
            if let Ok(pid) = i32::try_from(pid) {
                found.push(Pid::from_raw(pid));
            }
        }
    }
    found
}

/// Kills every process carrying exactly `tag`, in rounds until none is left (a process can
/// fork while the previous round kills), within `limit`. Returns how many were killed.
pub fn kill_tagged(tag: &str, limit: Duration) -> usize {
    sweep(&|candidate| candidate == tag, limit)
}

/// A process's parent and start time (clock ticks since boot), from `/proc/<pid>/stat`: the
/// start time tells a process from a later one given the same pid.
fn parent_and_start(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state (3), ppid (4), ... starttime (22), numbered from 1 with pid.
    let parent = fields.get(1)?.parse().ok()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((parent, started))
}

/// Adds every living descendant of `root` to `noted` (pid → start time). Called while runner
/// lives: once it is killed its children are given to init and the parentage is lost.
pub fn note_descendants(root: u32, noted: &mut std::collections::BTreeMap<u32, u64>) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut parents: Vec<(u32, u32, u64)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((parent, start)) = parent_and_start(pid) {
            parents.push((pid, parent, start));
        }
    }
    let me = std::process::id();
    let mut tree = std::collections::BTreeSet::from([root]);
    // Parents may be listed after their children: repeat until nothing is added.
    loop {
        let before = tree.len();
        for (pid, parent, start) in &parents {
            if *pid != me && tree.contains(parent) && tree.insert(*pid) {
                noted.insert(*pid, *start);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    // Gone ones go, so a recycled pid is not mistaken for them later.
    noted.retain(|pid, start| parent_and_start(*pid).is_some_and(|(_, now)| now == *start));
}

/// Kills the noted processes still alive as the same processes.
pub fn kill_noted(noted: &std::collections::BTreeMap<u32, u64>) {
    for (pid, start) in noted {
        if parent_and_start(*pid).is_some_and(|(_, now)| now == *start) {
            if let Ok(raw) = i32::try_from(*pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
    }
}

/// Kills every process of each process group (a child runner started leads its own).
pub fn kill_groups(groups: &std::collections::BTreeSet<u32>) {
    for group in groups {
        if let Ok(raw) = i32::try_from(*group) {
            let _ = nix::sys::signal::killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

/// Kills every process of any tree runner process `pid` started.
pub fn kill_runner_trees(pid: u32, limit: Duration) -> usize {
    let prefix = runner_prefix(pid);
    sweep(&|candidate| candidate.starts_with(&prefix), limit)
}

fn sweep(wanted: &dyn Fn(&str) -> bool, limit: Duration) -> usize {
    let started = Instant::now();
    let mut killed = 0;
    let mut quiet_rounds = 0;
    while quiet_rounds < 2 && started.elapsed() < limit {
        let found = find(wanted);
        if found.is_empty() {
            quiet_rounds += 1;
        } else {
            quiet_rounds = 0;
        }
        for pid in found {
            if kill(pid, Signal::SIGKILL).is_ok() {
                killed += 1;
            }
            // Reaps it when it is runner's own child; anyone else's is reaped by its parent.
            let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
        }
        if quiet_rounds == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_nest_under_an_outer_runner() {
        let tag = new_tag();
        assert!(tag.starts_with(&runner_prefix(std::process::id())));
        assert_ne!(tag, new_tag());
    }

    #[test]
    fn a_detached_process_is_found_by_its_tag_and_killed() {
        let tag = new_tag();
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .env(TAG_VARIABLE, tag_value(&tag))
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        // setsid may fork; wait until a tagged process exists.
        let started = Instant::now();
        while find(&|t| t == tag).is_empty() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(kill_tagged(&tag, Duration::from_secs(5)) >= 1);
        let _ = child.wait();
        assert!(find(&|t| t == tag).is_empty());
        let _ = kill(pid, None);
    }
}
