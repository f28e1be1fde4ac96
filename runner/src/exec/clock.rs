//! The per-test time limit: follows libtest's `started` and finished events as the process
//! prints them, says when a test runs past a third of its limit (slow) and stops the process
//! when one runs past the limit, remembering which test that was.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

pub struct TestClock {
    limit: Duration,
    running: Mutex<Running>,
}

impl TestClock {
    pub fn new(limit: Duration) -> TestClock {
        TestClock {
            limit,
            running: Mutex::new(Running::default()),
        }
    }

    pub fn limit(&self) -> Duration {
        self.limit
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
        let Some((name, since)) = running
            .started
            .iter()
            .min_by_key(|(_, since)| **since)
            .map(|(name, since)| (name.clone(), *since))
        else {
            return Tick::Continue;
        };
        let elapsed = since.elapsed();
        if elapsed >= self.limit {
            running.overdue = Some(name);
            return Tick::Stop;
        }
        if elapsed >= self.limit / 3 && !running.slow_reported.contains(&name) {
            on_slow(&name, elapsed);
            running.slow_reported.push(name);
        }
        Tick::Continue
    }

    /// The test that ran past the limit, once the process was stopped for it.
    pub fn overdue(&self) -> Option<String> {
        self.running.lock().ok().and_then(|r| r.overdue.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_on_the_test_that_overran_and_reports_slow_ones_once() {
        let clock = TestClock::new(Duration::from_millis(90));
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
        assert_eq!(clock.overdue().as_deref(), Some("b"));
        assert_eq!(*slow.lock().unwrap(), ["b"]);
    }
}
