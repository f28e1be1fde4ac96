//! The per-test time limit: follows libtest's `started` and finished events as the process
//! prints them, says when a test runs past a third of its limit (slow) and stops the process
//! when one runs past the limit, remembering which test that was. Every test has the
//! stage's limit unless it was given a longer one of its own (see [`stretched_limits`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::durations::FinishedRuns;
use super::test_id::TestId;
use super::tool::Binary;
use crate::libtest::{self, Event};
use crate::process::Tick;

#[derive(Default)]
struct Running {
    started: BTreeMap<String, Instant>,
    /// Wall seconds from each finished test's `started` event to its result.
    took: BTreeMap<String, f64>,
    slow_reported: Vec<String>,
    overdue: Option<String>,
}

pub struct TestClock<'a> {
    limit: Duration,
    /// Tests with a longer limit of their own.
    longer: &'a BTreeMap<String, Duration>,
    running: Mutex<Running>,
}

impl<'a> TestClock<'a> {
    pub fn new(limit: Duration, longer: &'a BTreeMap<String, Duration>) -> TestClock<'a> {
        TestClock {
            limit,
            longer,
            running: Mutex::new(Running::default()),
        }
    }

    /// The limit of one test.
    pub fn limit_of(&self, test: &str) -> Duration {
        self.longer.get(test).copied().unwrap_or(self.limit)
    }

    /// Feeds one line of the process's standard output.
    pub fn observe(&self, line: &str) {
        let Some(event) = libtest::parse_event(line) else {
            return;
        };
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match event {
            Event::Started(name) => {
                running.started.insert(name, Instant::now());
            }
            Event::Finished(result) => {
                if let Some(since) = running.started.remove(&result.name) {
                    running
                        .took
                        .insert(result.name, since.elapsed().as_secs_f64());
                }
            }
            Event::SuiteFinished => {}
        }
    }

    /// Each test's wall time: to its result, or for one still running when the process
    /// ended (a crash, a timeout), to now. Under Miri libtest's own times are Miri's virtual
    /// clock, which leaves out the cost of starting each test; these are what a split by
    /// duration must balance.
    pub fn wall_times(&self) -> BTreeMap<String, f64> {
        let Ok(running) = self.running.lock() else {
            return BTreeMap::new();
        };
        let mut times = running.took.clone();
        for (name, since) in &running.started {
            times.insert(name.clone(), since.elapsed().as_secs_f64());
        }
        times
    }

    /// Checks the running tests; `on_slow` hears once about each test past a third of its
    /// limit.
    pub fn tick(&self, on_slow: &dyn Fn(&str, Duration)) -> Tick {
        let Ok(mut running) = self.running.lock() else {
            return Tick::Continue;
        };
        let started: Vec<(String, Duration)> = running
            .started
            .iter()
            .map(|(name, since)| (name.clone(), since.elapsed()))
            .collect();
        for (name, elapsed) in started {
            let limit = self.limit_of(&name);
            if elapsed >= limit {
                running.overdue = Some(name);
                return Tick::Stop;
            }
            if elapsed >= limit / 3 && !running.slow_reported.contains(&name) {
                on_slow(&name, elapsed);
                running.slow_reported.push(name);
            }
        }
        Tick::Continue
    }

    /// The test that ran past its limit, with that limit, once the process was stopped
    /// for it.
    pub fn overdue(&self) -> Option<(String, Duration)> {
        let name = self.running.lock().ok()?.overdue.clone()?;
        let limit = self.limit_of(&name);
        Some((name, limit))
    }
}

/// The most a default limit stretches for a test known to be slow: enough for a test that
/// is slow everywhere, while a test that hangs only under this tool is still stopped.
const MOST_STRETCH: u32 = 4;

/// Longer limits for the tests of `binary` known to take long: a test that finished in
/// `quickest` seconds under another tool (or target) of this run or an earlier one gets
/// `quickest × slowdown` (the most this tool slows a test down against that), up to
/// [`MOST_STRETCH`] times the stage's default limit. Only a default limit stretches
/// (`slowdown` is `None` for one the user set); tests never measured keep the default.
pub fn stretched_limits(
    base: Duration,
    slowdown: Option<f64>,
    finished: &FinishedRuns<'_>,
    stage: &str,
    binary: &Binary,
) -> BTreeMap<String, Duration> {
    let Some(slowdown) = slowdown else {
        return BTreeMap::new();
    };
    let most = base.saturating_mul(MOST_STRETCH);
    let mut longer = BTreeMap::new();
    for test in &binary.tests {
        let Some((_, _, seconds)) = finished.quickest_elsewhere(&TestId::of(binary, test), stage)
        else {
            continue;
        };
        let Ok(needed) = Duration::try_from_secs_f64(seconds * slowdown) else {
            continue;
        };
        if needed > base {
            longer.insert(test.clone(), needed.min(most));
        }
    }
    longer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::durations::Durations;

    #[test]
    fn stops_on_the_test_that_overran_and_reports_slow_ones_once() {
        let no_longer = BTreeMap::new();
        let clock = TestClock::new(Duration::from_millis(90), &no_longer);
        clock.observe(r#"{ "type": "test", "event": "started", "name": "a" }"#);
        clock.observe(r#"{ "type": "test", "name": "a", "event": "ok" }"#);
        clock.observe(r#"{ "type": "test", "event": "started", "name": "b" }"#);
        let slow = Mutex::new(Vec::new());
        let note = |name: &str, _: Duration| slow.lock().unwrap().push(name.to_owned());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(clock.tick(&note), Tick::Continue);
        assert_eq!(clock.tick(&note), Tick::Continue);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(clock.tick(&note), Tick::Stop);
        assert_eq!(
            clock.overdue(),
            Some(("b".to_owned(), Duration::from_millis(90)))
        );
        assert_eq!(*slow.lock().unwrap(), ["b"]);
    }

    #[test]
    fn a_default_limit_stretches_for_tests_slow_elsewhere_up_to_four_times() {
        let mut measured = Durations::default();
        // Quick elsewhere: keeps the default.
        measured.insert("coverage", &TestId::new("host", "p lib", "quick"), 0.5);
        // 14 s under AddressSanitizer: 14 x 100 = 1400 s > 900 s.
        measured.insert("sanitizers", &TestId::new("address", "p lib", "slow"), 14.0);
        measured.insert("coverage", &TestId::new("host", "p lib", "slow"), 20.0);
        // Far slower: capped at four times the default.
        measured.insert("coverage", &TestId::new("host", "p lib", "slowest"), 100.0);
        // Its own earlier run under this tool does not count.
        measured.insert("sanitizers", &TestId::new("memory", "p lib", "own"), 800.0);
        // Nor a run that ended its process elsewhere.
        measured.insert("coverage", &TestId::new("host", "p lib", "ended"), 50.0);
        measured.mark_ended("coverage", &TestId::new("host", "p lib", "ended"));
        let base = Duration::from_mins(15);
        let binary = Binary::fake(
            "memory",
            &["quick", "slow", "slowest", "own", "ended", "never"],
        );
        let finished = measured.finished_runs();
        let longer = stretched_limits(base, Some(100.0), &finished, "sanitizers", &binary);
        assert_eq!(
            longer,
            BTreeMap::from([
                ("slow".to_owned(), Duration::from_secs(1400)),
                ("slowest".to_owned(), Duration::from_hours(1)),
            ])
        );
        // A limit the user set never stretches.
        assert!(stretched_limits(base, None, &finished, "sanitizers", &binary).is_empty());
        let clock = TestClock::new(base, &longer);
        assert_eq!(clock.limit_of("slow"), Duration::from_secs(1400));
        assert_eq!(clock.limit_of("quick"), base);
    }

    #[test]
    fn each_test_is_stopped_at_its_own_limit() {
        let longer = BTreeMap::from([("long".to_owned(), Duration::from_millis(600))]);
        let clock = TestClock::new(Duration::from_millis(50), &longer);
        clock.observe(r#"{ "type": "test", "event": "started", "name": "long" }"#);
        // Past the stage's limit, not past its own.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(clock.tick(&|_, _| {}), Tick::Continue);
        std::thread::sleep(Duration::from_millis(550));
        assert_eq!(clock.tick(&|_, _| {}), Tick::Stop);
        assert_eq!(
            clock.overdue(),
            Some(("long".to_owned(), Duration::from_millis(600)))
        );
    }
}
